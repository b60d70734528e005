"""Time to resume after missing 1,000 events: replay from the log, beside a fresh join, in one run.

Run with ``python bench/resume.py`` (``--missed 1000 --runs 20``). A GM and a player sit at a
real bridge's table; the player disconnects, the GM makes N shared-state changes, and the
player reconnects with its last ``seq``. Timed from opening the connection to holding every
missed event (``session_attach`` replay). Each run resumes twice, in alternating order: asking
for the replay as ``event_batch`` frames (what the clients do) and as one frame per event (an
older client), N fresh missed events each. The baseline row is a fresh join of the same table
(the full snapshot, no replay), so the ratios show what replaying N events costs over it.
Beside the wall time, each row has the CPU the bridge process and this client spent per resume
(``/proc``, 10 ms ticks, so only the mean means anything): on a shared, loaded machine the wall
time is mostly waiting for a core, and the CPU is what a quiet machine's resume would take.
Prints a table and writes ``bench/results/resume.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bridge_server import bridge_process, cpu_seconds, running_bridge
from timing import machine_info, percentiles, print_and_save
from ttrpg_mcp.client import BridgeClient, TableApi

RESULTS = Path(__file__).parent / "results" / "resume.json"


class _Samples:
    """Wall time and CPU (bridge, client) per operation, in milliseconds."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.bridge_cpu: list[float] = []
        self.client_cpu: list[float] = []

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        bridge = bridge_process()
        wall, bridge_cpu, client_cpu = time.perf_counter(), cpu_seconds(bridge), time.process_time()
        yield
        self.wall.append((time.perf_counter() - wall) * 1000)
        self.bridge_cpu.append((cpu_seconds(bridge) - bridge_cpu) * 1000)
        self.client_cpu.append((time.process_time() - client_cpu) * 1000)

    def row(self) -> dict[str, float]:
        return percentiles(self.wall) | {
            "bridge_cpu_ms_mean": round(statistics.fmean(self.bridge_cpu), 2),
            "client_cpu_ms_mean": round(statistics.fmean(self.client_cpu), 2),
        }


async def _resume(
    player: BridgeClient, table: TableApi, campaign_id: str, missed: int, *, batch: bool, samples: _Samples
) -> None:
    """Time opening a connection until it holds the ``missed`` events made after leaving."""
    async with player.connect(campaign_id=campaign_id) as seat:
        snapshot = (await seat.next_event("campaign_snapshot"))["data"]
    last_seq, epoch = snapshot["seq"] + 1, snapshot["epoch"]  # + its own arrival
    for n in range(missed):
        await table.update_state(["custom", "n"], n)
    with samples.timed():
        async with player.connect(
            campaign_id=campaign_id, last_seq=last_seq, epoch=epoch, batch=batch
        ) as seat:
            resumed = (await seat.next_event("campaign_snapshot"))["data"]
            assert resumed["recovered"], resumed
            got = 0
            async for event in seat.events():
                if "seq" in event and event["seq"] <= resumed["seq"]:
                    got += 1
                    if got == resumed["replayed"]:
                        break


async def _run(missed: int, runs: int) -> dict[str, Any]:
    batched, single, fresh = _Samples(), _Samples(), _Samples()
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
                for run in range(runs):
                    for batch in (True, False) if run % 2 == 0 else (False, True):
                        samples = batched if batch else single
                        await _resume(player, table, campaign_id, missed, batch=batch, samples=samples)
                    with fresh.timed():
                        async with player.connect(campaign_id=campaign_id) as seat:
                            await seat.next_event("campaign_snapshot")
    rows = {
        f"resume {missed}, event_batch": batched.row(),
        f"resume {missed}, frame each": single.row(),
        "fresh join (snapshot)": fresh.row(),
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
    report = asyncio.run(_run(args.missed, args.runs))
    print_and_save(report, RESULTS, "p50_ratio_to_fresh_join")
    for name, row in report["rows"].items():
        cpu = f"bridge {row['bridge_cpu_ms_mean']}, client {row['client_cpu_ms_mean']}"
        print(f"{name:<28} CPU ms per run: {cpu}")


if __name__ == "__main__":
    main()
