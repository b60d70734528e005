"""Tool-call latency through ``/mcp``, beside a WebSocket ``tool_call`` and a direct stdio call, in one run.

Run with ``make bench`` (or ``python bench/mcp_endpoint.py --calls 500``). It starts a real
``ttrpg-bridge serve`` on a free port, makes a campaign and an API key scoped to it, then times
sequential ``roll_dice`` calls (with a purpose, at that campaign's table, so each one is logged
and shown at the table) three ways:

- an agent at ``/mcp``: the MCP SDK's Streamable HTTP client with the key as bearer token;
- the GM's WebSocket ``tool_call`` at the same table;
- the same tool called directly over stdio through the SDK (as Claude Desktop does), on the same
  data directory, after the bridge stopped.

The ratio column divides each row's p50 by the direct stdio p50. Prints a table and writes
``bench/results/mcp_endpoint.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
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

                        # Interleaved warm-ups, then each path timed on the same warm bridge.
                        await time_async(warmup, over_mcp)
                        await time_async(warmup, websocket)
                        rows["roll_dice via /mcp (Streamable HTTP)"] = percentiles(
                            await time_async(calls, over_mcp)
                        )
                        rows["roll_dice via WebSocket tool_call"] = percentiles(
                            await time_async(calls, websocket)
                        )
        async with connect(data_dir) as session:

            async def direct(index: int) -> None:
                await session.call_tool("roll_dice", arguments | {"campaign_id": campaign_id})

            await time_async(warmup, direct)
            rows["roll_dice direct stdio"] = percentiles(await time_async(calls, direct))
    base = rows["roll_dice direct stdio"]["p50_ms"]
    for row in rows.values():
        row["p50_ratio_to_direct_stdio"] = round(row["p50_ms"] / max(base, 1e-6), 2)
    return {"benchmark": "mcp_endpoint", "calls_per_row": calls, **machine_info(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    report = anyio.run(_run, args.calls, args.warmup)
    print_and_save(report, RESULTS, "p50_ratio_to_direct_stdio")


if __name__ == "__main__":
    main()
