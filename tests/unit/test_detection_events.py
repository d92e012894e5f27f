"""Parsing and validation of transactions: valid ones are tokenised, bad ones dead letters."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from datetime import UTC, datetime

import pytest

from fraud_detection.events import _fast_validator, dead_letter, decode_event, parse_transaction
from fraud_detection.harness import BAD_INPUTS, CARD, encode, transaction, wide_digits
from fraud_detection.tokens import card_token
from fraud_events import problems

KEY = b"unit-test-key-0123456789"


def test_a_valid_transaction_is_parsed_and_its_card_number_replaced_by_a_token():
    record, rejection = parse_transaction(encode(transaction()), KEY)
    assert rejection is None
    assert record["card_token"] == card_token(CARD, KEY)
    assert CARD not in json.dumps(record, default=str)
    assert record["event_time"] == datetime(2026, 1, 1, 8, 15, 2, 123000, tzinfo=UTC)
    assert (record["amount"], record["merchant_category"]) == (12.5, "grocery")


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_rejected_with_its_reason_and_never_raises(name):
    raw, reason = BAD_INPUTS[name]
    record, rejection = parse_transaction(raw, KEY)
    assert record is None
    assert rejection.reason == reason
    assert rejection.error


def test_the_compiled_validator_never_accepts_what_the_contract_rejects():
    """The fast path (jsonschema-rs) decides alone only when it accepts an event: the contract's
    own check (fraud_events.problems) must then find nothing, Luhn aside (checked after)."""
    luhn = ["card_number: fails the Luhn check"]
    valid = [transaction(), transaction(device_id="d-9", channel="ecommerce")]
    assert all(_fast_validator().is_valid(event) for event in valid)
    bad = [decode_event(raw)[0] for raw, _ in BAD_INPUTS.values()]
    bad = [event for event in bad if isinstance(event, dict)]
    assert len(bad) > 20
    bad += [transaction(latitude=10**400), transaction(longitude=float("-inf"))]
    for event in bad:
        found = [problem for problem in problems(event) if problem not in luhn]
        if _fast_validator().is_valid(event):
            assert not found, (event, found)


def test_rejection_details_and_dead_letters_never_carry_a_card_number():
    raw = encode(transaction(card_number=int(CARD)))
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "p-transactions", 2, 41, datetime.now(UTC), KEY)
    assert CARD not in json.dumps(letter)
    assert card_token(CARD, KEY) in letter["payload"]
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == (
        "p-transactions",
        2,
        41,
    )
    assert letter["reason"] == "schema_violation"


def test_a_dead_letter_keeps_non_utf8_payloads_as_base64():
    raw = b"\xff\xfe\x00garbage"
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "t", 0, 7, datetime(2026, 1, 1, tzinfo=UTC), KEY)
    assert base64.b64decode(letter["payload"]) == raw
    assert letter["detection_time"] == "2026-01-01T00:00:00.000Z"


def test_dead_letters_carry_no_card_number_whatever_the_encoding_or_length():
    from fraud_detection.events import Rejection

    key = b"k" * 16
    latin1 = encode(transaction(merchant_id="caf")).replace(b'"caf"', b'"caf\xe9"')
    with_expiry = encode(transaction(card_number=CARD + "1226"))
    spaced = transaction(card_number="<absent>", note=f"{CARD[:4]} {CARD[4:8]}-{CARD[8:]}")
    wide = [encode(event, encoding) for encoding in ("utf-16-le", "utf-16", "utf-32-be")
            for event in (transaction(), spaced)]  # fmt: skip
    error = Rejection("invalid_label", f"data must not contain {{'{CARD}'}} properties")
    for raw, rejection in [(latin1, None), (with_expiry, None), (b"{}", error)] + [
        (raw, None) for raw in wide
    ]:
        if rejection is None:
            record, rejection = parse_transaction(raw, key)
            assert record is None
        letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), key)
        text = json.dumps(letter)
        decoded = base64.b64decode(letter["payload"]) if rejection.reason == "not_utf8" else b""
        clears = (text.replace("\\u0000", ""), decoded.replace(b"\0", b"").decode("latin-1"))
        for clear in clears:
            assert CARD not in clear.replace(" ", "").replace("-", ""), letter
        if raw in wide:  # tokenised, not dropped: the same token as in UTF-8, written wide
            assert card_token(CARD, key) in "".join(clears), letter


@pytest.mark.parametrize(
    "raw",
    [
        b'{"card_number": "\\u00341\\u00311\\u00311\\u00311\\u00311\\u00311\\u00311\\u00311"}',
        json.dumps({"card_number": "".join(chr(0xFF10 + int(d)) for d in CARD)}).encode(),
        b'{"note": "4111  1111  1111  1111"}',
        b'{"note": "4111 - 1111 - 1111 - 1111"}',
        json.dumps({"card_number": "\x00\x00\x00\x00".join(CARD)}).encode(),
        encode(transaction(card_number="\x00".join(CARD))),
        b'{"card_number": "4111111111111111"}'.decode().encode("cp500"),
        b'{"customer_id": "4111/1111/1111/1111"}',
        b'{"device_id": "41111111.11111111"}',
        b'\xff{"customer_id": "4111/1111/1111/1111"}',
    ],
    ids=["json escapes", "fullwidth", "two spaces", "spaced dashes", "four nuls", "nuls in repr",
         "ebcdic", "slashes as in an id", "two groups as in an id", "slashes, not utf-8"],
)  # fmt: skip
def test_no_card_number_survives_escapes_separators_or_ebcdic(raw):
    """The card's digits, however written, are replaced by the card's own token."""
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    payloads = [letter["payload"]]
    if rejection.reason == "not_utf8":  # EBCDIC, or ASCII with a byte that is not UTF-8
        payloads = [base64.b64decode(payloads[0]).decode(code) for code in ("cp500", "latin-1")]
    for text in (*payloads, letter["error"], *(json.loads(json.dumps(p)) for p in payloads)):
        assert CARD not in decoded_digits(text), (text, letter)
    assert card_token(CARD, KEY) in "".join(payloads) + letter["error"], letter


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-16-be", "utf-32-le", "utf-32"])
@pytest.mark.parametrize(
    "zero",
    [0x0660, 0x06F0, 0x0966, 0xFF10],
    ids=["arabic-indic", "persian", "devanagari", "fullwidth"],
)
def test_no_card_number_in_any_script_survives_in_utf16_or_utf32_text(encoding, zero):
    """Digits of other scripts in wide text: some of it passes as UTF-8 (Arabic-Indic digits are
    ASCII bytes and NULs in UTF-16-LE), some does not (fullwidth digits); neither leaks."""
    raw = wide_digits(zero, encoding)
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    payload = letter["payload"]
    sent = base64.b64decode(payload) if rejection.reason == "not_utf8" else payload.encode()
    read = sent.decode(encoding, errors="replace")
    assert CARD not in decoded_digits(read), read
    assert read.count("tok_") == 1 and '"transaction_id": "tx-1"' in read, read


def decoded_digits(text: str) -> str:
    """`text` as a reader would see its digits: JSON escapes decoded, separators and escapes of
    NUL dropped, every script's digits in ASCII."""
    text = text.replace("\\x00", "").replace("\\u0000", "")
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda match: chr(int(match.group(1), 16)), text)
    kept = (str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text if c not in " -\0")
    return "".join(kept)


def test_a_dead_letter_cuts_its_error_only_after_tokenising_it():
    """Wherever the cut falls in a long error that quotes a card number (here an unexpected
    field named after it), no part of the number long enough to matter survives."""
    from fraud_detection.events import ERROR_CHARS
    from fraud_detection.harness import label
    from fraud_detection.outcomes import parse_label

    for filler in range(150, ERROR_CHARS + 5, 3):
        name = "x" * filler + CARD
        for raw, (_, rejection) in (
            (b"{}", parse_label(label(**{name: 1}), KEY)),
            (b"{}", parse_transaction(encode(transaction(**{name: 1})), KEY)),
        ):
            letter = dead_letter(raw, rejection, "topic", 0, 1, datetime.now(UTC), KEY)
            assert len(letter["error"]) <= ERROR_CHARS
            assert CARD[:6] not in letter["error"], (filler, letter["error"])


@pytest.mark.parametrize(
    "customer_id, tokenised",
    [("1234567890123", True), ("123456789012", False), ("C-4111111111111111", True)],
)
def test_a_card_number_in_an_id_of_a_transaction_is_tokenised_from_13_characters(
    customer_id, tokenised
):
    record, _ = parse_transaction(encode(transaction(customer_id=customer_id)), KEY)
    assert (record["customer_id"] != customer_id) == tokenised
    assert (card_token(re.sub(r"\D", "", customer_id), KEY) in record["customer_id"]) == tokenised


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-16-be", "utf-32-le", "utf-32"])
@pytest.mark.parametrize(
    "identifier",
    [f"{CARD[:4]}.{CARD[4:8]}.{CARD[8:12]}.{CARD[12:]}", "/".join([CARD[:8], CARD[8:]]),
     "_".join([CARD[:4], CARD[4:10], CARD[10:]]), f"{CARD[:8]} {CARD[8:]}"],
    ids=["dots", "a slash", "underscores", "a pair"],
)  # fmt: skip
def test_no_card_number_written_as_in_an_id_survives_in_utf16_or_utf32_text(encoding, identifier):
    """A card number in an id of wide text, written as ids hold one: the token replaces it in
    that text's own encoding, so the rest of the payload still reads."""
    raw = json.dumps(transaction(customer_id=identifier)).encode(encoding)
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    payload = letter["payload"]
    sent = base64.b64decode(payload) if rejection.reason == "not_utf8" else payload.encode()
    read = json.loads(sent.decode(encoding))
    assert read["customer_id"] == card_token(CARD, KEY), read
    assert CARD not in decoded_digits(json.dumps(read)) and read["transaction_id"] == "tx-1"


GROUPS = [CARD[:4], CARD[4:8], CARD[8:12], CARD[12:]]
SLASHED = "/".join(GROUPS)
MATH_BOLD = "".join(chr(0x1D7CE + int(digit)) for digit in CARD)  # beyond U+FFFF


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-32"])
@pytest.mark.parametrize(
    "identifier, expected",
    [("\u00a0".join([CARD[:4], CARD[4:8], CARD[8:12], CARD[12:]]), "{}"),
     (f"\u0436{CARD[:5]}.{CARD[5:10]}.{CARD[10:]}", "\u0436{}"), (SLASHED, "{}"),
     ("\n".join(GROUPS), "{}"), ("\u200b".join(GROUPS), "{}"), (MATH_BOLD, "{}"),
     (f"1\u200b{CARD[:8]}\u00a0{CARD[8:]}", "1\u200b{}")],
    ids=["no-break spaces", "a letter before", "slashes", "new lines", "zero-width spaces",
         "mathematical digits as surrogate pairs", "a digit and a zero-width space before"],
)  # fmt: skip
def test_no_card_number_survives_json_escapes_in_an_id(encoding, identifier, expected):
    """JSON as most encoders write it, escapes for anything not ASCII (and slashes, by some): the
    id reads, once decoded, as the card's token."""
    raw = json.dumps(transaction(customer_id=identifier, amount="12.5"))
    raw = raw.replace("/", "\\/").encode(encoding)
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    sent = letter["payload"].encode()
    if rejection.reason == "not_utf8":
        sent = base64.b64decode(letter["payload"])
    read = json.loads(sent.decode(encoding))["customer_id"]
    assert read == expected.format(card_token(CARD, KEY)), letter


def test_an_error_quoting_an_id_with_escaped_separators_carries_its_token():
    spaced = "\u2009".join([CARD[:4], CARD[4:8], CARD[8:12], CARD[12:]])
    raw = encode(transaction(region=spaced))  # too long: the error quotes it, escaped
    _, rejection = parse_transaction(raw, KEY)
    assert "\\u2009" in rejection.error, rejection
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    assert card_token(CARD, KEY) in letter["error"] and CARD[:4] not in letter["error"], letter


@pytest.mark.parametrize(
    "raw",
    [json.dumps(transaction(customer_id=SLASHED)).encode("utf-16-le") + b"\n",
     json.dumps(transaction(customer_id=SLASHED)).encode("utf-16-le")[:-3],
     json.dumps(transaction(customer_id=SLASHED, merchant_id="m-\ud800"), ensure_ascii=False)
     .encode("utf-16-be", "surrogatepass"),
     json.dumps(transaction(customer_id=SLASHED)).encode("utf-32-le") + b"\x00"],
    ids=["utf-16, a byte after", "utf-16, cut short", "utf-16, a lone surrogate",
         "utf-32, a byte after"],
)  # fmt: skip
def test_no_card_number_survives_in_malformed_wide_text(raw):
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    sent = base64.b64decode(letter["payload"]) if rejection.reason == "not_utf8" else b""
    sent = sent or letter["payload"].encode()
    for encoding in ("utf-16-le", "utf-16-be", "utf-32-le"):
        read = sent.decode(encoding, errors="replace")
        assert SLASHED not in read and CARD not in decoded_digits(read), (encoding, letter)
    assert card_token(CARD, KEY) in "".join(
        sent.decode(encoding, errors="replace")
        for encoding in ("utf-16-le", "utf-16-be", "utf-32-le")
    ), letter


def test_text_shaped_as_a_token_is_no_hiding_place():
    """Only tokens the job wrote are left alone by later passes: `tok_` before a card number in
    UTF-16 text is no token of the job's."""
    fake = f"tok_{CARD}{'a' * 16}"
    raw = json.dumps(transaction(customer_id=SLASHED, merchant_id=fake)).encode("utf-16-le")
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    read = json.loads(letter["payload"].encode().decode("utf-16-le"))
    assert read["customer_id"] == card_token(CARD, KEY)
    assert CARD not in read["merchant_id"] and card_token(CARD, KEY) in read["merchant_id"], read


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_digits_beyond_the_basic_plane_are_read_in_wide_text(encoding):
    """Mathematical digits are surrogate pairs in UTF-16: read as one character each."""
    raw = json.dumps(transaction(customer_id=MATH_BOLD), ensure_ascii=False).encode(encoding)
    _, rejection = parse_transaction(raw, KEY)
    letter = dead_letter(raw, rejection, "tx", 0, 1, datetime.now(UTC), KEY)
    sent = base64.b64decode(letter["payload"]) if rejection.reason == "not_utf8" else b""
    read = (sent or letter["payload"].encode()).decode(encoding)
    assert json.loads(read)["customer_id"] == card_token(CARD, KEY), letter
