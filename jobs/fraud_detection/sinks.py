"""Where the queries' micro-batches go: Kafka topics, Elasticsearch and Prometheus."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import pandas as pd
from confluent_kafka import Producer
from pyspark.sql import DataFrame

from fraud_detection import elastic
from fraud_detection.alerts import rfc3339, rfc3339_ms
from fraud_detection.config import JobConfig
from fraud_detection.detector import MINUTE_MS
from fraud_detection.metrics import JobMetrics

FLUSH_TIMEOUT_S = 60


def deliver(producer: Producer, topic: str, messages: Iterable[tuple]) -> None:
    """Produce (key, value) pairs and wait for all of them; raises when any is not delivered."""
    failures: list = []

    def delivered(error, _message):
        if error is not None:
            failures.append(error)

    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(FLUSH_TIMEOUT_S) or failures:
        raise RuntimeError(f"could not deliver to {topic}: {failures[:1]}")


def alert_document(row, origin: dict[str, str], detection_time: datetime) -> dict:
    """The alert document of docs/contracts.md from an `alert` output row of the detector."""
    document = json.loads(row.payload)
    document.update(
        origin,
        event_time=rfc3339_ms(row.event_ms),
        detection_time=rfc3339(detection_time),
    )
    return document


def _minute(minute: int) -> str:
    return rfc3339_ms(minute * MINUTE_MS)


def per_dimension(rows: pd.DataFrame) -> dict[str, tuple[int, float]]:
    """dimension -> (count, amount) summed over total rows of detector.OUTPUT_SCHEMA."""
    summed = rows.groupby("dimension", sort=False)[["count", "amount"]].sum()
    return {
        dimension: (int(count), float(amount))
        for dimension, count, amount in summed.itertuples(name=None)
    }


def per_minute(rows: pd.DataFrame) -> pd.DataFrame:
    """Total rows of detector.OUTPUT_SCHEMA summed per minute and dimension (columns minute,
    dimension, transactions, amount_total)."""
    totals = rows.assign(minute=rows["event_ms"] // MINUTE_MS)
    totals = totals.groupby(["minute", "dimension"], as_index=False, sort=False)
    return totals.agg(transactions=("count", "sum"), amount_total=("amount", "sum"))


class Sinks:
    """foreachBatch writers; every write is idempotent by id so a replayed batch is harmless."""

    def __init__(self, config: JobConfig, metrics: JobMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.producer = Producer(
            {
                "bootstrap.servers": config.bootstrap_servers,
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
            }
        )
        self.es = elastic.connect(config.elasticsearch_url) if config.elasticsearch_url else None
        self.origin = {"pipeline": config.pipeline, "namespace": config.namespace}

    def close(self) -> None:
        """Close the Kafka producer and the Elasticsearch client once the queries have stopped.
        A micro-batch's messages were all delivered or its batch failed, to be replayed from the
        checkpoint: what the producer still holds is purged, not waited for."""
        self.producer.purge()
        self.producer.close()
        if self.es is not None:
            self.es.close()

    def prepare(self) -> None:
        """Install the Elasticsearch index templates."""
        if self.es is not None:
            kinds = elastic.INDEX_PROPERTIES
            elastic.install_templates(self.es, {kind: self.config.index(kind) for kind in kinds})

    def _index(self, kind: str, documents: list[tuple[str, dict]]) -> None:
        if self.es is not None and documents:
            elastic.index_documents(self.es, self.config.index(kind), documents)

    def write_dead_letters(self, rows: list) -> None:
        messages = []
        for row in rows:
            letter = json.loads(row.payload)
            key = f"{letter['source_topic']}:{letter['partition']}:{letter['offset']}"
            messages.append((key, row.payload))
            self.metrics.dead_letters.labels(row.dimension).inc()
        deliver(self.producer, self.config.topics["deadLetters"], messages)

    def write_alerts(self, rows: list) -> None:
        detection_time = datetime.now(UTC)
        documents = [alert_document(row, self.origin, detection_time) for row in rows]
        deliver(
            self.producer,
            self.config.topics["alerts"],
            [(doc["alert_id"], json.dumps(doc, sort_keys=True)) for doc in documents],
        )
        self._index("alerts", [(doc["alert_id"], doc) for doc in documents])
        written = time.time()
        for row in rows:
            self.metrics.alerts.labels(row.dimension).inc()
            self.metrics.latency.observe(max(0.0, written - row.kafka_ms / 1000))

    def _per_minute(self, row, batch_id: int, fields: dict) -> tuple[str, dict]:
        """(id, document) of one micro-batch's total for a minute and dimension; the id holds
        the batch id, so a replayed batch overwrites its own documents (dashboards sum them)."""
        minute = _minute(row.minute)
        document = {
            **self.origin,
            "minute": minute,
            **fields,
            "transactions": row.transactions,
            "batch_id": batch_id,
        }
        return f"{minute}|{row.dimension}|{batch_id}", document

    def write_kpis(self, rows: pd.DataFrame, batch_id: int) -> None:
        """The `transaction` totals: per category, Prometheus counters; per minute and category,
        Elasticsearch documents."""
        for category, (transactions, amount) in per_dimension(rows).items():
            self.metrics.transactions.labels(category).inc(transactions)
            self.metrics.amount.labels(category).inc(amount)
        if self.es is None:
            return
        documents = []
        for row in per_minute(rows).itertuples(index=False):
            fields = {
                "merchant_category": row.dimension,
                "amount_total": round(row.amount_total, 2),
            }
            documents.append(self._per_minute(row, batch_id, fields))
        self._index("kpis", documents)

    def write_outcomes(self, rows: pd.DataFrame, batch_id: int) -> None:
        """The `outcome` totals: per rule, outcome and scenario, counters; per minute too,
        documents."""
        for dimension, (count, _) in per_dimension(rows).items():
            self.metrics.outcomes.labels(*dimension.split("|")).inc(count)
        if self.es is None:
            return
        documents = []
        for row in per_minute(rows).itertuples(index=False):
            rule, outcome, scenario = row.dimension.split("|")
            fields = {"rule": rule, "outcome": outcome, "scenario": scenario}
            documents.append(self._per_minute(row, batch_id, fields))
        self._index("outcomes", documents)

    def write_detection(self, batch: DataFrame, batch_id: int) -> None:
        """A micro-batch of the detection query (detector.OUTPUT_SCHEMA rows), read once."""
        frame = batch.toPandas()
        by_kind = {kind: rows for kind, rows in frame.groupby("kind", sort=False)}
        empty = frame.iloc[:0]

        def rows(kind: str) -> list:
            return list(by_kind.get(kind, empty).itertuples(index=False))

        self.write_dead_letters(rows("dead_letter"))
        self.write_alerts(rows("alert"))
        self.write_kpis(by_kind.get("transaction", empty), batch_id)
        self.write_outcomes(by_kind.get("outcome", empty), batch_id)
        self.metrics.record_buckets(rows("bucket"))
        if self.es is not None:
            accounts = [json.loads(row.payload) for row in rows("account")]
            self._index(
                "accounts", [(doc["customer_id"], {**self.origin, **doc}) for doc in accounts]
            )
