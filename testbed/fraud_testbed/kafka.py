"""A single-node Apache Kafka broker in KRaft mode (combined broker and controller)."""

from __future__ import annotations

import base64
import contextlib
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from fraud_testbed.paths import KAFKA_LIBS, java
from fraud_testbed.process import ComponentError, ManagedProcess, free_port, run_once

READY_TIMEOUT = 120
HEAP = "-Xmx768m"

_LOG4J2 = """\
Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: WARN
"""


@dataclass(frozen=True)
class KafkaBroker:
    bootstrap_servers: str
    workdir: Path
    process: ManagedProcess

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap_servers})


def broker_properties(workdir: Path, port: int, controller_port: int) -> str:
    """server.properties for one node that is both broker and KRaft controller on 127.0.0.1."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(workdir / "data"),
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java(*args: str) -> list[str]:
    if not any(KAFKA_LIBS.glob("kafka_*.jar")):
        raise ComponentError(f"no Kafka jars in {KAFKA_LIBS}: run `make deps`")
    return [java(), HEAP, "-XX:+UseG1GC", "-cp", f"{KAFKA_LIBS}/*", *args]


def _broker_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # the listener is up; now ask for metadata
    metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=5)
    return bool(metadata.brokers)


@contextlib.contextmanager
def run_kafka(workdir: Path, port: int | None = None) -> Iterator[KafkaBroker]:
    """Format the log directory (once) and run the broker until the block exits.

    Passing the port of an earlier run over the same `workdir` restarts that broker with its data.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "server.properties"
    if port is None or not config.exists():
        port = port or free_port()
        config.write_text(broker_properties(workdir, port, free_port()))
        (workdir / "log4j2.yaml").write_text(_LOG4J2)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        run_once(
            "kafka storage format",
            _java(
                "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)
            ),
        )
    broker = ManagedProcess(
        "kafka",
        _java(f"-Dlog4j2.configurationFile={workdir / 'log4j2.yaml'}", "kafka.Kafka", str(config)),
        workdir / "kafka.log",
    )
    try:
        bootstrap = f"127.0.0.1:{port}"
        broker.wait_until(lambda: _broker_answers(port), "answering", READY_TIMEOUT)
        yield KafkaBroker(bootstrap, workdir, broker)
    finally:
        broker.stop()
