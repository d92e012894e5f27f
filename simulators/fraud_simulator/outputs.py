"""Where the events go: Kafka (idempotent, keyed) or files (JSONL or Parquet), one per kind."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from confluent_kafka import KafkaError, KafkaException, Producer

from fraud_events import KINDS, load_schema
from fraud_simulator.engine import Batch
from fraud_simulator.metrics import Metrics
from fraud_simulator.settings import ConfigError

log = logging.getLogger(__name__)
TOPIC_ROLE = {
    "transaction": "transactions",
    "label": "labels",
    "sensor": "sensors",
    "application": "applications",
}


class DeliveryFailed(RuntimeError):
    """Messages were still undelivered when the flush timed out, or the broker refused them."""


def producer_config(bootstrap_servers: str) -> dict:
    """Idempotent, batched, compressed; retries until message.timeout.ms (5 minutes)."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.timeout.ms": 300_000,
        "delivery.report.only.error": True,
        "client.id": "fraud-simulator",
        "partitioner": "murmur2_random",  # the Java clients' partitioner: same key, same partition
    }


# Delivery reports of the messages `close` gives up on: counted there as undelivered, not refused.
PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)


class KafkaOutput:
    """Produces every event keyed (card, transaction, terminal or application id)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: dict[str, str],
        metrics: Metrics,
        extra_config: dict | None = None,
    ) -> None:
        self.metrics = metrics
        self.topic_of_kind = [topics.get(TOPIC_ROLE[kind]) for kind in KINDS]
        self.failed = 0
        config = {**producer_config(bootstrap_servers), **(extra_config or {})}
        config["on_delivery"] = self._on_delivery
        config["error_cb"] = self._on_error
        self.producer = Producer(config)

    def _on_delivery(self, error: KafkaError | None, message) -> None:
        if error is not None and error.code() not in PURGED:
            self.failed += 1
            self.metrics.delivery_errors.labels(message.topic(), error.name()).inc()
            log.error("delivery to %s failed: %s", message.topic(), error.str())

    def _on_error(self, error: KafkaError) -> None:
        log.warning("kafka: %s", error.str())
        if error.fatal():
            raise KafkaException(error)

    def write(self, batch: Batch) -> None:
        produce, poll, topic_of = self.producer.produce, self.producer.poll, self.topic_of_kind
        for code in np.unique(batch.kind).tolist():
            if topic_of[code] is None:
                raise ConfigError(f"kafka.topics.{TOPIC_ROLE[KINDS[code]]}: no topic configured")
        for kind, key, payload in zip(batch.kind.tolist(), batch.keys, batch.payloads, strict=True):
            for _ in range(10_000):  # bounded: 10,000 waits of up to 0.1 s
                try:
                    produce(topic_of[kind], payload, key)
                    break
                except BufferError:
                    self.metrics.backpressure.inc()
                    poll(0.1)
            else:
                raise DeliveryFailed("the producer queue stayed full for over 15 minutes")
        poll(0)
        self.metrics.queued.set(len(self.producer))

    def close(self, timeout: float = 60.0) -> None:
        """Flush: wait up to `timeout` seconds for every message to be delivered or fail; then
        close the producer (the messages still undelivered are reported, not waited for)."""
        try:
            left = self.producer.flush(timeout)
            self.metrics.queued.set(left)
        finally:
            self.producer.purge()
            self.producer.close()
        if left or self.failed:
            raise DeliveryFailed(
                f"{left} messages undelivered after {timeout:g} s, {self.failed} refused"
            )


def arrow_schema(kind: str):
    """The Parquet columns of one event kind, from its JSON Schema (timestamps stay strings)."""
    import pyarrow as pa  # only file outputs need pyarrow: keep the Kafka simulator small

    types = {
        "string": pa.string(),
        "integer": pa.int64(),
        "number": pa.float64(),
        "boolean": pa.bool_(),
    }
    fields = []
    for name, spec in load_schema(kind)["properties"].items():
        declared = spec.get("type", "string")
        if "const" in spec:
            declared = "integer" if isinstance(spec["const"], int) else "string"
        if isinstance(declared, list):
            declared = next(t for t in declared if t != "null")
        fields.append(pa.field(name, types[declared]))
    return pa.schema(fields)


def _parquet():
    import pyarrow.parquet as pq

    return pq


class FileOutput:
    """One file per kind in `directory`: <kind>s.jsonl or <kind>s.parquet."""

    def __init__(self, directory: Path, file_format: str) -> None:
        if file_format not in ("jsonl", "parquet"):
            raise ValueError(f"--format: must be jsonl or parquet, got {file_format!r}")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.file_format = directory, file_format
        self.files: dict[str, object] = {}

    def _file(self, kind: str):
        if kind not in self.files:
            path = self.directory / f"{TOPIC_ROLE[kind]}.{self.file_format}"
            self.files[kind] = (
                open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
                if self.file_format == "jsonl"
                else _parquet().ParquetWriter(path, arrow_schema(kind), compression="zstd")
            )
        return self.files[kind]

    def write(self, batch: Batch) -> None:
        kinds = batch.kind.tolist()
        for code, kind in enumerate(KINDS):
            lines = [p for p, k in zip(batch.payloads, kinds, strict=True) if k == code]
            if not lines:
                continue
            text = "\n".join(lines) + "\n"
            target = self._file(kind)
            if self.file_format == "jsonl":
                target.write(text)
            else:
                import pyarrow.json as pa_json

                options = pa_json.ParseOptions(explicit_schema=arrow_schema(kind))
                target.write_table(
                    pa_json.read_json(io.BytesIO(text.encode()), parse_options=options)
                )

    def close(self, timeout: float = 0.0) -> None:
        for target in self.files.values():
            target.close()
