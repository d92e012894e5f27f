"""Real data behind every panel: the simulator, the detection job and the operator, scraped.

On the test bed's components: the simulator fast-forwards the last hours into Kafka and then
runs live, transactions and their labels; the detection job reads them on Spark and writes
alerts, KPIs, accounts and label outcomes (its decisions joined with the labels) to
Elasticsearch, and its counters (`fraud_detection_label_outcomes_total` among them) to
Prometheus; the operator reconciles a FraudPipeline (Grafana operator mode, with the dashboards
of grafana/) on the API server. Prometheus scrapes all three with the namespace and pipeline
labels that the ServiceMonitor and PodMonitor relabelling gives in a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from elasticsearch import ApiError

from fraud_dashboards.generate import GRAFANA_DIR
from fraud_detection.config import parse_config
from fraud_detection.harness import create_topics, job_document, produce
from fraud_detection.metrics import JobMetrics
from fraud_detection.runner import start_job
from fraud_operator.grafana import ACCOUNTS, ALERTS, KPIS, OUTCOMES
from fraud_simulator import parse_settings
from fraud_simulator.metrics import Metrics
from fraud_simulator.outputs import KafkaOutput
from fraud_simulator.runner import run as run_simulator
from fraud_testbed.operator_process import run_operator
from fraud_testbed.process import free_port

REPO = GRAFANA_DIR.parent
BACKLOG = timedelta(hours=3)
SIMULATION = {"customers": 20000, "terminals": 2000, "fraudRate": 0.2, "ratePerSecond": 10}
BAD_MESSAGES = [b"", b"hello fraud", b"[1, 2]", b"\xff\xfe\x00garbage"]
# Labels that are JSON objects but break the label schema: dead letters of reason invalid_label.
_LABEL = {
    "schema_version": 1,
    "event_type": "label",
    "transaction_id": "tx-not-a-label",
    "customer_id": "c-not-a-label",
    "terminal_id": "t-not-a-label",
    "event_time": "2026-01-01T08:15:02.123Z",
    "label_time": "2026-01-01T08:15:02.123Z",
    "is_fraud": False,
    "scenario": None,
}
BAD_LABELS = [
    json.dumps({**_LABEL, "is_fraud": "yes"}).encode(),
    json.dumps({**_LABEL, "scenario": "bank_robbery"}).encode(),
]
MAX_OFFSETS_PER_TRIGGER = 600
DETECTION = {"triggerInterval": "2 seconds", "model": {"uri": str(REPO / "models" / "default")}}
WAIT_S = 240
# The first true positive: rule `any` and per-rule outcome rows (precision, recall, fraud rate).
TRUE_POSITIVE = {
    "bool": {"filter": [{"term": {"rule": "any"}}, {"term": {"outcome": "true_positive"}}]}
}


@dataclass(frozen=True)
class Feed:
    """Where the fed data is: Prometheus labels and Elasticsearch indices."""

    namespace: str
    pipeline: str
    alerts_index: str
    kpis_index: str
    outcomes_index: str
    accounts_index: str
    started: datetime

    @property
    def indices(self) -> dict[str, str]:
        """Index by template datasource uid (fraud_operator.grafana)."""
        return {
            ALERTS: self.alerts_index,
            KPIS: self.kpis_index,
            OUTCOMES: self.outcomes_index,
            ACCOUNTS: self.accounts_index,
        }


def _wait(probe, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(1)


def _stop_when_idle(queries, stop: threading.Event, simulator: threading.Thread) -> None:
    """Stop the simulator, then each query once it has processed what was produced (at most
    WAIT_S): a query stopped mid-batch interrupts its sinks' collection to the driver."""
    stop.set()
    simulator.join(30)
    deadline = time.monotonic() + WAIT_S
    for query in queries:
        while query.isActive and time.monotonic() < deadline:
            status = query.status
            if not status["isDataAvailable"] and not status["isTriggerActive"]:
                break
            time.sleep(0.5)
        query.stop()


def has_documents(client, index: str, query: dict | None = None) -> bool:
    """Whether `index` exists, is searchable and holds a document (matching `query`)."""
    try:
        if not client.indices.exists(index=index):
            return False
        return client.count(index=index, query=query or {"match_all": {}})["count"] > 0
    except ApiError as error:  # 503 while a new index's shard starts
        if error.status_code != 503:
            raise
        return False


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _simulator(kafka, topics: dict[str, str], prometheus, labels, stop: threading.Event):
    """Fast-forward the backlog, then run live in a thread until `stop`; returns the thread."""
    metrics = Metrics()
    port = free_port()
    metrics.serve(port, "127.0.0.1")
    prometheus.add_target("fraud-simulator", f"127.0.0.1:{port}", labels)
    now = datetime.now(UTC)
    backlog = parse_settings({**SIMULATION, "seed": 7})
    output = KafkaOutput(kafka.bootstrap_servers, topics, metrics)
    run_simulator(backlog, output, metrics, now - BACKLOG, BACKLOG, False, stop)
    live = parse_settings({**SIMULATION, "seed": 8})
    output = KafkaOutput(kafka.bootstrap_servers, topics, metrics)
    thread = threading.Thread(
        target=run_simulator,
        args=(live, output, metrics, now, timedelta(hours=1), True, stop),
        name="fraud-dashboards-simulator",
        daemon=True,
    )
    thread.start()
    return thread


def _pipeline_object(namespace: str, name: str, elasticsearch_url: str) -> dict:
    """The example pipeline, writing where the fed job writes: its datasources find the data."""
    body = yaml.safe_load((REPO / "examples" / "fraudpipeline.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["sinks"]["elasticsearch"].update(url=elasticsearch_url, indexPrefix=name)
    grafana = {
        "mode": "operator",
        "folder": "Fraud",
        "instanceSelector": {"matchLabels": {"dashboards": "grafana"}},
    }
    body["spec"]["monitoring"]["grafana"] = grafana
    return body


def _prerequisites(namespace: str) -> list[dict]:
    kafka = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "Kafka",
        "metadata": {"name": "fraud-kafka", "namespace": namespace},
        "spec": {
            "kafka": {
                "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]
            }
        },
    }
    secrets = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": data,
        }
        for name, data in (
            ("fraud-es-credentials", {"username": "elastic", "password": "not-a-real-one"}),
            ("fraud-tokenization", {"hmac-key": "dashboards-key"}),
        )
    ]
    return [kafka, *secrets]


@contextlib.contextmanager
def _operator(kube, prometheus, namespace: str, pipeline: str, es_url: str, workdir: Path):
    """The operator process with grafana/ as its content, reconciling one pipeline."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "crd/fraudpipelines.fraudpipeline.dev")
    kube.kubectl("create", "namespace", namespace)
    documents = [*_prerequisites(namespace), _pipeline_object(namespace, pipeline, es_url)]
    port = free_port()
    env = {"FRAUDPIPELINE_RESYNC_SECONDS": "2", "FRAUDPIPELINE_GRAFANA_DIR": str(GRAFANA_DIR)}
    try:
        with run_operator(kube.kubeconfig, workdir, port, free_port(), [namespace], env=env):
            prometheus.add_target("fraudpipeline-operator", f"127.0.0.1:{port}")
            kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
            yield
    finally:
        kube.kubectl("delete", "namespace", namespace, "--wait=false")


@contextlib.contextmanager
def feed(kafka, spark, elasticsearch, prometheus, kube, workdir: Path) -> Iterator[Feed]:
    """Run everything until the block exits; returns once alerts, KPIs, accounts and a true
    positive outcome are indexed."""
    started = datetime.now(UTC)
    suffix = uuid.uuid4().hex[:6]
    namespace, pipeline = f"dashboards-{suffix}", f"cards-{suffix}"
    labels = {"namespace": namespace, "pipeline": pipeline}
    metrics_port = free_port()
    document = job_document(
        pipeline,
        kafka.bootstrap_servers,
        workdir / "checkpoint",
        elasticsearch.url,
        metrics_port,
        DETECTION,
    )
    document["pipeline"]["namespace"] = namespace
    config = parse_config(document)
    create_topics(kafka.bootstrap_servers, list(config.topics.values()))
    environment = {
        "TOKENIZATION_KEY": "dashboards-tokenization-key",
        "ES_USERNAME": elasticsearch.username,
        "ES_PASSWORD": elasticsearch.password,
    }
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environment(environment))
        stack.enter_context(
            _operator(kube, prometheus, namespace, pipeline, elasticsearch.url, workdir)
        )
        sim_topics = {k: config.topics[k] for k in ("transactions", "labels")}
        simulator = _simulator(kafka, sim_topics, prometheus, labels, stop)
        stack.callback(simulator.join, 30)
        stack.callback(stop.set)
        bad = [(None, message) for message in BAD_MESSAGES]
        bad_labels = [(None, message) for message in BAD_LABELS]
        produce(kafka.bootstrap_servers, config.topics["transactions"], bad)
        produce(kafka.bootstrap_servers, config.topics["labels"], bad_labels)
        metrics = JobMetrics()
        metrics.serve(metrics_port, "127.0.0.1")
        prometheus.add_target("fraud-detection", f"127.0.0.1:{metrics_port}", labels)
        job = start_job(spark, config, metrics, None, MAX_OFFSETS_PER_TRIGGER)
        queries = job.queries
        stack.callback(job.close)  # after the queries stop (callbacks run last first)
        stack.callback(_stop_when_idle, queries, stop, simulator)
        client = elasticsearch.client()
        fed = Feed(
            namespace,
            pipeline,
            *(config.index(kind) for kind in ("alerts", "kpis", "outcomes", "accounts")),
            started,
        )

        def indexed() -> bool:
            failed = [q.exception() for q in queries if q.exception() is not None]
            if failed:
                raise RuntimeError(f"a detection query failed: {failed[0]}")
            wanted = [(fed.alerts_index, None), (fed.kpis_index, None), (fed.accounts_index, None)]
            wanted.append((fed.outcomes_index, TRUE_POSITIVE))
            return all(has_documents(client, index, query) for index, query in wanted)

        _wait(indexed, "alerts, KPIs, accounts and outcomes in Elasticsearch", WAIT_S)
        # More bad input once the dead-letter counters are scraped, so that their rate shows.
        produce(kafka.bootstrap_servers, config.topics["transactions"], bad)
        produce(kafka.bootstrap_servers, config.topics["labels"], bad_labels)
        yield fed
