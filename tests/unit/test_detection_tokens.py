"""Card tokenisation: keyed, stable, and applied to every card-like number in free text."""

from __future__ import annotations

import pytest

from fraud_detection.config import ConfigError, tokenization_key
from fraud_detection.tokens import card_token, redact_card_numbers


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
