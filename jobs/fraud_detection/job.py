"""The streaming query of the detection job.

One query, `detection`, reads the transactions and labels topics once, in two stateful stages:
1. each record is grouped by its bucket of terminals (a hash of the `terminal_id` Spark reads
   from the raw JSON, modulo `detection.stateBuckets`), then parsed, validated and tokenised,
   and each transaction gets its terminal's features (`intake.IntakeProcessor`,
   transformWithStateInPandas; fraud_detection.intake);
2. the accepted records are grouped by their bucket of accounts and run through the stateful
   rules, the card features and the label join account by account, and the model scores the
   bucket's transactions in one call (`detector.detect_for_buckets`, applyInPandasWithState).
`Sinks.write_detection` writes the result: alerts to Kafka and Elasticsearch, dead letters (bad
or late input) to the dead-letter topic, per-minute KPIs, label outcomes and account totals to
Elasticsearch and Prometheus. Its checkpoint is `<checkpointLocation>/detection`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import mmh3
import pandas as pd
from pyspark.sql import Column, DataFrame, GroupedData, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.streaming.state import GroupStateTimeout
from pyspark.sql.streaming.stateful_processor import StatefulProcessor

from fraud_detection import intake
from fraud_detection.config import JobConfig, duration_seconds, model_path
from fraud_detection.detector import (
    OUTPUT_SCHEMA,
    STATE_SCHEMA,
    DetectSettings,
    detect_for_buckets,
)
from fraud_detection.model import load_model
from fraud_detection.sinks import Sinks

MAX_OFFSETS_PER_TRIGGER = 200_000
# How long the executors' Kafka consumers wait for data at the end of a partition (Kafka's
# default is 500 ms). A micro-batch reads each partition up to its latest offset, and a
# consumer's next fetch waits at the end of the log until data comes or this time passes; the
# next task on that partition waits for it. With 500 ms, a micro-batch of a trickle of traffic
# (6 transactions a second) took 1.76 s, one reading up to the end of a quiet topic 3.1 s; with
# 50 ms, 0.79 s and 1.6 s (docs/performance.md, Kafka's wait at the end of a partition).
FETCH_MAX_WAIT_MS = 50


# A top-level "terminal_id" with a plain string value, read without parsing the JSON.
PLAIN_TERMINAL_ID = r'"terminal_id"\s*:\s*"([^"\\]*)"'


def terminal_of(value: Column) -> Column:
    """The terminal id of a raw JSON record ("" when there is none). A plain string is matched
    by a regular expression, several times faster than `get_json_object`, which reads the
    others (escapes); a record whose parsed id differs is rejected later (intake.parse_input).
    """
    plain = F.nullif(F.regexp_extract(value, PLAIN_TERMINAL_ID, 1), F.lit(""))
    return F.coalesce(plain, F.get_json_object(value, "$.terminal_id"), F.lit(""))


# Spark puts a state key on shuffle partition pmod(murmur3(key), partitions): bucket numbers
# 0-63 land 36 / 28 on two partitions, so one core would work 30 % longer than the other in every
# micro-batch. Each bucket is grouped instead under the first of bucket, bucket + buckets, ...
# whose hash modulo SPREAD is the bucket's remainder: that deals the buckets out in turn over
# any power-of-two number of partitions up to SPREAD. Beyond SPREADABLE buckets, the hash of the
# bucket numbers spreads them evenly enough.
SPREAD = 64
SPREADABLE = 4096
CANDIDATES = 1000  # per bucket: the chance that none fits is (63/64) ** 1000, about 1e-7
SPARK_HASH_SEED = 42  # the seed of Spark's `hash()` and of its hash partitioning


def spark_hash(key: int) -> int:
    """Spark's `hash()` of a bigint, which places a state key on a shuffle partition: Murmur3
    (x86, 32 bits) of its 8 little-endian bytes."""
    return mmh3.hash(key.to_bytes(8, "little", signed=True), SPARK_HASH_SEED)


def spread_keys(buckets: int) -> list[int] | None:
    """The grouping key of each bucket (see SPREAD); None beyond SPREADABLE buckets (the bucket
    numbers themselves)."""
    if buckets > SPREADABLE:
        return None
    return [
        next(
            (
                key
                for key in range(bucket, buckets * CANDIDATES, buckets)
                if spark_hash(key) % SPREAD == bucket % SPREAD
            ),
            bucket,
        )
        for bucket in range(buckets)
    ]


def bucket_key(column: str, buckets: int, keys: list[int] | None) -> Column:
    """The state key of a row: its bucket (xxhash64 of `column` modulo `buckets`) as spread_keys
    names it."""
    bucket = F.pmod(F.xxhash64(column), F.lit(buckets))
    if keys is None:
        return bucket
    named = F.array(*(F.lit(key) for key in keys)).cast("array<bigint>")
    return F.element_at(named, (bucket + 1).cast("int"))


def kafka_records(
    spark: SparkSession, bootstrap_servers: str, topics: str, max_offsets_per_trigger: int
) -> DataFrame:
    """Kafka records of `topics` (comma-separated), from the earliest offsets."""
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topics)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", max_offsets_per_trigger)
        .option("failOnDataLoss", "false")
        .option("kafka.fetch.max.wait.ms", FETCH_MAX_WAIT_MS)
        .load()
        .select("value", "topic", "partition", "offset", "timestamp")
    )


def by_terminal_bucket(records: DataFrame, keys: list[int] | None, buckets: int) -> GroupedData:
    """Kafka `records` as (terminal, value, meta "topic,partition,offset,Kafka ms"), grouped by
    bucket of terminals (`terminal_bucket`)."""
    return (
        records.select(
            terminal_of(F.col("value").cast("string")).alias("terminal"),
            "value",
            F.concat_ws(",", "topic", "partition", "offset", F.unix_millis("timestamp")).alias(
                "meta"
            ),
        )
        .withColumn("terminal_bucket", bucket_key("terminal", buckets, keys))
        .groupBy("terminal_bucket")
    )


def two_stages(
    records: DataFrame,
    keys: list[int] | None,
    buckets: int,
    processor: StatefulProcessor,
    detect: Callable[..., Iterator[pd.DataFrame]],
) -> DataFrame:
    """The query's shape: Kafka `records` grouped by bucket of terminals into `processor`
    (transformWithStateInPandas, rows of intake.INTAKE_SCHEMA), whose rows are grouped by bucket
    of accounts into `detect` (applyInPandasWithState, rows of detector.OUTPUT_SCHEMA)."""
    return (
        by_terminal_bucket(records, keys, buckets)
        .transformWithStateInPandas(processor, intake.INTAKE_SCHEMA, "append", "None")
        .withColumn("account_bucket", bucket_key("account", buckets, keys))
        .groupBy("account_bucket")
        .applyInPandasWithState(
            detect, OUTPUT_SCHEMA, STATE_SCHEMA, "append", GroupStateTimeout.NoTimeout
        )
    )


@dataclass
class DetectionJob:
    """Builds and starts the queries of one pipeline on a SparkSession."""

    spark: SparkSession
    config: JobConfig
    key: bytes
    sinks: Sinks
    max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER

    def detection(self) -> DataFrame:
        """Every transaction record in, the rows of detector.OUTPUT_SCHEMA out."""
        settings = self.config.detection
        model_folder = ""
        if settings.model.get("enabled", True):
            model_folder = str(model_path(settings.model["uri"]))
            load_model(model_folder)  # fail now, in the driver, when the artifact is unusable
        detect_settings = DetectSettings.of(
            settings, self.key, bool(model_folder), with_accounts=self.sinks.es is not None
        )
        labels = self.config.topics.get("labels")
        topics = ",".join([self.config.topics["transactions"], *([labels] if labels else [])])
        buckets = settings.state_buckets
        keys = spread_keys(buckets)
        ahead = settings.max_event_time_ahead
        intake_settings = intake.IntakeSettings(
            self.key, labels, int(duration_seconds(ahead) * 1000) if ahead else None
        )
        detect = detect_for_buckets(
            detect_settings, model_folder, float(settings.model["scoreThreshold"])
        )
        records = kafka_records(
            self.spark, self.config.bootstrap_servers, topics, self.max_offsets_per_trigger
        )
        return two_stages(records, keys, buckets, intake.IntakeProcessor(intake_settings), detect)

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
