"""Helpers for tests, benchmarks and local runs: topics, job.yaml, producing and reading back."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fraud_detection.detector import AccountState, DetectSettings, evaluate, settle
from fraud_detection.sinks import deliver

TOPICS = ("transactions", "alerts", "labels", "deadLetters")
# The model shipped in the repository (jobs/train_model.py --output models/default).
REPO_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


CARD = "4111111111111111"


def transaction(**changes) -> dict:
    """A valid transaction event; `changes` override fields, "<absent>" removes one."""
    event = {
        "schema_version": 1,
        "event_type": "transaction",
        "transaction_id": "tx-1",
        "event_time": "2026-01-01T08:15:02.123Z",
        "card_number": CARD,
        "customer_id": "c-1",
        "terminal_id": "t-1",
        "merchant_id": "m-1",
        "merchant_category": "grocery",
        "amount": 12.5,
        "currency": "EUR",
        "channel": "pos",
        "device_id": None,
        "region": "FR-IDF",
        "latitude": 48.85,
        "longitude": 2.35,
    }
    event.update(changes)
    return {key: value for key, value in event.items() if value != "<absent>"}


def detect(
    account: AccountState, records: list[dict], settings: DetectSettings, labels=()
) -> list[tuple]:
    """One account's rows for its new input (`evaluate`, then `settle`), as the account stage
    makes them, without the model."""
    return evaluate(account, records, settings) + settle(account, labels)


def label(**changes) -> dict:
    """A valid label of `transaction()`, known at once; `changes` override fields."""
    labelled = transaction()
    ids = {name: labelled[name] for name in ("transaction_id", "customer_id", "terminal_id")}
    times = {"event_time": labelled["event_time"], "label_time": labelled["event_time"]}
    verdict = {"is_fraud": False, "scenario": None}
    return {"schema_version": 1, "event_type": "label", **ids, **times, **verdict, **changes}


def encode(event, encoding: str = "utf-8") -> bytes:
    return json.dumps(event).encode(encoding)


def wide_digits(zero: int, encoding: str) -> bytes:
    """A transaction whose card number is written in the script whose digit zero is `zero`, in
    a wide text `encoding` (UTF-16 or UTF-32, non-ASCII characters as they are)."""
    card = "".join(chr(zero + int(digit)) for digit in CARD)
    return json.dumps(transaction(card_number=card), ensure_ascii=False).encode(encoding)


def deeply_nested(event: dict, depth: int = 300) -> bytes:
    """`event` with one more field, objects nested `depth` deep (under a kilobyte of JSON)."""
    nested = '{"a": ' * depth + "{}" + "}" * depth
    return json.dumps({**event, "nested": "@"}).replace('"@"', nested).encode()


# Kinds of bad input and the dead-letter reason each must get.
BAD_INPUTS = {
    "empty value": (b"", "empty_payload"),
    "whitespace": (b"  \n", "empty_payload"),
    "not utf-8": (b"\xff\xfe\x00garbage", "not_utf8"),
    "truncated json": (encode(transaction())[:40], "invalid_json"),
    "plain text": (b"hello fraud", "invalid_json"),
    "NaN amount": (encode(transaction()).replace(b"12.5", b"NaN"), "invalid_json"),
    "json array": (b"[1, 2]", "not_an_object"),
    "json string": (b'"transaction"', "not_an_object"),
    "json null": (b"null", "not_an_object"),
    "schema version 2": (encode(transaction(schema_version=2)), "unsupported_schema_version"),
    "a label on the wrong topic": (encode(transaction(event_type="label")), "wrong_event_type"),
    "a valid label on the wrong topic": (encode(label()), "wrong_event_type"),
    "utf-16 text": (encode(transaction(), "utf-16-le"), "invalid_json"),
    "utf-16 with a byte-order mark": (encode(transaction(), "utf-16"), "not_utf8"),
    "utf-32 text": (encode(transaction(), "utf-32-be"), "invalid_json"),
    "utf-16 text, Arabic-Indic digits": (wide_digits(0x0660, "utf-16-le"), "invalid_json"),
    "utf-16, fullwidth digits": (wide_digits(0xFF10, "utf-16"), "not_utf8"),
    "missing amount": (encode(transaction(amount="<absent>")), "schema_violation"),
    "missing card": (encode(transaction(card_number="<absent>")), "schema_violation"),
    "amount as text": (encode(transaction(amount="12.5")), "schema_violation"),
    "negative amount": (encode(transaction(amount=-3)), "schema_violation"),
    "zero amount": (encode(transaction(amount=0)), "schema_violation"),
    "unknown category": (encode(transaction(merchant_category="casino")), "schema_violation"),
    "unknown channel": (encode(transaction(channel="telepathy")), "schema_violation"),
    "lower-case currency": (encode(transaction(currency="eur")), "schema_violation"),
    "currency with a final newline": (encode(transaction(currency="EUR\n")), "schema_violation"),
    "15-digit card": (encode(transaction(card_number=CARD[:15])), "schema_violation"),
    "card with letters": (encode(transaction(card_number="41111111111111ab")), "schema_violation"),
    "card as a number": (encode(transaction(card_number=int(CARD))), "schema_violation"),
    "luhn failure": (encode(transaction(card_number="4111111111111112")), "invalid_card_number"),
    "time without zone": (
        encode(transaction(event_time="2026-01-01T08:15:02.123")),
        "schema_violation",
    ),
    "impossible date": (
        encode(transaction(event_time="2026-02-30T08:15:02.123Z")),
        "invalid_event_time",
    ),
    "latitude out of range": (encode(transaction(latitude=123.0)), "schema_violation"),
    "extra field": (encode(transaction(is_fraud=True)), "schema_violation"),
    "empty transaction id": (encode(transaction(transaction_id="")), "schema_violation"),
    "infinite amount": (encode(transaction()).replace(b"12.5", b"1e999"), "schema_violation"),
    "amount of 400 digits": (
        encode(transaction()).replace(b"12.5", b"1" + b"0" * 400),
        "schema_violation",
    ),
    "amount too large to sum": (encode(transaction(amount=1e300)), "schema_violation"),
    "lone surrogate in an id": (encode(transaction(terminal_id="t-\ud800")), "invalid_json"),
}


def job_document(
    pipeline: str,
    bootstrap_servers: str,
    checkpoint: Path,
    elasticsearch_url: str | None = None,
    metrics_port: int = 9108,
    detection: dict | None = None,
) -> dict:
    """A job.yaml document like the operator renders, for one pipeline."""
    names = {topic: f"{pipeline}-{topic}" for topic in TOPICS}
    names["deadLetters"] = f"{pipeline}-dead-letters"
    document = {
        "pipeline": {"name": pipeline, "namespace": "local"},
        "kafka": {"bootstrapServers": bootstrap_servers, "topics": names},
        "detection": {
            "triggerInterval": "1 second",
            "model": {"uri": f"local://{REPO_MODEL}"},
            **(detection or {}),
        },
        "checkpointLocation": str(checkpoint),
        "metrics": {"port": metrics_port},
    }
    if elasticsearch_url:
        document["elasticsearch"] = {"url": elasticsearch_url, "indexPrefix": pipeline}
    return document


def write_job_yaml(document: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def create_topics(bootstrap_servers: str, names: Iterable[str], partitions: int = 3) -> None:
    """Create the topics (they must not exist yet)."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    )
    for future in futures.values():
        future.result(timeout=30)


def produce(bootstrap_servers: str, topic: str, messages: Iterable[tuple[str | None, bytes]]):
    """Produce (key, raw value) pairs idempotently, raising when any is not delivered."""
    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "linger.ms": 20}
    )
    deliver(producer, topic, messages)


def read_topic(bootstrap_servers: str, topic: str, limit_s: float = 60) -> list[tuple]:
    """Every message of `topic` up to its current end, as (key, value bytes)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    partitions = [TopicPartition(topic, number, OFFSET_BEGINNING) for number in metadata.partitions]
    remaining = {}
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(partition, timeout=10)
        if high > low:
            remaining[partition.partition] = high
    consumer.assign(partitions)
    messages = []
    deadline = time.monotonic() + limit_s
    try:
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=5000, timeout=0.5):
                if message.error() is not None:
                    continue
                key = message.key().decode() if message.key() else None
                messages.append((key, message.value()))
                if message.offset() + 1 >= remaining.get(message.partition(), 0):
                    remaining.pop(message.partition(), None)
    finally:
        consumer.close()
    if remaining:
        raise TimeoutError(f"{topic}: partitions {sorted(remaining)} not read within {limit_s} s")
    return messages


def read_json(bootstrap_servers: str, topic: str, **kwargs) -> list[dict]:
    return [json.loads(value) for _, value in read_topic(bootstrap_servers, topic, **kwargs)]
