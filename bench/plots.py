"""PNG plots of the side-by-side benchmarks, from their JSON in ``bench/results/``.

Run after the benchmarks (``make bench`` does): ``tool_relay.png`` shows calls per second at
1, 8, 32 and 128 calls in flight for each path; ``table_fanout.png`` shows delivery p99 against
deliveries per second for the bridge, the bare relay and python-socketio rooms (one line per
row of the JSON, so every row the bench writes is plotted). A missing JSON file is skipped.

It also writes ``summary.md``: every benchmark's JSON in ``bench/results/`` as Markdown tables
(one line per row and step, the numbers as measured), so one file holds a whole run's figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"


def tool_relay() -> None:
    source = RESULTS / "tool_relay.json"
    if not source.exists():
        return
    report = json.loads(source.read_text())
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, row in report["rows"].items():
        if "skipped" in row:
            continue
        levels = sorted(int(key.removeprefix("in_flight_")) for key in row if key.startswith("in_flight_"))
        rates = [row[f"in_flight_{level}"]["calls_per_second"] for level in levels]
        axes.plot(levels, rates, marker="o", label=name)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("calls in flight")
    axes.set_ylabel("roll_dice calls / s")
    axes.set_title(f"tool-call relay (load average {report['load_average'][0]:.1f})")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(RESULTS / "tool_relay.png", dpi=120)


def table_fanout() -> None:
    source = RESULTS / "table_fanout.json"
    if not source.exists():
        return
    report = json.loads(source.read_text())
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, rows in report["rows"].items():
        timed = [r for r in rows if r["p99_ms"] > 0]  # a step with nothing delivered has no p99
        axes.plot(
            [r["deliveries_per_second"] for r in timed], [r["p99_ms"] for r in timed], marker="o", label=name
        )
    axes.axhline(report["p99_bound_ms"], color="grey", linestyle=":")
    axes.set_xlabel("deliveries / s")
    axes.set_ylabel("p99 ms")
    axes.set_yscale("log")
    axes.set_title(f"dice fan-out, {report['seats']} seats, {report['senders']} senders")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(RESULTS / "table_fanout.png", dpi=120)


def _lines(name: str, value: object) -> list[tuple[str, dict[str, object]]]:
    """A row of a report as (label, scalar fields) lines: nested steps become lines of their own."""
    if isinstance(value, list):
        return [line for item in value for line in _lines(name, item)]
    if not isinstance(value, dict):
        return [(name, {"value": value})]
    scalars = {key: item for key, item in value.items() if not isinstance(item, (dict, list))}
    nested = [(f"{name} / {key}", item) for key, item in value.items() if isinstance(item, (dict, list))]
    lines = [(name, scalars)] if scalars else []
    for label, item in nested:
        lines.extend(_lines(label, item))
    return lines


def summary() -> None:
    """``summary.md``: each report's rows as a table, its scalar settings (machine, load) above it."""
    parts = ["# Benchmark results", ""]
    for source in sorted(RESULTS.glob("*.json")):
        report = json.loads(source.read_text())
        if not isinstance(report, dict):
            continue
        parts += [f"## {source.stem}", ""]
        settings = {key: value for key, value in report.items() if key != "rows"}
        parts += [f"- {key}: {json.dumps(value)}" for key, value in settings.items()] + [""]
        lines = _lines("", report.get("rows", {}))
        columns = list(dict.fromkeys(key for _, fields in lines for key in fields))
        if lines and columns:
            parts.append("| row | " + " | ".join(columns) + " |")
            parts.append("| --- |" + " --- |" * len(columns))
            for label, fields in lines:
                cells = [str(fields.get(column, "")) for column in columns]
                parts.append(f"| {label.strip(' /')} | " + " | ".join(cells) + " |")
            parts.append("")
    (RESULTS / "summary.md").write_text("\n".join(parts))


if __name__ == "__main__":
    tool_relay()
    table_fanout()
    summary()
    print(f"wrote plots and summary.md to {RESULTS}")
