"""Status aggregation and the work queue of the operator."""

from __future__ import annotations

import threading
import time

import pytest
from test_operator_builders import make_pipeline

from fraud_operator import builders
from fraud_operator.controller import Settings
from fraud_operator.status import Observation, compute_status, transitions
from fraud_operator.workqueue import WorkQueue

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def observed(pipeline, topics_ready=True, state="RUNNING", available=1) -> Observation:
    """Children as Strimzi, spark-operator and kube-controller-manager report them.

    topics_ready None: Strimzi has not reconciled the topics yet (no Ready condition).
    """
    seen = Observation()
    for topic in builders.build_topics(pipeline):
        ready = {"type": "Ready", "status": str(topics_ready), "message": "boom"}
        seen.children[("KafkaTopic", topic["metadata"]["name"])] = {
            "status": {"conditions": [] if topics_ready is None else [ready]}
        }
    seen.children[("SparkApplication", "payments-detector")] = {
        "status": {"applicationState": {"state": state, "errorMessage": "OOMKilled"}}
    }
    seen.children[("Deployment", "payments-simulator")] = {
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "availableReplicas": available},
    }
    return seen


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_all_children_ready_is_running():
    pipeline = make_pipeline()
    status = compute_status(pipeline, 3, observed(pipeline), {}, NOW)
    assert status["phase"] == "Running"
    assert status["observedGeneration"] == 3
    assert {c["status"] for c in status["conditions"]} == {"True"}
    assert status["detectorState"] == "RUNNING"


def test_new_children_are_provisioning_then_lost_readiness_is_degraded():
    pipeline = make_pipeline()
    first = compute_status(pipeline, 1, observed(pipeline, topics_ready=None), {}, NOW)
    assert first["phase"] == "Provisioning"
    assert "payments-alerts (not yet reconciled" in conditions(first)["TopicsReady"]["message"]
    running = compute_status(pipeline, 1, observed(pipeline), first, NOW)
    lost = compute_status(pipeline, 1, observed(pipeline, available=0), running, LATER)
    assert lost["phase"] == "Degraded"
    assert conditions(lost)["SimulatorReady"]["status"] == "False"
    assert conditions(lost)["TopicsReady"]["lastTransitionTime"] == NOW  # unchanged condition
    assert conditions(lost)["SimulatorReady"]["lastTransitionTime"] == LATER
    still = compute_status(pipeline, 1, observed(pipeline, available=0), lost, LATER)
    assert still["phase"] == "Degraded"
    restarted = compute_status(pipeline, 2, observed(pipeline, available=0), lost, LATER)
    assert restarted["phase"] == "Provisioning"  # a new spec restarts parts on purpose


def test_a_topic_strimzi_reports_not_ready_degrades():
    pipeline = make_pipeline()
    status = compute_status(pipeline, 1, observed(pipeline, topics_ready=False), {}, NOW)
    assert status["phase"] == "Degraded"
    assert "payments-alerts (boom)" in conditions(status)["TopicsReady"]["message"]


def test_failed_job_is_failed_with_its_error():
    pipeline = make_pipeline()
    status = compute_status(pipeline, 1, observed(pipeline, state="FAILED"), {}, NOW)
    assert status["phase"] == "Failed"
    assert "OOMKilled" in conditions(status)["DetectorReady"]["message"]


def test_missing_prerequisite_is_degraded_with_what_to_install():
    pipeline = make_pipeline()
    seen = observed(pipeline)
    seen.problems["TopicsReady"] = ("NotInstalled", "KafkaTopic is not served: install Strimzi")
    status = compute_status(pipeline, 1, seen, {}, NOW)
    assert status["phase"] == "Degraded"
    assert "install Strimzi" in status["message"]


def test_suspended_pipeline():
    pipeline = make_pipeline(suspend=True)
    status = compute_status(pipeline, 1, observed(pipeline, state="SUSPENDED"), {}, NOW)
    assert status["phase"] == "Suspended"
    assert conditions(status)["DetectorReady"]["reason"] == "Suspended"


def test_transitions_give_events_only_on_change():
    pipeline = make_pipeline()
    first = compute_status(pipeline, 1, observed(pipeline, topics_ready=None), {}, NOW)
    second = compute_status(pipeline, 1, observed(pipeline), first, NOW)
    assert transitions(second, second) == []
    reasons = [reason for _, reason, _ in transitions(first, second)]
    assert reasons == ["Running", "TopicsReadyTrue"]


def test_work_queue_coalesces_and_never_runs_a_key_twice_at_once():
    queue = WorkQueue()
    for _ in range(5):
        queue.add("a")
    queue.add("b", delay=0.2)
    assert queue.get(timeout=1) == "a"
    queue.add("a")  # while "a" is in progress: run again after done()
    assert queue.get(timeout=0.05) is None
    began = time.monotonic()
    assert queue.get(timeout=1) == "b" and time.monotonic() - began > 0.1
    queue.done("a")
    assert queue.get(timeout=1) == "a"
    queue.done("a")
    queue.done("b")
    assert len(queue) == 0
    closer = threading.Timer(0.05, queue.close)
    closer.start()
    assert queue.get(timeout=5) is None
    closer.join()


def test_settings_come_from_the_environment_and_bad_values_name_the_variable():
    settings = Settings.from_environment(
        {"FRAUDPIPELINE_WORKERS": "3", "FRAUDPIPELINE_RESYNC_SECONDS": "5"}
    )
    assert (settings.workers, settings.resync_seconds, settings.metrics_port) == (3, 5.0, 8080)
    with pytest.raises(ValueError, match="FRAUDPIPELINE_WORKERS='many'"):
        Settings.from_environment({"FRAUDPIPELINE_WORKERS": "many"})
    with pytest.raises(ValueError, match="FRAUDPIPELINE_RESYNC_SECONDS"):
        Settings.from_environment({"FRAUDPIPELINE_RESYNC_SECONDS": "0"})
