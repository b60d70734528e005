"""``roll_dice`` over stdio beside a trivial tool on the same SDK: what the server adds.

Run with ``make bench`` (or ``python bench/server_overhead.py --calls 1000``). It starts two
children over stdio with the official SDK client: ``bench/trivial_server.py`` (one tool that
adds two numbers, nothing stored) and ``ttrpg-mcp`` on a scratch data directory, and calls
them alternately, one call each in turn, so that a load spike on the shared machine hits both
alike. For each: p50/p99 of the round trip and the child's CPU per call (from ``/proc``, which
a busy neighbour disturbs far less than wall time). ``PYTHONPATH`` is passed to the children
when set, so an older checkout can be measured with the same script.

Then the same two tools in this process, without stdio: ``call_tool`` on each server, with the
tool function run inline rather than in a worker thread (a hop both pay alike, whose GIL
hand-off makes process CPU jitter on a loaded machine); the CPU per call, best of
``IN_PROCESS_ROUNDS`` rounds, is the server's own work, which load barely moves.
Writes ``bench/results/server_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psutil
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.stdio import get_default_environment

from timing import machine_info, percentiles
from ttrpg_mcp.server.app import build_server, open_database
from ttrpg_mcp.server.launch import server_parameters

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "server_overhead.json"
IN_PROCESS_ROUNDS = 7


def _environment() -> dict[str, str]:
    environment = get_default_environment()
    if os.environ.get("PYTHONPATH"):
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return environment


def _cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _new_child(before: set[int]) -> int:
    children = [p.pid for p in psutil.Process().children() if p.pid not in before]
    return children[-1]


@dataclass
class Side:
    """One server of the pair: its pid (for its CPU) and one call of the tool compared."""

    pid: int
    call: Callable[[], Awaitable[Any]]


@asynccontextmanager
async def trivial_and_ours() -> AsyncIterator[tuple[Side, Side]]:
    """The trivial tool's server and ours over stdio, side by side, each with its child's pid."""
    trivial = StdioServerParameters(
        command=sys.executable, args=[str(HERE / "trivial_server.py")], env=_environment()
    )
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        ours = server_parameters(scratch)
        ours = StdioServerParameters(command=ours.command, args=ours.args, env=_environment())
        known = {p.pid for p in psutil.Process().children()}
        async with stdio_client(trivial) as (r1, w1), ClientSession(r1, w1) as first:
            await first.initialize()
            trivial_pid = _new_child(known)
            known.add(trivial_pid)
            async with stdio_client(ours) as (r2, w2), ClientSession(r2, w2) as second:
                with anyio.fail_after(120):
                    await second.initialize()
                yield (
                    Side(trivial_pid, lambda: first.call_tool("add", {"a": 1, "b": 2})),
                    Side(_new_child(known), lambda: second.call_tool("roll_dice", {"expression": "1d20+5"})),
                )


async def _run(calls: int, warmup: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"trivial tool (add)": [], "roll_dice 1d20+5": []}
    cpu: dict[str, float] = dict.fromkeys(samples, 0.0)
    async with trivial_and_ours() as (trivial, ours):
        paths: dict[str, tuple[Callable[[], Awaitable[Any]], int]] = {
            "trivial tool (add)": (trivial.call, trivial.pid),
            "roll_dice 1d20+5": (ours.call, ours.pid),
        }
        for call, _ in paths.values():
            for _ in range(warmup):
                await call()
        # One call of each in turn: a load spike on the shared machine hits both alike.
        before = {name: _cpu_of(pid) for name, (_call, pid) in paths.items()}
        for _ in range(calls):
            for name, (call, _pid) in paths.items():
                start = time.perf_counter()
                await call()
                samples[name].append((time.perf_counter() - start) * 1000)
        for name, (_call, pid) in paths.items():
            cpu[name] += _cpu_of(pid) - before[name]
    rows = {
        name: percentiles(values) | {"child_cpu_ms_per_call": round(cpu[name] / len(values) * 1000, 3)}
        for name, values in samples.items()
    }
    base, roll = rows["trivial tool (add)"], rows["roll_dice 1d20+5"]
    roll["p50_ratio_to_trivial"] = round(roll["p50_ms"] / base["p50_ms"], 2)
    roll["cpu_ratio_to_trivial"] = round(roll["child_cpu_ms_per_call"] / base["child_cpu_ms_per_call"], 2)
    return {
        "benchmark": "server_overhead",
        "calls_per_row": calls,
        "load_average": os.getloadavg(),
        **machine_info(),
        "rows": rows,
    }


async def _inline(function: Callable[[], Any], *_args: Any, **_options: Any) -> Any:
    return function()


async def _in_process(calls: int) -> dict[str, float]:
    """CPU microseconds per ``call_tool`` of each tool, in this process, tool functions inline."""
    sys.path.insert(0, str(HERE))
    import trivial_server  # noqa: PLC0415  # bench/ is not a package

    threaded = anyio.to_thread.run_sync
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    logging.disable(logging.INFO)  # the scratch store's migration log
    try:
        with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
            ours = build_server(open_database(Path(scratch)))
            paths = {
                "trivial tool (add)": lambda: trivial_server.server.call_tool("add", {"a": 1, "b": 2}),
                "roll_dice 1d20+5": lambda: ours.call_tool("roll_dice", {"expression": "1d20+5"}),
            }
            best = dict.fromkeys(paths, float("inf"))
            for _ in range(IN_PROCESS_ROUNDS):
                for name, call in paths.items():
                    start = time.process_time()
                    for _ in range(calls):
                        await call()
                    best[name] = min(best[name], (time.process_time() - start) / calls * 1e6)
    finally:
        logging.disable(logging.NOTSET)
        anyio.to_thread.run_sync = threaded
    return {name: round(value, 1) for name, value in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = anyio.run(_run, args.calls, args.warmup)
    work = anyio.run(_in_process, args.calls)
    report["in_process_cpu_us_per_call"] = work | {
        "ratio": round(work["roll_dice 1d20+5"] / work["trivial tool (add)"], 2)
    }
    for name, row in report["rows"].items():
        cpu = row["child_cpu_ms_per_call"]
        print(f"{name:<22} p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms  cpu {cpu} ms/call")
    print({k: v for k, v in report["rows"]["roll_dice 1d20+5"].items() if "ratio" in k})
    print(f"in process, CPU us per call_tool: {report['in_process_cpu_us_per_call']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
