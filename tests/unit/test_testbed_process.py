"""How the test bed starts, waits for and stops its processes (no component needed)."""

from __future__ import annotations

import time

import psutil
import pytest

from fraud_testbed.kafka import broker_properties
from fraud_testbed.process import ComponentError, ManagedProcess, free_port


def test_free_ports_are_never_handed_out_twice():
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50


def test_a_process_that_dies_fails_with_its_log_tail(tmp_path):
    process = ManagedProcess(
        "doomed",
        ["sh", "-c", "echo 'bind: address already in use'; exit 3"],
        tmp_path / "doomed.log",
    )
    with pytest.raises(ComponentError) as failure:
        process.wait_until(lambda: False, "listening", timeout=30)
    message = str(failure.value)
    assert "doomed exited with code 3 before it was listening" in message
    assert "bind: address already in use" in message


def test_a_process_that_never_gets_ready_times_out_with_its_log_tail(tmp_path):
    process = ManagedProcess(
        "slow", ["sh", "-c", "echo warming up; sleep 30"], tmp_path / "slow.log"
    )
    try:
        with pytest.raises(ComponentError, match=r"(?s)slow was not ready within 1 s.*warming up"):
            process.wait_until(lambda: False, "ready", timeout=1)
    finally:
        process.stop()


def test_stop_ends_the_whole_process_group(tmp_path):
    # The child ignores SIGTERM, so only the SIGKILL after the grace period ends it.
    script = "trap '' TERM; sleep 60 & echo $! > child.pid; wait"
    process = ManagedProcess("parent", ["sh", "-c", script], tmp_path / "parent.log", cwd=tmp_path)
    pid_file = tmp_path / "child.pid"

    def pid_written() -> bool:  # the shell creates the file before echo writes to it
        return pid_file.exists() and pid_file.read_text().endswith("\n")

    process.wait_until(pid_written, "forked", timeout=10)
    child = psutil.Process(int(pid_file.read_text()))
    started = time.monotonic()
    process.stop(timeout=1)
    assert time.monotonic() - started < 15
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_kafka_listens_only_on_loopback(tmp_path):
    properties = dict(
        line.split("=", 1) for line in broker_properties(tmp_path, 9092, 9093).splitlines()
    )
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert properties["process.roles"] == "broker,controller"
    assert properties["auto.create.topics.enable"] == "false"
