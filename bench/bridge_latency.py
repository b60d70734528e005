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
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from timing import machine_info, percentiles, print_and_save, time_async
from ttrpg_mcp.client import BridgeClient
from ttrpg_mcp.server.launch import connect

RESULTS = Path(__file__).parent / "results" / "bridge_latency.json"
_EXPRESSION = "4d6kh3+2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_bridge(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TTRPG_")}
    env["TTRPG_LOG_LEVEL"] = "warning"
    command = [
        sys.executable,
        "-m",
        "ttrpg_mcp.bridge.cli",
        "--data-dir",
        str(data_dir),
        "serve",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the bridge did not become ready")


async def _run(calls: int, warmup: int) -> dict[str, Any]:
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        data_dir = Path(scratch)
        port = _free_port()
        process = _start_bridge(data_dir, port)
        try:
            async with BridgeClient(f"http://127.0.0.1:{port}") as client:
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
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
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
