"""Pure status aggregation: the children's own status in, conditions and phase out."""

from __future__ import annotations

from dataclasses import dataclass, field

from fraud_operator import builders

CONDITION_TYPES = ("TopicsReady", "DetectorReady", "SimulatorReady", "MonitoringReady")
FAILED_STATES = {"FAILED", "SUBMISSION_FAILED"}
DEGRADED_REASONS = {
    "NotInstalled",
    "KafkaClusterNotFound",
    "KafkaUnreachable",
    "SecretNotFound",
    "SecretKeyMissing",
    "ApplyFailed",
    "TopicsFailing",
    "Unhealthy",
    "ReadinessLost",
}
UNHEALTHY_STATES = {"FAILING", "UNKNOWN", "PENDING_RERUN", "INVALIDATING"}


@dataclass
class Observation:
    """What one reconcile saw: live children by (kind, name) and missing prerequisites."""

    children: dict[tuple[str, str], dict] = field(default_factory=dict)
    # condition type -> (reason, message) of a prerequisite that is missing
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)


def condition(kind: str, ok: bool, reason: str, message: str) -> dict:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
    }


def _ready_condition(obj: dict) -> dict | None:
    for entry in obj.get("status", {}).get("conditions") or []:
        if entry.get("type") == "Ready":
            return entry
    return None


def topics_condition(pipeline: builders.Pipeline, seen: Observation) -> dict:
    if "TopicsReady" in seen.problems:
        return condition("TopicsReady", False, *seen.problems["TopicsReady"])
    waiting, failing = [], False
    for manifest in builders.build_topics(pipeline):
        name = manifest["metadata"]["name"]
        live = seen.children.get(("KafkaTopic", name))
        ready = _ready_condition(live) if live else None
        if ready is None:
            waiting.append(f"{name} (not yet reconciled by Strimzi)")
        elif ready.get("status") != "True":
            detail = ready.get("message") or ready.get("reason") or "not ready"
            waiting.append(f"{name} ({detail})")
            failing = True
    if waiting:
        reason = "TopicsFailing" if failing else "TopicsPending"
        return condition("TopicsReady", False, reason, "waiting for " + ", ".join(waiting))
    return condition("TopicsReady", True, "TopicsReady", "all topics are ready")


def detector_state(pipeline: builders.Pipeline, seen: Observation) -> str:
    live = seen.children.get(("SparkApplication", builders.detector_name(pipeline))) or {}
    return live.get("status", {}).get("applicationState", {}).get("state", "")


def detector_condition(pipeline: builders.Pipeline, seen: Observation) -> dict:
    if "DetectorReady" in seen.problems:
        return condition("DetectorReady", False, *seen.problems["DetectorReady"])
    live = seen.children.get(("SparkApplication", builders.detector_name(pipeline))) or {}
    app_state = live.get("status", {}).get("applicationState", {})
    state = app_state.get("state", "")
    if pipeline.spec["suspend"]:
        return condition("DetectorReady", False, "Suspended", f"job suspended (state {state!r})")
    if state == "RUNNING":
        return condition("DetectorReady", True, "Running", "the detection job is running")
    if state in FAILED_STATES:
        message = app_state.get("errorMessage") or "the detection job failed"
        return condition("DetectorReady", False, "Failed", f"{state}: {message}")
    if state in UNHEALTHY_STATES:
        message = app_state.get("errorMessage") or "spark-operator reports it unhealthy"
        return condition("DetectorReady", False, "Unhealthy", f"{state}: {message}")
    if not state:
        return condition(
            "DetectorReady", False, "NotSubmitted", "waiting for spark-operator to submit the job"
        )
    return condition("DetectorReady", False, state.title().replace("_", ""), f"job state {state}")


def simulator_condition(pipeline: builders.Pipeline, seen: Observation) -> dict:
    simulator = pipeline.spec["simulator"]
    if not simulator["enabled"]:
        return condition("SimulatorReady", True, "Disabled", "the simulator is disabled")
    if pipeline.spec["suspend"]:
        return condition("SimulatorReady", False, "Suspended", "the simulator is scaled to 0")
    live = seen.children.get(("Deployment", builders.simulator_name(pipeline))) or {}
    status = live.get("status", {})
    wanted = simulator["replicas"]
    available = status.get("availableReplicas", 0)
    if available >= wanted and status.get("observedGeneration", 0) >= live.get("metadata", {}).get(
        "generation", 1
    ):
        return condition(
            "SimulatorReady", True, "Available", f"{available}/{wanted} replicas available"
        )
    reasons = [
        f"{c.get('reason')}: {c.get('message')}"
        for c in status.get("conditions") or []
        if c.get("status") != "True"
    ]
    detail = "; ".join(reasons) or "waiting for the Deployment controller"
    return condition(
        "SimulatorReady",
        False,
        "Unavailable",
        f"{available}/{wanted} replicas available ({detail})",
    )


def monitoring_condition(seen: Observation) -> dict:
    if "MonitoringReady" in seen.problems:
        return condition("MonitoringReady", False, *seen.problems["MonitoringReady"])
    return condition("MonitoringReady", True, "Applied", "monitoring objects are applied")


def _mark_lost(conditions: list[dict], previous: dict, generation: int) -> None:
    """A part that was ready for this generation and is not any more degrades the pipeline."""
    if previous.get("observedGeneration") != generation:
        return  # a spec change restarts parts on purpose
    before = {c.get("type"): c for c in previous.get("conditions") or []}
    for entry in conditions:
        old = before.get(entry["type"]) or {}
        was_ready = old.get("status") == "True" or old.get("reason") == "ReadinessLost"
        quiet = entry["reason"] in DEGRADED_REASONS or entry["reason"] in ("Suspended", "Failed")
        if entry["status"] == "False" and was_ready and not quiet:
            entry["reason"] = "ReadinessLost"
            entry["message"] = f"was ready, now: {entry['message']}"


def _phase(pipeline: builders.Pipeline, conditions: list[dict], state: str) -> str:
    if pipeline.spec["suspend"]:
        return "Suspended"
    if state in FAILED_STATES:
        return "Failed"
    if any(c["reason"] in DEGRADED_REASONS for c in conditions):
        return "Degraded"
    if all(c["status"] == "True" for c in conditions):
        return "Running"
    return "Provisioning"


def compute_status(
    pipeline: builders.Pipeline,
    generation: int,
    seen: Observation,
    previous: dict,
    now: str,
) -> dict:
    """The pipeline's status; lastTransitionTime kept from `previous` when a status is unchanged."""
    conditions = [
        topics_condition(pipeline, seen),
        detector_condition(pipeline, seen),
        simulator_condition(pipeline, seen),
        monitoring_condition(seen),
    ]
    _mark_lost(conditions, previous, generation)
    state = detector_state(pipeline, seen)
    phase = _phase(pipeline, conditions, state)
    not_ready = [c for c in conditions if c["status"] != "True"]
    if phase == "Running":
        ready = condition("Ready", True, "Running", "every part of the pipeline is ready")
    else:
        message = "; ".join(f"{c['type']}: {c['message']}" for c in not_ready)
        ready = condition("Ready", False, phase, message)
    conditions.insert(0, ready)
    old = {c.get("type"): c for c in previous.get("conditions") or []}
    for entry in conditions:
        before = old.get(entry["type"])
        same = before is not None and before.get("status") == entry["status"]
        entry["lastTransitionTime"] = before.get("lastTransitionTime", now) if same else now
        entry["observedGeneration"] = generation
    return {
        "observedGeneration": generation,
        "phase": phase,
        "message": ready["message"],
        "detectorState": state or "NotSubmitted",
        "topics": [m["metadata"]["name"] for m in builders.build_topics(pipeline)],
        "conditions": conditions,
    }


def transitions(previous: dict, current: dict) -> list[tuple[str, str, str]]:
    """(type, reason, message) of Events to emit: a new phase, a condition that flipped."""
    events = []
    if previous.get("phase") != current["phase"]:
        warning = current["phase"] in ("Degraded", "Failed")
        events.append(
            ("Warning" if warning else "Normal", current["phase"], current["message"] or "")
        )
    old = {c.get("type"): c.get("status") for c in previous.get("conditions") or []}
    for entry in current["conditions"]:
        if entry["type"] != "Ready" and old.get(entry["type"]) not in (None, entry["status"]):
            kind = "Normal" if entry["status"] == "True" else "Warning"
            events.append((kind, entry["type"] + entry["status"], entry["message"]))
    return events
