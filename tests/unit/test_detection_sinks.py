"""The sinks' pure parts: a micro-batch's totals summed for Prometheus and for Elasticsearch."""

from __future__ import annotations

import pandas as pd
import pytest

from fraud_detection.detector import OUTPUT_COLUMNS, bucket_row
from fraud_detection.metrics import JobMetrics
from fraud_detection.sinks import per_dimension, per_minute

MINUTE = 60_000


def totals(event_ms, dimensions, counts, amounts) -> pd.DataFrame:
    """`transaction` total rows of detector.OUTPUT_SCHEMA, as the buckets send them."""
    return pd.DataFrame(
        {"event_ms": event_ms, "dimension": dimensions, "count": counts, "amount": amounts}
    )


ROWS = totals(
    [MINUTE, 2 * MINUTE, 2 * MINUTE, 3 * MINUTE, 2 * MINUTE],
    ["grocery", "grocery", "travel", "grocery", "grocery"],
    [2, 3, 1, 4, 5],
    [10.5, 20.25, 99.0, 1.0, 7.0],
)


def test_prometheus_totals_sum_each_dimension_over_its_minutes():
    summed = per_dimension(ROWS)
    assert summed == {"grocery": (14, pytest.approx(38.75)), "travel": (1, 99.0)}
    assert all(isinstance(count, int) for count, _ in summed.values())


def test_elasticsearch_totals_sum_each_minute_and_dimension_across_buckets():
    found = {
        (row.minute, row.dimension): (row.transactions, row.amount_total)
        for row in per_minute(ROWS).itertuples(index=False)
    }
    assert found == {
        (1, "grocery"): (2, 10.5),
        (2, "grocery"): (8, 27.25),
        (2, "travel"): (1, 99.0),
        (3, "grocery"): (4, 1.0),
    }


def test_an_empty_micro_batch_counts_nothing():
    empty = totals([], [], [], [])
    assert per_dimension(empty) == {}
    assert per_minute(empty).empty


def test_the_accounts_held_are_each_buckets_latest_report_summed():
    metrics = JobMetrics()

    def report(*buckets: tuple[int, int, str]) -> None:
        rows = [bucket_row(bucket, accounts, packed) for bucket, accounts, packed in buckets]
        metrics.record_buckets(pd.DataFrame(rows, columns=OUTPUT_COLUMNS).itertuples(index=False))

    def gauges() -> tuple[float | None, float | None]:
        sample = metrics.registry.get_sample_value
        return sample("fraud_detection_accounts_held"), sample(
            "fraud_detection_account_state_bytes"
        )

    report((7, 500, "x" * 1_000), (11, 300, "x" * 600))
    assert gauges() == (800, 1_600)
    report((7, 520, "x" * 1_100))  # bucket 11 had no input: its last report stands
    assert gauges() == (820, 1_700)
    report()
    assert gauges() == (820, 1_700)
