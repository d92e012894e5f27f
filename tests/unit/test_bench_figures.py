"""bench/figures.py draws the committed benchmark results, each panel from its own numbers."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("bench_figures", BENCH / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def drawn(figures):
    results = json.loads((BENCH / "results" / "detection.json").read_text())
    shapes = json.loads((BENCH / "results" / "query_shapes.json").read_text())
    figure = figures.detection_figure(results, shapes)
    return results, shapes, figure.axes


def _bar_heights(ax) -> list[float]:
    return [patch.get_height() for patch in ax.patches]


def _target_lines(ax) -> list[float]:
    return [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_throughput_bars_are_the_measured_rates_against_the_target(drawn):
    results, _, axes = drawn
    assert _bar_heights(axes[0]) == [
        results["raw_consume_per_second"],
        results["query_floor"]["transactions_per_second"],
        results["throughput_cold"]["transactions_per_second"],
        results["throughput"]["transactions_per_second"],
        results["throughput_rules_and_model_off"]["transactions_per_second"],
    ]
    assert _target_lines(axes[0]) == [20_000]


def test_latency_bars_are_p50_then_p99_of_each_step(drawn):
    results, _, axes = drawn
    floor = results["query_floor_latency"]
    steps = [
        results["latency_micro_batch"],
        results["latency_micro_batch_quarter_load"],
        floor["at_the_jobs_half_load"],
        floor["at_half_its_throughput"],
        results["latency_real_time_stateless"],
    ]
    p50 = [step["p50_seconds"] for step in steps]
    p99 = [step["p99_seconds"] for step in steps]
    assert _bar_heights(axes[1]) == p50 + p99
    assert _target_lines(axes[1]) == [2.0]


def test_micro_batch_fits_start_at_the_fixed_cost(drawn):
    results, _, axes = drawn
    starts = [line.get_ydata()[0] for line in axes[2].get_lines()]
    assert starts == [
        results["micro_batch_cost"]["fixed_seconds"],
        results["query_floor"]["micro_batch_cost"]["fixed_seconds"],
    ]


def test_warm_up_ends_with_the_measured_step(drawn):
    results, _, axes = drawn
    p99 = next(line for line in axes[3].get_lines() if line.get_label() == "p99")
    expected = [feed["p99_seconds"] for feed in results["warm_up"]]
    assert list(p99.get_ydata()) == [*expected, results["latency_micro_batch"]["p99_seconds"]]


def test_query_shapes_one_line_per_shape(drawn):
    _, shapes, axes = drawn
    for name, shape in shapes["shapes"].items():
        throughput = next(line for line in axes[4].get_lines() if line.get_label() == name)
        p99 = next(line for line in axes[5].get_lines() if line.get_label() == name)
        rounds = shape["rounds"]
        assert list(throughput.get_ydata()) == [r["transactions_per_second"] for r in rounds]
        assert list(p99.get_ydata()) == [r["at_half_of_it"]["p99_seconds"] for r in rounds]
