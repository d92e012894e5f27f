"""Spark's own latency for the detection query's shape, with two stateful stages and with one.

Writes bench/results/query_shapes.json and prints a summary. On one JVM (local[2], the job's
session settings), each step bounded in time:
1. fill a topic with detection.THROUGHPUT_DAYS of simulated transactions;
2. ROUNDS rounds, the shapes alternating, each with stages that do nothing
   (detection.floor_query): the shape's throughput over the topic with an availableNow trigger
   in micro-batches of detection.THROUGHPUT_BATCH, then a fresh topic fed at half that under
   the job's 1-second trigger (detection.measure_floor_latency): p50 and p99 from each record's
   Kafka timestamp to the end of the micro-batch that read it. The JVM warms up over the first
   rounds (docs/performance.md, The JVM's warm-up): the last rounds are the settled figures.
Two stages is the job's shape (the terminal stage, then the account stage); one is the account
stage alone. At half its own throughput a shape's p99 is the lowest any job of that shape can
have against the latency target (p99 <= 2 s at half load), whatever its records cost
(docs/performance.md, The floor's own latency).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import detection
from detection import (
    THROUGHPUT_BATCH,
    bench_session,
    filled_topic,
    full_batch_rate,
    measure_floor_latency,
    measure_query_floor,
    progress,
)
from pyspark import cloudpickle
from recording import machine, write_results

from fraud_detection.runner import session_settings
from fraud_testbed.kafka import run_kafka

RESULTS = Path(__file__).parent / "results" / "query_shapes.json"
SHAPES = {"two stateful stages (the job's)": 2, "one stateful stage": 1}
ROUNDS = 5


def summary(results: dict) -> str:
    lines = []
    for name, shape in results["shapes"].items():
        rounds = "; ".join(
            f"{one['transactions_per_second']:,}/s, p50 / p99 {one['at_half_of_it']['p50_seconds']}"
            f" / {one['at_half_of_it']['p99_seconds']} s"
            for one in shape["rounds"]
        )
        lines.append(f"{name}, round by round: {rounds}")
    return "\n".join(lines)


def main() -> int:
    cloudpickle.register_pickle_by_value(detection)  # Python workers cannot import bench/
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "shapes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-shapes-") as folder:
        workdir = Path(folder)
        with run_kafka(workdir / "kafka") as broker:
            bootstrap = broker.bootstrap_servers
            topic, messages = filled_topic(bootstrap)
            spark = bench_session(workdir, "fraud-detection-query-shapes")
            for key, value in session_settings(str(workdir / "checkpoints")).items():
                spark.conf.set(key, value)
            for name, stages in SHAPES.items():
                results["shapes"][name] = {"stateful_stages": stages, "rounds": []}
            for round_number in range(ROUNDS):
                for name, stages in SHAPES.items():
                    progress(f"round {round_number + 1} of {ROUNDS}: {name}")
                    batches = measure_query_floor(
                        spark, bootstrap, workdir, topic, THROUGHPUT_BATCH, 0, stages
                    )
                    rate = full_batch_rate(batches)
                    fed = measure_floor_latency(
                        spark, bootstrap, workdir, rate / 2, messages, stages
                    )
                    results["shapes"][name]["rounds"].append(
                        {"transactions_per_second": rate, "at_half_of_it": fed}
                    )
            spark.stop()
    write_results(RESULTS, results, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
