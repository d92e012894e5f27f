"""Where the queries' micro-batches go: Kafka topics and Elasticsearch, from the driver."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from confluent_kafka import Producer

from fraud_detection import elastic
from fraud_detection.alerts import build_alert, rfc3339
from fraud_detection.config import JobConfig
from fraud_detection.metrics import JobMetrics

log = logging.getLogger(__name__)
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

    def prepare(self) -> None:
        """Install the Elasticsearch index templates."""
        if self.es is not None:
            elastic.install_templates(
                self.es, self.config.index("alerts"), self.config.index("kpis")
            )

    def _produce(self, topic: str, messages: list[tuple[str, str]]) -> None:
        deliver(self.producer, topic, messages)

    def write_dead_letters(self, batch, batch_id: int) -> None:
        rows = batch.collect()
        messages = []
        for row in rows:
            letter = json.loads(row.dead_letter)
            key = f"{letter['source_topic']}:{letter['partition']}:{letter['offset']}"
            messages.append((key, row.dead_letter))
            self.metrics.dead_letters.labels(row.reason).inc()
        self._produce(self.config.topics["deadLetters"], messages)

    def write_alerts(self, batch, batch_id: int) -> None:
        rows = batch.collect()
        now = datetime.now(UTC)
        documents = [
            build_alert(
                row.rule,
                row.score,
                json.loads(row.explanation),
                row.transaction_ids,
                row.card_token,
                row.customer_id,
                row.terminal_id,
                datetime.fromtimestamp(row.event_ms / 1000, UTC),
                now,
            )
            for row in rows
        ]
        self._produce(
            self.config.topics["alerts"], [(doc["alert_id"], json.dumps(doc)) for doc in documents]
        )
        if self.es is not None and documents:
            elastic.index_documents(
                self.es, self.config.index("alerts"), ((d["alert_id"], d) for d in documents)
            )
        written = time.time()
        for row in rows:
            self.metrics.alerts.labels(row.rule).inc()
            self.metrics.latency.observe(max(0.0, written - row.kafka_ms / 1000))

    def write_kpis(self, batch, batch_id: int) -> None:
        now = rfc3339(datetime.now(UTC))
        documents = []
        for row in batch.collect():
            minute = rfc3339(datetime.fromtimestamp(row.minute_ms / 1000, UTC))
            documents.append(
                (
                    f"{minute}|{row.merchant_category}",
                    {
                        "minute": minute,
                        "merchant_category": row.merchant_category,
                        "transactions": row.transactions,
                        "amount_total": round(row.amount_total, 2),
                        "average_ticket": round(row.amount_total / row.transactions, 2),
                        "cards": row.cards,
                        "updated_at": now,
                    },
                )
            )
        if documents:
            elastic.index_documents(self.es, self.config.index("kpis"), documents)
