"""Card tokenisation: a keyed HMAC, so card numbers never leave the job in clear."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

# A digit as it may appear in a payload or an error text: itself (any script's decimal digit), or
# written as a JSON escape (\u0034, \uff14 for a fullwidth 4).
_DIGIT = r"(?:\d|\\u00(?:3[0-9])|\\u[fF][fF]1[0-9])"
# What may stand between two digits of a card number: spaces, dashes, NULs (the ASCII digits of
# UTF-16 or UTF-32 text, which is valid UTF-8 when little-endian without a byte-order mark), and
# NULs as escapes (JSON's \u0000, Python's \x00 in a repr), up to 16 of them (two spaces in
# UTF-32 are 11).
_SEPARATOR = r"(?:[ \-\x00]|\\u0000|\\x00)"
# Runs of 12 or more digits so split: anything card-like, a card number with more digits glued
# to it (an expiry date) included.
_CARD_LIKE_PATTERN = rf"(?<!\d){_DIGIT}(?:{_SEPARATOR}{{0,16}}{_DIGIT}){{11,}}(?!\d)"
_CARD_LIKE = re.compile(_CARD_LIKE_PATTERN)
_CARD_LIKE_BYTES = re.compile(_CARD_LIKE_PATTERN.encode())
# The same in EBCDIC (mainframe payloads): digits 0xF0-0xF9, space 0x40, dash 0x60.
_CARD_LIKE_EBCDIC = re.compile(rb"(?<![\xf0-\xf9])[\xf0-\xf9](?:[\x40\x60]{0,16}[\xf0-\xf9]){11,}")
# A card number written into an identifier (a customer, terminal or transaction id): 13 or more
# digits in a row, or 16 or 15 in the groups cards are printed in (4-4-4-4 and 4-6-5, spaces or
# dashes between). Shorter runs are left alone: an id such as "tx-11-3-00001234" is common.
CARD_DIGITS_MIN = 13
_CARD_IN_IDENTIFIER = re.compile(  # the common 4 digits first: twice as fast as an alternation
    rf"(?<!\d)\d{{4}}(?:\d{{{CARD_DIGITS_MIN - 4},}}"
    r"|([ -])\d{4}\1\d{4}\1\d{4}|([ -])\d{6}\2\d{5})(?!\d)"
)
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_NUL_ESCAPE = re.compile(r"\\u0000|\\x00")


def _digits(run: str) -> str:
    """The ASCII digits of a card-like run, its escapes decoded and its separators dropped."""
    run = _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), _NUL_ESCAPE.sub("", run))
    return "".join(str(unicodedata.decimal(char)) for char in run if char.isdecimal())


def card_token(card_number: str, key: bytes) -> str:
    """The HMAC-SHA256 of the card number under `key`, hex, prefixed `tok_`."""
    digest = hmac.new(key, card_number.encode(), hashlib.sha256).hexdigest()
    return f"tok_{digest[:32]}"


def redact_card_numbers(text: str, key: bytes) -> str:
    """`text` with every card-like digit run replaced by its token: the token of its ASCII
    digits, whatever script or escapes wrote them."""
    return _CARD_LIKE.sub(lambda match: card_token(_digits(match.group()), key), text)


def tokenise_card_numbers_in_identifier(identifier: str, key: bytes) -> str:
    """`identifier` with each card number written into it replaced by its token. The same
    identifier always gives the same result, so what is grouped by it stays grouped."""
    return _CARD_IN_IDENTIFIER.sub(lambda run: card_token(_digits(run.group()), key), identifier)


def redact_card_numbers_in_bytes(raw: bytes, key: bytes) -> bytes:
    """`raw` with every card-like digit run (in ASCII, UTF-8, UTF-16, UTF-32 or EBCDIC)
    replaced by its token."""
    ascii_redacted = _CARD_LIKE_BYTES.sub(
        lambda match: card_token(_digits(match.group().decode("latin-1")), key).encode(), raw
    )
    return _CARD_LIKE_EBCDIC.sub(
        lambda match: card_token(_digits(match.group().decode("cp500")), key).encode("cp500"),
        ascii_redacted,
    )
