"""Outputs without a broker: refused messages and back-pressure are counted, never hidden."""

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from fraud_simulator import ConfigError, simulate
from fraud_simulator.engine import TRANSACTION
from fraud_simulator.metrics import Metrics
from fraud_simulator.outputs import DeliveryFailed, KafkaOutput
from fraud_simulator.runner import slices
from fraud_testbed.process import free_port

START = datetime(2026, 5, 1, tzinfo=UTC)


def one_batch():
    return next(simulate({"customers": 400, "terminals": 80}, START, timedelta(days=1)))


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """The sum of a metric's samples that carry `labels`."""
    return sum(
        s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def test_an_unreachable_broker_fills_the_queue_then_every_loss_is_counted():
    metrics = Metrics()
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    topics = {"transactions": "t", "labels": "l"}
    tight = {"queue.buffering.max.messages": 100, "message.timeout.ms": 1500}
    output = KafkaOutput(nobody, topics, metrics, tight)
    batch = one_batch().slice(0, 300)
    with pytest.raises(DeliveryFailed, match="300 refused"):
        output.write(batch)  # waits on the full queue until messages time out
        output.close(timeout=10)
    assert sample(metrics, "fraudsim_backpressure_waits_total") >= 1
    assert sample(metrics, "fraudsim_delivery_errors_total") == 300


def test_closing_gives_up_on_what_is_still_queued_and_reports_it_once():
    metrics = Metrics()
    output = KafkaOutput(f"127.0.0.1:{free_port()}", {"transactions": "t", "labels": "l"}, metrics)
    batch = one_batch().slice(0, 50)
    output.write(batch)  # queued: nothing listens, and messages wait 300 s to time out
    began = time.monotonic()
    with pytest.raises(DeliveryFailed, match="50 messages undelivered after 1 s, 0 refused"):
        output.close(timeout=1)
    assert time.monotonic() - began < 10
    assert sample(metrics, "fraudsim_delivery_errors_total") == 0  # given up, not refused
    with pytest.raises(RuntimeError, match="closed"):
        output.producer.produce("t", b"late")


def test_a_kind_without_a_topic_is_a_configuration_error():
    output = KafkaOutput(f"127.0.0.1:{free_port()}", {"labels": "l"}, Metrics())
    with pytest.raises(ConfigError, match=r"kafka\.topics\.transactions"):
        output.write(one_batch())


def test_live_slices_hold_a_twentieth_of_a_second_of_transactions():
    batch = one_batch()
    parts = slices(batch, live_rate=200)
    assert parts[0][0] == 0 and parts[-1][1] == len(batch)
    assert all(hi == lo for (_, hi), (lo, _) in pairwise(parts))
    per_slice = [int((batch.kind[lo:hi] == TRANSACTION).sum()) for lo, hi in parts]
    assert max(per_slice) == 10 and sum(per_slice) == int((batch.kind == TRANSACTION).sum())


def test_metrics_count_events_by_kind_and_scenario():
    metrics, batch = Metrics(), one_batch()
    metrics.count(batch.kind, batch.scenario)
    assert sample(metrics, "fraudsim_events_total") == len(batch)
    legit = sample(metrics, "fraudsim_events_total", kind="transaction", scenario="none")
    assert legit == int(((batch.kind == TRANSACTION) & (batch.scenario < 0)).sum())
