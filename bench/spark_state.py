"""What Spark's Python stateful operator costs per key, with a function that does nothing.

Writes bench/results/spark_state.json and prints a summary. On local[2], a parquet source of
ROWS rows over KEYS keys goes through, each query on its own checkpoint with availableNow:
1. `mapInArrow` passing batches through (reading, Python round trip, no grouping);
2. `groupBy(key).applyInPandasWithState` with a function that only reads its rows and updates
   a 200-byte state (the detection job keys its state by bucket of accounts to pay this less).
Per key cost = (2 - 1) / KEYS: the floor under any per-key Python state in this Spark.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql.streaming.state import GroupStateTimeout
from recording import machine, write_results

from fraud_testbed.spark import local_session

RESULTS = Path(__file__).parent / "results" / "spark_state.json"
ROWS, KEYS = 200_000, 20_000
TIMEOUT_S = 600


def pass_through(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield pa.RecordBatch.from_pydict({"n": [batch.num_rows]})


def count_rows(key: tuple, frames: Iterator[pd.DataFrame], state) -> Iterator[pd.DataFrame]:
    rows = sum(len(frame) for frame in frames)
    state.update(("x" * 200,))
    yield pd.DataFrame({"n": [rows]})


def timed(frame, checkpoint: Path) -> float:
    began = time.monotonic()
    query = (
        frame.writeStream.format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(TIMEOUT_S)
    return time.monotonic() - began


def main() -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="bench-spark-state-") as folder:
        workdir = Path(folder)
        spark = local_session(workdir / "spark", "spark-state-bench")
        spark.sparkContext.setLogLevel("ERROR")
        rng = np.random.default_rng(1)
        rows = pd.DataFrame(
            {
                "key": [f"account-{k}" for k in rng.integers(0, KEYS, ROWS)],
                "amount": rng.random(ROWS) * 100,
            }
        )
        source = workdir / "source"
        spark.createDataFrame(rows).repartition(2).write.parquet(str(source))
        schema = spark.read.parquet(str(source)).schema

        def stream():
            return spark.readStream.schema(schema).parquet(str(source))

        timed(stream().mapInArrow(pass_through, "n long"), workdir / "warm-up")
        baseline = timed(stream().mapInArrow(pass_through, "n long"), workdir / "map")
        stateful = timed(
            stream()
            .groupBy("key")
            .applyInPandasWithState(
                count_rows, "n long", "s string", "append", GroupStateTimeout.NoTimeout
            ),
            workdir / "state",
        )
        spark.stop()
    results = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": ROWS,
        "keys": KEYS,
        "map_in_arrow_seconds": round(baseline, 2),
        "apply_in_pandas_with_state_seconds": round(stateful, 2),
        "per_key_microseconds": round((stateful - baseline) / KEYS * 1e6),
        "machine": machine(),
    }
    write_results(RESULTS, results, lambda found: json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
