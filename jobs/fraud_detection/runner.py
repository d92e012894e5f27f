"""Run the job until its queries stop: config, session, metrics endpoint, queries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlparse

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from fraud_detection.config import JobConfig, load_config, tokenization_key
from fraud_detection.job import MAX_OFFSETS_PER_TRIGGER, DetectionJob
from fraud_detection.metrics import JobMetrics, MetricsListener
from fraud_detection.sinks import Sinks

log = logging.getLogger(__name__)
ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
FILE_SYSTEM_CHECKPOINTS = (
    "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"
)


def session_settings(checkpoint_location: str) -> dict[str, str]:
    """The Spark SQL settings the job's query runs with.

    The state stores write a changelog per micro-batch (snapshots in the background), not their
    files at every commit. On a local checkpoint (a volume), Spark's default checkpoint file
    manager goes through Hadoop's FileContext, which without Hadoop's native library starts
    `chmod` and `readlink` processes for each file it writes; the file-system one does not. Both
    shorten every micro-batch (docs/detection.md, Checkpoint files).
    """
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",  # for toPandas
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB,  # transformWithState needs it
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    }
    if urlparse(checkpoint_location).scheme in ("", "file"):
        settings["spark.sql.streaming.checkpointFileManagerClass"] = FILE_SYSTEM_CHECKPOINTS
    return settings


@dataclass
class StartedJob:
    """A started job's queries, and what they hold until `close`."""

    spark: SparkSession
    queries: list[StreamingQuery]
    listener: MetricsListener
    sinks: Sinks

    def close(self) -> None:
        """Stop the queries (waiting for a running micro-batch), remove the metrics listener and
        close the sinks' clients."""
        try:
            for query in self.queries:
                query.stop()
            self.spark.streams.removeListener(self.listener)
        finally:
            self.sinks.close()


def start_job(
    spark: SparkSession,
    config: JobConfig,
    metrics: JobMetrics,
    trigger: dict | None = None,
    max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER,
) -> StartedJob:
    """Start the queries on `spark` with a listener feeding `metrics`."""
    for key, value in session_settings(config.checkpoint_location).items():
        spark.conf.set(key, value)
    listener = MetricsListener(metrics)
    spark.streams.addListener(listener)
    sinks = Sinks(config, metrics)
    job = DetectionJob(spark, config, tokenization_key(), sinks, max_offsets_per_trigger)
    try:
        return StartedJob(spark, job.start(trigger), listener, sinks)
    except BaseException:
        StartedJob(spark, [], listener, sinks).close()
        raise


def run(
    config_path: str,
    metrics_address: str = "0.0.0.0",
    available_now: bool = False,
    max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER,
) -> int:
    """Run until the queries stop (at once when any fails: exit code 1).

    `available_now` processes what the topic holds, then stops (backfills, tests).
    """
    config = load_config(config_path)
    spark = SparkSession.builder.appName(f"fraud-detection-{config.pipeline}").getOrCreate()
    metrics = JobMetrics()
    metrics.serve(config.metrics_port, metrics_address)
    trigger = {"availableNow": True} if available_now else None
    job = start_job(spark, config, metrics, trigger, max_offsets_per_trigger)
    queries = job.queries
    log.info("started %d queries for pipeline %s", len(queries), config.pipeline)
    try:
        if available_now:
            for query in queries:
                query.awaitTermination()
        else:
            spark.streams.awaitAnyTermination()
    except StreamingQueryException:
        log.exception("a query failed; stopping the job")
    job.close()
    failed = [query for query in queries if query.exception() is not None]
    for query in failed:
        log.error("query %s failed: %s", query.name, query.exception())
    return 1 if failed else 0
