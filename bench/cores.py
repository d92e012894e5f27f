"""What a second task slot buys the detection job: local[1] against local[2], each on a fresh JVM.

Writes bench/results/cores.json and prints a summary. ROUNDS rounds, the slot counts alternating
(2, 1, 2, 1), each in a process of its own (a fresh JVM, so no round warms the next) with a
Kafka broker of its own, each step bounded in time:
1. fill a topic with detection.THROUGHPUT_DAYS of simulated transactions;
2. the job (every rule and the model on, as many shuffle partitions as cores) over the whole
   topic twice, as detection.py's throughput step: the sustained rate of the second run;
3. a fresh pipeline fed at LATENCY_RATE transactions a second under the 1-second trigger, as
   detection.py's latency step: p50 and p99 event-to-alert and the median micro-batch;
4. a least-squares line through the micro-batches of steps 2 (second run) and 3: a
   micro-batch's fixed cost and its cost per transaction.
Work spread over the slots lowers the cost per transaction; what a micro-batch costs whatever
its size is the fixed cost, which sets p99 at half load (docs/performance.md, Why the latency
target is missed). The slots share the machine's cores with the broker, the producer, the
driver and the JIT compilers: on a 2-core machine this is not a machine with more cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import detection
from recording import machine, write_results

from fraud_testbed.kafka import run_kafka

RESULTS = Path(__file__).parent / "results" / "cores.json"
ROUNDS = (2, 1, 2, 1)
LATENCY_RATE = 1_200  # transactions a second: about a quarter of what local[1] sustains here
ROUND_TIMEOUT_S = 900


def measure_round(cores: int) -> dict:
    """One round on local[`cores`], in this process."""
    os.environ.setdefault("TOKENIZATION_KEY", "benchmark-tokenization-key")
    with tempfile.TemporaryDirectory(prefix="bench-cores-") as folder:
        workdir = Path(folder)
        with run_kafka(workdir / "kafka") as broker:
            bootstrap = broker.bootstrap_servers
            detection.progress(f"local[{cores}]: filling the topic")
            topic, messages = detection.filled_topic(bootstrap)
            spark = detection.bench_session(workdir, "fraud-detection-cores", cores)
            throughputs = []
            for attempt in (1, 2):
                detection.progress(f"local[{cores}]: throughput, run {attempt}")
                throughputs.append(
                    detection.measure_throughput(spark, bootstrap, workdir, topic, len(messages))
                )
            detection.progress(f"local[{cores}]: latency at {LATENCY_RATE:,}/s")
            latency = detection.measure_latency(spark, bootstrap, workdir, LATENCY_RATE, messages)
            spark.stop()
    steady = detection.steady_batches(latency)
    cost = detection.batch_cost(detection.steady_batches(throughputs[1]) + steady)
    return {
        "cores": cores,
        "throughput_per_second": [run["transactions_per_second"] for run in throughputs],
        "latency": {name: value for name, value in latency.items() if name != "batches"},
        "median_micro_batch_seconds": detection.median_seconds(steady) if steady else None,
        "micro_batch_cost": {name: value for name, value in cost.items() if name != "fitted"}
        if cost
        else None,
    }


def run_round(command: list[str], found: Path, cores: int) -> dict:
    """Run one round's process; its results, or the round as an error when it failed or ran out
    of time (interrupted first, so that it stops its broker and its Spark)."""
    child = subprocess.Popen(command)
    try:
        code = child.wait(ROUND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
        return {"cores": cores, "error": f"timed out after {ROUND_TIMEOUT_S} s"}
    if code or not found.exists():
        return {"cores": cores, "error": f"exited with {code}"}
    return json.loads(found.read_text())


def summary(results: dict) -> str:
    lines = [f"detection job by task slots ({results['machine']['cpus']} cores on the machine)"]
    for found in results["rounds"]:
        if "error" in found:
            lines.append(f"local[{found['cores']}]: {found['error']}")
            continue
        cost, latency = found["micro_batch_cost"] or {}, found["latency"]
        lines.append(
            f"local[{found['cores']}]: {found['throughput_per_second'][1]:,}/s (second run); "
            f"a micro-batch {cost.get('fixed_seconds')} s + "
            f"{cost.get('microseconds_per_transaction')} us per transaction; at "
            f"{latency['rate_per_second']:,}/s median micro-batch "
            f"{found['median_micro_batch_seconds']} s, p50 {latency.get('p50_seconds')} s, "
            f"p99 {latency.get('p99_seconds')} s"
        )
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:2] == ["--round"]:  # --round CORES FILE: one round, its results to FILE
        Path(sys.argv[3]).write_text(json.dumps(measure_round(int(sys.argv[2]))))
        return 0
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "latency_rate_per_second": LATENCY_RATE,
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-cores-") as folder:
        for number, cores in enumerate(ROUNDS):
            found = Path(folder) / f"round-{number}.json"
            command = [sys.executable, __file__, "--round", str(cores), str(found)]
            results["rounds"].append(run_round(command, found, cores))
    write_results(RESULTS, results, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
