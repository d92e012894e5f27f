"""How the detection job's micro-batch grows with the accounts it holds.

Writes bench/results/state_scale.json and prints a summary. For each portfolio size in
CUSTOMERS (one terminal per five customers, otherwise detection.SIMULATION), on local[2] with
the job's defaults (64 state buckets, every rule and the model on), each step bounded in time:
1. simulate HISTORY_DAYS days of transactions (fraud_simulator) and then PROBE_TRANSACTIONS more
   into a fresh topic, the history first;
2. run the job over the history with an availableNow trigger in micro-batches of LOAD_BATCH:
   the state a month of history leaves, as in production;
3. run it again from its checkpoint over the probe transactions in micro-batches of
   PROBE_BATCH, which touch every bucket: the median micro-batch and the size of the state
   stores' RocksDB files (with changelogs, these follow RocksDB's own flushes).
The growth of the median micro-batch with the accounts is what holding them costs (see
docs/detection.md, State buckets).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from detection import (
    SIMULATION,
    TRANSACTION_PARTITIONS,
    batch_sizes_and_seconds,
    bench_session,
    job_config,
    median_seconds,
    run_to_end,
    simulated_payloads,
)
from recording import machine, write_results

from fraud_detection.harness import create_topics, produce
from fraud_testbed.kafka import run_kafka

RESULTS = Path(__file__).parent / "results" / "state_scale.json"
CUSTOMERS = (5_000, 20_000, 50_000)
HISTORY_DAYS = 30  # the longest window a card's state keeps
PROBE_TRANSACTIONS = 100_000
LOAD_BATCH = 200_000
PROBE_BATCH = 10_000
STEP_TIMEOUT_S = 900
START = datetime(2026, 4, 6, tzinfo=UTC)


def state_bytes(progress: dict) -> dict[str, int]:
    """The size of each stateful operator's RocksDB files after the last micro-batch."""
    return {
        operator["operatorName"]: operator["customMetrics"].get("rocksdbSstFileSize", 0)
        for operator in progress.get("stateOperators", [])
    }


def measure(spark, bootstrap: str, workdir: Path, customers: int) -> dict:
    days = HISTORY_DAYS + max(1, PROBE_TRANSACTIONS // customers)  # about 2 per customer a day
    began = time.monotonic()
    simulation = {**SIMULATION, "customers": customers, "terminals": customers // 5}
    messages = simulated_payloads(days, START, simulation)
    history, probe = messages[:-PROBE_TRANSACTIONS], messages[-PROBE_TRANSACTIONS:]
    topic = f"scale-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [topic], TRANSACTION_PARTITIONS)
    produce(bootstrap, topic, history)
    config = job_config(bootstrap, workdir, topic)
    print(f"{customers:,} customers: {len(history):,} transactions of history", flush=True)
    loaded = batch_sizes_and_seconds(run_to_end(spark, config, LOAD_BATCH, STEP_TIMEOUT_S))
    produce(bootstrap, topic, probe)
    query = run_to_end(spark, config, PROBE_BATCH, STEP_TIMEOUT_S)
    probed, progress = batch_sizes_and_seconds(query), query.lastProgress
    # full micro-batches after the first, which also pays for the restart
    full = [(rows, seconds) for rows, seconds in probed[1:] if rows >= 0.9 * PROBE_BATCH]
    return {
        "customers": customers,
        "history_transactions": len(history),
        "load_seconds": round(sum(seconds for _, seconds in loaded), 1),
        "probe_batches": [{"rows": rows, "seconds": seconds} for rows, seconds in probed],
        "median_probe_batch_seconds": median_seconds(full),
        "state_store_bytes": state_bytes(progress),
        "step_seconds": round(time.monotonic() - began, 1),
    }


def summary(results: dict) -> str:
    lines = []
    for size in results["sizes"]:
        stores = ", ".join(
            f"{name} {value / 1e6:.1f} MB" for name, value in size["state_store_bytes"].items()
        )
        lines.append(
            f"{size['customers']:,} customers: median micro-batch of {PROBE_BATCH:,} "
            f"{size['median_probe_batch_seconds']} s; state stores {stores}"
        )
    return "\n".join(lines)


def main() -> int:
    os.environ.setdefault("TOKENIZATION_KEY", "benchmark-tokenization-key")
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-state-scale-") as folder:
        workdir = Path(folder)
        with run_kafka(workdir / "kafka") as broker:
            spark = bench_session(workdir, "fraud-detection-state-scale")
            for customers in CUSTOMERS:
                size = measure(spark, broker.bootstrap_servers, workdir, customers)
                results["sizes"].append(size)
                print(summary({"sizes": [size]}), flush=True)
            spark.stop()
    write_results(RESULTS, results, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
