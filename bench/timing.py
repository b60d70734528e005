"""Timing helpers shared by the benchmarks: sample, summarise, print, save."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "percentiles", "print_and_save", "time_async", "time_sync"]


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


async def time_async(calls: int, fn: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for index in range(calls):
        start = time.perf_counter()
        await fn(index)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def time_sync(calls: int, fn: Callable[[int], Any]) -> list[float]:
    samples = []
    for index in range(calls):
        start = time.perf_counter()
        fn(index)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def machine_info() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}


def print_and_save(report: dict[str, Any], path: Path, ratio_key: str) -> None:
    """Print the rows as a table (with the ratio column) and write the report as JSON."""
    print(f"{'row':<28}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'n':>7}{'ratio':>8}")
    for name, row in report["rows"].items():
        ratio = row.get(ratio_key, "")
        print(
            f"{name:<28}{row['p50_ms']:>10.3f}{row['p99_ms']:>10.3f}{row['mean_ms']:>10.3f}{row['n']:>7}{ratio!s:>8}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


async def close_seats(readers: list[asyncio.Task[Any]], sockets: list[Any]) -> None:
    """End a bench's seat readers, then close their sockets (any client with ``close()``)."""
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws in sockets:
        await ws.close()
