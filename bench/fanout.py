"""Fan-out of cursor moves at one table: delivered messages per second and delivery latency.

Run with ``python bench/fanout.py`` (``--clients 20 --rate 20 --seconds 30`` by default, the
spike's "20+ concurrent users per campaign"). It starts a real ``ttrpg-bridge serve``, makes one
campaign with a GM and N-1 invited players, connects everyone with the Python client, and has
each client send ``cursor_move`` at the given rate for the given time, stamping each position
with the send time. Every client measures, for each cursor position it receives in the
bridge's batches, the time from send to receipt. The bridge coalesces cursors per user and
sends a batch per ~50 ms tick, so latency includes up to one tick of deliberate batching.
The load generator runs on the same machine as the bridge (both share its cores).
Prints a table and writes ``bench/results/fanout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bridge_server import running_bridge
from timing import machine_info, percentiles, print_and_save
from ttrpg_mcp.client import BridgeClient, BridgeConnection

RESULTS = Path(__file__).parent / "results" / "fanout.json"


async def _seat(base_url: str, index: int, gm: BridgeClient | None, campaign_id: str | None) -> BridgeClient:
    client = BridgeClient(base_url)
    await client.register(f"bench{index}-{uuid.uuid4().hex[:6]}", "benchmark-password")
    if gm is not None and campaign_id is not None:
        await client.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
    return client


async def _run(clients: int, rate: float, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    frames = 0
    positions = 0
    sent = 0
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        limits = {"TTRPG_MAX_PARTICIPANTS_PER_CAMPAIGN": str(max(clients, 20))}
        with running_bridge(Path(scratch), limits) as base_url:
            gm = await _seat(base_url, 0, None, None)
            campaign_id = (await gm.create_campaign("Fan-out"))["id"]
            seats = [gm] + [await _seat(base_url, i, gm, campaign_id) for i in range(1, clients)]
            stop = asyncio.Event()

            async def receive(table: BridgeConnection) -> None:
                nonlocal frames, positions
                async for event in table.events():
                    if event["type"] != "cursor_move":
                        continue
                    now = time.time() * 1000
                    frames += 1
                    for cursor in event["data"]["cursors"]:
                        positions += 1
                        latencies.append(now - cursor["position"]["timestamp"])
                    if stop.is_set():
                        return

            async def send(table: BridgeConnection, index: int) -> None:
                nonlocal sent
                interval = 1 / rate
                next_at = time.monotonic() + index * interval / clients  # spread the clients out
                while not stop.is_set():
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    position = {"x": index, "y": sent % 1000, "timestamp": int(time.time() * 1000)}
                    await table.send({"type": "cursor_move", "data": {"position": position}})
                    sent += 1
                    next_at += interval

            stack = contextlib.AsyncExitStack()
            tables = [await stack.enter_async_context(c.connect(campaign_id=campaign_id)) for c in seats]
            await asyncio.sleep(1.0)  # joins settle
            receivers = [asyncio.create_task(receive(table)) for table in tables]
            senders = [asyncio.create_task(send(table, i)) for i, table in enumerate(tables)]
            started = time.monotonic()
            await asyncio.sleep(seconds)
            stop.set()
            elapsed = time.monotonic() - started
            await asyncio.gather(*senders)
            await asyncio.sleep(0.3)
            for task in receivers:
                task.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
            await stack.aclose()
            await asyncio.gather(*(client.aclose() for client in seats))
    row = percentiles(latencies) | {
        "frames_per_second": round(frames / elapsed, 1),
        "positions_per_second": round(positions / elapsed, 1),
        "moves_sent_per_second": round(sent / elapsed, 1),
    }
    return {
        "benchmark": "fanout",
        "clients": clients,
        "rate_hz": rate,
        "seconds": seconds,
        **machine_info(),
        "rows": {"cursor_move delivery": row},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="cursor moves per second per client")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    report = asyncio.run(_run(args.clients, args.rate, args.seconds))
    print_and_save(report, RESULTS, "frames_per_second")
    row = report["rows"]["cursor_move delivery"]
    print(
        f"sent {row['moves_sent_per_second']}/s; delivered {row['frames_per_second']} frames/s "
        f"carrying {row['positions_per_second']} positions/s"
    )


if __name__ == "__main__":
    main()
