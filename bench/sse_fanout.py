"""Dice fan-out to players on the SSE fallback: the bridge's CPU per delivered event.

Run with ``python bench/sse_fanout.py`` (``--seats 30 --rolls 400 --rate 100 --senders 10``).
A real bridge and ``--seats`` players each holding an ``/api/events`` stream of one campaign;
the GM and ``--senders`` - 1 players, each on a WebSocket, take turns rolling ``--rolls`` public
dice at ``--rate`` rolls/s in all (rolls from several connections share a commit and are
delivered together, so several events queue per stream at once), and every stream counts the
``dice_roll`` events it is shown. Reported per round: deliveries, the bridge
process's CPU (``/proc``, itself, not its MCP children) per delivery, and the wall time until
the last delivery.

Before/after in one run: ``--old PATH`` (a checkout's ``src``) runs the bridge from that code
through ``PYTHONPATH``, alternating with this checkout's, ``--rounds`` times each, on the same
data directory (accounts and campaign made once). Writes ``bench/results/sse_fanout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bridge_server import bridge_process, cpu_seconds, running_bridge
from timing import machine_info
from ttrpg_mcp.client import BridgeClient

RESULTS = Path(__file__).parent / "results" / "sse_fanout.json"
SRC = Path(__file__).resolve().parent.parent / "src"
# How long the last deliveries may take to arrive on a loaded machine before a round gives up.
TAIL_SECONDS = 60.0


class Counter:
    """``dice_roll`` events seen across every stream, and when the expected total was reached."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0
        self.done = asyncio.Event()

    def add(self) -> None:
        self.seen += 1
        if self.seen >= self.expected:
            self.done.set()


async def _stream(
    http: httpx.AsyncClient, token: str, campaign_id: str, ready: asyncio.Event, counter: Counter
) -> None:
    """One player's ``/api/events``: count the rolls (a ``data:`` line naming ``dice_roll``)."""
    params = {"token": token, "campaign_id": campaign_id}
    async with http.stream("GET", "/api/events", params=params) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            if '"campaign_snapshot"' in line:
                ready.set()
            elif '"dice_roll"' in line:
                counter.add()


@contextlib.asynccontextmanager
async def _streams(
    base_url: str, tokens: list[str], campaign_id: str, counter: Counter
) -> AsyncIterator[None]:
    limits = httpx.Limits(max_connections=len(tokens) + 4, max_keepalive_connections=0)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as http:
        readies = [asyncio.Event() for _ in tokens]
        tasks = [
            asyncio.create_task(_stream(http, token, campaign_id, ready, counter))
            for token, ready in zip(tokens, readies, strict=True)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 120)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _round(
    data_dir: Path, env: dict[str, str], people: dict[str, Any], rolls: int, rate: float, senders: int
) -> dict[str, Any]:
    """One bridge start on ``data_dir`` (code chosen by ``env``), seated streams, the rolls.

    The GM and the first ``senders - 1`` players roll, each on a WebSocket of its own, in turn:
    rolls from several connections share a commit and reach each stream together.
    """
    campaign_id = people["campaign_id"]
    counter = Counter(rolls * len(people["players"]))
    with running_bridge(data_dir, env) as base_url:
        process = bridge_process()
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for name in [people["gm"], *people["players"]]:
                client = await stack.enter_async_context(BridgeClient(base_url))
                await client.login(name, "benchmark-password")
                clients.append(client)
            tokens = [client.tokens.access_token for client in clients[1:] if client.tokens is not None]
            tables = [
                await stack.enter_async_context(client.connect(campaign_id=campaign_id))
                for client in clients[: max(1, senders)]
            ]
            await stack.enter_async_context(_streams(base_url, tokens, campaign_id, counter))
            await asyncio.sleep(1.0)  # the arrivals' own events settle
            cpu_before, started = cpu_seconds(process), time.monotonic()
            interval = 1.0 / rate
            pending = []
            for n in range(rolls):
                table = tables[n % len(tables)]
                pending.append(asyncio.create_task(table.roll_dice("1d20+5", purpose=f"r{n}")))
                await asyncio.sleep(max(0.0, started + (n + 1) * interval - time.monotonic()))
            await asyncio.gather(*pending)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(counter.done.wait(), TAIL_SECONDS)
            elapsed = time.monotonic() - started
            used = cpu_seconds(process) - cpu_before
    return {
        "deliveries": counter.seen,
        "expected": counter.expected,
        "seconds": round(elapsed, 2),
        "bridge_cpu_s": round(used, 3),
        "bridge_us_per_delivery": round(used * 1e6 / max(1, counter.seen), 1),
    }


async def _setup(data_dir: Path, seats: int) -> dict[str, Any]:
    """The accounts and the campaign, made once on ``data_dir`` (with this checkout's bridge)."""
    limits = {"TTRPG_MAX_PARTICIPANTS_PER_CAMPAIGN": str(seats + 1), "PYTHONPATH": str(SRC)}
    with running_bridge(data_dir, limits) as base_url:
        names = [f"seat{index}-{uuid.uuid4().hex[:6]}" for index in range(seats + 1)]
        async with BridgeClient(base_url) as gm:
            await gm.register(names[0], "benchmark-password")
            campaign_id = (await gm.create_campaign("SSE fan-out"))["id"]
            for name in names[1:]:
                async with BridgeClient(base_url) as player:
                    await player.register(name, "benchmark-password")
                    await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
    return {"gm": names[0], "players": names[1:], "campaign_id": campaign_id}


async def _run(
    seats: int, rolls: int, rate: float, rounds: int, senders: int, old: str | None
) -> dict[str, Any]:
    variants = {"after (this checkout)": str(SRC)}
    if old:
        variants = {"before (--old)": old, **variants}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        data_dir = Path(scratch)
        people = await _setup(data_dir, seats)
        for index in range(rounds):
            for name, path in variants.items():
                env = {"TTRPG_MAX_PARTICIPANTS_PER_CAMPAIGN": str(seats + 1), "PYTHONPATH": path}
                row = await _round(data_dir, env, people, rolls, rate, senders)
                row["load_average"] = os.getloadavg()[0]
                print(f"round {index + 1} {name}: {row}", flush=True)
                results[name].append(row)
    summary = {
        name: {
            "median_us_per_delivery": statistics.median(r["bridge_us_per_delivery"] for r in rows),
            "lost": sum(r["expected"] - r["deliveries"] for r in rows),
        }
        for name, rows in results.items()
    }
    return {
        "benchmark": "sse_fanout",
        "seats": seats,
        "rolls": rolls,
        "rate": rate,
        "senders": senders,
        "rounds": rounds,
        "load_average": os.getloadavg(),
        **machine_info(),
        "rows": results,
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seats", type=int, default=30)
    parser.add_argument("--rolls", type=int, default=400)
    parser.add_argument("--rate", type=float, default=100.0, help="rolls per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=10, help="connections rolling in turn (GM first)")
    parser.add_argument("--old", default=None, help="another checkout's src, run alternately as 'before'")
    args = parser.parse_args()
    report = asyncio.run(_run(args.seats, args.rolls, args.rate, args.rounds, args.senders, args.old))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    for name, row in report["summary"].items():
        print(f"{name}: {row}")
    print(f"load average {report['load_average']}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
