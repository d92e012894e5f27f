"""Start-up time and memory of each test-bed component, measured in one run.

Writes bench/results/testbed.json and prints a table. Each component is started alone, timed from
spawn to ready, and its resident memory (the whole process tree) read right after it is ready.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import psutil
from recording import machine, write_results

from fraud_testbed.elasticsearch import run_elasticsearch
from fraud_testbed.kafka import run_kafka
from fraud_testbed.kube import install_crds, run_control_plane
from fraud_testbed.prometheus import run_prometheus
from fraud_testbed.spark import local_session

RESULTS = Path(__file__).parent / "results" / "testbed.json"


def tree_rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            total += proc.memory_info().rss
    return round(total / 2**20, 1)


def measure_server(name: str, start: Callable[[Path], AbstractContextManager], pids) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
        began = time.monotonic()
        with start(Path(workdir)) as running:
            ready = time.monotonic() - began
            return {
                "component": name,
                "startup_s": round(ready, 2),
                "rss_mib": tree_rss_mib(pids(running)),
            }


def measure_kubernetes() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-kube-") as workdir:
        began = time.monotonic()
        with run_control_plane(Path(workdir)) as cluster:
            ready = time.monotonic() - began
            crd_began = time.monotonic()
            install_crds(cluster)
            return {
                "component": "kubernetes (etcd + kube-apiserver + kube-controller-manager)",
                "startup_s": round(ready, 2),
                "crd_install_s": round(time.monotonic() - crd_began, 2),
                "rss_mib": tree_rss_mib([p.pid for p in cluster.processes]),
            }


def measure_spark() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as workdir:
        began = time.monotonic()
        session = local_session(Path(workdir))
        session.range(1).count()
        ready = time.monotonic() - began
        jvms = [p.pid for p in psutil.Process().children(recursive=True) if "java" in p.name()]
        result = {
            "component": "spark (local[2] driver JVM)",
            "startup_s": round(ready, 2),
            "rss_mib": tree_rss_mib(jvms),
        }
        session.stop()
        return result


def main() -> None:
    results = [
        measure_kubernetes(),
        measure_server("kafka", run_kafka, lambda broker: [broker.process.pid]),
        measure_server(
            "elasticsearch",
            lambda _workdir: run_elasticsearch(),
            lambda node: [node.process.pid],
        ),
        measure_server("prometheus", run_prometheus, lambda server: [server.process.pid]),
        measure_spark(),
    ]
    report = {
        "benchmark": "testbed",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "components": results,
    }
    write_results(RESULTS, report, summary)


def summary(report: dict) -> str:
    lines = [f"{'component':<62} {'start-up s':>10} {'RSS MiB':>9}"]
    for row in report["components"]:
        lines.append(f"{row['component']:<62} {row['startup_s']:>10} {row['rss_mib']:>9}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
