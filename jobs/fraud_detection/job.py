"""The streaming queries of the detection job: parse, dead letters, stateful rules, KPIs.

Three queries read the transactions topic, each with its own checkpoint under
`checkpointLocation`: `dead-letters` (invalid events to the dead-letter topic), `detection`
(tokenised events through the per-card stateful rules and the model, alerts to Kafka and
Elasticsearch) and `kpis` (per-minute, per-category aggregates to Elasticsearch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.streaming.state import GroupStateTimeout

from fraud_detection.config import JobConfig, model_path
from fraud_detection.detector import (
    ALERT_SCHEMA,
    CANDIDATE_SCHEMA,
    STATE_SCHEMA,
    detect_for_card,
    score_batches,
)
from fraud_detection.events import dead_letter, parse_transaction
from fraud_detection.model import load_model
from fraud_detection.sinks import Sinks

log = logging.getLogger(__name__)

PARSED_SCHEMA = (
    "ok boolean, transaction_id string, event_time timestamp, event_ms long, card_token string, "
    "customer_id string, terminal_id string, merchant_id string, merchant_category string, "
    "amount double, currency string, channel string, device_id string, region string, "
    "latitude double, longitude double, kafka_ms long, reason string, dead_letter string"
)
MAX_OFFSETS_PER_TRIGGER = 200_000


def _arrow_type(spark_type: str) -> pa.DataType:
    return {
        "boolean": pa.bool_(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "long": pa.int64(),
        "double": pa.float64(),
    }[spark_type]


PARSED_ARROW = pa.schema(
    [(name, _arrow_type(kind)) for name, kind in (p.split() for p in PARSED_SCHEMA.split(", "))]
)


def parse_batches(key: bytes):
    """A mapInArrow function: Kafka rows in, parsed transactions or dead letters out."""

    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            now = datetime.now(UTC)
            columns = batch.to_pydict()
            rows = []
            for value, topic, partition, offset, timestamp in zip(
                columns["value"],
                columns["topic"],
                columns["partition"],
                columns["offset"],
                columns["timestamp"],
                strict=True,
            ):
                record, rejection = parse_transaction(value, key)
                kafka_ms = int(timestamp.timestamp() * 1000)
                if record is None:
                    letter = dead_letter(value, rejection, topic, partition, offset, now, key)
                    rows.append(
                        {
                            "ok": False,
                            "kafka_ms": kafka_ms,
                            "reason": rejection.reason,
                            "dead_letter": json.dumps(letter),
                        }
                    )
                else:
                    event_ms = int(record["event_time"].timestamp() * 1000)
                    rows.append({**record, "ok": True, "event_ms": event_ms, "kafka_ms": kafka_ms})
            yield pa.RecordBatch.from_pylist(rows, schema=PARSED_ARROW)

    return parse


@dataclass
class DetectionJob:
    """Builds and starts the queries of one pipeline on a SparkSession."""

    spark: SparkSession
    config: JobConfig
    key: bytes
    sinks: Sinks
    max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER

    def source(self, starting_offsets: str = "earliest") -> DataFrame:
        """The transactions topic, parsed: one row per Kafka record."""
        raw = (
            self.spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", self.config.bootstrap_servers)
            .option("subscribe", self.config.topics["transactions"])
            .option("startingOffsets", starting_offsets)
            .option("maxOffsetsPerTrigger", self.max_offsets_per_trigger)
            .option("failOnDataLoss", "false")
            .load()
            .select("value", "topic", "partition", "offset", "timestamp")
        )
        return raw.mapInArrow(parse_batches(self.key), PARSED_SCHEMA)

    def _checkpoint(self, query: str) -> str:
        return f"{self.config.checkpoint_location.rstrip('/')}/{query}"

    def _start(self, frame: DataFrame, name: str, handler, trigger: dict) -> StreamingQuery:
        return (
            frame.writeStream.queryName(name)
            .option("checkpointLocation", self._checkpoint(name))
            .foreachBatch(handler)
            .trigger(**trigger)
            .start()
        )

    def alerts(self, parsed: DataFrame) -> DataFrame:
        """Alerts from the per-card stateful rules and the model, on event time."""
        settings = self.config.detection
        model_folder = ""
        if settings.model.get("enabled", True):
            model_folder = str(model_path(settings.model["uri"]))
            load_model(model_folder)  # fail now, in the driver, when the artifact is unusable
        valid = parsed.filter("ok").select("card_token", *STATE_INPUT_COLUMNS)
        return (
            valid.withWatermark("event_time", settings.watermark_delay)
            .groupBy("card_token")
            .applyInPandasWithState(
                detect_for_card(settings.rules, bool(model_folder)),
                CANDIDATE_SCHEMA,
                STATE_SCHEMA,
                "append",
                GroupStateTimeout.EventTimeTimeout,
            )
            .mapInPandas(
                score_batches(model_folder, float(settings.model["scoreThreshold"])),
                ALERT_SCHEMA,
            )
        )

    def kpis(self, parsed: DataFrame) -> DataFrame:
        """Per-minute, per-category counts and amounts, updated as events arrive."""
        return (
            parsed.filter("ok")
            .withWatermark("event_time", self.config.detection.watermark_delay)
            .groupBy(F.window("event_time", "1 minute"), "merchant_category")
            .agg(
                F.count("*").alias("transactions"),
                F.sum("amount").alias("amount_total"),
                F.approx_count_distinct("card_token").alias("cards"),
            )
            .select(
                F.unix_millis(F.col("window.start")).alias("minute_ms"),
                "merchant_category",
                "transactions",
                "amount_total",
                "cards",
            )
        )

    def start(self, trigger: dict | None = None) -> list[StreamingQuery]:
        """Start the queries (`kpis` only with Elasticsearch); `trigger` defaults to the
        configured interval."""
        trigger = trigger or {"processingTime": self.config.detection.trigger_interval}
        self.sinks.prepare()
        parsed = self.source()
        dead = parsed.filter("NOT ok").select("dead_letter", "reason")
        queries = [
            self._start(dead, "dead-letters", self.sinks.write_dead_letters, trigger),
            self._start(self.alerts(parsed), "detection", self.sinks.write_alerts, trigger),
        ]
        if self.config.elasticsearch_url:
            queries.append(
                self.kpis(parsed)
                .writeStream.queryName("kpis")
                .outputMode("update")
                .option("checkpointLocation", self._checkpoint("kpis"))
                .foreachBatch(self.sinks.write_kpis)
                .trigger(**trigger)
                .start()
            )
        return queries


STATE_INPUT_COLUMNS = (
    "transaction_id",
    "event_time",
    "event_ms",
    "kafka_ms",
    "customer_id",
    "terminal_id",
    "merchant_category",
    "amount",
    "channel",
    "device_id",
    "region",
    "latitude",
    "longitude",
)
