"""Round-trip latency of a tool call through the bridge, beside a direct stdio call, in one run.

Run with ``make bench`` (or ``python bench/bridge_latency.py --calls 2000``). It starts a real
``ttrpg-bridge serve`` on a free port with its MCP pool, logs in with the Python client and
times sequential ``tool_call roll_dice`` messages over the WebSocket; then it times the same
tool called directly over stdio through the SDK (as Claude Desktop does) on the same data
directory, and ``dice_roll`` rolled in the bridge itself. The ratio column divides each row's
p50 by the direct stdio p50: what the WebSocket hop and the relay add on this machine.
Prints a table and writes ``bench/results/bridge_latency.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import anyio

from bridge_server import running_bridge
from timing import machine_info, percentiles, print_and_save, time_async
from ttrpg_mcp.client import BridgeClient
from ttrpg_mcp.server.launch import connect

RESULTS = Path(__file__).parent / "results" / "bridge_latency.json"
_EXPRESSION = "4d6kh3+2"


async def _run(calls: int, warmup: int) -> dict[str, Any]:
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        data_dir = Path(scratch)
        with running_bridge(data_dir) as base_url:
            async with BridgeClient(base_url) as client:
                await client.register("bench", "benchmark-password")
                async with client.connect() as table:

                    async def relayed(index: int) -> None:
                        await table.call_tool("roll_dice", {"expression": _EXPRESSION})

                    async def in_bridge(index: int) -> None:
                        await table.roll_dice(_EXPRESSION)

                    await time_async(warmup, relayed)
                    rows["tool_call via bridge (ws)"] = percentiles(await time_async(calls, relayed))
                    await time_async(warmup, in_bridge)
                    rows["dice_roll in bridge (ws)"] = percentiles(await time_async(calls, in_bridge))
        async with connect(data_dir) as session:

            async def direct(index: int) -> None:
                await session.call_tool("roll_dice", {"expression": _EXPRESSION})

            await time_async(warmup, direct)
            rows["roll_dice direct stdio"] = percentiles(await time_async(calls, direct))
    base = rows["roll_dice direct stdio"]["p50_ms"]
    for row in rows.values():
        row["p50_ratio_to_direct_stdio"] = round(row["p50_ms"] / max(base, 1e-6), 2)
    return {"benchmark": "bridge_latency", "calls_per_row": calls, **machine_info(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    report = anyio.run(_run, args.calls, args.warmup)
    print_and_save(report, RESULTS, "p50_ratio_to_direct_stdio")


if __name__ == "__main__":
    main()
