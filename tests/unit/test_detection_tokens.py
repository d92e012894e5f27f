"""Card tokenisation: keyed, stable, and applied to every card-like number in free text."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

import fraud_simulator
from fraud_detection.config import ConfigError, tokenization_key
from fraud_detection.harness import encode, label, transaction
from fraud_detection.tokens import (
    card_token,
    ids_may_hold_card_numbers,
    redact_card_numbers,
    tokenise_card_numbers_in_identifier,
)


def test_a_token_is_stable_for_a_key_and_differs_between_keys():
    card = "5500005555555559"
    assert card_token(card, b"k" * 16) == card_token(card, b"k" * 16)
    assert card_token(card, b"k" * 16) != card_token(card, b"j" * 16)
    assert card not in card_token(card, b"k" * 16)


def test_a_token_is_the_hmac_sha256_of_the_card_under_each_key_in_turn():
    """A token is what a bank can recompute from the key alone (docs/detection.md), whichever
    key the process used last."""
    for card, key in [("5500005555555559", b"k" * 16), ("4111111111111111", b"j" * 16)] * 2:
        expected = hmac.new(key, card.encode(), hashlib.sha256).hexdigest()[:32]
        assert card_token(card, key) == f"tok_{expected}"


def test_card_like_digit_runs_are_redacted_but_short_numbers_kept():
    key = b"k" * 16
    text = 'card 4111 1111 1111 1111 and "5500005555555559", amount 1234, id 42'
    redacted = redact_card_numbers(text, key)
    assert "4111" not in redacted and "5500005555555559" not in redacted
    assert card_token("4111111111111111", key) in redacted
    assert "amount 1234, id 42" in redacted


def test_a_long_run_of_digit_groups_becomes_one_token():
    key = b"k" * 16
    assert redact_card_numbers("x " + "1234 " * 2_000 + "y", key) == (
        f"x {card_token('1234' * 2_000, key)} y"
    )


def test_the_job_refuses_a_missing_or_short_key():
    with pytest.raises(ConfigError):
        tokenization_key({})
    with pytest.raises(ConfigError):
        tokenization_key({"TOKENIZATION_KEY": "short"})
    assert tokenization_key({"TOKENIZATION_KEY": "s" * 32}) == b"s" * 32


# Ids holding a card number, the digits tokenised, and what the id becomes ({} the token).
CARDS_IN_IDS = [
    ("4111111111111111", "4111111111111111", "{}"),
    ("C-5500005555555559", "5500005555555559", "C-{}"),
    ("4111 1111 1111 1111", "4111111111111111", "{}"),
    ("T4111-1111-1111-1111/2", "4111111111111111", "T{}/2"),
    ("3782 822463 10005", "378282246310005", "{}"),
    ("41111111111111111225", "41111111111111111225", "{}"),  # an expiry date glued on
    ("\uff14" * 16, "4" * 16, "{}"),  # fullwidth digits: the token of the ASCII ones
    ("1234567890123", "1234567890123", "{}"),  # 13 in a row: replaced, card or not
    ("3782-822463-10005", "378282246310005", "{}"),
    ("4111\u00a01111\u00a01111\u00a01111", "4111111111111111", "{}"),  # no-break spaces
    ("4111\u20131111\u20131111\u20131111", "4111111111111111", "{}"),  # en dashes
    ("C.4111.1111.1111.1111", "4111111111111111", "C.{}"),
    ("4111/1111_1111  1111", "4111111111111111", "{}"),  # mixed, doubled
    ("T14111 1111 1111 1111", "14111111111111111", "T{}"),  # a digit glued on
    ("\u200b".join("4111111111111111"), "4111111111111111", "{}"),  # zero-width spaces
    ("41111111 11111111", "4111111111111111", "{}"),  # two groups that read as a card
    ("C-22210000-00000009", "2221000000000009", "C-{}"),  # Mastercard's 2-series
    ("4111 111111111111", "4111111111111111", "{}"),  # a pair whose first group has 4 digits
    ("D-411111111111_1111", "4111111111111111", "D-{}"),  # ... whose second group has 4
    ("41111111 111111111225", "41111111111111111225", "{}"),  # a pair, an expiry date glued on
    ("3056930 9025904", "30569309025904", "{}"),  # a 14-digit Diners Club card
    ("4222222 222222", "4222222222222", "{}"),  # a 13-digit Visa card
    ("C:\\x4111.1111.1111.1111", "4111111111111111", "C:\\x{}"),  # no escape in an id
    ("1\u200b41111111 11111111", "4111111111111111", "1\u200b{}"),  # read as written too
    ("3782822/46310005", "378282246310005", "{}"),
    (
        "123456789 41111111 11111111",
        "4111111111111111",
        "123456789 {}",
    ),  # 123456789 41111111: no card
    # a pair that reads as a card overlapping a card: one token of all their digits
    ("412345672 41111111-1111-1111", "4123456724111111111111111", "{}"),
    ("412345672 41111111 11111111", "4123456724111111111111111", "{}"),
]


@pytest.mark.parametrize("identifier, card, expected", CARDS_IN_IDS)
def test_a_card_number_written_into_an_identifier_is_replaced_by_its_token(
    identifier, card, expected
):
    key = b"k" * 16
    tokenised = tokenise_card_numbers_in_identifier(identifier, key)
    assert tokenised == expected.format(card_token(card, key))


@pytest.mark.parametrize(
    "identifier",
    [
        "C00000123",
        "tx-11-23-00001234",
        "tx-3-20514-00000000",
        "123456789012",
        "D0000000123",
        "FR-IDF",
        "4111 1111 1111",
        "order-20260302-000123",
        "order-20260302-00012345",  # passes the Luhn check, but no card starts with 20
        "41111111 11111112",  # a card's first digits, not its check digit
        "C-10000000-00000008",  # passes the Luhn check, no card network's first digit
        "4111111 1111111",  # 14 digits in two groups, no network's 14-digit card
        "41111111 111111111325",  # no month 13: not an expiry date
        "INV-4501-00012345",  # 12 digits in two groups
        "tx-1234-56789012345",  # 15 digits in two groups, no network's first digit
        "C\u200b00000123",  # an invisible character, no card number: kept as it came
    ],
)
def test_identifiers_without_a_card_number_are_kept_as_they_are(identifier):
    assert tokenise_card_numbers_in_identifier(identifier, b"k" * 16) == identifier


@pytest.mark.parametrize("identifier, card, expected", CARDS_IN_IDS)
def test_a_payload_with_a_card_number_in_an_id_is_always_searched(identifier, card, expected):
    """The raw payload's check, which spares the common case the search, misses none of them."""
    payloads = [
        encode(transaction(customer_id=identifier)),
        encode(transaction(terminal_id=identifier), "utf-16"),
        json.dumps(transaction(merchant_id=identifier), ensure_ascii=False).encode(),
        encode(label(transaction_id=identifier)),
    ]
    assert ids_may_hold_card_numbers(payloads, pa.array([1, 1, 1, 0])) == [True] * 4


def test_payloads_with_ids_of_a_date_and_a_serial_number_are_not_searched():
    """Two groups of digits whose first cannot start a card number: no search, however common."""
    ids = ("order-20260302-00012345", "19991231-1234567", "tx-10000000-00000008")
    payloads = [encode(transaction(transaction_id=identifier)) for identifier in ids]
    assert ids_may_hold_card_numbers(payloads, pa.array([1] * len(ids))) == [False] * len(ids)


def test_simulated_payloads_are_not_searched_their_own_card_number_aside():
    start, week = datetime(2026, 3, 2, tzinfo=UTC), timedelta(days=7)
    settings = {"customers": 200, "terminals": 50, "seed": 5, "fraudRate": 0.05}
    events = list(fraud_simulator.generate(settings, start, week))
    payloads = [event.payload.encode() for event in events] + [None]
    own = pa.array([int(event.kind == "transaction") for event in events] + [1])
    assert {event.kind for event in events} == {"transaction", "label"}
    assert ids_may_hold_card_numbers(payloads, own) == [False] * len(events) + [True]
