"""Tool-call latency through ``/mcp``, beside a WebSocket ``tool_call`` and a direct stdio call, in one run.

Run with ``make bench`` (or ``python bench/mcp_endpoint.py --calls 500``). It starts a real
``ttrpg-bridge serve`` on a free port, makes a campaign and an API key scoped to it, then times
sequential ``roll_dice`` calls (with a purpose, at that campaign's table, so each one is logged
and shown at the table) three ways:

- an agent at ``/mcp``: the MCP SDK's Streamable HTTP client with the key as bearer token;
- the GM's WebSocket ``tool_call`` at the same table;
- the same tool called directly over stdio through the SDK (as Claude Desktop does), on the same
  data directory, after the bridge stopped.

The first two paths take turns, 25 calls at a time, so that the shared machine's load swings hit
both alike; for each, the bridge's CPU (with its MCP children) per call, from ``/proc``, and the
client's (this process's) CPU per call. The ratio column divides each row's p50 by the direct
stdio p50; ``/mcp`` is also divided by the WebSocket (p50 and CPU). Prints a table and writes
``bench/results/mcp_endpoint.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import psutil
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from bridge_server import running_bridge
from timing import machine_info, percentiles, print_and_save, time_async
from ttrpg_mcp.client import BridgeClient
from ttrpg_mcp.server.launch import connect

RESULTS = Path(__file__).parent / "results" / "mcp_endpoint.json"
_EXPRESSION = "1d20+5"
_PURPOSE = "benchmark roll"
# Calls of one path in a row before the other path's turn.
_BLOCK = 25


def _bridge_cpu() -> float:
    """CPU seconds of the bridge and its MCP children so far (the load client is not counted)."""
    total = 0.0
    for bridge in psutil.Process().children():
        if "ttrpg_mcp.bridge.cli" not in " ".join(bridge.cmdline()):
            continue
        for process in [bridge, *bridge.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    return total


async def _alternating(paths: dict[str, Callable[[int], Awaitable[None]]], calls: int) -> dict[str, Any]:
    """Each path in turn, ``_BLOCK`` calls at a time, so that the machine's load swings hit all alike.

    Latency per call; the bridge's CPU (with its children) over each block goes to that path, and
    so does this process's: the client's own work (the SDK's Streamable HTTP client, or ours).
    """
    samples: dict[str, list[float]] = {name: [] for name in paths}
    cpu = dict.fromkeys(paths, 0.0)
    client_cpu = dict.fromkeys(paths, 0.0)
    for _ in range(max(1, calls // _BLOCK)):
        for name, call in paths.items():
            before, client_before = _bridge_cpu(), time.process_time()
            samples[name] += await time_async(_BLOCK, call)
            cpu[name] += _bridge_cpu() - before
            client_cpu[name] += time.process_time() - client_before
    return {
        name: percentiles(values)
        | {
            "bridge_cpu_ms_per_call": round(cpu[name] / len(values) * 1000, 3),
            "client_cpu_ms_per_call": round(client_cpu[name] / len(values) * 1000, 3),
        }
        for name, values in samples.items()
    }


async def _run(calls: int, warmup: int) -> dict[str, Any]:
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        data_dir = Path(scratch)
        with running_bridge(data_dir) as base_url:
            async with BridgeClient(base_url) as gm:
                await gm.register("bench", "benchmark-password")
                campaign_id = (await gm.create_campaign("Bench table"))["id"]
                key = (await gm.create_api_key("bench agent", campaign_id=campaign_id))["key"]
                arguments = {"expression": _EXPRESSION, "purpose": _PURPOSE}
                async with gm.connect() as table:
                    await table.join(campaign_id)

                    async def websocket(index: int) -> None:
                        await table.call_tool("roll_dice", arguments)

                    http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
                    async with (
                        http_client,
                        streamable_http_client(f"{base_url}/mcp", http_client=http_client) as (read, write),
                        ClientSession(
                            read, write, client_info=types.Implementation(name="bench", version="1")
                        ) as agent,
                    ):
                        await agent.initialize()

                        async def over_mcp(index: int) -> None:
                            result = await agent.call_tool("roll_dice", arguments)
                            if result.is_error:
                                raise SystemExit(f"/mcp refused the call: {result.content}")

                        await time_async(warmup, over_mcp)
                        await time_async(warmup, websocket)
                        paths = {
                            "roll_dice via /mcp (Streamable HTTP)": over_mcp,
                            "roll_dice via WebSocket tool_call": websocket,
                        }
                        rows |= await _alternating(paths, calls)
        async with connect(data_dir) as session:

            async def direct(index: int) -> None:
                await session.call_tool("roll_dice", arguments | {"campaign_id": campaign_id})

            await time_async(warmup, direct)
            rows["roll_dice direct stdio"] = percentiles(await time_async(calls, direct))
    base = rows["roll_dice direct stdio"]["p50_ms"]
    for row in rows.values():
        row["p50_ratio_to_direct_stdio"] = round(row["p50_ms"] / max(base, 1e-6), 2)
    mcp, websocket = rows["roll_dice via /mcp (Streamable HTTP)"], rows["roll_dice via WebSocket tool_call"]
    mcp["p50_ratio_to_websocket"] = round(mcp["p50_ms"] / websocket["p50_ms"], 2)
    mcp["cpu_ratio_to_websocket"] = round(
        mcp["bridge_cpu_ms_per_call"] / websocket["bridge_cpu_ms_per_call"], 2
    )
    return {"benchmark": "mcp_endpoint", "calls_per_row": calls, **machine_info(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    report = anyio.run(_run, args.calls, args.warmup)
    print_and_save(report, RESULTS, "p50_ratio_to_direct_stdio")
    for name, row in report["rows"].items():
        if "bridge_cpu_ms_per_call" in row:
            cpu, client = row["bridge_cpu_ms_per_call"], row["client_cpu_ms_per_call"]
            print(f"{name}: bridge CPU {cpu} ms/call, client CPU {client} ms/call")
    mcp = report["rows"]["roll_dice via /mcp (Streamable HTTP)"]
    print({key: value for key, value in mcp.items() if "websocket" in key})


if __name__ == "__main__":
    main()
