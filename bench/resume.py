"""Time to resume after missing 1,000 events: replay from the log, beside a fresh join, in one run.

Run with ``python bench/resume.py`` (``--missed 1000 --runs 20``). A GM and a player sit at a
real bridge's table; the player disconnects, the GM makes N shared-state changes, and the
player reconnects with its last ``seq``. Timed from opening the connection to holding every
missed event (``session_attach`` replay). The baseline row is a fresh join of the same table
(the full snapshot, no replay), so the ratio shows what replaying N events costs over it.
Prints a table and writes ``bench/results/resume.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bridge_server import running_bridge
from timing import machine_info, percentiles, print_and_save
from ttrpg_mcp.client import BridgeClient

RESULTS = Path(__file__).parent / "results" / "resume.json"


async def _run(missed: int, runs: int) -> dict[str, Any]:
    resume_ms: list[float] = []
    fresh_ms: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch,
        running_bridge(Path(scratch)) as base_url,
    ):
        async with BridgeClient(base_url) as gm, BridgeClient(base_url) as player:
            await gm.register("bench-gm", "benchmark-password")
            await player.register("bench-player", "benchmark-password")
            campaign_id = (await gm.create_campaign("Resume"))["id"]
            await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
            async with gm.connect(campaign_id=campaign_id) as table:
                await table.next_event("campaign_snapshot")
                for _ in range(runs):
                    async with player.connect(campaign_id=campaign_id) as seat:
                        snapshot = (await seat.next_event("campaign_snapshot"))["data"]
                    last_seq, epoch = snapshot["seq"] + 1, snapshot["epoch"]  # + its own arrival
                    for n in range(missed):
                        await table.update_state(["custom", "n"], n)
                    started = time.perf_counter()
                    async with player.connect(
                        campaign_id=campaign_id, last_seq=last_seq, epoch=epoch
                    ) as seat:
                        resumed = (await seat.next_event("campaign_snapshot"))["data"]
                        assert resumed["recovered"], resumed
                        got = 0
                        async for event in seat.events():
                            if "seq" in event and event["seq"] <= resumed["seq"]:
                                got += 1
                                if got == resumed["replayed"]:
                                    break
                        resume_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    async with player.connect(campaign_id=campaign_id) as seat:
                        await seat.next_event("campaign_snapshot")
                        fresh_ms.append((time.perf_counter() - started) * 1000)
    rows = {
        f"resume after {missed} missed": percentiles(resume_ms),
        "fresh join (snapshot)": percentiles(fresh_ms),
    }
    base = rows["fresh join (snapshot)"]["p50_ms"]
    for row in rows.values():
        row["p50_ratio_to_fresh_join"] = round(row["p50_ms"] / max(base, 1e-6), 2)
    return {"benchmark": "resume", "missed": missed, "runs": runs, **machine_info(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--missed", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print_and_save(asyncio.run(_run(args.missed, args.runs)), RESULTS, "p50_ratio_to_fresh_join")


if __name__ == "__main__":
    main()
