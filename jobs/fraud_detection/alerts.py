"""Alert documents with deterministic ids, as written to Kafka and Elasticsearch."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any


def alert_id(rule: str, transaction_ids: tuple[str, ...] | list[str]) -> str:
    """A stable id: the SHA-256 of the rule and the sorted transaction ids (32 hex chars)."""
    material = rule + "|" + ",".join(sorted(transaction_ids))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with milliseconds and a Z, like the events."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_alert(
    rule: str,
    score: float,
    explanation: dict[str, Any],
    transaction_ids: tuple[str, ...] | list[str],
    card_token: str,
    customer_id: str,
    terminal_id: str,
    event_time: datetime,
    detection_time: datetime,
) -> dict[str, Any]:
    """The alert document of docs/contracts.md."""
    return {
        "alert_id": alert_id(rule, transaction_ids),
        "rule": rule,
        "score": score,
        "explanation": explanation,
        "transaction_ids": list(transaction_ids),
        "card_token": card_token,
        "customer_id": customer_id,
        "terminal_id": terminal_id,
        "event_time": rfc3339(event_time),
        "detection_time": rfc3339(detection_time),
    }
