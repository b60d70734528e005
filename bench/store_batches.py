"""The store's cost per roll: batches of rolls group-committed through a room on a SQLite file.

Run with ``python bench/store_batches.py`` (``--compare <old checkout>/src`` runs the same
rounds against that code too, alternating, each in a process of its own with ``PYTHONPATH``
set to it). Each round migrates a fresh SQLite store, seats one session (whose sends are
dropped: only the store is measured) and commits ``--batches`` batches of ``--batch`` rolls the
way the table does (``Rooms.commit``: the dice log row, the ``dice_roll`` event, the stored
reply and the audit entry), all of a batch's rolls queued at once so that they share one
transaction. It reports the process's CPU time (event loop and the store's worker thread, from
``/proc`` through ``time.process_time``) and the wall time per roll. Writes
``bench/results/store_batches.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from timing import machine_info
from ttrpg_mcp.bridge import audit, campaigns, requests
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.rooms import Rooms
from ttrpg_mcp.bridge.session import BridgeSession
from ttrpg_mcp.bridge.settings import load_settings
from ttrpg_mcp.bridge.store import BridgeStore, User

RESULTS = Path(__file__).parent / "results" / "store_batches.json"
CAMPAIGN = "camp_0123456789ab"
_NOT_A_HASH = "not-an-argon2-hash"


async def _round(batches: int, batch: int, warmup: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        store = BridgeStore(f"sqlite:///{data_dir / 'bridge.db'}")
        store.migrate()
        with store.session() as db:
            db.add(User(id="usr_gm", name="gm", name_key="gm", display_name="Gm", password_hash=_NOT_A_HASH))
            db.flush()
            campaigns.create_campaign(db, CAMPAIGN, "Ashes", "usr_gm")
        rooms = Rooms(store, load_settings(data_dir=data_dir))

        async def dropped(_message: dict[str, Any]) -> None:
            return None

        user = AuthenticatedUser("usr_gm", "gm", "Gm", int(time.time()) + 3600)
        await rooms.join(BridgeSession("websocket", dropped, user=user), CAMPAIGN)
        # The table's roll says it needs no savepoint where the code knows how to say so.
        extra = {"isolate": False} if "isolate" in inspect.signature(rooms.commit).parameters else {}
        counter = 0

        async def roll() -> None:
            nonlocal counter
            counter += 1
            n = counter
            requests.use(
                requests.RequestContext(
                    "usr_gm", f"req-{n}", audit=audit.PendingEntry(CAMPAIGN, "dice_roll", "1d20")
                )
            )
            payload = {
                "expression": "1d20",
                "purpose": "attack",
                "total": 7,
                "dice": [{"value": 7}],
                "text": "1d20: 7",
            }

            def store_roll(db: Any) -> dict[str, Any]:
                return campaigns.add_roll(db, CAMPAIGN, "usr_gm", "Gm", payload, "public")

            def events(stored: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
                return [("dice_roll", {"roll_id": stored["id"], "total": 7, "visibility": "public"})]

            def reply(stored: dict[str, Any], seqs: list[int]) -> dict[str, Any]:
                return {"type": "dice_roll_result", "roll_id": stored["id"], "seq": seqs[0]}

            await rooms.commit(CAMPAIGN, store_roll, events, reply, **extra)

        for _ in range(warmup):
            await asyncio.gather(*(roll() for _ in range(batch)))
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(batches):
            await asyncio.gather(*(roll() for _ in range(batch)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        store.close()
    rolls = batches * batch
    return {"cpu_us_per_roll": cpu / rolls * 1e6, "wall_us_per_roll": wall / rolls * 1e6}


def _child(args: argparse.Namespace, src: str) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": src}
    command = [
        sys.executable,
        __file__,
        "--round",
        "--batches",
        str(args.batches),
        "--batch",
        str(args.batch),
    ]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", metavar="OLD_SRC", help="the old code's src directory")
    parser.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:
        print(json.dumps(asyncio.run(_round(args.batches, args.batch, warmup=5))))
        return
    new_src = str(Path(__file__).resolve().parent.parent / "src")
    versions = {"new": new_src} | ({"old": args.compare} if args.compare else {})
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for _ in range(args.rounds):  # alternating, so the machine's noise falls on both alike
        for name, src in versions.items():
            samples[name].append(_child(args, src))
    report: dict[str, Any] = {"machine": machine_info(), "batch": args.batch, "batches": args.batches}
    print(f"{'code':6} {'CPU us/roll (median)':>22} {'wall us/roll (median)':>22}  rounds")
    for name, rows in samples.items():
        cpu = statistics.median(row["cpu_us_per_roll"] for row in rows)
        wall = statistics.median(row["wall_us_per_roll"] for row in rows)
        report[name] = {"cpu_us_per_roll": round(cpu, 1), "wall_us_per_roll": round(wall, 1), "rounds": rows}
        print(f"{name:6} {cpu:22.1f} {wall:22.1f}  {len(rows)}")
    report["load_average"] = os.getloadavg()
    print(f"load average {report['load_average'][0]:.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
