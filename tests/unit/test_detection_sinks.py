"""The sinks' pure parts: what goes to Prometheus from a micro-batch's per-minute totals."""

from __future__ import annotations

import pandas as pd
import pytest

from fraud_detection.sinks import per_dimension


def test_prometheus_totals_sum_each_dimension_over_its_minutes():
    totals = pd.DataFrame(
        {
            "minute": [1, 2, 2, 3],
            "dimension": ["grocery", "grocery", "travel", "grocery"],
            "transactions": [2, 3, 1, 4],
            "amount_total": [10.5, 20.25, 99.0, 1.0],
        }
    )
    summed = per_dimension(totals)
    assert summed == {"grocery": (9, pytest.approx(31.75)), "travel": (1, 99.0)}
    assert all(isinstance(count, int) for count, _ in summed.values())


def test_an_empty_micro_batch_counts_nothing():
    empty = pd.DataFrame(columns=["minute", "dimension", "transactions", "amount_total"])
    assert per_dimension(empty) == {}
