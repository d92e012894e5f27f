"""The test bed's Kafka broker and Spark are real: idempotent production, consumption, streaming."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

MESSAGES = 10_000
PARTITIONS = 3


@pytest.fixture(scope="module")
def filled_topic(kafka) -> str:
    """A 3-partition topic holding MESSAGES messages from an idempotent producer."""
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin()
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]
    )
    futures[topic].result(timeout=30)

    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap_servers, "enable.idempotence": True, "linger.ms": 5}
    )
    failures: list = []

    def delivered(error, message):
        if error is not None:
            failures.append(error)

    for number in range(MESSAGES):
        producer.produce(topic, key=f"card-{number % 97}", value=str(number), on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still queued after 60 s"
    assert failures == []
    return topic


def test_every_produced_message_is_consumed_once(kafka, filled_topic):
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"smoke-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([filled_topic])
    values: list[int] = []
    partitions: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(values) < MESSAGES and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1):
                assert message.error() is None, message.error()
                values.append(int(message.value()))
                partitions.add(message.partition())
    finally:
        consumer.close()
    assert sorted(values) == list(range(MESSAGES))
    assert partitions == set(range(PARTITIONS))


def test_structured_streaming_reads_the_topic_through_the_kafka_source(kafka, spark, filled_topic):
    stream = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
        .option("subscribe", filled_topic)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(value AS STRING) AS value", "partition")
    )
    sink = f"smoke_{uuid.uuid4().hex[:8]}"
    query = stream.writeStream.format("memory").queryName(sink).trigger(availableNow=True).start()
    assert query.awaitTermination(180), "the streaming query did not finish within 180 s"
    assert query.exception() is None
    row = spark.sql(
        f"SELECT count(*) AS n, count(DISTINCT value) AS distinct_values, "
        f"count(DISTINCT partition) AS partitions FROM {sink}"
    ).first()
    assert (row.n, row.distinct_values, row.partitions) == (MESSAGES, MESSAGES, PARTITIONS)
