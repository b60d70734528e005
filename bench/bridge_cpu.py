"""The bridge's own CPU per relayed ``tool_call``: the figure a loaded machine distorts least.

Run with ``python bench/bridge_cpu.py`` (``--seconds 5``). Starts a real bridge on a scratch
data directory, warms it with 100 calls, then keeps 1 and 32 ``roll_dice`` calls in flight over
one WebSocket and reads the bridge process's CPU time (not its MCP children's, not the load
client's) from ``/proc``. Latency on a shared machine swings with what else runs; CPU per call
moves much less, so before/after comparisons of the relay's own work use this. To measure an
older checkout, export ``PYTHONPATH=<old>/src``. Prints one line per level.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bridge_server import bridge_process, cpu_seconds, running_bridge
from ttrpg_mcp.client import BridgeClient

ARGUMENTS = {"expression": "1d20+5"}


async def _level(base_url: str, in_flight: int, seconds: float) -> tuple[float, float]:
    """(bridge CPU ms per call, calls per second) with ``in_flight`` callers."""
    async with BridgeClient(base_url) as client:
        await client.register(f"cpu-{in_flight}", "benchmark-password")
        async with client.connect() as table:
            for _ in range(100):
                await table.call_tool("roll_dice", ARGUMENTS)
            bridge, calls = bridge_process(), 0
            before, deadline = cpu_seconds(bridge), time.monotonic() + seconds

            async def caller() -> None:
                nonlocal calls
                while time.monotonic() < deadline:
                    await table.call_tool("roll_dice", ARGUMENTS)
                    calls += 1

            await asyncio.gather(*(caller() for _ in range(in_flight)))
            return (cpu_seconds(bridge) - before) / max(calls, 1) * 1000, calls / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch, running_bridge(Path(scratch)) as url:
        for in_flight in (1, 32):
            cpu_ms, rate = asyncio.run(_level(url, in_flight, args.seconds))
            print(f"{in_flight} in flight: bridge CPU {cpu_ms:.2f} ms per call, {rate:.0f} calls/s")


if __name__ == "__main__":
    main()
