"""A flame graph of the bridge relaying ``roll_dice`` tool calls, with its MCP child.

Run with ``python bench/profile_relay.py`` (``--in-flight 32 --seconds 8``). Starts a real bridge
on a scratch data directory, keeps ``--in-flight`` ``tool_call`` messages in flight over one
WebSocket (``--via mcp``: ``tools/call`` requests over one ``/mcp`` Streamable HTTP session with
an API key, as ``bench/mcp_endpoint.py`` makes them; ``--at-table`` seats the WebSocket at a
campaign first, so that both paths log the same table rolls), and records the bridge and its children
with py-spy (``--subprocesses``) for ``--seconds``, after the warm-up. Writes
``bench/results/flames/<name>.svg``; open it in a browser (``--raw``: py-spy's collapsed
stacks, ``<name>.txt``, for reading in a terminal). py-spy needs ptrace rights over the bridge (root, or
``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import psutil
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from bridge_server import running_bridge
from ttrpg_mcp.client import BridgeClient

FLAMES = Path(__file__).parent / "results" / "flames"
ARGUMENTS = {"expression": "1d20+5"}


def _bridge_pid() -> int:
    for child in psutil.Process().children():
        if "ttrpg_mcp.bridge.cli" in " ".join(child.cmdline()):
            return int(child.pid)
    raise SystemExit("no bridge process found")


Call = Callable[[], Awaitable[Any]]


@asynccontextmanager
async def _over_websocket(client: BridgeClient, at_table: bool) -> Any:
    campaign_id = (await client.create_campaign("Profile table"))["id"] if at_table else None
    async with client.connect() as table:
        if campaign_id is not None:
            await table.join(campaign_id)
        yield lambda: table.call_tool("roll_dice", ARGUMENTS)


@asynccontextmanager
async def _over_mcp(client: BridgeClient, base_url: str) -> Any:
    campaign_id = (await client.create_campaign("Profile table"))["id"]
    key = (await client.create_api_key("profile agent", campaign_id=campaign_id))["key"]
    http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with (
        http_client,
        streamable_http_client(f"{base_url}/mcp", http_client=http_client) as (read, write),
        ClientSession(read, write, client_info=types.Implementation(name="profile", version="1")) as agent,
    ):
        await agent.initialize()
        yield lambda: agent.call_tool("roll_dice", ARGUMENTS)


async def _load(
    base_url: str, via: str, at_table: bool, in_flight: int, seconds: float, record: list[str]
) -> int:
    calls = 0
    async with BridgeClient(base_url) as client:
        await client.register("profile", "benchmark-password")
        path: AbstractAsyncContextManager[Call] = (
            _over_mcp(client, base_url) if via == "mcp" else _over_websocket(client, at_table)
        )
        async with path as call:
            for _ in range(50):  # warm: children started, catalog cached
                await call()
            recorder = await asyncio.create_subprocess_exec(*record)
            deadline = time.monotonic() + seconds

            async def caller() -> None:
                nonlocal calls
                while time.monotonic() < deadline:
                    await call()
                    calls += 1

            await asyncio.gather(*(caller() for _ in range(in_flight)))
            await recorder.wait()
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--via", choices=["websocket", "mcp"], default="websocket")
    parser.add_argument(
        "--at-table",
        action="store_true",
        help="the WebSocket joins a campaign first, as /mcp's agent sits at one",
    )
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--name", default="tool_call", help="file name of the SVG, without .svg")
    parser.add_argument("--raw", action="store_true", help="collapsed stacks (.txt) instead of an SVG")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    FLAMES.mkdir(parents=True, exist_ok=True)
    out = FLAMES / f"{args.name}.{'txt' if args.raw else 'svg'}"
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch, running_bridge(Path(scratch)) as url:
        record = [py_spy, "record", "--subprocesses", "--nonblocking", "-r", "200"]
        record += ["-d", str(int(args.seconds)), "-o", str(out), "-p", str(_bridge_pid())]
        record += ["--format", "raw"] if args.raw else []
        calls = asyncio.run(_load(url, args.via, args.at_table, args.in_flight, args.seconds, record))
    print(f"{calls / args.seconds:.0f} calls/s while recording; wrote {out}")


if __name__ == "__main__":
    main()
