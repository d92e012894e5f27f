"""The detection benchmarks' results as one figure: docs/images/bench-detection.png.

Reads bench/results/detection.json and bench/results/query_shapes.json (written by
bench/detection.py and bench/query_shapes.py) and draws, against the targets of issue #5:
throughput, latency, what a micro-batch costs, the JVM's warm-up, and Spark's own floor for
one and two stateful stages. Run after the benchmarks (`make bench` does); takes a second.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

RESULTS = Path(__file__).parent / "results"
FIGURE = Path(__file__).parent.parent / "docs" / "images" / "bench-detection.png"
THROUGHPUT_TARGET = 20_000
P99_TARGET_SECONDS = 2.0
JOB, FLOOR, TARGET = "tab:blue", "tab:gray", "tab:red"
SHAPE_COLOURS = ("tab:gray", "tab:olive")  # two stateful stages (the job's shape), one


def _target(ax: Axes, value: float, label: str) -> None:
    ax.axhline(value, color=TARGET, linestyle="--", linewidth=1, label=label)


def _bar_labels(ax: Axes, bars, fmt: str) -> None:
    ax.bar_label(bars, labels=[fmt.format(bar.get_height()) for bar in bars], fontsize=8)


def throughput_panel(ax: Axes, results: dict) -> None:
    """Records a second: the plain consumer's ceiling, Spark's floor and the job."""
    names = [
        "plain consumer\n(ceiling)",
        "Spark alone\n(floor)",
        "job, cold",
        "job, warm",
        "job, rules and\nmodel off",
    ]
    values = [
        results["raw_consume_per_second"],
        results["query_floor"]["transactions_per_second"],
        results["throughput_cold"]["transactions_per_second"],
        results["throughput"]["transactions_per_second"],
        results["throughput_rules_and_model_off"]["transactions_per_second"],
    ]
    bars = ax.bar(names, values, color=[FLOOR, FLOOR, JOB, JOB, JOB])
    _bar_labels(ax, bars, "{:,.0f}")
    _target(ax, THROUGHPUT_TARGET, "target, job warm")
    ax.set_ylabel("transactions / s")
    ax.set_title("Sustained throughput, local[2]")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)


def latency_panel(ax: Axes, results: dict) -> None:
    """p50 and p99 of the job's event-to-alert latency and of the floor's, by load."""
    floor = results["query_floor_latency"]
    steps = [
        ("job, half load", results["latency_micro_batch"]),
        ("job, quarter load", results["latency_micro_batch_quarter_load"]),
        ("floor, the job's\nhalf load", floor["at_the_jobs_half_load"]),
        ("floor, half its\nown throughput", floor["at_half_its_throughput"]),
        ("real-time trigger,\nstateless rule", results["latency_real_time_stateless"]),
    ]
    positions = range(len(steps))
    width = 0.38
    for offset, key, shade in ((-width / 2, "p50_seconds", 0.45), (width / 2, "p99_seconds", 1.0)):
        values = [step[key] for _, step in steps]
        colours = [FLOOR if name.startswith("floor") else JOB for name, _ in steps]
        bars = ax.bar(
            [p + offset for p in positions],
            values,
            width,
            color=colours,
            alpha=shade,
            label=key.split("_")[0],
        )
        _bar_labels(ax, bars, "{:.2f}")
    _target(ax, P99_TARGET_SECONDS, "target p99")
    ax.set_xticks(
        list(positions),
        [f"{name}\n{step['rate_per_second']:,}/s" for name, step in steps],
        fontsize=7,
    )
    ax.set_ylabel("seconds")
    ax.set_title("Latency, 1 s trigger: p50 (light) and p99")
    ax.legend(fontsize=8)


def _fit_line(ax: Axes, cost: dict, largest: int, colour: str, label: str) -> None:
    xs = [0, largest]  # straight on linear axes
    ys = [cost["fixed_seconds"] + x * cost["microseconds_per_transaction"] / 1e6 for x in xs]
    ax.plot(
        xs,
        ys,
        color=colour,
        linewidth=1,
        label=f"{label}: {cost['fixed_seconds']:.2f} s + "
        f"{cost['microseconds_per_transaction']:.1f} us/tx",
    )


def micro_batch_panel(ax: Axes, results: dict) -> None:
    """Each micro-batch's duration by its size, the job's and the floor's, with their fits."""
    job = results["throughput"]["batches"][1:-1] + results["latency_micro_batch"]["batches"][1:]
    floor = results["query_floor"]["batches"][1:]
    for batches, colour in ((job, JOB), (floor, FLOOR)):
        ax.scatter(
            [b["rows"] for b in batches],
            [b["seconds"] for b in batches],
            s=12,
            color=colour,
            alpha=0.7,
        )
    largest = max(b["rows"] for b in job + floor)
    _fit_line(ax, results["micro_batch_cost"], largest, JOB, "job")
    _fit_line(ax, results["query_floor"]["micro_batch_cost"], largest, FLOOR, "floor")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("transactions in the micro-batch")
    ax.set_ylabel("seconds")
    ax.set_title("A micro-batch's duration")
    ax.legend(fontsize=8)


def warm_up_panel(ax: Axes, results: dict) -> None:
    """p50 and p99 of each warm-up feed, then the measured half-load step, on one JVM."""
    feeds = results["warm_up"] + [results["latency_micro_batch"]]
    numbers = range(1, len(feeds) + 1)
    for key, style in (("p50_seconds", ":"), ("p99_seconds", "-")):
        ax.plot(
            numbers,
            [feed[key] for feed in feeds],
            style,
            marker="o",
            color=JOB,
            label=key.split("_")[0],
        )
    _target(ax, P99_TARGET_SECONDS, "target p99")
    ax.set_xticks(list(numbers), [str(n) for n in numbers[:-1]] + ["measured"])
    ax.set_ylim(bottom=0)
    ax.set_xlabel(
        "feeds at half the cold throughput, each to a fresh pipeline; then the step measured"
    )
    ax.set_ylabel("seconds")
    ax.set_title("The JVM's warm-up")
    ax.legend(fontsize=8)


def shapes_panels(throughput_ax: Axes, latency_ax: Axes, shapes: dict) -> None:
    """Spark alone with one and two stateful stages: throughput and p99 at half of it, by round."""
    for (name, shape), colour in zip(shapes["shapes"].items(), SHAPE_COLOURS, strict=True):
        rounds = shape["rounds"]
        numbers = range(1, len(rounds) + 1)
        throughput_ax.plot(
            numbers,
            [r["transactions_per_second"] for r in rounds],
            marker="o",
            color=colour,
            label=name,
        )
        latency_ax.plot(
            numbers,
            [r["at_half_of_it"]["p99_seconds"] for r in rounds],
            marker="o",
            color=colour,
            label=name,
        )
    throughput_ax.set_ylabel("transactions / s")
    throughput_ax.set_title("Spark alone (stages doing nothing): throughput")
    latency_ax.set_ylabel("p99, seconds")
    latency_ax.set_title("Spark alone: p99 at half its throughput")
    _target(latency_ax, P99_TARGET_SECONDS, "target p99")
    for ax in (throughput_ax, latency_ax):
        ax.set_xticks(list(numbers))
        ax.set_xlabel("round on one JVM (1: cold)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)


def detection_figure(results: dict, shapes: dict) -> Figure:
    """The six panels, titled with when each benchmark ran."""
    figure, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    throughput_panel(axes[0][0], results)
    latency_panel(axes[0][1], results)
    micro_batch_panel(axes[0][2], results)
    warm_up_panel(axes[1][0], results)
    shapes_panels(axes[1][1], axes[1][2], shapes)
    figure.suptitle(
        f"bench/detection.py {results['started_at'][:16]} and bench/query_shapes.py "
        f"{shapes['started_at'][:16]} UTC, {results['machine']['cpus']} cores "
        "(job: every rule and the model on; floor: the same query shape, stages doing nothing)"
    )
    figure.tight_layout()
    return figure


def main() -> int:
    results = json.loads((RESULTS / "detection.json").read_text())
    shapes = json.loads((RESULTS / "query_shapes.json").read_text())
    figure = detection_figure(results, shapes)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(FIGURE, dpi=80)
    print(f"wrote {FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
