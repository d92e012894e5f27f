"""The event contract: schemas load, accept the documented shapes and name what is wrong."""

import json
import random

import pytest
from jsonschema import Draft202012Validator

from fraud_events import (
    KINDS,
    InvalidEvent,
    load_schema,
    luhn_check_digit,
    luhn_valid,
    parse,
    problems,
    validate,
    validator,
)

TRANSACTION = {
    "schema_version": 1,
    "event_type": "transaction",
    "transaction_id": "tx-1",
    "event_time": "2026-01-01T08:15:02.123Z",
    "card_number": "4111111111111111",
    "customer_id": "C1",
    "terminal_id": "T1",
    "merchant_id": "M1",
    "merchant_category": "grocery",
    "amount": 12.5,
    "currency": "EUR",
    "channel": "pos",
    "device_id": None,
    "region": "AMS",
    "latitude": 52.37,
    "longitude": 4.9,
}
LABEL = {
    "schema_version": 1,
    "event_type": "label",
    "transaction_id": "tx-1",
    "customer_id": "C1",
    "terminal_id": "T1",
    "event_time": "2026-01-01T08:15:02.123Z",
    "label_time": "2026-01-02T08:15:02.123Z",
    "is_fraud": True,
    "scenario": "card_testing",
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_schema_is_a_valid_draft_2020_12_schema(kind):
    Draft202012Validator.check_schema(load_schema(kind))
    assert validator(kind) is validator(kind)


def test_the_documented_transaction_and_label_are_valid():
    assert validate(TRANSACTION) is TRANSACTION
    assert problems(LABEL) == []
    assert parse(json.dumps(TRANSACTION).encode()) == TRANSACTION


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": "12"}, "amount"),
        ({"event_time": "2026-01-01 08:15:02"}, "event_time"),
        ({"merchant_category": "casino"}, "merchant_category"),
        ({"channel": "phone"}, "channel"),
        ({"card_number": "4111"}, "card_number"),
        ({"card_number": "4111111111111112"}, "card_number"),  # Luhn
        ({"currency": "eur"}, "currency"),
        ({"is_fraud": False}, "is_fraud"),  # ground truth never inside a transaction
    ],
)
def test_a_bad_transaction_is_rejected_naming_the_field(change, field):
    with pytest.raises(InvalidEvent, match=field):
        validate({**TRANSACTION, **change})


def test_a_missing_field_is_named():
    event = dict(TRANSACTION)
    del event["terminal_id"]
    assert any("terminal_id" in problem for problem in problems(event))


def test_labels_of_transactions_sensors_and_applications_are_told_apart():
    sensor_label = {k: v for k, v in LABEL.items() if k not in ("transaction_id", "customer_id")}
    assert problems({**sensor_label, "sensor_event_id": "s-1", "scenario": "skimmer"}) == []
    application_label = {k: v for k, v in sensor_label.items() if k != "terminal_id"}
    application_label.update(application_id="a-1", scenario="synthetic_identity")
    assert problems(application_label) == []
    assert problems({**LABEL, "scenario": "skimmer"})  # a transaction is never skimmed
    assert problems({**LABEL, "sensor_event_id": "s-1"})  # one subject per label
    assert problems({**LABEL, "scenario": "made_up"})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({**TRANSACTION, "event_type": "refund"}), "event_type"),
        (json.dumps({**TRANSACTION, "schema_version": 2}), "schema_version"),
    ],
)
def test_parse_rejects_what_is_not_a_known_event(payload, message):
    with pytest.raises(InvalidEvent, match=message):
        parse(payload)


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("4111-1111")


def _textbook_luhn(number: str) -> bool:
    """Double every second digit from the right, summing the doubled digits' digits."""
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def test_the_check_digit_completes_any_digit_string_to_a_valid_number():
    generator = random.Random(7)
    partials = ["", "0", "٣٤٥"]  # Arabic-Indic digits take the general path
    partials += ["".join(generator.choices("0123456789", k=n)) for n in list(range(1, 20)) * 50]
    for partial in partials:
        digit = luhn_check_digit(partial)
        assert _textbook_luhn(partial + digit), partial
        assert not _textbook_luhn(partial + str((int(digit) + 1) % 10)), partial


def test_unknown_kind_or_version_is_a_clear_error():
    with pytest.raises(InvalidEvent, match="unknown event kind"):
        load_schema("refund")
    with pytest.raises(InvalidEvent, match="version 9"):
        load_schema("transaction", 9)
