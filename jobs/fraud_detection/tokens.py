"""Card tokenisation: a keyed HMAC, so card numbers never leave the job in clear."""

from __future__ import annotations

import hashlib
import hmac
import re

# Runs of 12 or more digits, optionally split by single spaces or dashes: anything card-like,
# a card number with more digits glued to it (an expiry date) included. Up to three NULs may
# come before and after each separator: the ASCII digits of a UTF-16 or UTF-32 text, which is
# also valid UTF-8 when little-endian without a byte-order mark.
_CARD_LIKE_PATTERN = r"(?<!\d)\d(?:\x00{0,3}(?:[ -]\x00{0,3})?\d){11,}(?!\d)"
_CARD_LIKE = re.compile(_CARD_LIKE_PATTERN)
_CARD_LIKE_BYTES = re.compile(_CARD_LIKE_PATTERN.encode())


def card_token(card_number: str, key: bytes) -> str:
    """The HMAC-SHA256 of the card number under `key`, hex, prefixed `tok_`."""
    digest = hmac.new(key, card_number.encode(), hashlib.sha256).hexdigest()
    return f"tok_{digest[:32]}"


def redact_card_numbers(text: str, key: bytes) -> str:
    """`text` with every card-like digit run replaced by its token."""
    return _CARD_LIKE.sub(lambda match: card_token(re.sub(r"\D", "", match.group()), key), text)


def redact_card_numbers_in_bytes(raw: bytes, key: bytes) -> bytes:
    """`raw` with every card-like run of ASCII digits (in ASCII, UTF-8, UTF-16 or UTF-32)
    replaced by its token."""
    return _CARD_LIKE_BYTES.sub(
        lambda match: card_token(re.sub(rb"\D", b"", match.group()).decode(), key).encode(), raw
    )
