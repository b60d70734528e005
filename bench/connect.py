"""Connect + authenticate + seat: from opening the WebSocket to holding the table's snapshot.

Run with ``python bench/connect.py`` (``--connects 300 --seated 15``). A real bridge, a campaign
with ``--seated`` players already at the table (so each arrival is announced to someone), and
one more player who connects ``--connects`` times in a row with ``?token=`` and
``campaign_id`` in the URL, each time until ``campaign_snapshot`` arrives, then closes. Two
times per connect: to ``session_created`` (authenticated) and to ``campaign_snapshot`` (seated),
plus the CPU the bridge process and this client spent per connect (``/proc``; on a loaded
machine the wall time is mostly waiting for a core, the CPU much less so). Prints a table and
writes ``bench/results/connect.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import connect as ws_connect

from bridge_server import bridge_process, cpu_seconds, running_bridge
from timing import machine_info, percentiles, print_and_save
from ttrpg_mcp.bridge.protocol import SUBPROTOCOL
from ttrpg_mcp.client import BridgeClient

RESULTS = Path(__file__).parent / "results" / "connect.json"


async def _run(connects: int, seated: int) -> dict[str, Any]:
    created_ms: list[float] = []
    seated_ms: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch,
        running_bridge(Path(scratch)) as base_url,
    ):
        async with AsyncExitStack() as stack:
            gm = await stack.enter_async_context(BridgeClient(base_url))
            await gm.register("bench-gm", "benchmark-password")
            campaign_id = (await gm.create_campaign("Connect"))["id"]
            invite = (await gm.create_invite(campaign_id, role="player", uses=seated + 1))["code"]
            for n in range(seated):
                player = await stack.enter_async_context(BridgeClient(base_url))
                await player.register(f"bench-seated-{n}", "benchmark-password")
                await player.join_campaign(invite)
                table = await stack.enter_async_context(player.connect(campaign_id=campaign_id))
                await table.next_event("campaign_snapshot")
            arriving = await stack.enter_async_context(BridgeClient(base_url))
            await arriving.register("bench-arriving", "benchmark-password")
            await arriving.join_campaign(invite)
            assert arriving.tokens is not None
            query = urlencode({"token": arriving.tokens.access_token, "campaign_id": campaign_id})
            url = base_url.replace("http", "ws", 1) + "/ws?" + query
            bridge = bridge_process()
            bridge_cpu, client_cpu = cpu_seconds(bridge), time.process_time()
            for _ in range(connects):
                started = time.perf_counter()
                async with ws_connect(url, subprotocols=[SUBPROTOCOL]) as websocket:  # type: ignore[list-item]
                    first = json.loads(await websocket.recv())
                    created_ms.append((time.perf_counter() - started) * 1000)
                    assert first["type"] == "session_created", first
                    seat = json.loads(await websocket.recv())
                    seated_ms.append((time.perf_counter() - started) * 1000)
                    assert seat["type"] == "campaign_snapshot", seat
            bridge_cpu = (cpu_seconds(bridge) - bridge_cpu) * 1000 / connects
            client_cpu = (time.process_time() - client_cpu) * 1000 / connects
    rows = {"to session_created": percentiles(created_ms), "to campaign_snapshot": percentiles(seated_ms)}
    base = rows["to session_created"]["p50_ms"]
    for row in rows.values():
        row["p50_ratio_to_created"] = round(row["p50_ms"] / max(base, 1e-6), 2)
    return {
        "benchmark": "connect",
        "connects": connects,
        "seated": seated,
        "bridge_cpu_ms_per_connect": round(bridge_cpu, 2),
        "client_cpu_ms_per_connect": round(client_cpu, 2),
        **machine_info(),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connects", type=int, default=300)
    parser.add_argument("--seated", type=int, default=15)
    args = parser.parse_args()
    report = asyncio.run(_run(args.connects, args.seated))
    print_and_save(report, RESULTS, "p50_ratio_to_created")
    print(
        f"CPU ms per connect: bridge {report['bridge_cpu_ms_per_connect']}, "
        f"client {report['client_cpu_ms_per_connect']}"
    )


if __name__ == "__main__":
    main()
