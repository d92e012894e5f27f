"""How a bucket's state is stored in Spark: packed, and read back whatever the job wrote."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from fraud_detection.bucket_state import PACKED_PREFIX, pack, unpack, without_idle
from fraud_detection.detector import AccountState, DetectSettings
from fraud_detection.harness import CARD, detect, encode, transaction
from fraud_detection.intake import IntakeSettings, parse_input

KEY = b"k" * 16
START_MS = 1_767_614_400_000


def account_bucket(accounts: int = 40, transactions: int = 30) -> dict[str, list]:
    """A bucket of accounts with a history each, as the second stage stores it."""
    settings = DetectSettings({}, 60_000, True, KEY)
    intake = IntakeSettings(KEY, None)
    states = {}
    for number in range(accounts):
        account = AccountState()
        records = []
        for offset in range(transactions):
            event = transaction(
                transaction_id=f"tx-{number}-{offset}",
                customer_id=f"c-{number}",
                card_number=CARD,
                amount=10.0 + offset,
                event_time=f"2026-01-05T12:{offset:02d}:00.000Z",
            )
            meta = f"t,0,{offset},{START_MS}"
            kind, record = parse_input("t-1", encode(event), meta, intake, datetime.now(UTC))
            assert kind == "transaction", record
            record["terminal_features"] = [0.0] * 6
            records.append(record)
        detect(account, records, settings)
        states[f"c-{number}"] = [START_MS + number, account.to_json()]
    return states


def test_a_packed_bucket_reads_back_equal_and_is_under_half_its_json():
    states = account_bucket()
    text = pack(states)
    assert unpack(text) == states
    assert text.isascii() and text.startswith(PACKED_PREFIX)
    assert len(text) < len(orjson.dumps(states)) / 2


def test_a_bucket_stored_as_plain_json_before_packing_still_reads():
    states = account_bucket(accounts=3)
    assert unpack(orjson.dumps(states).decode()) == states


def test_a_bucket_without_state_is_empty():
    assert unpack(None) == {} and unpack("") == {}
    assert unpack(pack({})) == {}


def test_entries_idle_for_the_ttl_before_the_newest_input_are_dropped():
    states = {"old": [1_000, "{}"], "kept": [5_000, "{}"], "newest": [9_000, "{}"]}
    assert without_idle(states, 4_000) == {"kept": [5_000, "{}"], "newest": [9_000, "{}"]}
