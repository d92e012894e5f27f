"""bench/figures.py: each panel draws its own numbers, and a step a run missed is n/a."""

import copy
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest


@pytest.fixture(scope="module")
def figures(load_bench):
    return load_bench("figures")


def latency(rate: int, p50: float, p99: float) -> dict:
    return {"rate_per_second": rate, "p50_seconds": p50, "p99_seconds": p99}


def job_latency(rate: int, p50: float, p99: float, p99_to_end: float) -> dict:
    return {**latency(rate, p50, p99), "to_micro_batch_end": {"p99_seconds": p99_to_end}}


def fit(fixed: float, per_transaction_us: float, batches: list[tuple[int, float]]) -> dict:
    return {
        "fixed_seconds": fixed,
        "microseconds_per_transaction": per_transaction_us,
        "batches": len(batches),
        "fitted": [{"rows": rows, "seconds": seconds} for rows, seconds in batches],
    }


RESULTS = {
    "started_at": "2026-11-24T03:47:08+00:00",
    "machine": {"cpus": 2},
    "raw_consume_per_second": 100_001,
    "query_floor": {
        "transactions_per_second": 50_002,
        "micro_batch_cost": fit(0.6, 14.0, [(10_000, 0.75), (100_000, 2.0)]),
    },
    "throughput_cold": {"transactions_per_second": 8_003},
    "throughput": {"transactions_per_second": 9_004},
    "throughput_rules_and_model_off": {"transactions_per_second": 12_005},
    "latency_micro_batch": job_latency(4_502, 4.1, 6.2, 6.1),
    "latency_lighter_loads": [
        job_latency(2_251, 2.5, 3.7, 3.6),
        job_latency(1_125, 1.3, 1.9, 1.8),
    ],
    "load_meeting_latency_target": 1_125,
    "trickle": {"rate_per_second": 6, "to_micro_batch_end": {"p99_seconds": 0.9}},
    "query_floor_latency": {
        "at_the_jobs_half_load": latency(4_502, 1.1, 1.7),
        "at_half_its_throughput": latency(25_001, 1.5, 2.8),
    },
    "latency_real_time_stateless": latency(4_502, 0.01, 0.05),
    "micro_batch_cost": fit(1.6, 89.0, [(5_000, 2.1), (14_000, 2.9), (100_000, 10.5)]),
    "warm_up": [latency(4_000, 4.6, 10.7), latency(4_000, 3.4, 4.9)],
}
SHAPES = {
    "started_at": "2026-11-24T05:40:45+00:00",
    "shapes": {
        "two stateful stages (the job's)": {
            "rounds": [
                {"transactions_per_second": 18_000, "at_half_of_it": {"p99_seconds": 15.5}},
                {"transactions_per_second": 27_000, "at_half_of_it": {"p99_seconds": 4.6}},
            ]
        },
        "one stateful stage": {
            "rounds": [
                {"transactions_per_second": 43_000, "at_half_of_it": {"p99_seconds": 5.3}},
                {"transactions_per_second": 59_000, "at_half_of_it": {"p99_seconds": 3.7}},
            ]
        },
    },
}


def cost(fixed: float, per_transaction_us: float) -> dict:
    return {"fixed_seconds": fixed, "microseconds_per_transaction": per_transaction_us}


CORES = {
    "started_at": "2026-11-24T16:57:47+00:00",
    "rounds": [
        {"cores": 2, "micro_batch_cost": cost(2.1, 105.0)},
        {"cores": 1, "micro_batch_cost": cost(2.2, 190.0)},
        {"cores": 1, "micro_batch_cost": None},
    ],
}


def draw(figures, results=RESULTS, shapes=SHAPES, cores=CORES):
    figure = figures.detection_figure(results, shapes, cores)
    plt.close(figure)
    return figure.axes


def targets(ax) -> list[float]:
    return [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_throughput_bars_pair_each_name_with_its_rate_against_the_target(figures):
    ax = draw(figures)[0]
    names = [tick.get_text() for tick in ax.get_xticklabels()]
    heights = [patch.get_height() for patch in ax.patches]
    assert dict(zip(names, heights, strict=True)) == {
        "plain consumer\n(ceiling)": 100_001,
        "Spark alone\n(floor)": 50_002,
        "job, cold": 8_003,
        "job, warm": 9_004,
        "job warm, rules\nand model off": 12_005,
    }
    assert targets(ax) == [20_000]


def test_latency_bars_are_p50_then_p99_of_each_step_with_its_rate(figures):
    ax = draw(figures)[1]
    assert [(height, text.get_text()) for height, text in zip(
        [patch.get_height() for patch in ax.patches], ax.texts, strict=True
    )] == [
        (4.1, "4.10"), (1.1, "1.10"), (1.5, "1.50"), (0.01, "0.01"),
        (6.2, "6.20"), (1.7, "1.70"), (2.8, "2.80"), (0.05, "0.05"),
    ]  # fmt: skip
    ticks = [tick.get_text() for tick in ax.get_xticklabels()]
    assert [tick.rsplit("\n", 1)[1] for tick in ticks] == [
        "4,502/s", "4,502/s", "25,001/s", "4,502/s"
    ]  # fmt: skip
    assert targets(ax) == [2.0]


def test_latency_by_load_draws_each_rate_in_order_and_the_load_meeting_the_target(figures):
    ax = draw(figures)[2]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for label, values in (
        ("p50 to the alert", [1.3, 2.5, 4.1]),
        ("p99 to the alert", [1.9, 3.7, 6.2]),
        ("p99 to the micro-batch's end", [1.8, 3.6, 6.1]),
    ):
        assert list(lines[label].get_xdata()) == [1_125, 2_251, 4_502]
        assert list(lines[label].get_ydata()) == values
    trickle = lines["p99 to the micro-batch's end, a trickle"]
    assert (list(trickle.get_xdata()), list(trickle.get_ydata())) == ([6], [0.9])
    assert targets(ax) == [2.0]
    assert ax.get_title().endswith("up to 1,125/s")


def test_micro_batch_panel_draws_the_fitted_batches_and_the_fit(figures):
    ax = draw(figures)[3]
    job_dots, floor_dots = (collection.get_offsets().tolist() for collection in ax.collections)
    assert job_dots == [[5_000, 2.1], [14_000, 2.9], [100_000, 10.5]]
    assert floor_dots == [[10_000, 0.75], [100_000, 2.0]]
    job_line, floor_line = ax.get_lines()
    assert list(job_line.get_xdata()) == [0, 100_000]
    assert list(job_line.get_ydata()) == pytest.approx([1.6, 1.6 + 100_000 * 89e-6])
    assert list(floor_line.get_ydata()) == pytest.approx([0.6, 0.6 + 100_000 * 14e-6])


def test_warm_up_ends_with_the_measured_step(figures):
    ax = draw(figures)[4]
    p99 = next(line for line in ax.get_lines() if line.get_label() == "p99")
    assert list(p99.get_ydata()) == [10.7, 4.9, 6.2]
    assert ax.get_xticklabels()[-1].get_text() == "measured"


def test_query_shapes_one_line_per_shape(figures):
    axes = draw(figures)
    for name, shape in SHAPES["shapes"].items():
        throughput = next(line for line in axes[5].get_lines() if line.get_label() == name)
        p99 = next(line for line in axes[6].get_lines() if line.get_label() == name)
        rounds = shape["rounds"]
        assert list(throughput.get_ydata()) == [r["transactions_per_second"] for r in rounds]
        assert list(p99.get_ydata()) == [r["at_half_of_it"]["p99_seconds"] for r in rounds]


def test_cores_panel_draws_each_fitted_round_from_its_fixed_cost(figures):
    ax = draw(figures)[7]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == [
        "local[2], round 1: 2.1 s + 105.0 us",
        "local[1], round 2: 2.2 s + 190.0 us",
        "local[1], round 3: n/a (not fitted)",
    ]
    rows = figures.CORES_BATCH_ROWS
    assert list(lines[0].get_xdata()) == [0, rows]
    assert list(lines[0].get_ydata()) == pytest.approx([2.1, 2.1 + 105e-6 * rows])
    assert list(lines[1].get_ydata()) == pytest.approx([2.2, 2.2 + 190e-6 * rows])


def test_steps_a_run_could_not_measure_are_drawn_as_n_a(figures):
    results = copy.deepcopy(RESULTS)
    results["latency_real_time_stateless"] = {"error": "real-time mode is not available"}
    results["query_floor_latency"]["at_half_its_throughput"] = {"rate_per_second": 25_001}
    results["query_floor"]["micro_batch_cost"] = None
    results["load_meeting_latency_target"] = None
    axes = draw(figures, results)
    labels = [text.get_text() for text in axes[1].texts]
    assert labels.count("n/a") == 4  # p50 and p99 of two steps
    assert axes[2].get_title().endswith("at no load measured")
    legend = [text.get_text() for text in axes[3].get_legend().get_texts()]
    assert "floor: n/a (not fitted)" in legend


def test_the_committed_results_draw(figures):
    folder = Path(figures.__file__).parent / "results"
    results = json.loads((folder / "detection.json").read_text())
    shapes = json.loads((folder / "query_shapes.json").read_text())
    cores = json.loads((folder / "cores.json").read_text())
    axes = draw(figures, results, shapes, cores)
    assert [patch.get_height() for patch in axes[0].patches][3] == (
        results["throughput"]["transactions_per_second"]
    )
