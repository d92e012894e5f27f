"""Card tokenisation: a keyed HMAC, so card numbers never leave the job in clear."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from bisect import bisect_right
from functools import cache
from itertools import accumulate

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraud_events import luhn_valid

# Runs of 12 or more digits (any script's) between which stand spaces, dashes or NULs (the ASCII
# digits of UTF-16 or UTF-32 text, which is valid UTF-8 when little-endian without a byte-order
# mark), up to 16 of them (two spaces in UTF-32 are 11): anything card-like, a card number with
# more digits glued to it (an expiry date) included. Escapes are decoded first (_decoded).
_CARD_LIKE = re.compile(r"(?<!\d)\d(?:[ \-\x00]{0,16}\d){11,}(?!\d)")
# The same in EBCDIC (mainframe payloads): digits 0xF0-0xF9, space 0x40, dash 0x60.
_CARD_LIKE_EBCDIC = re.compile(rb"(?<![\xf0-\xf9])[\xf0-\xf9](?:[\x40\x60]{0,16}[\xf0-\xf9]){11,}")
# A card number written into an identifier (a customer, terminal or transaction id): 13 or more
# digits in a row, or 3 or more groups of 4 to 8 digits, 13 or more in all, between which stand
# 1 to 3 separators (any space, dash, dot, slash or underscore), as cards are printed
# (4111 1111 1111 1111, 3782-822463-10005); or two groups of 4 to 12 digits (a pair) that read
# as a card number (`plausible_card_number`: 41111111 11111111, 4111 111111111111), an expiry
# date (MMYY) glued on or not (41111111 111111111225). Shorter runs and other pairs are left
# alone: ids such as "tx-11-3-00001234" and "order-20260302-00012345" are common.
CARD_DIGITS_MIN = 13
_ID_SEPARATOR = r"[\s._/\-\u2010-\u2015\u2212]"
# Both forms, found where each starts (a lookahead; a run's first 4 digits first: the fastest; a
# pair where no run starts), so that a pair that is not a card number leaves its second group to
# start the next. A run of groups is matched up to 1 + _MORE_GROUPS_MAX groups from each start
# (a card and an expiry date need at most 6), so a long run costs time in proportion to its
# length; the overlapping matches become one token.
_MORE_GROUPS_MAX = 5
_CARD_IN_IDENTIFIER = re.compile(
    rf"(?<!\d)(?=(?P<run>\d{{4}}(?:\d{{{CARD_DIGITS_MIN - 4},}}"
    rf"|\d{{0,4}}(?:{_ID_SEPARATOR}{{1,3}}\d{{4,8}}){{2,{_MORE_GROUPS_MAX}}}))(?!\d)"
    rf"|(?P<pair>\d{{4,12}}{_ID_SEPARATOR}{{1,3}}\d{{4,12}})(?!\d))"
)
# The first digits of the card numbers of the major networks: ISO/IEC 7812's major industry
# identifiers 3 to 6 (Amex, Diners, JCB, Visa, Mastercard, Discover, UnionPay, Maestro), Mir's
# 2200 to 2204 and Mastercard's 2221 to 2720. Dates written year first (19..., 20...) are not
# among them.
_ISSUER_PREFIX = re.compile(r"[3-6]|2(?:20[0-4]|22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)")
# The card numbers shorter than 15 digits still issued: Diners Club's 14 (300 to 305, 309, 36,
# 38, 39) and Visa's 13.
_SHORT_CARD = re.compile(r"30[0-59]\d{11}|3[689]\d{12}|4\d{12}")
_EXPIRY = re.compile(r"(?:0[1-9]|1[0-2])\d\d")  # MMYY
# What shows, in a raw JSON payload, that an id in it may hold a card number (in RE2's syntax, for
# pyarrow): a run of 13 ASCII digits, the first three groups of a card printed in groups, two
# groups of 4 digits or more the first of which starts as a card number does, or what a byte
# pattern cannot read (non-ASCII text, escapes). A superset of what _CARD_IN_IDENTIFIER finds.
_CARD_HINTS = (
    r"\d{13}|\d{4}[\s._/\-]{1,3}\d{4,8}[\s._/\-]{1,3}\d{4}"
    r"|(?:^|[^0-9])(?:[3-6]\d|2[2-7])\d{2,10}[\s._/\-]{1,3}\d{4}|[^\x00-\x7f]|\\"
)
# The wide text encodings a payload with NULs may be in, whose non-ASCII digits, and ASCII digits
# written as in an id, no pattern sees in the payload read narrow (an Arabic-Indic 4, U+0664, is
# the bytes 0x64 0x06 in UTF-16-LE: valid UTF-8 too): numpy's type of a character, and the
# codec a token is written in. UTF-32 first: UTF-32 text also reads as UTF-16, its characters
# there with NULs between.
_WIDE_ENCODINGS = (("<u4", "utf-32-le"), (">u4", "utf-32-be"), ("<u2", "utf-16-le"),
                   (">u2", "utf-16-be"))  # fmt: skip
TOKEN_PREFIX, TOKEN_HEX_DIGITS = "tok_", 32
# A token written into a payload by an earlier pass, as a later one reads it: each character
# followed by up to 3 NULs when it was written into UTF-16 or UTF-32 text and is read narrow.
_WRITTEN_TOKEN = re.compile(
    "".join(rf"{char}\x00{{0,3}}" for char in TOKEN_PREFIX)
    + rf"(?:[0-9a-f]\x00{{0,3}}){{{TOKEN_HEX_DIGITS}}}"
)
# The escapes of JSON (\uXXXX, a surrogate pair as two of them, \n, \/, ...) and of Python's reprs
# (\xXX) in a payload or an error text.
_ESCAPE = re.compile(
    r"\\(?:u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|u([0-9a-f]{4})|x([0-9a-f]{2})|([^ux]))",
    re.IGNORECASE,
)
_SHORT_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "b": "\b"}
_NOT_DIGIT = re.compile(r"\D")  # of any script
_ASCII_NOT_DIGITS = bytes(set(range(128)) - set(b"0123456789"))


def _digits(run: str) -> str:
    """The ASCII digits of a card-like run (of any script's digits), its separators dropped."""
    if run.isascii():  # the common case: at once
        return _ascii_digits(run).decode()
    return "".join(str(unicodedata.decimal(char)) for char in run if char.isdecimal())


def _digit_count(text: str) -> int:
    """How many digits (of any script) `text` holds."""
    return len(_ascii_digits(text) if text.isascii() else _NOT_DIGIT.sub("", text))


def _ascii_digits(text: str) -> bytes:
    """The digits of ASCII `text`, the rest dropped."""
    return text.encode().translate(None, _ASCII_NOT_DIGITS)


@cache
def _keyed_mac(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with `key` and fed nothing yet: a copy of it skips the key's set-up,
    a third of a token's cost."""
    return hmac.new(key, digestmod=hashlib.sha256)


def card_token(card_number: str, key: bytes) -> str:
    """The HMAC-SHA256 of the card number under `key`, hex, prefixed `tok_`."""
    mac = _keyed_mac(key).copy()
    mac.update(card_number.encode())
    return f"{TOKEN_PREFIX}{mac.hexdigest()[:TOKEN_HEX_DIGITS]}"


def redact_card_numbers(text: str, key: bytes, written: set[str] | None = None) -> str:
    """`text` (a payload or an error text) with every card-like digit run, and every card number
    written as in an identifier (`tokenise_card_numbers_in_identifier`), replaced by its token:
    the token of its ASCII digits, whatever script or escapes wrote them. Searched as it is, with
    its escapes decoded (`_decoded`), and without its invisible characters too (`_visible`); a
    run found as it is that starts or ends within an escape takes the whole escape. The tokens
    in `written` (written into the same payload by an earlier pass) are kept as they are; those
    written now are added to it."""
    return _with_tokens(text, _found_tokens(text, key, written))


def _found_tokens(text: str, key: bytes, written: set[str] | None) -> list[tuple[int, int, str]]:
    """(start, stop, token) of each card number `redact_card_numbers` replaces in `text`."""
    searched = _WRITTEN_TOKEN.sub(lambda found: _hidden(found, written), text) if written else text
    spans = _spans(searched, True)
    if "\\" in searched:
        escapes = [found.span() for found in _ESCAPE.finditer(searched)]
        spans = _outside(spans, escapes)
        view, starts = _decoded(searched)
        spans += _spans_read(view, starts, True)
    else:
        view, starts = searched, range(len(searched) + 1)
    if not view.isascii():
        view, starts = _visible(view, starts)
        spans += _spans_read(view, starts, True)
    tokens = []
    for start, stop in _merged(spans):
        token = card_token(_digits(_decoded(text[start:stop])[0]), key)
        if written is not None:
            written.add(token)
        tokens.append((start, stop, token))
    return tokens


def tokenise_card_numbers_in_identifier(identifier: str, key: bytes) -> str:
    """`identifier` with each card number written into it replaced by its token (of its digits;
    runs that overlap become one). The same identifier always gives the same result, so what is
    grouped by it stays grouped. Searched as written and, when it has invisible characters
    (zero-width spaces, Unicode category Cf), without them too."""
    if len(identifier) < CARD_DIGITS_MIN or _digit_count(identifier) < CARD_DIGITS_MIN:
        return identifier  # too few digits to hold one: the common case, at once
    spans = _spans(identifier, False)
    if not identifier.isascii():
        spans += _spans_read(*_visible(identifier, range(len(identifier) + 1)), False)
    tokens = [
        (start, stop, card_token(_digits(identifier[start:stop]), key))
        for start, stop in _merged(spans)
    ]
    return _with_tokens(identifier, tokens)


def _spans(text: str, card_like: bool) -> list[tuple[int, int]]:
    """Where card numbers are written as in an identifier in `text`, and with `card_like` the
    _CARD_LIKE runs."""
    spans = [match.span() for match in _CARD_LIKE.finditer(text)] if card_like else []
    for found in _CARD_IN_IDENTIFIER.finditer(text):
        run = found["run"] or found["pair"]
        digits = _digits(run)
        if _card_in_pair(digits) if found["pair"] else len(digits) >= CARD_DIGITS_MIN:
            spans.append((found.start(), found.start() + len(run)))
    return spans


def _spans_read(view: str, starts, card_like: bool) -> list[tuple[int, int]]:
    """`_spans` of `view`, a reading of a text, as positions in that text (`starts`: where each
    character of `view` starts there, then its end)."""
    return [(starts[start], starts[stop]) for start, stop in _spans(view, card_like)]


def _with_tokens(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with each span (start, stop, token) replaced by its token."""
    parts, end = [], 0
    for start, stop, token in spans:
        parts += [text[end:start], token]
        end = stop
    return "".join([*parts, text[end:]])


def _hidden(found: re.Match, written: set[str]) -> str:
    """A _WRITTEN_TOKEN match as x's, no digits to find, when it is a token in `written`."""
    return (
        "x" * len(found.group()) if found.group().replace("\x00", "") in written else found.group()
    )


def _decoded(text: str) -> tuple[str, list[int]]:
    """`text` with its escapes (_ESCAPE) decoded, and where each character of that reading starts
    in `text` (then its end)."""
    parts, starts, end = [], [], 0
    for found in _ESCAPE.finditer(text):
        parts.append(text[end : found.start()])
        starts += range(end, found.start())
        high, low, code, byte, char = found.groups()
        if high:
            parts.append(chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00))
        else:
            parts.append(
                chr(int(code or byte, 16)) if code or byte else _SHORT_ESCAPES.get(char, char)
            )
        starts.append(found.start())
        end = found.end()
    parts.append(text[end:])
    starts += range(end, len(text) + 1)
    return "".join(parts), starts


def _visible(text: str, starts) -> tuple[str, list[int]]:
    """`text` without its invisible characters (Unicode category Cf), and `starts` (where each
    character of `text` starts in what it was read from, then its end) for those kept."""
    kept = [at for at, char in enumerate(text) if unicodedata.category(char) != "Cf"]
    return "".join(text[at] for at in kept), [starts[at] for at in kept] + [starts[-1]]


def _outside(spans: list[tuple[int, int]], escapes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`spans` widened to the whole of any escape (`escapes`: sorted spans that do not overlap)
    they start or end within."""
    escape_starts = [start for start, _ in escapes]

    def widened(position: int, end: bool) -> int:
        at = bisect_right(escape_starts, position) - 1
        if at >= 0 and escapes[at][0] < position < escapes[at][1]:
            return escapes[at][1] if end else escapes[at][0]
        return position

    return [(widened(start, False), widened(stop, True)) for start, stop in spans]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`spans` sorted, those that overlap merged."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((start, stop))
    return merged


def ids_may_hold_card_numbers(payloads: list[bytes | None], own_runs: pa.Array) -> list[bool]:
    """Per raw JSON payload, whether an id in it may hold a card number: it shows more hints of
    one (_CARD_HINTS) than its own card numbers (`own_runs`: 1 for a transaction, whose
    card_number is one, 0 for a label). All payloads at once, by RE2 in pyarrow: about 1 us a
    payload, where searching the ids of each in Python takes 5 to 10. None counts as may."""
    hints = pc.count_substring_regex(pa.array(payloads, pa.binary()), _CARD_HINTS)
    return pc.fill_null(pc.greater(hints, own_runs), True).to_pylist()


def plausible_card_number(digits: str) -> bool:
    """Whether ASCII `digits` read as a card number: a major network's first digits, a length its
    cards have (15 to 19; 14 and 13 for those of _SHORT_CARD) and a valid Luhn check digit."""
    return (
        _ISSUER_PREFIX.match(digits) is not None
        and (15 <= len(digits) <= 19 or _SHORT_CARD.fullmatch(digits) is not None)
        and luhn_valid(digits)
    )


def _card_in_pair(digits: str) -> bool:
    """Whether the ASCII `digits` of a pair read as a card number, with or without an expiry
    date glued on."""
    if plausible_card_number(digits):
        return True
    card, expiry = digits[:-4], digits[-4:]
    return _EXPIRY.fullmatch(expiry) is not None and plausible_card_number(card)


def redact_card_numbers_in_wide_text(raw: bytes, key: bytes, written: set[str]) -> bytes:
    """`raw` with every card number `redact_card_numbers` finds replaced by its token, in every
    wide text encoding, the token written in that encoding (so the text still reads in it); the
    tokens written added to `written`. For payloads that may be UTF-16 or UTF-32 text, malformed
    too: `raw` is read a whole number of characters at a time (a surrogate pair in UTF-16 as one,
    a lone surrogate as it is, a code beyond Unicode as U+FFFD), a partial one at the end left
    out."""
    for unit, encoding in _WIDE_ENCODINGS:
        width = int(unit[-1])
        codes = np.frombuffer(raw, unit, len(raw) // width)
        if width == 2 and ((codes >= 0xD800) & (codes < 0xDC00)).any():
            text = raw[: codes.size * 2].decode(encoding, "surrogatepass")
        else:
            text = "".join(map(chr, np.where(codes < 0x110000, codes, 0xFFFD).tolist()))
        offsets = _unit_offsets(text, width)
        parts, end = [], 0
        for start, stop, token in _found_tokens(text, key, written):
            parts += [raw[end : offsets[start]], token.encode(encoding)]
            end = offsets[stop]
        if parts:
            raw = b"".join([*parts, raw[end:]])
    return raw


def _unit_offsets(text: str, width: int) -> list[int] | range:
    """Where each character of wide `text` starts in its bytes (then its end): `width` bytes a
    character, but 4 for one beyond U+FFFF in UTF-16 (a surrogate pair)."""
    if width == 4 or all(ord(char) <= 0xFFFF for char in text):
        return range(0, (len(text) + 1) * width, width)
    return [0, *accumulate(4 if ord(char) > 0xFFFF else 2 for char in text)]


def redact_card_numbers_in_bytes(raw: bytes, key: bytes, written: set[str]) -> bytes:
    """`raw` with every card-like digit run (in ASCII, UTF-8, UTF-16, UTF-32 or EBCDIC) and
    every card number written as in an identifier (in ASCII) replaced by its token, the tokens
    in `written` kept (`redact_card_numbers`)."""
    ascii_redacted = redact_card_numbers(raw.decode("latin-1"), key, written).encode("latin-1")
    return _CARD_LIKE_EBCDIC.sub(
        lambda match: card_token(_digits(match.group().decode("cp500")), key).encode("cp500"),
        ascii_redacted,
    )
