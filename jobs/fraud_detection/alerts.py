"""Alert documents with deterministic ids, as written to Kafka and Elasticsearch."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def alert_id(rule: str, transaction_ids: tuple[str, ...] | list[str]) -> str:
    """A stable id: the SHA-256 of the rule and the sorted transaction ids (32 hex chars)."""
    material = rule + "|" + ",".join(sorted(transaction_ids))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with milliseconds and a Z, like the events."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_ms(epoch_ms: float) -> str:
    """`rfc3339` of a time in milliseconds since the epoch."""
    return rfc3339(datetime.fromtimestamp(epoch_ms / 1000, UTC))
