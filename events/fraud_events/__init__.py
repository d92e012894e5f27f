"""The event contract shared by the simulators and the detection job: versioned JSON Schemas.

    >>> from fraud_events import validate, problems
    >>> validate(event)            # raises InvalidEvent naming the field, or returns the event
    >>> problems(event)            # [] or a list of readable messages (for dead letters)

The kind of an event is its `event_type`; the version its `schema_version`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_VERSION = 1
KINDS = ("transaction", "label", "sensor", "application")
MERCHANT_CATEGORIES = (
    "grocery",
    "restaurants",
    "fuel",
    "travel",
    "electronics",
    "fashion",
    "entertainment",
    "health",
    "digital_goods",
    "cash",
)
CHANNELS = ("pos", "ecommerce", "atm", "contactless")
TRANSACTION_SCENARIOS = (
    "impossible_travel",
    "spending_spree",
    "card_testing",
    "compromised_terminal",
    "account_takeover",
    "high_amount",
)
SCENARIOS = (*TRANSACTION_SCENARIOS, "skimmer", "synthetic_identity")
# The event streams a simulator can produce, each on its own topic (labels go alongside).
SOURCES = ("transactions", "sensors", "applications")


class InvalidEvent(ValueError):
    """An event that does not follow its schema; the message names the field."""


def schema_name(kind: str, version: int = SCHEMA_VERSION) -> str:
    return f"{kind}.v{version}.schema.json"


@cache
def load_schema(kind: str, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of one event kind and version, as a dict."""
    if kind not in KINDS:
        raise InvalidEvent(f"unknown event kind {kind!r}; known: {', '.join(KINDS)}")
    path = resources.files(__package__) / "schemas" / schema_name(kind, version)
    if not path.is_file():
        raise InvalidEvent(f"no schema for {kind} version {version}")
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def validator(kind: str, version: int = SCHEMA_VERSION) -> Draft202012Validator:
    """A compiled validator of one event kind and version (cached)."""
    return Draft202012Validator(load_schema(kind, version), format_checker=FormatChecker())


# ASCII digit -> its value doubled with its digits summed (Luhn), and -> its value.
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))
_DIGIT_VALUE = bytes.maketrans(b"0123456789", bytes(range(10)))


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial` + digit pass the Luhn check."""
    if partial.isascii() and partial.isdigit():  # the common case, in C: four times faster
        digits = partial.encode()[::-1]
        doubled = sum(digits[0::2].translate(_LUHN_DOUBLED))
        return str(-(doubled + sum(digits[1::2].translate(_DIGIT_VALUE))) % 10)
    total = 0
    for position, digit in enumerate(reversed(partial)):
        value = int(digit)
        if position % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str(-total % 10)


def luhn_valid(number: str) -> bool:
    """Whether a string of digits passes the Luhn check (card numbers)."""
    return len(number) > 1 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def problems(event: Any) -> list[str]:
    """Readable reasons why `event` breaks its schema; empty when it is valid."""
    if not isinstance(event, dict):
        return [f"an event must be a JSON object, got {type(event).__name__}"]
    kind, version = event.get("event_type"), event.get("schema_version")
    if kind not in KINDS:
        return [f"event_type: {kind!r} is not one of {', '.join(KINDS)}"]
    if version != SCHEMA_VERSION:
        return [f"schema_version: {version!r} is not supported (expected {SCHEMA_VERSION})"]
    found = [
        f"{'.'.join(str(part) for part in error.absolute_path) or '(event)'}: {error.message}"
        for error in sorted(validator(kind).iter_errors(event), key=lambda e: list(e.path))
    ]
    card = event.get("card_number")
    if kind == "transaction" and isinstance(card, str) and not luhn_valid(card):
        found.append("card_number: fails the Luhn check")
    return found


def validate(event: Any) -> dict[str, Any]:
    """Return `event` if it follows its schema, else raise InvalidEvent listing every problem."""
    found = problems(event)
    if found:
        raise InvalidEvent("; ".join(found))
    return event


def parse(payload: bytes | str) -> dict[str, Any]:
    """Decode one Kafka message value and validate it; InvalidEvent on bad JSON or schema."""
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidEvent(f"not JSON: {error}") from None
    return validate(event)
