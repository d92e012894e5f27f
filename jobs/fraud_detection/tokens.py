"""Card tokenisation: a keyed HMAC, so card numbers never leave the job in clear."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

from fraud_events import luhn_valid

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
# digits in a row, or 3 or more groups of 4 to 8 digits, 13 or more in all, between which stand
# 1 to 3 separators (any space, dash, dot, slash or underscore), as cards are printed
# (4111 1111 1111 1111, 3782-822463-10005); or two groups of 7 to 12 digits, 15 to 19 in all,
# when they read as a card number (`plausible_card_number`: 41111111 11111111). Shorter runs and
# other pairs are left alone: ids such as "tx-11-3-00001234" and "order-20260302-00012345" are
# common.
CARD_DIGITS_MIN = 13
_ID_SEPARATOR = r"[\s._/\-\u2010-\u2015\u2212]"
# Found where each run starts (a lookahead), so that a pair of groups that does not read as a card
# number leaves its second group to start the next run.
_CARD_IN_IDENTIFIER = re.compile(  # the 4 digits every form starts with first: the fastest
    rf"(?<!\d)(?=(\d{{4}}(?:\d{{{CARD_DIGITS_MIN - 4},}}"
    rf"|\d{{0,4}}(?:{_ID_SEPARATOR}{{1,3}}\d{{4,8}}){{2,}}"
    rf"|(?P<pair>\d{{3,8}}{_ID_SEPARATOR}{{1,3}}\d{{7,12}})))(?!\d))"
)
PAIR_DIGITS = range(15, 20)
# The first digits of the card numbers of the major networks (ISO/IEC 7812's major industry
# identifiers 3 to 6: Amex, Diners, JCB, Visa, Mastercard, Discover, UnionPay, Maestro; and
# Mastercard's 2221 to 2720); dates (19..., 20...) are not among them.
_ISSUER_PREFIX = re.compile(r"[3-6]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)")
# What shows, in a raw JSON payload, that an id in it may hold a card number (in RE2's syntax, for
# pyarrow): a run of 13 ASCII digits, the first three groups of a card printed in groups, two
# groups of 7 digits or more, or what a byte pattern cannot read (non-ASCII text, escapes). A
# superset of _CARD_IN_IDENTIFIER's runs.
_CARD_HINTS = (
    r"\d{13}|\d{4}[\s._/\-]{1,3}\d{4,8}[\s._/\-]{1,3}\d{4}|\d{7}[\s._/\-]{1,3}\d{7}|[^\x00-\x7f]|\\"
)
# The wide text encodings a payload with NULs may be in, whose non-ASCII digits no other pattern
# sees (an Arabic-Indic 4, U+0664, is the bytes 0x64 0x06 in UTF-16-LE: valid UTF-8 too). UTF-32
# first: UTF-32 text also reads as UTF-16, its digits there with NULs between.
_WIDE_ENCODINGS = ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be")
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
    """`identifier` with each card number written into it replaced by its token (of its digits).
    The same identifier always gives the same result, so what is grouped by it stays grouped.
    Invisible characters (zero-width spaces, Unicode category Cf) are dropped first when there
    is a card number between them."""
    if len(identifier) < CARD_DIGITS_MIN:  # too short to hold one: the common case, at once
        return identifier
    visible = identifier
    if not identifier.isascii():
        visible = "".join(char for char in identifier if unicodedata.category(char) != "Cf")
    parts, end = [], 0
    for run in _CARD_IN_IDENTIFIER.finditer(visible):
        if run.start() < end:  # inside a run already replaced
            continue
        digits = _digits(run[1])
        if len(digits) < CARD_DIGITS_MIN or (run["pair"] and not plausible_card_number(digits)):
            continue
        parts += [visible[end : run.start()], card_token(digits, key)]
        end = run.start() + len(run[1])
    return "".join([*parts, visible[end:]]) if parts else identifier


def ids_may_hold_card_numbers(payloads: list[bytes | None], own_runs: pa.Array) -> list[bool]:
    """Per raw JSON payload, whether an id in it may hold a card number: it shows more hints of
    one (_CARD_HINTS) than its own card numbers (`own_runs`: 1 for a transaction, whose
    card_number is one, 0 for a label). All payloads at once, by RE2 in pyarrow: about 1 us a
    payload, where searching the ids of each in Python takes 5 to 10. None counts as may."""
    hints = pc.count_substring_regex(pa.array(payloads, pa.binary()), _CARD_HINTS)
    return pc.fill_null(pc.greater(hints, own_runs), True).to_pylist()


def plausible_card_number(digits: str) -> bool:
    """Whether ASCII `digits` read as a card number: 15 to 19 of them, a major network's first
    digits and a valid Luhn check digit."""
    return (
        len(digits) in PAIR_DIGITS
        and _ISSUER_PREFIX.match(digits) is not None
        and luhn_valid(digits)
    )


def redact_card_numbers_in_wide_text(raw: bytes, key: bytes) -> bytes:
    """`raw` with each card-like run that holds a non-ASCII digit replaced by its token, in every
    wide text encoding `raw` decodes in (the token written in that encoding). For payloads that
    may be UTF-16 or UTF-32 text; their ASCII digits, NULs between, the other patterns find."""
    for encoding in _WIDE_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        redacted = _CARD_LIKE.sub(
            lambda run: (
                run.group() if run.group().isascii() else card_token(_digits(run.group()), key)
            ),
            text,
        )
        if redacted != text:
            raw = redacted.encode(encoding)
    return raw


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
