"""A flame graph of the ``ttrpg-mcp`` child answering ``roll_dice`` over stdio, and of the trivial tool.

Run with ``python bench/profile_server.py`` (``--seconds 10``). Starts ``ttrpg-mcp`` on a scratch
data directory and ``bench/trivial_server.py``, as ``bench/server_overhead.py`` does, warms both
up, then records each child with py-spy while the SDK client calls it back to back (first the
trivial tool, then ``roll_dice 1d20+5``): the two graphs side by side show what our server adds
over the SDK. Recording starts only after start-up (migrations, compendium), so it holds calls
alone. Writes ``bench/results/flames/<name>_trivial.svg`` and ``<name>_roll_dice.svg``
(``--raw``: py-spy's collapsed stacks, ``.txt``). py-spy needs ptrace rights over the children
(root, or ``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from server_overhead import trivial_and_ours

HERE = Path(__file__).parent
FLAMES = HERE / "results" / "flames"


async def _record(record: list[str], pid: int, out: Path, call: Callable[[], Awaitable[Any]]) -> int:
    """Call back to back while py-spy records ``pid``; the number of calls made."""
    calls = 0
    async with await anyio.open_process([*record, "-o", str(out), "-p", str(pid)]) as recorder:
        # py-spy attaches within a few milliseconds; calls made before it does are not sampled.
        while recorder.returncode is None:
            await call()
            calls += 1
            if calls % 50 == 0:
                await anyio.lowlevel.checkpoint()  # let the process object notice py-spy has exited
    return calls


async def _run(seconds: float, name: str, raw: bool) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    record = [py_spy, "record", "--nonblocking", "-r", "250", "-d", str(int(seconds))]
    record += ["--format", "raw"] if raw else []
    suffix = "txt" if raw else "svg"
    FLAMES.mkdir(parents=True, exist_ok=True)
    async with trivial_and_ours() as (trivial, ours):
        runs: list[tuple[str, int, Callable[[], Awaitable[Any]]]] = [
            ("trivial", trivial.pid, trivial.call),
            ("roll_dice", ours.pid, ours.call),
        ]
        for label, pid, call in runs:
            for _ in range(200):
                await call()
            out = FLAMES / f"{name}_{label}.{suffix}"
            start = time.perf_counter()
            calls = await _record(record, pid, out, call)
            rate = calls / (time.perf_counter() - start)
            print(f"{label:<10} {rate:.0f} calls/s while recording; wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--name", default="server", help="file name prefix, without suffix")
    parser.add_argument("--raw", action="store_true", help="collapsed stacks (.txt) instead of an SVG")
    args = parser.parse_args()
    anyio.run(_run, args.seconds, args.name, args.raw)


if __name__ == "__main__":
    main()
