"""Against the real broker: exactly once, stable partitions, and a broker restart loses nothing."""

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from fraud_simulator import generate, parse_settings
from fraud_simulator.metrics import Metrics
from fraud_simulator.outputs import KafkaOutput
from fraud_simulator.runner import run
from fraud_testbed.kafka import run_kafka

pytestmark = pytest.mark.testbed
START = datetime(2026, 4, 1, tzinfo=UTC)
PARTITIONS = {"transactions": 6, "labels": 3, "sensors": 3, "applications": 3}
KIND_ROLE = {
    "transaction": "transactions",
    "label": "labels",
    "sensor": "sensors",
    "application": "applications",
}


def create_topics(admin) -> dict[str, str]:
    prefix = f"sim-{uuid.uuid4().hex[:8]}"
    topics = {role: f"{prefix}-{role}" for role in PARTITIONS}
    futures = admin.create_topics(
        [NewTopic(topics[role], count, 1) for role, count in PARTITIONS.items()]
    )
    for future in futures.values():
        future.result(timeout=30)
    return topics


def consume_all(bootstrap: str, topics: dict[str, str], timeout: float = 90) -> list:
    """Every message of the topics, from the beginning up to their current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        ends = {}
        for topic in topics.values():
            for partition in range(PARTITIONS[next(r for r, t in topics.items() if t == topic)]):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
                ends[(topic, partition)] = high
        consumer.assign([TopicPartition(t, p, 0) for (t, p) in ends])
        messages, deadline = [], time.monotonic() + timeout
        done = {tp for tp, high in ends.items() if high == 0}
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1):
                assert message.error() is None, message.error()
                messages.append(message)
                if message.offset() + 1 >= ends[(message.topic(), message.partition())]:
                    done.add((message.topic(), message.partition()))
        assert len(done) == len(ends), "did not reach the end of every partition in time"
        return messages
    finally:
        consumer.close()


def expected_by_topic(settings, start, duration, topics) -> Counter:
    return Counter(
        (topics[KIND_ROLE[e.kind]], e.key, e.payload) for e in generate(settings, start, duration)
    )


def test_the_cli_delivers_every_event_exactly_once_on_stable_partitions(kafka, tmp_path):
    settings = {
        "customers": 1500,
        "terminals": 300,
        "seed": 21,
        "fraudRate": 0.02,
        "sources": ["transactions", "sensors", "applications"],
    }
    first, second = create_topics(kafka.admin()), create_topics(kafka.admin())
    for topics in (first, second):
        env = {
            **os.environ,
            "FRAUDSIM_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "FRAUDSIM_SOURCES": ",".join(settings["sources"]),
        }
        path = tmp_path / f"{topics['labels']}.yaml"
        path.write_text(yaml.safe_dump({"kafka": {"topics": topics}, "simulator": settings}))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "fraud_simulator",
                "--config",
                path,
                "--clock",
                "fast",
                "--start",
                START.isoformat(),
                "--duration",
                "12h",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    messages = consume_all(kafka.bootstrap_servers, first)
    got = Counter((m.topic(), m.key().decode(), m.value().decode()) for m in messages)
    assert got == expected_by_topic(settings, START, timedelta(hours=12), first)
    assert max(got.values()) == 1
    partition_of = {}
    for message in messages:
        assert partition_of.setdefault(message.key(), message.partition()) == message.partition()
    for message in consume_all(kafka.bootstrap_servers, second):
        assert partition_of[message.key()] == message.partition()
    used = Counter(m.partition() for m in messages if m.topic() == first["transactions"])
    assert len(used) == PARTITIONS["transactions"]


def test_a_broker_restart_during_production_loses_nothing(tmp_path):
    # ~34,000 transactions at 2,500 a second: production spans the broker's downtime
    settings = parse_settings(
        {"customers": 20_000, "terminals": 2_000, "seed": 4, "ratePerSecond": 2_500}
    )
    start, duration = START.replace(hour=6), timedelta(hours=16)
    with run_kafka(tmp_path / "broker") as broker:
        port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
        topics = create_topics(broker.admin())
        output = KafkaOutput(broker.bootstrap_servers, topics, metrics := Metrics())
        stop, failure = threading.Event(), []

        def produce():
            try:
                run(settings, output, metrics, start, duration, True, stop)
            except Exception as error:  # reported by the test below
                failure.append(error)

        producer = threading.Thread(target=produce)
        producer.start()
        time.sleep(2)
    assert producer.is_alive(), "production ended before the broker went down"
    time.sleep(2)  # the producer keeps generating into its queue while the broker is down
    queued_while_down = len(output.producer)
    try:
        with run_kafka(tmp_path / "broker", port) as broker:
            producer.join(timeout=120)
            assert not producer.is_alive(), "production did not finish after the restart"
            assert failure == []
            messages = consume_all(broker.bootstrap_servers, topics)
    finally:
        stop.set()
        producer.join(timeout=60)
    got = Counter((m.topic(), m.key().decode(), m.value().decode()) for m in messages)
    assert got == expected_by_topic(settings, start, duration, topics)
    assert queued_while_down > 1000
    assert not any(
        s.value
        for m in metrics.registry.collect()
        if m.name == "fraudsim_delivery_errors"
        for s in m.samples
    )
