"""The local run end to end: its report matches the alerts topic; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import psutil
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

pytestmark = pytest.mark.testbed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraudpipeline.yaml"


def _manifest(tmp_path: Path) -> tuple[Path, str]:
    document = yaml.safe_load(EXAMPLE.read_text())
    name = f"local-{uuid.uuid4().hex[:8]}"
    document["metadata"]["name"] = name
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(document))
    return path, name


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "fraud_local", "run", *map(str, args)]


def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(values) < total and time.monotonic() < deadline:
            values += [m.value() for m in consumer.consume(1000, 1) if not m.error()]
        assert len(values) == total
        return values
    finally:
        consumer.close()


def test_short_run_reports_the_alerts_on_the_topic(kafka, tmp_path):
    manifest, name = _manifest(tmp_path)
    report = tmp_path / "report"
    began = time.monotonic()
    done = subprocess.run(
        _cli(
            manifest,
            "--duration",
            "30s",
            "--rate",
            "100",
            "--kafka",
            kafka.bootstrap_servers,
            "--report-dir",
            report,
        ),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - began < 180
    numbers = json.loads((report / "report.json").read_text())
    alerts = {}
    for value in _read_all(kafka.bootstrap_servers, f"{name}-alerts"):
        alert = json.loads(value)
        alerts[alert["alert_id"]] = (alert["rule"], alert["transaction_ids"])
    assert alerts, "the run wrote no alert"
    assert numbers["alerts"] == len(alerts)
    by_rule = Counter(rule for rule, _ in alerts.values())
    assert numbers["alerts_by_rule"] == dict(sorted(by_rule.items()))
    transactions = _read_all(kafka.bootstrap_servers, f"{name}-transactions")
    assert numbers["transactions"] == len(transactions) > 1000
    fraud = set()
    for value in _read_all(kafka.bootstrap_servers, f"{name}-labels"):
        label = json.loads(value)
        if label["is_fraud"]:
            fraud.add(label["transaction_id"])
    right = Counter(rule for rule, ids in alerts.values() if fraud & set(ids))
    for rule, precision in numbers["precision_by_rule"].items():
        assert precision["alerts_with_fraud"] == right[rule], rule
    assert numbers["recall_by_scenario"] and numbers["latency_seconds"]["p50"] > 0
    for figure in ("throughput", "latency", "alerts-over-time", "quality", "model"):
        assert (report / f"{figure}.png").stat().st_size > 5000
        assert f"({figure}.png)" in (report / "report.md").read_text()


def _descendants(pid: int) -> dict[int, psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
    return {}


def _command(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline())
    return ""


def test_interrupt_stops_every_process(tmp_path):
    manifest, _ = _manifest(tmp_path)
    report = tmp_path / "report"
    process = subprocess.Popen(
        _cli(manifest, "--duration", "10m", "--rate", "50", "--report-dir", report),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        started: dict[int, psutil.Process] = {}
        commands: list[str] = []
        while time.monotonic() < deadline and process.poll() is None:
            started |= _descendants(process.pid)
            commands = [_command(p) for p in started.values()]
            if any("fraud_simulator" in c for c in commands):
                break
            time.sleep(0.5)
        assert any("kafka.Kafka" in c for c in commands), commands
        assert any("run_detection.py" in c for c in commands), commands
        time.sleep(8)
        started |= _descendants(process.pid)
        groups = set()
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        groups.discard(os.getpgid(0))
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    left = [p for p in started.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [p.cmdline() for p in left]
    in_groups = []
    for other in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(other.pid) in groups:
                in_groups.append((other.pid, other.info["cmdline"], other.status()))
    assert not in_groups
    assert "interrupted" in output and (report / "report.md").exists()
