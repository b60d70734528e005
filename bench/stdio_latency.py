"""Latency of ``roll_dice`` and ``search`` over stdio, beside the same work done in-process.

Run with ``make bench`` (or ``python bench/stdio_latency.py --sections 10000 --calls 2000``).
It indexes N synthetic sections (plus the starter compendium) into a scratch data directory,
starts ``ttrpg-mcp`` as a child through the SDK's stdio client, exactly as Claude Desktop
does, and times sequential calls. The in-process rows run the same engine and query without
MCP, so the ratio column shows what the protocol and the process boundary cost on this
machine, in the same run: absolute numbers on a shared machine drift, ratios much less.
Prints a table and writes ``bench/results/stdio_latency.json``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path
from typing import Any

import anyio

from timing import machine_info, percentiles, print_and_save, time_async, time_sync
from ttrpg_mcp import dice
from ttrpg_mcp.server.app import open_database
from ttrpg_mcp.server.ingest import Section
from ttrpg_mcp.server.launch import connect
from ttrpg_mcp.server.rules import import_sections, search

RESULTS = Path(__file__).parent / "results" / "stdio_latency.json"
_WORDS = (
    "arcane",
    "barrier",
    "cinder",
    "dagger",
    "ember",
    "frost",
    "goblin",
    "hollow",
    "iron",
    "jade",
    "knight",
    "lantern",
    "marsh",
    "nightshade",
    "ogre",
    "prone",
    "quiver",
    "raven",
    "shield",
    "torch",
    "undead",
    "venom",
    "warden",
    "wyvern",
    "yew",
    "zephyr",
    "grapple",
    "initiative",
    "advantage",
    "healing",
    "potion",
    "ritual",
    "cantrip",
    "shadow",
    "storm",
    "trap",
)
_QUERIES = ("prone", "grapple", "ember shield", "initiative order", "healing potion", "wyvern venom")


def _synthetic_sections(count: int, seed: int = 7) -> list[Section]:
    rng = random.Random(seed)
    kinds = ("rule", "spell", "monster", "item", "lore")
    sections = []
    for index in range(count):
        title = " ".join(rng.choice(_WORDS).title() for _ in range(3))
        body = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(60, 180)))
        sections.append(
            Section(
                source="bench",
                slug=f"s-{index}",
                title=title,
                kind=kinds[index % len(kinds)],
                path=f"Bench > Chapter {index // 100} > {title}",
                body=body,
            )
        )
    return sections


async def _run(sections: int, calls: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
        data_dir = Path(scratch)
        database = open_database(data_dir)
        with database.write() as db:
            import_sections(db, _synthetic_sections(sections), title="Benchmark corpus")
        rows: dict[str, dict[str, float]] = {}
        rows["roll_dice in-process"] = percentiles(time_sync(calls, lambda i: dice.roll("4d6kh3+2")))

        def local_search(index: int) -> None:
            with database.read() as db:
                search(db, _QUERIES[index % len(_QUERIES)], limit=10)

        time_sync(warmup, local_search)
        rows["search in-process"] = percentiles(time_sync(calls, local_search))
        database.close()

        async with connect(data_dir) as session:

            async def roll(index: int) -> None:
                result = await session.call_tool("roll_dice", {"expression": "4d6kh3+2"})
                assert not result.is_error

            async def find(index: int) -> None:
                result = await session.call_tool("search", {"query": _QUERIES[index % len(_QUERIES)]})
                assert not result.is_error

            await time_async(warmup, roll)
            rows["roll_dice over stdio"] = percentiles(await time_async(calls, roll))
            await time_async(warmup, find)
            rows["search over stdio"] = percentiles(await time_async(calls, find))
    for tool in ("roll_dice", "search"):
        over, local = rows[f"{tool} over stdio"], rows[f"{tool} in-process"]
        over["p50_ratio_to_in_process"] = round(over["p50_ms"] / max(local["p50_ms"], 1e-6), 1)
    return {
        "benchmark": "stdio_latency",
        "sections_indexed": sections,
        "calls_per_row": calls,
        **machine_info(),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sections", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    report = anyio.run(_run, args.sections, args.calls, args.warmup)
    print_and_save(report, RESULTS, "p50_ratio_to_in_process")


if __name__ == "__main__":
    main()
