"""Transactions per second the simulator generates and delivers to a real Kafka broker.

Writes bench/results/simulator.json and prints a summary. Two measurements over the same day of
simulated traffic (every transaction also produces its label, so messages = 2 x transactions):
generation alone (events serialised, not sent), and generation + delivery to a broker of the
test bed with the fast-forward clock, until the final flush has every message acknowledged.
"Per core" divides by the CPU seconds of the simulator process (its librdkafka threads
included; the broker's CPU is reported apart).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from confluent_kafka.admin import NewTopic
from recording import machine, write_results

from fraud_simulator import parse_settings, simulate
from fraud_simulator.engine import TRANSACTION, Simulation
from fraud_simulator.metrics import Metrics
from fraud_simulator.outputs import KafkaOutput
from fraud_simulator.runner import run
from fraud_testbed.kafka import run_kafka

RESULTS = Path(__file__).parent / "results" / "simulator.json"
START = datetime(2026, 1, 1, tzinfo=UTC)
TARGET_PER_CORE = 50_000


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure_generation(settings, duration) -> dict:
    me = psutil.Process()
    cpu, began = cpu_seconds(me), time.monotonic()
    transactions = events = 0
    for batch in simulate(settings, START, duration):
        transactions += int((batch.kind == TRANSACTION).sum())
        events += len(batch)
    wall, cpu = time.monotonic() - began, cpu_seconds(me) - cpu
    return {
        "transactions": transactions,
        "events": events,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "transactions_per_s": round(transactions / wall),
        "transactions_per_cpu_s": round(transactions / cpu),
    }


def measure_delivery(settings, duration) -> dict:
    me = psutil.Process()
    with (
        tempfile.TemporaryDirectory(prefix="bench-simulator-") as workdir,
        run_kafka(Path(workdir)) as broker,
    ):
        topics = {"transactions": "bench-transactions", "labels": "bench-labels"}
        admin = broker.admin()
        futures = admin.create_topics(
            [NewTopic(topics["transactions"], 6, 1), NewTopic(topics["labels"], 3, 1)]
        )
        for future in futures.values():
            future.result(timeout=30)
        broker_process = psutil.Process(broker.process.pid)
        broker_cpu = cpu_seconds(broker_process)
        metrics = Metrics()
        output = KafkaOutput(broker.bootstrap_servers, topics, metrics)
        peak_rss, sampling = [me.memory_info().rss], threading.Event()

        def sample_memory():
            while not sampling.wait(0.2):
                peak_rss.append(me.memory_info().rss)

        sampler = threading.Thread(target=sample_memory, daemon=True)
        sampler.start()
        cpu, began = cpu_seconds(me), time.monotonic()
        summary = run(settings, output, metrics, START, duration, False, threading.Event())
        wall, cpu = time.monotonic() - began, cpu_seconds(me) - cpu
        sampling.set()
        sampler.join()
        broker_cpu = cpu_seconds(broker_process) - broker_cpu
    return {
        "transactions": summary.transactions,
        "messages": summary.events,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "broker_cpu_s": round(broker_cpu, 2),
        "transactions_per_s": round(summary.transactions / wall),
        "transactions_per_cpu_s": round(summary.transactions / cpu),
        "peak_rss_mib": round(max(peak_rss) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--terminals", type=int, default=5_000)
    parser.add_argument("--hours", type=float, default=24)
    args = parser.parse_args()
    settings = parse_settings(
        {"customers": args.customers, "terminals": args.terminals, "seed": 1, "fraudRate": 0.01}
    )
    duration = timedelta(hours=args.hours)
    began = time.monotonic()
    Simulation(settings)  # builds and caches the world: not part of the rate
    world_s = time.monotonic() - began
    generation = measure_generation(settings, duration)
    delivery = measure_delivery(settings, duration)
    result = {
        "benchmark": "simulator",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "workload": {
            "customers": args.customers,
            "terminals": args.terminals,
            "simulated_hours": args.hours,
            "world_build_s": round(world_s, 2),
        },
        "generation_only": generation,
        "delivered_to_kafka": delivery,
        "target_transactions_per_cpu_s": TARGET_PER_CORE,
        "meets_target": delivery["transactions_per_cpu_s"] >= TARGET_PER_CORE,
    }
    write_results(RESULTS, result, summary)


def summary(result: dict) -> str:
    workload, delivery = result["workload"], result["delivered_to_kafka"]
    lines = [
        f"world: {workload['customers']} customers, {workload['terminals']} terminals, "
        f"built in {workload['world_build_s']:.1f} s"
    ]
    for name in ("generation_only", "delivered_to_kafka"):
        row = result[name]
        lines.append(
            f"{name.replace('_', ' '):>20}: {row['transactions']} transactions in "
            f"{row['wall_s']} s wall, {row['cpu_s']} s CPU -> {row['transactions_per_s']}/s, "
            f"{row['transactions_per_cpu_s']}/CPU-s"
        )
    verdict = "met" if result["meets_target"] else "NOT met"
    lines.append(
        f"peak RSS {delivery['peak_rss_mib']} MiB, broker CPU {delivery['broker_cpu_s']} s; "
        f"target {result['target_transactions_per_cpu_s']}/CPU-s: {verdict}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
