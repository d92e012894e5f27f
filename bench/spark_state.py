"""What Spark's Python state APIs cost per key or per entry, with functions that do nothing else.

Writes bench/results/spark_state.json and prints a summary. On local[2], a parquet source of
ROWS rows over KEYS accounts goes through each query twice, on its own checkpoint with
availableNow: once to store a STATE_BYTES state for every account, then over as many new rows,
timed, with that state in the RocksDB state store (as a running job finds it):
1. `mapInArrow` passing batches through (reading, a Python round trip, no grouping or state);
2. keyed by account: `applyInPandasWithState`, `transformWithStateInPandas` and the row-based
   `transformWithState`, each reading and updating its key's state (a ValueState for the two);
3. keyed by STATE_BUCKETS buckets of accounts with a MapState entry per account (the layout of
   per-account state the detection job would need): `getValue` and `updateValue` per account;
   and the whole map read through its iterator, then `updateValue` per account.
Cost per key (or account) = (query - mapInArrow) / KEYS, the shuffle and grouping included: the
floor under any per-account Python state in this Spark (docs/performance.md, Per-account state
in Spark).
"""

from __future__ import annotations

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
from pyspark.sql import Row
from pyspark.sql.streaming.state import GroupStateTimeout
from pyspark.sql.streaming.stateful_processor import StatefulProcessor
from recording import machine, write_results

from fraud_detection.job import bucket_key
from fraud_detection.runner import ROCKSDB
from fraud_testbed.spark import local_session

RESULTS = Path(__file__).parent / "results" / "spark_state.json"
ROWS, KEYS, STATE_BUCKETS = 200_000, 20_000, 64
STATE_BYTES = 1_000
STATE = "x" * STATE_BYTES
TIMEOUT_S = 900


def pass_through(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield pa.RecordBatch.from_pydict({"n": [batch.num_rows]})


def group_state(key: tuple, frames: Iterator[pd.DataFrame], state) -> Iterator[pd.DataFrame]:
    rows = sum(len(frame) for frame in frames)
    _ = state.get if state.exists else None
    state.update((STATE,))
    yield pd.DataFrame({"n": [rows]})


class ValueStateProcessor(StatefulProcessor):
    """Keyed by account: its ValueState read and updated once per key (`touch`)."""

    def init(self, handle) -> None:
        self.state = handle.getValueState("state", "state string")

    def touch(self) -> None:
        self.state.get()
        self.state.update((STATE,))

    def close(self) -> None:
        pass


class ValueStatePandas(ValueStateProcessor):
    """For transformWithStateInPandas: the key's rows as pandas frames."""

    def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:
        count = sum(len(frame) for frame in rows)
        self.touch()
        yield pd.DataFrame({"n": [count]})


class ValueStateRows(ValueStateProcessor):
    """For the row-based transformWithState: the key's rows one by one."""

    def handleInputRows(self, key, rows, timerValues) -> Iterator[Row]:
        count = sum(1 for _ in rows)
        self.touch()
        yield Row(n=count)


class AccountsInMapState(StatefulProcessor):
    """transformWithStateInPandas keyed by bucket, a MapState entry per account: each account of
    the input read by `getValue` (or the whole map by its iterator, `scan`) and updated."""

    def __init__(self, scan: bool) -> None:
        self.scan = scan

    def init(self, handle) -> None:
        self.accounts = handle.getMapState("accounts", "account string", "state string")

    def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:
        touched = {account for frame in rows for account in frame["account"].tolist()}
        if self.scan:
            dict(self.accounts.iterator())
        for account in touched:
            if not self.scan:
                self.accounts.getValue((account,))
            self.accounts.updateValue((account,), (STATE,))
        yield pd.DataFrame({"n": [len(touched)]})

    def close(self) -> None:
        pass


def timed(frame, checkpoint: Path) -> float:
    began = time.monotonic()
    query = (
        frame.writeStream.format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    if not query.awaitTermination(TIMEOUT_S):
        query.stop()
        raise TimeoutError(f"{checkpoint.name} did not finish within {TIMEOUT_S} s")
    return time.monotonic() - began


def queries(stream) -> dict:
    """Each measured query, by name, as a function of a fresh stream."""

    def by_account():
        return stream().groupBy("account")

    def by_bucket():
        bucket = bucket_key("account", STATE_BUCKETS, None)  # the detection job's buckets
        return stream().withColumn("bucket", bucket).groupBy("bucket")

    return {
        "map_in_arrow": lambda: stream().mapInArrow(pass_through, "n long"),
        "apply_in_pandas_with_state": lambda: by_account().applyInPandasWithState(
            group_state, "n long", "state string", "append", GroupStateTimeout.NoTimeout
        ),
        "transform_with_state_in_pandas": lambda: by_account().transformWithStateInPandas(
            ValueStatePandas(), "n long", "append", "None"
        ),
        "transform_with_state_rows": lambda: by_account().transformWithState(
            ValueStateRows(), "n long", "append", "None"
        ),
        "map_state_get_and_update": lambda: by_bucket().transformWithStateInPandas(
            AccountsInMapState(scan=False), "n long", "append", "None"
        ),
        "map_state_scan_and_update": lambda: by_bucket().transformWithStateInPandas(
            AccountsInMapState(scan=True), "n long", "append", "None"
        ),
    }


def main() -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="bench-spark-state-") as folder:
        workdir = Path(folder)
        spark = local_session(workdir / "spark", "spark-state-bench")
        spark.sparkContext.setLogLevel("ERROR")
        spark.conf.set("spark.sql.streaming.stateStore.providerClass", ROCKSDB)
        rng = np.random.default_rng(1)
        source = workdir / "source"

        def add_rows(part: str) -> None:
            accounts = [f"account-{k}" for k in rng.integers(0, KEYS, ROWS)]
            frame = spark.createDataFrame(pd.DataFrame({"account": accounts}))
            frame.repartition(2).write.parquet(str(source / part))

        add_rows("first")
        schema = spark.read.parquet(str(source / "first")).schema

        def stream():
            return (
                spark.readStream.schema(schema)
                .option("recursiveFileLookup", "true")
                .parquet(str(source))
            )

        measured = queries(stream)
        for name, query in measured.items():
            print(f"storing the state: {name}", flush=True)
            timed(query(), workdir / name)
        add_rows("second")
        seconds = {}
        for name, query in measured.items():
            seconds[name] = timed(query(), workdir / name)
            print(f"{name}: {seconds[name]:.2f} s", flush=True)
        spark.stop()
    baseline = seconds.pop("map_in_arrow")
    results = {
        "started_at": started_at,
        "rows": ROWS,
        "keys": KEYS,
        "state_bytes": STATE_BYTES,
        "map_in_arrow_seconds": round(baseline, 2),
        "seconds": {name: round(value, 2) for name, value in seconds.items()},
        "per_key_microseconds": {
            name: round((value - baseline) / KEYS * 1e6) for name, value in seconds.items()
        },
        "machine": machine(),
    }
    write_results(RESULTS, results, summary)
    return 0


def summary(results: dict) -> str:
    lines = [f"Python state in Spark, per key or account ({results['keys']:,} of them):"]
    for name, cost in results["per_key_microseconds"].items():
        lines.append(f"  {name}: {cost:,} us")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
