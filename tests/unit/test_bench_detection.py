"""bench/detection.py: the load up to which the latency target holds."""

import pytest


@pytest.fixture(scope="module")
def detection(load_bench):
    return load_bench("detection")


def step(rate: int, p99: float | None, p99_to_end: float) -> dict:
    alerts = {} if p99 is None else {"p99_seconds": p99}
    return {"rate_per_second": rate, **alerts, "to_micro_batch_end": {"p99_seconds": p99_to_end}}


def test_the_highest_rate_meeting_the_target_with_every_lower_rate(detection):
    steps = [
        step(4_000, 5.4, 5.4),
        step(500, 1.9, 1.7),
        step(2_000, 2.4, 2.0),
        step(1_000, 1.6, 2.0),
    ]
    assert detection.load_meeting_latency_target(steps) == 1_000
    # a lucky higher rate above a miss is not a load the job holds
    steps.append(step(3_000, 1.9, 1.9))
    assert detection.load_meeting_latency_target(steps) == 1_000


def test_both_measures_must_meet_the_target(detection):
    assert detection.load_meeting_latency_target([step(500, 1.9, 2.1)]) is None
    assert detection.load_meeting_latency_target([step(500, 2.1, 1.9)]) is None


def test_a_step_without_alerts_does_not_meet_it(detection):
    assert detection.load_meeting_latency_target([step(100, None, 0.8)]) is None
