"""PNG plots of the side-by-side benchmarks, from their JSON in ``bench/results/``.

Run after the benchmarks (``make bench`` does): ``tool_relay.png`` shows calls per second at
1, 8, 32 and 128 calls in flight for each path; ``table_fanout.png`` shows delivery p99 against
deliveries per second for the bridge, the bare relay and python-socketio rooms (one line per
row of the JSON, so every row the bench writes is plotted). A missing JSON file is skipped.
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


if __name__ == "__main__":
    tool_relay()
    table_fanout()
    print(f"wrote plots to {RESULTS}")
