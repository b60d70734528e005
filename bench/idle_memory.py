"""Memory per idle connection: the bridge's RSS growth over N open, authenticated, silent WebSockets.

Run with ``python bench/idle_memory.py`` (``--connections 2000 10000``). A real bridge (its
connection caps raised for the run, its idle timeout past the run's length) and one load
process that raises its own open-files limit (the bridge inherits it), registers enough users
(``max_sessions_per_user`` allows at most 100 tabs each), and opens the connections with
``?token=`` in the URL, each reading its ``session_created``, then sending nothing. The figure
is (bridge RSS with N open - RSS with a warm-up's 50 open) / (N - 50), read once the count is
reached and again after the bridge has been left alone for a moment; then every connection is
closed before the next N. Prints a table and writes ``bench/results/idle_memory.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from bridge_server import bridge_process, running_bridge
from timing import machine_info
from ttrpg_mcp.bridge.protocol import SUBPROTOCOL
from ttrpg_mcp.client import BridgeClient

RESULTS = Path(__file__).parent / "results" / "idle_memory.json"
TABS_PER_USER = 100
WARM_UP = 50
# Connections opened at once: enough to go fast, few enough not to trip the accept backlog.
OPENING_AT_ONCE = 50
SETTLE_SECONDS = 3.0


def _raise_open_files(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _rss() -> int:
    return int(bridge_process().memory_info().rss)


def _urls(ws_base: str, tokens: list[str], count: int) -> Iterator[str]:
    for index in range(count):
        yield ws_base + "/ws?" + urlencode({"token": tokens[index // TABS_PER_USER]})


async def _open(urls: list[str], stack: AsyncExitStack) -> list[ClientConnection]:
    opened: list[ClientConnection] = []
    gate = asyncio.Semaphore(OPENING_AT_ONCE)

    async def one(url: str) -> None:
        async with gate:
            websocket = await stack.enter_async_context(
                ws_connect(url, subprotocols=[SUBPROTOCOL], ping_interval=None, open_timeout=120)  # type: ignore[list-item]
            )
            first = json.loads(await websocket.recv())
            assert first["type"] == "session_created", first
            opened.append(websocket)

    await asyncio.gather(*(one(url) for url in urls))
    return opened


async def _measure(base_url: str, tokens: list[str], count: int) -> dict[str, Any]:
    ws_base = base_url.replace("http", "ws", 1)
    async with AsyncExitStack() as warm_stack:
        await _open(list(_urls(ws_base, tokens, WARM_UP)), warm_stack)
        await asyncio.sleep(SETTLE_SECONDS)  # a measurement pause, not a wait for a condition
        base = _rss()
        async with AsyncExitStack() as stack:
            await _open(list(_urls(ws_base, tokens[1:], count - WARM_UP)), stack)
            at_count = _rss()
            await asyncio.sleep(SETTLE_SECONDS)
            settled = _rss()
    per = (settled - base) / (count - WARM_UP)
    return {
        "connections": count,
        "rss_base_mb": round(base / 2**20, 1),
        "rss_open_mb": round(settled / 2**20, 1),
        "kb_per_connection": round(per / 1024, 1),
        "kb_per_connection_at_count": round((at_count - base) / (count - WARM_UP) / 1024, 1),
    }


async def _run(counts: list[int]) -> dict[str, Any]:
    most = max(counts)
    limit = _raise_open_files(most + 1_000)
    users = most // TABS_PER_USER + 2
    caps = {
        "TTRPG_MAX_CONNECTIONS": str(most + 200),
        "TTRPG_MAX_CONNECTIONS_PER_ADDRESS": str(most + 200),
        "TTRPG_MAX_SESSIONS_PER_USER": str(TABS_PER_USER),
        "TTRPG_IDLE_TIMEOUT": "3600",
        "TTRPG_HEARTBEAT_INTERVAL": "1200",
    }
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch,
        running_bridge(Path(scratch), env=caps) as base_url,
    ):
        tokens: list[str] = []
        for n in range(users):
            async with BridgeClient(base_url, renew_tokens=False) as client:
                tokens.append((await client.register(f"idle-{n}", "benchmark-password")).access_token)
        for count in counts:
            rows.append(await _measure(base_url, tokens, count))
            print(rows[-1], flush=True)
    return {"benchmark": "idle_memory", "open_files_limit": limit, **machine_info(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, nargs="+", default=[2_000, 10_000])
    args = parser.parse_args()
    report = asyncio.run(_run(args.connections))
    print(f"{'connections':>12}{'KB/connection':>15}{'RSS base MB':>13}{'RSS open MB':>13}")
    for row in report["rows"]:
        print(
            f"{row['connections']:>12}{row['kb_per_connection']:>15}"
            f"{row['rss_base_mb']:>13}{row['rss_open_mb']:>13}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
