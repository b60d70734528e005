"""The change feed: from a write over stdio to the event at a seat, and what following costs idle.

Run with ``python bench/change_feed.py`` (``--changes 200 --idle-seconds 10`` by default). It
starts a real ``ttrpg-bridge serve`` on a scratch data directory, seats a GM and a player at a
new campaign, and starts a separate ``ttrpg-mcp`` over stdio on the same data directory, as
Claude Desktop does. Rows:

* ``stdio change -> seat``: ``update_hp`` called by the stdio client, timed from the call until
  the player's seat receives the ``character_update`` (so it includes the stdio round trip);
  ``stdio reply -> seat`` times the same from the tool's reply (the change is committed by then).
* ``table change -> other seat``: the GM's ``character_update`` at the table, timed from the
  request until the *player* receives the event (write through the pool, then the feed).

Idle cost: the follower's own poll (one ``SqliteNewestIdPoll`` on the same database, run in
this process with nothing else to do) as a share of one core, beside bare event-loop wake-ups
at the same rate (no query: the part the poll cannot save), and the whole bridge process
(feed, cursor ticker, event loop) over the same idle time. The load generator shares the
machine with the bridge. Prints a table and writes ``bench/results/change_feed.json``.
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

import psutil

from bridge_server import running_bridge
from timing import machine_info, percentiles, print_and_save
from ttrpg_mcp.bridge.content_feed import POLL_INTERVAL, SqliteNewestIdPoll
from ttrpg_mcp.client import BridgeClient, BridgeConnection
from ttrpg_mcp.server.launch import connect
from ttrpg_mcp.server.store.database import CONTENT_DB_NAME

RESULTS = Path(__file__).parent / "results" / "change_feed.json"
_EVENT_TIMEOUT = 10.0


async def _next(table: BridgeConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(_EVENT_TIMEOUT):
        async for event in table.events():
            if event["type"] == kind:
                return event
    raise SystemExit(f"the connection ended before a {kind}")


def _bridge_process() -> psutil.Process:
    for child in psutil.Process().children():
        if "ttrpg_mcp.bridge.cli" in " ".join(child.cmdline()):
            return child
    raise SystemExit("no bridge process found")


async def _idle_poll_share(database: Path, seconds: float) -> float:
    """The follower's poll alone, for ``seconds`` with no change: percent of one core."""
    poll = SqliteNewestIdPoll(database)
    newest = await poll.newest()
    started_cpu, started = time.process_time(), time.perf_counter()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await poll.wait_past(newest)
    share = (time.process_time() - started_cpu) / (time.perf_counter() - started) * 100
    poll.close()
    return round(share, 3)


async def _idle_sleep_share(seconds: float) -> float:
    """The same wake-ups with no query at all: what the event loop itself costs at this rate."""
    started_cpu, started = time.process_time(), time.perf_counter()
    for _tick in range(round(seconds / POLL_INTERVAL)):
        await asyncio.sleep(POLL_INTERVAL)
    return round((time.process_time() - started_cpu) / (time.perf_counter() - started) * 100, 3)


def _process_share(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return round(used / seconds * 100, 3)


async def _run(changes: int, idle_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        data_dir = Path(scratch)
        with running_bridge(data_dir) as base_url:
            async with BridgeClient(base_url) as gm, BridgeClient(base_url) as player:
                await gm.register(f"gm-{uuid.uuid4().hex[:6]}", "benchmark-password")
                await player.register(f"player-{uuid.uuid4().hex[:6]}", "benchmark-password")
                campaign_id = (await gm.create_campaign("Change feed"))["id"]
                await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
                async with (
                    gm.connect() as gm_table,
                    player.connect() as player_table,
                    connect(data_dir) as claude,
                ):
                    await gm_table.join(campaign_id)
                    await player_table.join(campaign_id)
                    created = await claude.call_tool(
                        "create_character", {"campaign_id": campaign_id, "name": "Mira", "hp_max": 500}
                    )
                    assert created.structured_content is not None
                    character_id = created.structured_content["id"]
                    await _next(player_table, "character_update")
                    stdio: list[float] = []
                    after_reply: list[float] = []
                    for index in range(changes):
                        kind = "damage" if index % 2 == 0 else "healing"
                        hurt = {"target_id": character_id, "amount": 1, "kind": kind}
                        start = time.perf_counter()
                        await claude.call_tool("update_hp", hurt)
                        replied = time.perf_counter()
                        await _next(player_table, "character_update")
                        stdio.append((time.perf_counter() - start) * 1000)
                        after_reply.append((time.perf_counter() - replied) * 1000)
                    table: list[float] = []
                    for index in range(changes):
                        start = time.perf_counter()
                        # A new level each time: a save that changes nothing records (and sends) nothing.
                        await gm_table.update_character(character_id, level=2 + index % 20)
                        await _next(player_table, "character_update")
                        table.append((time.perf_counter() - start) * 1000)
                    await asyncio.sleep(1.0)  # let the last events settle before measuring idle
                    poll_share = await _idle_poll_share(data_dir / CONTENT_DB_NAME, idle_seconds)
                    sleep_share = await _idle_sleep_share(idle_seconds)
                    bridge_share = await asyncio.to_thread(_process_share, _bridge_process(), idle_seconds)
    return {
        "benchmark": "change_feed",
        "machine": machine_info(),
        "poll_interval_s": POLL_INTERVAL,
        "rows": {
            "stdio change -> seat": percentiles(stdio),
            "stdio reply -> seat": percentiles(after_reply),
            "table change -> other seat": percentiles(table),
        },
        "idle_cpu_percent_of_one_core": {
            "feed_poll": poll_share,
            "bare_wakeups_same_rate": sleep_share,
            "bridge_process": bridge_share,
        },
        "idle_seconds": idle_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    report = asyncio.run(_run(args.changes, args.idle_seconds))
    print_and_save(report, RESULTS, ratio_key="ratio")
    idle = report["idle_cpu_percent_of_one_core"]
    print(
        f"idle CPU (% of one core): feed poll {idle['feed_poll']} "
        f"(bare wake-ups at the same rate {idle['bare_wakeups_same_rate']}), "
        f"whole bridge process {idle['bridge_process']}"
    )


if __name__ == "__main__":
    main()
