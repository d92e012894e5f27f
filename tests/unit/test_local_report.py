"""The report's measures and figures, from hand-made records."""

from __future__ import annotations

import json

import pytest

from fraud_local.report import write_report
from fraud_local.tally import Tally, percentile


def tally() -> Tally:
    result = Tally()
    for number in range(10):
        result.add("transactions", {"transaction_id": f"t{number}"}, 100.0 + number)
        fraud = number in (3, 4, 8)
        label = {"transaction_id": f"t{number}", "is_fraud": fraud, "scenario": None}
        if fraud:
            label["scenario"] = "card_testing" if number < 8 else "high_amount"
        result.add("labels", label, 100.0 + number)
    result.add("labels", {"sensor_event_id": "s1", "is_fraud": True, "scenario": "skimmer"}, 101)
    for alert_id, rule, ids, written in (
        ("a1", "cardTesting", ["t3", "t4"], 110.0),
        ("a2", "model", ["t5"], 112.0),
        ("a1", "cardTesting", ["t3", "t4"], 113.0),  # a replayed alert: counted once
    ):
        value = {"alert_id": alert_id, "rule": rule, "score": 0.9, "transaction_ids": ids}
        result.add("alerts", value, written)
    result.settle(final=True)
    return result


def test_precision_recall_and_latency():
    measured = tally()
    assert measured.alerts_by_rule() == {"cardTesting": 1, "model": 1}
    assert measured.precision() == {"cardTesting": (1, 1), "model": (0, 1)}
    # t8 comes after the last transaction an alert names: the job had not read it yet
    assert measured.recall() == {"card_testing": (2, 2)}
    assert measured.latencies() == [6.0, 7.0]
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.99) == pytest.approx(3.97)
    assert percentile([], 0.5) is None


def test_report_files(tmp_path):
    path = write_report(tally(), tmp_path, {"pipeline": "fraud/payments"}, {"auc_roc": 0.9})
    numbers = json.loads((tmp_path / "report.json").read_text())
    assert numbers["alerts"] == 2
    assert numbers["latency_seconds"]["p50"] == 6.5
    assert numbers["latency_seconds_after_start_up"] == dict.fromkeys(("p50", "p90", "p99", "max"))
    assert numbers["precision_by_rule"]["model"]["precision"] == 0.0
    assert numbers["recall_by_scenario"]["card_testing"]["recall"] == 1.0
    text = path.read_text()
    for figure in ("throughput", "latency", "alerts-over-time", "quality", "model"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 1000
        assert f"({figure}.png)" in text
    assert "auc_roc 0.9" in text
    assert "after start-up (alerts on transactions sent after the first alert" in text


def test_latency_after_start_up_leaves_out_the_backlog_of_the_first_micro_batch():
    measured = Tally()
    for number, sent in enumerate((100.0, 101.0, 131.0, 132.0)):
        measured.add("transactions", {"transaction_id": f"t{number}"}, sent)
    for alert_id, transaction, written in (("a0", "t0", 130.0), ("a1", "t1", 130.5),
                                           ("a2", "t2", 133.0), ("a3", "t3", 135.0)):  # fmt: skip
        value = {"alert_id": alert_id, "rule": "model", "score": 0.9}
        measured.add("alerts", value | {"transaction_ids": [transaction]}, written)
    measured.settle(final=True)
    assert measured.latencies() == [2.0, 3.0, 29.5, 30.0]
    assert measured.latencies(after_start_up=True) == [2.0, 3.0]  # sent after 130.0
