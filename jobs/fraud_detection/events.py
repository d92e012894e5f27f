"""Parse and validate raw transaction events; anything invalid becomes a dead letter."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jsonschema_rs
import orjson

from fraud_detection.alerts import rfc3339
from fraud_detection.tokens import (
    card_token,
    redact_card_numbers,
    redact_card_numbers_in_bytes,
    redact_card_numbers_in_wide_text,
    tokenise_card_numbers_in_identifier,
)
from fraud_events import SCHEMA_VERSION, load_schema, luhn_valid, problems

# The largest amount the job accepts: sums of amounts stay finite far beyond any real volume.
MAX_AMOUNT = 1e12
# The longest error text a dead letter keeps (cut after its card numbers are tokenised).
ERROR_CHARS = 500
# Columns of a valid transaction after tokenisation (the card number is gone).
TRANSACTION_FIELDS = (
    "transaction_id",
    "event_time",
    "card_token",
    "customer_id",
    "terminal_id",
    "merchant_id",
    "merchant_category",
    "amount",
    "currency",
    "channel",
    "device_id",
    "region",
    "latitude",
    "longitude",
)

# Fields of transactions and labels where a card number has no place: one found there is
# replaced by its token (tokens.tokenise_card_numbers_in_identifier).
IDENTIFIER_FIELDS = (
    "transaction_id",
    "customer_id",
    "terminal_id",
    "merchant_id",
    "device_id",
    "region",
)


@dataclass(frozen=True)
class Rejection:
    """Why an event was rejected: a short reason code and a detail, which may quote the input
    (`dead_letter` tokenises the card numbers in it and bounds its length)."""

    reason: str
    error: str


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


def redacted_payload(raw: bytes | None, key: bytes) -> str:
    """The payload as text, card-like digit runs tokenised: UTF-8 when it is, base64 (of the
    redacted bytes) otherwise. A payload with NULs may be UTF-16 or UTF-32 text (valid UTF-8
    too when little-endian and in some scripts): its card numbers are tokenised in those
    encodings first, and their tokens left alone after."""
    if raw is None:
        return ""
    written: set[str] = set()
    wide = redact_card_numbers_in_wide_text(raw, key, written) if b"\x00" in raw else raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(redact_card_numbers_in_bytes(wide, key, written)).decode("ascii")
    if wide is not raw:
        text = wide.decode("utf-8", errors="replace")
    return redact_card_numbers(text, key, written)


def tokenise_identifiers(record: dict[str, Any], key: bytes) -> dict[str, Any]:
    """`record` with the card numbers written into its IDENTIFIER_FIELDS tokenised, in place."""
    for name in IDENTIFIER_FIELDS:
        value = record.get(name)
        if value is not None:
            record[name] = tokenise_card_numbers_in_identifier(value, key)
    return record


def parse_event_time(text: str) -> datetime:
    """An RFC 3339 timestamp with an explicit offset, as an aware UTC datetime."""
    if "T" not in text:
        raise ValueError("event_time is not RFC 3339 (no 'T')")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("event_time has no time zone")
    return parsed.astimezone(UTC)


@cache
def _fast_validator() -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(load_schema("transaction"), validate_formats=True)


def schema_problems(event: dict) -> list[str]:
    """What breaks the shared transaction schema (Luhn included); empty when valid.

    A compiled validator answers the common case fast; the readable messages come from
    fraud_events.problems, the contract's own check, when it finds something wrong.
    """
    if not _fast_validator().is_valid(event):
        kind = event.get("event_type")
        if kind != "transaction":  # a valid label or sensor event is still no transaction
            shown = repr(kind) if isinstance(kind, str | None) else f"a JSON {type(kind).__name__}"
            return [f"event_type: {shown} is not 'transaction' (this topic takes transactions)"]
        # The contract's check, for readable reasons; where it finds nothing (Python's `$`
        # matches before a final newline, ECMA-262's does not) the compiled one still rejects.
        return problems(event) or ["the event breaks the transaction schema"]
    if not luhn_valid(event["card_number"]):
        return ["card_number: fails the Luhn check"]
    return []


def _classify(event: dict, found: list[str]) -> str:
    if event.get("event_type") != "transaction":
        return "wrong_event_type"
    if event.get("schema_version") != SCHEMA_VERSION:
        return "unsupported_schema_version"
    if found == ["card_number: fails the Luhn check"]:
        return "invalid_card_number"
    return "schema_violation"


def decode_event(raw: bytes | None) -> tuple[dict[str, Any] | None, Rejection | None]:
    """The JSON object in a Kafka value, or why it is not one. Never raises."""
    if raw is None or not raw.strip():
        return None, Rejection("empty_payload", "the message has no value")
    try:  # the fast path: orjson takes only strict UTF-8 and JSON without lone surrogates
        event = orjson.loads(raw)
        if isinstance(event, dict):
            return event, None
    except orjson.JSONDecodeError:
        pass  # the path below says why
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, Rejection("not_utf8", f"payload is not UTF-8: {error.reason}")
    try:
        event = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        return None, Rejection("invalid_json", str(error))
    if not isinstance(event, dict):
        return None, Rejection(
            "not_an_object", f"expected a JSON object, got {type(event).__name__}"
        )
    if "\\u" in text and _has_lone_surrogate(event):
        return None, Rejection("invalid_json", "a string holds a lone UTF-16 surrogate escape")
    return event, None


def _has_lone_surrogate(event: dict[str, Any]) -> bool:
    """Whether a \\uD800-\\uDFFF escape without its pair made a string that is not Unicode
    text (it would break every encoder downstream)."""
    try:
        json.dumps(event, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_transaction(
    raw: bytes | None, key: bytes
) -> tuple[dict[str, Any] | None, Rejection | None]:
    """The tokenised transaction, or why it is rejected. Never raises on bad input."""
    event, rejection = decode_event(raw)
    if event is None:
        return None, rejection
    return transaction_record(event, key)


def transaction_record(
    event: dict[str, Any], key: bytes, ids_may_hold_cards: bool = True
) -> tuple[dict[str, Any] | None, Rejection | None]:
    """The tokenised transaction of a decoded event, or why it is rejected. Its ids are searched
    for card numbers unless its payload was seen to show none (`ids_may_hold_cards` False)."""
    try:
        found = schema_problems(event)
    except RecursionError:  # a value nested about a thousand deep: orjson takes up to 1024
        return None, Rejection("schema_violation", "a value is nested too deep to validate")
    if found:
        return None, Rejection(_classify(event, found), "; ".join(found))
    try:
        event_time = parse_event_time(event["event_time"])
    except ValueError as error:
        return None, Rejection("invalid_event_time", str(error))
    try:
        amount = float(event["amount"])
    except OverflowError:
        amount = math.inf
    if not 0 < amount <= MAX_AMOUNT:
        return None, Rejection("schema_violation", f"amount: must be > 0 and <= {MAX_AMOUNT:g}")
    record = {name: event.get(name) for name in TRANSACTION_FIELDS}
    record.update(
        event_time=event_time,
        card_token=card_token(event["card_number"], key),
        amount=amount,
        latitude=float(event["latitude"]),
        longitude=float(event["longitude"]),
    )
    return tokenise_identifiers(record, key) if ids_may_hold_cards else record, None


def dead_letter(
    raw: bytes | None,
    rejection: Rejection,
    source_topic: str,
    partition: int,
    offset: int,
    detection_time: datetime,
    key: bytes,
    tokenised: bool = False,
) -> dict[str, Any]:
    """The dead-letter document of a rejected message (card numbers in it tokenised). With
    `tokenised`, `raw` and the error are the job's own, made of tokenised values, and are kept as
    they are: redacting them again would turn a token's run of digits into a token."""
    if not tokenised:
        rejection = Rejection(rejection.reason, redact_card_numbers(rejection.error, key))
    return {
        "reason": rejection.reason,
        "error": rejection.error[:ERROR_CHARS],
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "payload": raw.decode() if tokenised else redacted_payload(raw, key),
        "detection_time": rfc3339(detection_time),
    }
