"""What the run wrote to Kafka, read back: transactions, labels and alerts, and their measures."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

POLL_BATCH = 5000


@dataclass
class Alert:
    alert_id: str
    rule: str
    score: float
    transaction_ids: list[str]
    written: float  # Kafka timestamp of the alert, seconds
    latency: float | None  # written minus the Kafka timestamp of its last transaction


@dataclass
class Tally:
    """Transactions, labels and unique alerts seen so far, with precision and recall."""

    transactions: dict[str, float] = field(default_factory=dict)  # id -> Kafka timestamp (s)
    fraud: dict[str, str] = field(default_factory=dict)  # fraudulent id -> scenario
    labelled: set[str] = field(default_factory=set)
    alerts: dict[str, Alert] = field(default_factory=dict)
    _pending: dict[str, dict] = field(default_factory=dict)  # alert id -> alert

    def add(self, kind: str, value: dict, timestamp: float) -> None:
        if kind == "transactions":
            self.transactions[value["transaction_id"]] = timestamp
        elif kind == "labels" and "transaction_id" in value:
            self.labelled.add(value["transaction_id"])
            if value["is_fraud"]:
                self.fraud[value["transaction_id"]] = value["scenario"] or "unknown"
        elif kind == "alerts" and value["alert_id"] not in self.alerts:
            value["_written"] = timestamp  # the first copy of a replayed alert counts
            self._pending.setdefault(value["alert_id"], value)

    def settle(self, final: bool = False) -> None:
        """Turn alerts into `Alert`s once their transactions' timestamps are known (or `final`)."""
        waiting = {}
        for key, value in self._pending.items():
            times = [self.transactions.get(t) for t in value["transaction_ids"]]
            if None in times and not final:
                waiting[key] = value
                continue
            known = [t for t in times if t is not None]
            self.alerts[value["alert_id"]] = Alert(
                value["alert_id"],
                value["rule"],
                float(value["score"]),
                list(value["transaction_ids"]),
                value["_written"],
                value["_written"] - max(known) if known else None,
            )
        self._pending = waiting

    def alerts_by_rule(self) -> Counter:
        return Counter(alert.rule for alert in self.alerts.values())

    def precision(self) -> dict[str, tuple[int, int]]:
        """rule -> (alerts naming at least one fraudulent transaction, alerts)."""
        result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for alert in self.alerts.values():
            result[alert.rule][0] += any(t in self.fraud for t in alert.transaction_ids)
            result[alert.rule][1] += 1
        return {rule: (hit, total) for rule, (hit, total) in sorted(result.items())}

    def recall(self) -> dict[str, tuple[int, int]]:
        """scenario -> (fraudulent transactions named in an alert, fraudulent transactions seen).

        Only transactions the job had read by then count: those up to the last one an alert
        names, in Kafka time.
        """
        flagged = {t for alert in self.alerts.values() for t in alert.transaction_ids}
        horizon = max((self.transactions.get(t, 0.0) for t in flagged), default=0.0)
        result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for transaction, scenario in self.fraud.items():
            when = self.transactions.get(transaction)
            if when is not None and when <= horizon:
                result[scenario][0] += transaction in flagged
                result[scenario][1] += 1
        return {scenario: (hit, total) for scenario, (hit, total) in sorted(result.items())}

    def latencies(self, after_start_up: bool = False) -> list[float]:
        """The alerts' latencies, sorted. `after_start_up`: only those of alerts on transactions
        sent after the first alert was written, leaving out the backlog the job's first
        micro-batch reads while it starts (tens of seconds on a cold JVM)."""
        timed = [a for a in self.alerts.values() if a.latency is not None]
        if after_start_up and timed:
            first = min(alert.written for alert in timed)
            timed = [alert for alert in timed if alert.written - alert.latency >= first]
        return sorted(alert.latency for alert in timed)


def percentile(values: list[float], share: float) -> float | None:
    """The `share` percentile of `values` (numpy's, interpolated, as in the benchmarks); None
    when there are none."""
    return float(np.percentile(values, share * 100)) if values else None


class TopicReader:
    """Reads the transactions, labels and alerts topics from the beginning into a Tally."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        self.kinds = {topics[k]: k for k in ("transactions", "labels", "alerts")}
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"fraud-local-{time.monotonic_ns()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.tally = Tally()

    def poll(self, seconds: float) -> int:
        """Read what arrives within `seconds` (at most POLL_BATCH records a call)."""
        records = self.consumer.consume(POLL_BATCH, timeout=seconds)
        for record in records:
            if record.error() or record.value() is None:
                continue
            kind = self.kinds[record.topic()]
            try:
                value = json.loads(record.value())
            except ValueError:
                continue
            self.tally.add(kind, value, record.timestamp()[1] / 1000)
        self.tally.settle()
        return len(records)

    def subscribe(self) -> None:
        self.consumer.subscribe(list(self.kinds))

    def end_offset(self, kind: str) -> int:
        """Records in the topic of `kind` (transactions, labels, alerts), all partitions."""
        topic = next(t for t, k in self.kinds.items() if k == kind)
        metadata = self.consumer.list_topics(topic, timeout=10).topics[topic]
        return sum(
            self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        )

    def read_to_end(self, timeout: float = 60) -> Tally:
        """Everything the topics hold now, from offset 0, within `timeout` seconds."""
        partitions = []
        ends = {}
        for topic in self.kinds:
            metadata = self.consumer.list_topics(topic, timeout=10).topics[topic]
            for number in metadata.partitions:
                partitions.append(TopicPartition(topic, number, OFFSET_BEGINNING))
                ends[(topic, number)] = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, number), timeout=10
                )[1]
        self.consumer.assign(partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.5)
            positions = self.consumer.position(partitions)
            if all(
                p.offset >= ends[(p.topic, p.partition)] or ends[(p.topic, p.partition)] == 0
                for p in positions
            ):
                break
        else:
            raise TimeoutError(f"could not read the topics to their end within {timeout:.0f} s")
        self.tally.settle(final=True)
        return self.tally

    def close(self) -> None:
        self.consumer.close()
