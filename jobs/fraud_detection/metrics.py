"""Prometheus metrics of the driver, fed by a StreamingQueryListener and the batch writers."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from pyspark.sql.streaming import StreamingQueryListener

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class JobMetrics:
    """Every metric the job exposes, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.batch_duration = Histogram(
            "fraud_detection_batch_duration_seconds",
            "Duration of a micro-batch.",
            ["query"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.input_rate = Gauge(
            "fraud_detection_input_rows_per_second",
            "Rows per second arriving, last micro-batch.",
            ["query"],
            registry=r,
        )
        self.processing_rate = Gauge(
            "fraud_detection_processed_rows_per_second",
            "Rows per second processed, last micro-batch.",
            ["query"],
            registry=r,
        )
        self.input_rows = Counter(
            "fraud_detection_input_rows", "Kafka records read.", ["query"], registry=r
        )
        self.consumer_lag = Gauge(
            "fraud_detection_consumer_lag_records",
            "Records in Kafka not yet read, summed over partitions, after the last micro-batch.",
            ["query", "topic"],
            registry=r,
        )
        self.alerts = Counter(
            "fraud_detection_alerts", "Alerts written, by rule.", ["rule"], registry=r
        )
        self.latency = Histogram(
            "fraud_detection_event_to_alert_latency_seconds",
            "From the Kafka timestamp of the triggering transaction to the alert being written.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.transactions = Counter(
            "fraud_detection_transactions",
            "Transactions accepted, by merchant category.",
            ["merchant_category"],
            registry=r,
        )
        self.amount = Counter(
            "fraud_detection_transaction_amount",
            "Sum of accepted transaction amounts, by merchant category.",
            ["merchant_category"],
            registry=r,
        )
        self.outcomes = Counter(
            "fraud_detection_label_outcomes",
            "Labelled transactions by alerting rule (`any`: by any rule), outcome and scenario.",
            ["rule", "outcome", "scenario"],
            registry=r,
        )
        self.dead_letters = Counter(
            "fraud_detection_dead_letters", "Rejected events, by reason.", ["reason"], registry=r
        )
        self.accounts_held = Gauge(
            "fraud_detection_accounts_held",
            "Accounts the job keeps state for, over the buckets seen since it started.",
            registry=r,
        )
        self.account_state_bytes = Gauge(
            "fraud_detection_account_state_bytes",
            "The accounts' state as stored (packed), over the buckets seen since it started.",
            registry=r,
        )
        self._buckets: dict[str, tuple[int, float]] = {}  # bucket -> (accounts, bytes)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Expose /metrics over HTTP on `port`."""
        start_http_server(port, addr=address, registry=self.registry)

    def record_buckets(self, rows) -> None:
        """Update the state gauges from the detector's `bucket` rows (dimension = bucket, count =
        accounts held, amount = bytes stored), each replacing what its bucket last reported."""
        for row in rows:
            self._buckets[row.dimension] = (row.count, row.amount)
        self.accounts_held.set(sum(accounts for accounts, _ in self._buckets.values()))
        self.account_state_bytes.set(sum(stored for _, stored in self._buckets.values()))

    def record_progress(self, progress: dict) -> None:
        """Update the query gauges from a StreamingQueryProgress (as its JSON dict)."""
        query = progress.get("name") or "unnamed"
        durations = progress.get("durationMs") or {}
        if "triggerExecution" in durations:
            self.batch_duration.labels(query).observe(durations["triggerExecution"] / 1000)
        self.input_rate.labels(query).set(progress.get("inputRowsPerSecond") or 0.0)
        self.processing_rate.labels(query).set(progress.get("processedRowsPerSecond") or 0.0)
        self.input_rows.labels(query).inc(progress.get("numInputRows") or 0)
        for source in progress.get("sources") or []:
            for topic, lag in kafka_lag(source).items():
                self.consumer_lag.labels(query, topic).set(lag)


def _offsets(value) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def kafka_lag(source: dict) -> dict[str, int]:
    """Per topic, the records between the end of the batch and the latest offsets."""
    latest, end = _offsets(source.get("latestOffset")), _offsets(source.get("endOffset"))
    lag: dict[str, int] = {}
    for topic, partitions in latest.items():
        done = end.get(topic, {})
        lag[topic] = sum(
            max(0, int(offset) - int(done.get(partition, offset)))
            for partition, offset in partitions.items()
        )
    return lag


class MetricsListener(StreamingQueryListener):
    """Feeds every query progress into JobMetrics."""

    def __init__(self, metrics: JobMetrics) -> None:
        self.metrics = metrics

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        self.metrics.record_progress(json.loads(event.progress.json))

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass
