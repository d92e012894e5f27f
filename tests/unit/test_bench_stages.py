"""bench/stages.py: its digest tells a pure speed-up from a change of what the job outputs."""

from datetime import UTC, datetime

import pytest


@pytest.fixture(scope="module")
def stages(load_bench):
    return load_bench("stages")


@pytest.fixture(scope="module")
def day(stages):
    simulation = {"customers": 300, "terminals": 60, "fraudRate": 0.05, "seed": 3}
    return stages.simulated_payloads(2, datetime(2026, 4, 6, tzinfo=UTC), simulation)


def test_the_same_traffic_gives_the_same_digest_and_a_cost_per_transaction(
    stages, day, monkeypatch
):
    monkeypatch.setattr(stages, "BATCH", len(day) // 4)
    first, second = stages.measure_round(day), stages.measure_round(day)
    assert first["outputs_sha256"] == second["outputs_sha256"]
    assert first["first_stage_us"] > 0 and first["second_stage_us"] > 0


def test_a_change_of_the_alerts_changes_the_digest(stages, day, monkeypatch):
    monkeypatch.setattr(stages, "BATCH", len(day) // 4)
    before = stages.measure_round(day)["outputs_sha256"]
    monkeypatch.setattr(stages.detector, "MODEL_RULE", "another-model")
    assert stages.measure_round(day)["outputs_sha256"] != before
