"""Run the operator as a local process against a kubeconfig (tests, benchmarks, the local run)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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

    process: subprocess.Popen
    log_path: Path
    metrics_url: str
    health_url: str

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

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
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def run_operator(
    kubeconfig: Path,
    workdir: Path,
    metrics_port: int,
    health_port: int,
    namespaces: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[LocalOperator]:
    """`kopf run -m fraud_operator.handlers` on 127.0.0.1; SIGTERM (then SIGKILL) on exit."""
    scope = [f"--namespace={n}" for n in namespaces] if namespaces else ["--all-namespaces"]
    health_url = f"http://127.0.0.1:{health_port}/healthz"
    log_path = workdir / "operator.log"
    full_env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "FRAUDPIPELINE_METRICS_ADDRESS": "127.0.0.1",
        "FRAUDPIPELINE_METRICS_PORT": str(metrics_port),
        **(env or {}),
    }
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
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
    running = LocalOperator(
        process, log_path, f"http://127.0.0.1:{metrics_port}/metrics", health_url
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (_answers(health_url) and _answers(running.metrics_url)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the operator did not start:\n{running.log_tail()}")
            time.sleep(0.2)
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
