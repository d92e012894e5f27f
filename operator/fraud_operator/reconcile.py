"""Reconcile one FraudPipeline: apply the children that differ, prune the unwanted, write status.

`needs_apply` is pure; `Reconciler` does the I/O through `KubeApi`. A pass that finds nothing
changed writes nothing: no child, no status, no Event.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fraud_operator import builders, grafana
from fraud_operator.builders import GrafanaContent, Kind, Pipeline
from fraud_operator.kubeapi import KubeApi, KubeError
from fraud_operator.schema import GROUP, KIND, PLURAL, VERSION
from fraud_operator.status import Observation, compute_status, transitions

log = logging.getLogger(__name__)

CONDITION_OF_KIND = {
    "KafkaTopic": "TopicsReady",
    "SparkApplication": "DetectorReady",
    "ServiceMonitor": "MonitoringReady",
    "PodMonitor": "MonitoringReady",
    "PrometheusRule": "MonitoringReady",
    "GrafanaDashboard": "MonitoringReady",
    "GrafanaDatasource": "MonitoringReady",
    "GrafanaFolder": "MonitoringReady",
}
EMPTY = (None, {}, [], "", False)


def _contains(actual: object, wanted: object) -> bool:
    """Whether `actual` has every field of `wanted` with the same value (server defaults aside)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return False
        return all(
            _contains(actual[key], value) if key in actual else value in EMPTY
            for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(_contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return actual == wanted


def needs_apply(desired: dict, live: dict | None) -> bool:
    """Whether `live` must be rewritten: absent, built from another spec, or edited by hand."""
    if live is None:
        return True
    want = desired["metadata"]["annotations"][builders.HASH_ANNOTATION]
    have = (live["metadata"].get("annotations") or {}).get(builders.HASH_ANNOTATION)
    return have != want or not _contains(live, desired)


def pipeline_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def load_grafana_content(
    directory: Path, prometheus_url: str = grafana.DEFAULT_PROMETHEUS_URL
) -> GrafanaContent:
    """The template dashboards of `<dir>/dashboards/*.json`, and the Prometheus URL."""
    dashboards = {
        path.name: json.loads(path.read_text())
        for path in sorted((directory / "dashboards").glob("*.json"))
    }
    return GrafanaContent(dashboards, prometheus_url)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reconciler:
    """Brings the children and status of a pipeline in line with its spec."""

    def __init__(self, api: KubeApi, grafana: GrafanaContent, parallelism: int = 8) -> None:
        self.api = api
        self.grafana = grafana
        self._pool = ThreadPoolExecutor(parallelism, thread_name_prefix="child")
        self._pruned: dict[str, int] = {}  # uid -> generation last pruned for
        # (kind, namespace, name) -> resourceVersion of our own last write, to skip its echo
        self.own_versions: dict[tuple[str, str, str], str] = {}

    def reconcile(self, namespace: str, name: str) -> str | None:
        """One pass; returns the phase, or None when the pipeline no longer exists."""
        obj = self.api.get(pipeline_path(namespace, name))
        if obj is None:
            return None
        previous = obj.get("status") or {}
        if obj["metadata"].get("deletionTimestamp"):
            self._write_status(obj, {**previous, "phase": "Deleting", "message": "deleting"})
            return "Deleting"
        pipeline = Pipeline.from_object(obj)
        seen = Observation()
        self._check_prerequisites(pipeline, seen)
        desired = builders.build_children(pipeline, self.grafana)
        # Before the first status, no child can exist yet: apply without reading first.
        fresh = not previous
        list(self._pool.map(lambda m: self._sync_child(pipeline, m, seen, fresh), desired))
        generation = obj["metadata"].get("generation", 1)
        if not fresh and self._pruned.get(pipeline.uid) != generation:
            self._prune(pipeline, {(m["kind"], m["metadata"]["name"]) for m in desired})
            self._pruned[pipeline.uid] = generation
        status = compute_status(pipeline, generation, seen, previous, _now())
        try:
            self._write_status(obj, status)
        except KubeError as error:
            if error.status == 404:
                return None  # deleted while we reconciled it
            raise
        return status["phase"]

    def forget(self, uid: str) -> None:
        self._pruned.pop(uid, None)

    def is_own_write(self, kind: str, namespace: str, name: str, version: str) -> bool:
        """Whether this version of an object is the echo of our own last write."""
        return self.own_versions.get((kind, namespace, name)) == version

    def forget_object(self, kind: str, namespace: str, name: str) -> None:
        self.own_versions.pop((kind, namespace, name), None)

    def _remember(self, written: dict) -> None:
        meta = written["metadata"]
        key = (written["kind"], meta["namespace"], meta["name"])
        self.own_versions[key] = meta["resourceVersion"]

    def _check_prerequisites(self, pipeline: Pipeline, seen: Observation) -> None:
        cluster = pipeline.spec["kafka"]["clusterRef"]["name"]
        try:
            kafka = self.api.get(builders.KAFKA.path(pipeline.namespace, cluster))
        except KubeError as error:
            kafka, seen.problems["TopicsReady"] = None, ("KafkaUnreachable", error.message)
        if kafka is None:
            seen.problems.setdefault(
                "TopicsReady",
                (
                    "KafkaClusterNotFound",
                    f"Kafka {cluster!r} not found in namespace {pipeline.namespace}: create it "
                    "with Strimzi or fix spec.kafka.clusterRef.name",
                ),
            )
        for secret_name, keys in builders.required_secrets(pipeline.spec):
            try:
                secret = self.api.get(builders.SECRET.path(pipeline.namespace, secret_name))
            except KubeError as error:
                seen.problems.setdefault(
                    "DetectorReady",
                    ("SecretUnreadable", f"Secret {secret_name!r} could not be read: {error}"),
                )
                continue
            if secret is None:
                seen.problems.setdefault(
                    "DetectorReady",
                    (
                        "SecretNotFound",
                        f"Secret {secret_name!r} not found in namespace {pipeline.namespace}: "
                        f"create it with the keys {', '.join(keys)}",
                    ),
                )
                continue
            missing = [key for key in keys if key not in (secret.get("data") or {})]
            if missing:
                seen.problems.setdefault(
                    "DetectorReady",
                    (
                        "SecretKeyMissing",
                        f"Secret {secret_name!r} has no key {', '.join(missing)}",
                    ),
                )

    def _sync_child(
        self, pipeline: Pipeline, manifest: dict, seen: Observation, fresh: bool
    ) -> None:
        kind = builders.kind_of(manifest)
        name = manifest["metadata"]["name"]
        path = kind.path(pipeline.namespace, name)
        try:
            live = None if fresh else self.api.get(path)
            if needs_apply(manifest, live):
                log.info(
                    "applying %s %s/%s",
                    kind.kind,
                    pipeline.namespace,
                    name,
                    extra={"pipeline": pipeline.name, "new": live is None},
                )
                live = self.api.apply(path, manifest)
                self._remember(live)
            seen.children[(kind.kind, name)] = live
        except KubeError as error:
            self._record_failure(kind, error, seen)

    def _record_failure(self, kind: Kind, error: KubeError, seen: Observation) -> None:
        area = CONDITION_OF_KIND.get(kind.kind, "DetectorReady")
        if error.status == 404 and kind.provider:
            seen.problems[area] = (
                "NotInstalled",
                f"{kind.kind} ({kind.api_version}) is not served by the API server: install "
                f"{kind.provider} or its CRDs",
            )
        else:
            seen.problems.setdefault(area, ("ApplyFailed", f"{kind.kind}: {error}"))

    def _prune(self, pipeline: Pipeline, wanted: set[tuple[str, str]]) -> None:
        """Delete the children this pipeline owns that its spec no longer asks for."""
        for kind_name, name in sorted(builders.possible_children(pipeline, self.grafana) - wanted):
            kind = builders.KINDS_BY_NAME[kind_name]
            path = kind.path(pipeline.namespace, name)
            try:
                live = self.api.get(path)
            except KubeError:
                continue  # an API that is not installed holds nothing to prune
            owners = (live or {}).get("metadata", {}).get("ownerReferences") or []
            if any(owner.get("uid") == pipeline.uid for owner in owners):
                log.info("deleting %s %s/%s", kind_name, pipeline.namespace, name)
                self.api.delete(path, kind_name)

    def _write_status(self, obj: dict, status: dict) -> None:
        previous = obj.get("status") or {}
        if status == previous:
            return
        meta = obj["metadata"]
        self._remember(
            self.api.patch_status(pipeline_path(meta["namespace"], meta["name"]), status, KIND)
        )
        for event_type, reason, message in transitions(previous, status):
            self._emit(obj, event_type, reason, message)

    def _emit(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        now = _now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}"},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1000],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": builders.MANAGER},
            "reportingComponent": builders.MANAGER,
        }
        try:
            self.api.create(f"/api/v1/namespaces/{meta['namespace']}/events", event)
        except KubeError as error:
            log.warning("could not record event %s: %s", reason, error)
