"""Card tokenisation: keyed, stable, and applied to every card-like number in free text."""

from __future__ import annotations

import pytest

from fraud_detection.config import ConfigError, tokenization_key
from fraud_detection.tokens import (
    card_token,
    redact_card_numbers,
    tokenise_card_numbers_in_identifier,
)


def test_a_token_is_stable_for_a_key_and_differs_between_keys():
    card = "5500005555555559"
    assert card_token(card, b"k" * 16) == card_token(card, b"k" * 16)
    assert card_token(card, b"k" * 16) != card_token(card, b"j" * 16)
    assert card not in card_token(card, b"k" * 16)


def test_card_like_digit_runs_are_redacted_but_short_numbers_kept():
    key = b"k" * 16
    text = 'card 4111 1111 1111 1111 and "5500005555555559", amount 1234, id 42'
    redacted = redact_card_numbers(text, key)
    assert "4111" not in redacted and "5500005555555559" not in redacted
    assert card_token("4111111111111111", key) in redacted
    assert "amount 1234, id 42" in redacted


def test_the_job_refuses_a_missing_or_short_key():
    with pytest.raises(ConfigError):
        tokenization_key({})
    with pytest.raises(ConfigError):
        tokenization_key({"TOKENIZATION_KEY": "short"})
    assert tokenization_key({"TOKENIZATION_KEY": "s" * 32}) == b"s" * 32


@pytest.mark.parametrize(
    "identifier, card, expected",
    [
        ("4111111111111111", "4111111111111111", "{}"),
        ("C-5500005555555559", "5500005555555559", "C-{}"),
        ("4111 1111 1111 1111", "4111111111111111", "{}"),
        ("T4111-1111-1111-1111/2", "4111111111111111", "T{}/2"),
        ("3782 822463 10005", "378282246310005", "{}"),
        ("41111111111111111225", "41111111111111111225", "{}"),  # an expiry date glued on
        ("\uff14" * 16, "4" * 16, "{}"),  # fullwidth digits: the token of the ASCII ones
    ],
)
def test_a_card_number_written_into_an_identifier_is_replaced_by_its_token(
    identifier, card, expected
):
    key = b"k" * 16
    tokenised = tokenise_card_numbers_in_identifier(identifier, key)
    assert tokenised == expected.format(card_token(card, key))


@pytest.mark.parametrize(
    "identifier",
    ["C00000123", "tx-11-23-00001234", "123456789012", "D0000000123", "FR-IDF", "4111 1111 1111"],
)
def test_identifiers_without_a_card_number_are_kept_as_they_are(identifier):
    assert tokenise_card_numbers_in_identifier(identifier, b"k" * 16) == identifier
