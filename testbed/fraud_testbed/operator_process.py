"""Run the FraudPipeline operator as a local process against a kubeconfig (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fraud_testbed.process import ManagedProcess, tail

STARTUP_TIMEOUT = 60


def stand_in_prerequisites(kafka_cluster: str = "fraud-kafka") -> list[dict]:
    """What examples/fraudpipeline.yaml needs in its namespace, with throw-away values: the Strimzi
    Kafka object (no broker behind it) and the Elasticsearch and tokenisation Secrets."""
    listener = {"name": "plain", "port": 9092, "type": "internal", "tls": False}
    secrets = {
        "fraud-es-credentials": {"username": "elastic", "password": "stand-in"},
        "fraud-tokenization": {"hmac-key": "stand-in"},
    }
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "Kafka",
            "metadata": {"name": kafka_cluster},
            "spec": {"kafka": {"listeners": [listener]}},
        },
        *(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n}, "stringData": data}
            for n, data in secrets.items()
        ),
    ]


@dataclass(frozen=True)
class LocalOperator:
    """A running operator: its process, log file, metrics and health URLs."""

    process: ManagedProcess
    metrics_url: str
    health_url: str

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def metrics(self) -> dict[str, float]:
        """The operator's samples, keyed by name{labels} as in the exposition format."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def total(self, metric: str) -> float:
        """Sum of every sample of `metric` (all label sets)."""
        return sum(
            value
            for key, value in self.metrics().items()
            if key == metric or key.startswith(metric + "{")
        )


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


@contextlib.contextmanager
def run_operator(
    kubeconfig: Path,
    workdir: Path,
    metrics_port: int,
    health_port: int,
    namespaces: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[LocalOperator]:
    """`kopf run -m fraud_operator.handlers` on 127.0.0.1; stopped with its process group."""
    scope = [f"--namespace={n}" for n in namespaces] if namespaces else ["--all-namespaces"]
    health_url = f"http://127.0.0.1:{health_port}/healthz"
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    argv = [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "-m",
        "fraud_operator.handlers",
        "--standalone",
        f"--liveness={health_url}",
        "--log-format=json",
        *scope,
    ]
    full_env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "FRAUDPIPELINE_METRICS_ADDRESS": "127.0.0.1",
        "FRAUDPIPELINE_METRICS_PORT": str(metrics_port),
        **(env or {}),
    }
    process = ManagedProcess("operator", argv, workdir / "operator.log", env=full_env)
    try:
        process.wait_until(
            lambda: _answers(health_url) and _answers(metrics_url),
            "serving its health probe and metrics",
            STARTUP_TIMEOUT,
        )
        yield LocalOperator(process, metrics_url, health_url)
    finally:
        process.stop(timeout=15)
