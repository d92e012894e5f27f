"""The streaming query of the detection job.

One query, `detection`, reads the transactions and labels topics once: each record is parsed
and validated (`parse_batches`), grouped by account through the stateful rules, the model's
features and the label join (`detector.detect_for_accounts`, applyInPandasWithState), scored
by the model in bulk (`detector.score_batches`) and written by `Sinks.write_detection`: alerts
to Kafka and Elasticsearch, dead letters (bad or late input) to the dead-letter topic, per-minute
KPIs, label outcomes and account totals to Elasticsearch and Prometheus. Its checkpoint is
`<checkpointLocation>/detection`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.streaming.state import GroupStateTimeout

from fraud_detection.config import JobConfig, duration_seconds, model_path
from fraud_detection.detector import (
    DEAD_LETTER_ACCOUNT,
    INPUT_SCHEMA,
    OUTPUT_SCHEMA,
    RECORD_FIELDS,
    STATE_SCHEMA,
    DetectSettings,
    detect_for_accounts,
    score_batches,
)
from fraud_detection.events import dead_letter, decode_event, transaction_record
from fraud_detection.model import load_model
from fraud_detection.outcomes import LABEL_FIELDS, parse_label
from fraud_detection.sinks import Sinks

log = logging.getLogger(__name__)

MAX_OFFSETS_PER_TRIGGER = 200_000
INPUT_ARROW = pa.schema([("account", pa.string()), ("record", pa.string())])


def kafka_ms(timestamp: datetime) -> int:
    return int(timestamp.timestamp() * 1000)


def parse_batches(key: bytes, labels_topic: str | None):
    """A mapInArrow function: Kafka rows in; (account, record) out, where record is the JSON
    list of detector.RECORD_FIELDS of a transaction, {"label": [LABEL_FIELDS]} of a label, or
    the dead-letter document of rejected input (account DEAD_LETTER_ACCOUNT)."""

    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            now = datetime.now(UTC)
            columns = batch.to_pydict()
            accounts, records = [], []
            for value, topic, partition, offset, timestamp in zip(
                columns["value"],
                columns["topic"],
                columns["partition"],
                columns["offset"],
                columns["timestamp"],
                strict=True,
            ):
                event, rejection = decode_event(value)
                record = None
                if event is not None and topic == labels_topic:
                    record, rejection = parse_label(event)
                    if record is not None:
                        record.update(kafka_ms=kafka_ms(timestamp))
                        accounts.append(record["customer_id"])
                        records.append(json.dumps({"label": [record[f] for f in LABEL_FIELDS]}))
                    if rejection is None:
                        continue  # a label of a transaction, or of a sensor or application
                elif event is not None:
                    record, rejection = transaction_record(event, key)
                if record is None:
                    letter = dead_letter(value, rejection, topic, partition, offset, now, key)
                    accounts.append(DEAD_LETTER_ACCOUNT)
                    records.append(json.dumps(letter))
                    continue
                record.update(
                    event_ms=kafka_ms(record["event_time"]),
                    kafka_ms=kafka_ms(timestamp),
                    topic=topic,
                    partition=partition,
                    offset=offset,
                )
                accounts.append(record["customer_id"])
                records.append(json.dumps([record[name] for name in RECORD_FIELDS]))
            yield pa.RecordBatch.from_arrays(
                [pa.array(accounts, pa.string()), pa.array(records, pa.string())],
                schema=INPUT_ARROW,
            )

    return parse


@dataclass
class DetectionJob:
    """Builds and starts the queries of one pipeline on a SparkSession."""

    spark: SparkSession
    config: JobConfig
    key: bytes
    sinks: Sinks
    max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER

    def read(self, topics: str, starting_offsets: str = "earliest") -> DataFrame:
        """Kafka records of `topics` (comma-separated)."""
        return (
            self.spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", self.config.bootstrap_servers)
            .option("subscribe", topics)
            .option("startingOffsets", starting_offsets)
            .option("maxOffsetsPerTrigger", self.max_offsets_per_trigger)
            .option("failOnDataLoss", "false")
            .load()
            .select("value", "topic", "partition", "offset", "timestamp")
        )

    def detection(self) -> DataFrame:
        """Every transaction record in, the rows of detector.OUTPUT_SCHEMA out."""
        settings = self.config.detection
        model_folder = ""
        if settings.model.get("enabled", True):
            model_folder = str(model_path(settings.model["uri"]))
            load_model(model_folder)  # fail now, in the driver, when the artifact is unusable
        detect_settings = DetectSettings(
            rules=settings.rules,
            lateness_ms=int(duration_seconds(settings.watermark_delay) * 1000),
            with_features=bool(model_folder),
            key=self.key,
        )
        labels = self.config.topics.get("labels")
        topics = ",".join([self.config.topics["transactions"], *([labels] if labels else [])])
        return (
            self.read(topics)
            .mapInArrow(parse_batches(self.key, labels), INPUT_SCHEMA)
            .groupBy("account")
            .applyInPandasWithState(
                detect_for_accounts(detect_settings),
                OUTPUT_SCHEMA,
                STATE_SCHEMA,
                "append",
                GroupStateTimeout.NoTimeout,
            )
            .mapInPandas(
                score_batches(model_folder, float(settings.model["scoreThreshold"])),
                OUTPUT_SCHEMA,
            )
        )

    def _start(self, frame: DataFrame, name: str, handler, trigger: dict) -> StreamingQuery:
        return (
            frame.writeStream.queryName(name)
            .option("checkpointLocation", f"{self.config.checkpoint_location.rstrip('/')}/{name}")
            .foreachBatch(handler)
            .trigger(**trigger)
            .start()
        )

    def start(self, trigger: dict | None = None) -> list[StreamingQuery]:
        """Start the query; `trigger` defaults to the configured interval."""
        trigger = trigger or {"processingTime": self.config.detection.trigger_interval}
        self.sinks.prepare()
        return [self._start(self.detection(), "detection", self.sinks.write_detection, trigger)]
