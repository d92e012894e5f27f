"""The detection benchmarks' results as one figure: docs/images/bench-detection.png.

Reads bench/results/detection.json, bench/results/query_shapes.json and
bench/results/cores.json (written by bench/detection.py, bench/query_shapes.py and
bench/cores.py) and draws, against the targets of issue #5: throughput, latency (at half load,
and by load), what a micro-batch costs, the JVM's warm-up, Spark's own floor for one and two
stateful stages, and what a micro-batch costs with one task slot and with two. A step a run
could not measure is drawn as "n/a". Run after the benchmarks (`make bench` does); takes a
second.
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
P99_TARGET_SECONDS = 2.0  # as bench/detection.py judges its latency steps
JOB, FLOOR, TARGET = "tab:blue", "tab:gray", "tab:red"
SHAPE_COLOURS = ("tab:gray", "tab:olive")  # two stateful stages (the job's shape), one


def _target(ax: Axes, value: float, label: str) -> None:
    ax.axhline(value, color=TARGET, linestyle="--", linewidth=1, label=label)


def _bars(ax: Axes, positions, values: list, fmt: str, **style) -> None:
    """Bars labelled with their values; a missing value (None) is an empty bar labelled n/a."""
    bars = ax.bar(positions, [value or 0 for value in values], **style)
    labels = ["n/a" if value is None else fmt.format(value) for value in values]
    ax.bar_label(bars, labels=labels, fontsize=8)


def throughput_panel(ax: Axes, results: dict) -> None:
    """Records a second: the plain consumer's ceiling, Spark's floor and the job."""
    steps = [
        ("plain consumer\n(ceiling)", FLOOR, results["raw_consume_per_second"]),
        ("Spark alone\n(floor)", FLOOR, results["query_floor"]["transactions_per_second"]),
        ("job, cold", JOB, results["throughput_cold"]["transactions_per_second"]),
        ("job, warm", JOB, results["throughput"]["transactions_per_second"]),
        (
            "job warm, rules\nand model off",
            JOB,
            results["throughput_rules_and_model_off"]["transactions_per_second"],
        ),
    ]
    names, colours, values = zip(*steps, strict=True)
    _bars(ax, names, list(values), "{:,.0f}", color=colours)
    _target(ax, THROUGHPUT_TARGET, "target, job warm")
    ax.set_ylabel("transactions / s")
    ax.set_title("Sustained throughput, local[2]")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)


def latency_panel(ax: Axes, results: dict) -> None:
    """p50 and p99 of the job's event-to-alert latency and of the floor's latency to the end
    of each record's micro-batch (the same as the alerts' on the job), by load."""
    floor = results["query_floor_latency"]
    steps = [
        ("job,\nhalf load", JOB, results["latency_micro_batch"]),
        ("floor, the\njob's half load", FLOOR, floor["at_the_jobs_half_load"]),
        ("floor, half its\nown throughput", FLOOR, floor["at_half_its_throughput"]),
        ("real-time trigger,\nstateless rule", JOB, results["latency_real_time_stateless"]),
    ]
    positions = range(len(steps))
    colours = [colour for _, colour, _ in steps]
    for offset, key, shade in ((-0.19, "p50_seconds", 0.45), (0.19, "p99_seconds", 1.0)):
        values = [step.get(key) for _, _, step in steps]
        _bars(ax, [p + offset for p in positions], values, "{:.2f}", width=0.38, color=colours,
              alpha=shade, label=key.split("_")[0])  # fmt: skip
    _target(ax, P99_TARGET_SECONDS, "target p99")
    rates = [
        f"{step['rate_per_second']:,}/s" if "rate_per_second" in step else "" for *_, step in steps
    ]
    ax.set_xticks(
        list(positions),
        [f"{name}\n{rate}" for (name, _, _), rate in zip(steps, rates, strict=True)],
    )
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel("seconds")
    ax.set_title(
        "Latency, p50 (light) and p99: job to the alert, floor to its micro-batch's end",
        fontsize=10,
    )
    ax.legend(fontsize=8)


def load_panel(ax: Axes, results: dict) -> None:
    """p50 and p99 of the job's latency by load (half the warm throughput and the lighter
    loads), to the alert and to the end of each transaction's micro-batch; and a trickle."""
    steps = sorted(
        [results["latency_micro_batch"], *results["latency_lighter_loads"]],
        key=lambda step: step["rate_per_second"],
    )
    rates = [step["rate_per_second"] for step in steps]
    nan = float("nan")
    lines = (
        ("p50 to the alert", "p50_seconds", False, ":", JOB),
        ("p99 to the alert", "p99_seconds", False, "-", JOB),
        ("p99 to the micro-batch's end", "p99_seconds", True, "-.", "tab:cyan"),
    )
    for label, key, to_end, style, colour in lines:
        values = [(step["to_micro_batch_end"] if to_end else step).get(key, nan) for step in steps]
        ax.plot(rates, values, style, marker="o", color=colour, label=label)
    trickle = results["trickle"]
    ax.plot([trickle["rate_per_second"]], [trickle["to_micro_batch_end"].get("p99_seconds", nan)],
            "s", color=FLOOR, label="p99 to the micro-batch's end, a trickle")  # fmt: skip
    _target(ax, P99_TARGET_SECONDS, "target p99")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("transactions / s (log)")
    ax.set_ylabel("seconds")
    met = results["load_meeting_latency_target"]
    ax.set_title(
        f"Latency by load: p99 <= {P99_TARGET_SECONDS:g} s "
        + (f"up to {met:,}/s" if met else "at no load measured")
    )
    ax.legend(fontsize=8)


def micro_batch_panel(ax: Axes, results: dict) -> None:
    """The micro-batches each fit was made from, by size, with the fitted lines."""
    fits = (
        (results["micro_batch_cost"], JOB, "job"),
        (results["query_floor"]["micro_batch_cost"], FLOOR, "floor"),
    )
    for cost, colour, label in fits:
        if cost is None:
            ax.plot([], [], color=colour, label=f"{label}: n/a (not fitted)")
            continue
        fitted = cost["fitted"]
        ax.scatter([b["rows"] for b in fitted], [b["seconds"] for b in fitted], s=12,
                   color=colour, alpha=0.7)  # fmt: skip
        xs = [0, max(b["rows"] for b in fitted)]  # a straight line on linear axes
        ys = [cost["fixed_seconds"] + x * cost["microseconds_per_transaction"] / 1e6 for x in xs]
        ax.plot(xs, ys, color=colour, linewidth=1,
                label=f"{label}: {cost['fixed_seconds']:.2f} s + "
                      f"{cost['microseconds_per_transaction']:.1f} us/tx")  # fmt: skip
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
        values = [feed.get(key, float("nan")) for feed in feeds]
        ax.plot(numbers, values, style, marker="o", color=JOB, label=key.split("_")[0])
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
        throughput_ax.plot(numbers, [r["transactions_per_second"] for r in rounds], marker="o",
                           color=colour, label=name)  # fmt: skip
        p99 = [r["at_half_of_it"].get("p99_seconds", float("nan")) for r in rounds]
        latency_ax.plot(numbers, p99, marker="o", color=colour, label=name)
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


CORES_BATCH_ROWS = 20_000  # the cores panel's x axis: micro-batches up to this many transactions
CORE_COLOURS = {1: "tab:orange", 2: "tab:blue"}


def cores_panel(ax: Axes, cores: dict) -> None:
    """A micro-batch's fitted duration by its size, one line per round of bench/cores.py: its
    slope is the cost per transaction, where it starts the fixed cost."""
    for number, found in enumerate(cores["rounds"], start=1):
        cost, name = found.get("micro_batch_cost"), f"local[{found['cores']}], round {number}"
        if cost is None:  # an entry in the legend only
            ax.plot([], [], color=CORE_COLOURS.get(found["cores"], "tab:gray"),
                    label=f"{name}: n/a ({found.get('error', 'not fitted')})")  # fmt: skip
            continue
        fixed, per_row = cost["fixed_seconds"], cost["microseconds_per_transaction"]
        ax.plot(
            [0, CORES_BATCH_ROWS],
            [fixed, fixed + per_row * CORES_BATCH_ROWS / 1e6],
            color=CORE_COLOURS.get(found["cores"], "tab:gray"),
            label=f"{name}: {fixed} s + {per_row} us",
        )
    ax.set_xlabel("transactions in the micro-batch")
    ax.set_ylabel("seconds")
    ax.set_ylim(bottom=0)
    ax.set_title("Task slots: a micro-batch's fitted cost (bench/cores.py)")
    ax.legend(fontsize=8)


def _when(run: dict) -> str:
    """When a benchmark ran (UTC) and, where recorded, its machine's speed: machines of one kind
    differ up to threefold, so runs on different machines compare only with themselves."""
    speed = run.get("machine", {}).get("sum_range_10000_us")
    return f"{run['started_at'][:16]} UTC" + (f" (sum(range(10000)) {speed} us)" if speed else "")


def detection_figure(results: dict, shapes: dict, cores: dict) -> Figure:
    """The eight panels, titled with when each benchmark ran."""
    figure, axes = plt.subplots(2, 4, figsize=(22, 9.5))
    throughput_panel(axes[0][0], results)
    latency_panel(axes[0][1], results)
    load_panel(axes[0][2], results)
    micro_batch_panel(axes[0][3], results)
    warm_up_panel(axes[1][0], results)
    shapes_panels(axes[1][1], axes[1][2], shapes)
    cores_panel(axes[1][3], cores)
    figure.suptitle(
        f"bench/detection.py {_when(results)}, bench/query_shapes.py {_when(shapes)} and "
        f"bench/cores.py {_when(cores)}, {results['machine']['cpus']} cores\n"
        "job: every rule and the model on unless marked, 1 s trigger unless marked; floor: the "
        "same query shape, stages doing nothing"
    )
    figure.tight_layout()
    return figure


def main() -> int:
    results = json.loads((RESULTS / "detection.json").read_text())
    shapes = json.loads((RESULTS / "query_shapes.json").read_text())
    cores = json.loads((RESULTS / "cores.json").read_text())
    figure = detection_figure(results, shapes, cores)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(FIGURE, dpi=80)
    plt.close(figure)
    print(f"wrote {FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
