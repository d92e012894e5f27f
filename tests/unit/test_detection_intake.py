"""The first stage of the detection query: parsing per terminal and the terminal features."""

from __future__ import annotations

import gc
import json
import random
from datetime import UTC, datetime

import orjson
import pandas as pd
import pytest

from fraud_detection.harness import CARD, deeply_nested, encode, label, transaction
from fraud_detection.intake import (
    RECORD_FIELDS,
    TERMINAL_TTL_MS,
    IntakeSettings,
    collector_paused,
    intake_bucket,
    parse_input,
    read,
)
from fraud_detection.terminals import DAY_MS, TERMINAL_FEATURES, TerminalState
from fraud_detection.tokens import card_token

KEY = b"k" * 16
SETTINGS = IntakeSettings(KEY, "labels")
START_MS = 1_767_614_400_000  # 2026-01-05 12:00 UTC


def meta(offset: int, topic: str = "payments-transactions", kafka_ms: int = START_MS) -> str:
    return f"{topic},0,{offset},{kafka_ms}"


def test_records_are_parsed_per_terminal_and_rejects_become_dead_letters():
    now = datetime.now(UTC)
    kind, found = parse_input("t-1", encode(transaction()), meta(7), SETTINGS, now)
    assert kind == "transaction" and found["card_token"].startswith("tok_")
    assert (found["offset"], found["kafka_ms"]) == (7, START_MS)
    kind, found = parse_input("t-2", encode(transaction()), meta(8), SETTINGS, now)
    assert kind == "dead_letter" and "ambiguous" in found["error"]  # not this terminal's event
    kind, found = parse_input("", b"oops", meta(9), SETTINGS, now)
    assert (kind, found["reason"], found["offset"]) == ("dead_letter", "invalid_json", 9)


def test_a_transaction_further_ahead_of_its_kafka_timestamp_than_allowed_is_a_dead_letter():
    bounded = IntakeSettings(KEY, "labels", max_ahead_ms=3_600_000)
    now = datetime.now(UTC)
    for ahead_days, kind in [(0.04, "transaction"), (0.05, "dead_letter")]:  # 58 and 72 min
        event = encode(transaction(event_time=at(ahead_days)))
        found_kind, found = parse_input("t-1", event, meta(1), bounded, now)
        assert found_kind == kind
    assert found["reason"] == "future_event" and "maxEventTimeAhead (3600 s)" in found["error"]
    assert CARD not in found["payload"]
    unbounded, _ = parse_input(
        "t-1", encode(transaction(event_time=at(365))), meta(2), SETTINGS, now
    )
    assert unbounded == "transaction"


def test_a_deeply_nested_label_or_transaction_is_a_dead_letter_not_a_crash():
    now = datetime.now(UTC)
    for topic, raw, reason in (
        ("labels", deeply_nested(label()), "invalid_label"),
        ("payments-transactions", deeply_nested(transaction()), "schema_violation"),
        ("labels", deeply_nested(label(), 3000), "invalid_json"),
        (
            "payments-transactions",
            b'{"event_type":' + b"[" * 1000 + b"]" * 1000 + b"}",
            "wrong_event_type",
        ),
        (
            "payments-transactions",
            encode(transaction(amount="@")).replace(b'"@"', b"[" * 1000 + b"]" * 1000),
            "schema_violation",
        ),
    ):
        kind, letter = parse_input("t-1", raw, meta(3, topic), SETTINGS, now)
        assert (kind, letter["reason"]) == ("dead_letter", reason)


def at(day: float) -> str:
    """An RFC 3339 time `day` days after START_MS."""
    moment = datetime.fromtimestamp((START_MS + day * DAY_MS) / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def label_event(number: int, day: float, label_day: float, is_fraud: bool) -> dict:
    return {
        "schema_version": 1, "event_type": "label", "transaction_id": f"tx-{number}",
        "customer_id": "c-1", "terminal_id": "t-1", "event_time": at(day),
        "label_time": at(label_day), "is_fraud": is_fraud,
        "scenario": "compromised_terminal" if is_fraud else None,
    }  # fmt: skip


def run_stage(
    messages: list[tuple[str, dict]], states: dict | None = None, kafka_ms: int = START_MS
):
    """The first stage's rows and state for (topic, event) messages of one batch."""
    frame = pd.DataFrame(
        {
            "terminal": [event["terminal_id"] for _, event in messages],
            "value": [encode(event) for _, event in messages],
            "meta": [meta(n, topic, kafka_ms) for n, (topic, _) in enumerate(messages)],
        }
    )
    inputs, letters = read(iter([frame]), SETTINGS)
    rows, states = intake_bucket(states or {}, inputs)
    return letters + rows, states


def features_of(rows) -> dict[str, dict[str, float]]:
    """Transaction id -> its terminal features, from the stage's transaction rows."""
    found = {}
    for _, kind, payload in rows:
        if kind == "transaction":
            values = orjson.loads(payload)
            record = dict(zip(RECORD_FIELDS, values, strict=False))
            found[record["transaction_id"]] = dict(zip(TERMINAL_FEATURES, values[-1], strict=True))
    return found


def test_terminal_features_count_transactions_and_the_share_of_known_frauds_per_window():
    def tx(number, day):
        return "transactions", transaction(transaction_id=f"tx-{number}", event_time=at(day))

    messages = [
        tx(1, -20), ("labels", label_event(1, -20, -20, True)),
        tx(2, -3), ("labels", label_event(2, -3, -3, False)),
        tx(3, -2), tx(4, 0),  # tx-3: no label yet
        ("labels", label_event(4, 0, 0.01, True)),  # known after tx-5
        tx(5, 0.005), tx(6, 0.02),
    ]  # fmt: skip
    rows, _ = run_stage(messages)
    features = features_of(rows)
    assert [row[1] for row in rows].count("label") == 3
    assert features["tx-5"] == {
        "terminal_nb_tx_1day": 2.0, "terminal_nb_tx_7day": 4.0, "terminal_nb_tx_30day": 5.0,
        "terminal_risk_1day": 0.0, "terminal_risk_7day": 0.0, "terminal_risk_30day": 0.5,
    }  # fmt: skip
    later = features["tx-6"]
    assert (later["terminal_risk_1day"], later["terminal_risk_7day"]) == (1.0, 0.5)
    assert later["terminal_risk_30day"] == pytest.approx(2 / 3)


def test_terminal_state_keeps_30_days_and_idle_terminals_are_forgotten():
    state = TerminalState()
    for day in range(40):
        state.add_transaction(START_MS + day * DAY_MS, f"tx-{day}")
    assert len(state.days) == 30
    assert state.features(state.latest_day)[:3] == [1.0, 7.0, 30.0]
    state.add_label(START_MS, True)  # its day is gone: ignored
    assert state.features(state.latest_day)[3:] == [0.0, 0.0, 0.0]

    old = transaction(terminal_id="t-old", event_time=at(0))
    _, states = run_stage([("transactions", old)])
    wrong_clock = transaction(transaction_id="tx-2", event_time=at(365 * 70))
    _, states = run_stage([("transactions", wrong_clock)], states, START_MS + DAY_MS)
    assert set(states) == {"t-old", "t-1"}  # Kafka time, not event time, makes terminals idle
    later = transaction(transaction_id="tx-3", event_time=at(91))
    _, states = run_stage([("transactions", later)], states, START_MS + TERMINAL_TTL_MS + DAY_MS)
    assert set(states) == {"t-1"}


def test_a_label_counts_when_it_comes_before_its_transaction_and_never_before_it():
    state = TerminalState()
    state.add_transaction(START_MS - DAY_MS, "tx-1")
    state.add_label(START_MS, True)  # its transaction is in a later micro-batch
    assert state.add_transaction(START_MS, "tx-2")[3] == 1.0
    # a label whose label_time is before its own event_time still comes after its transaction
    label = label_event(7, 0.5, 0.1, True)
    rows, _ = run_stage([("labels", label), ("transactions", transaction(
        transaction_id="tx-7", event_time=at(0.5)))])  # fmt: skip
    assert features_of(rows)["tx-7"]["terminal_risk_1day"] == 0.0


def test_rejected_records_leave_as_dead_letters_and_labels_go_on_to_their_account():
    rows, _ = run_stage(
        [("transactions", transaction(amount=-1)), ("labels", label_event(1, 0, 0, False))]
    )
    assert [(account, kind) for account, kind, _ in rows] == [
        ("transactions:0:0", "dead_letter"),  # keyed by origin, so many spread over buckets
        ("c-1", "label"),
    ]
    assert json.loads(rows[0][2])["reason"] == "schema_violation"
    assert orjson.loads(rows[1][2])[:3] == ["tx-1", START_MS, False]


def test_a_redelivered_transaction_counts_once_for_its_terminal():
    first = transaction(transaction_id="tx-1", event_time=at(0))
    rows, states = run_stage([("transactions", first), ("transactions", first)])
    assert [features_of([row])["tx-1"]["terminal_nb_tx_1day"] for row in rows] == [1.0, 1.0]
    second = transaction(transaction_id="tx-2", event_time=at(0.01))
    rows, _ = run_stage([("transactions", first), ("transactions", second)], states)
    assert features_of(rows)["tx-2"]["terminal_nb_tx_1day"] == 2.0


def test_the_garbage_collector_is_paused_for_a_bucket_and_restored_even_when_it_fails():
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        assert not gc.isenabled()
        raise ValueError("a failing bucket")
    assert gc.isenabled()
    gc.disable()  # a worker that runs without it stays without it
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def windows_of(state: TerminalState, day: int) -> list[float]:
    """TERMINAL_FEATURES on `day` counted from the state's days (the definition)."""
    sums = {width: [0, 0, 0] for width in (1, 7, 30)}
    for when, counts in state.days.items():
        for width, total in sums.items():
            if 0 <= day - when < width:
                total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    return [
        *(float(sums[width][0]) for width in (1, 7, 30)),
        *(sums[width][2] / sums[width][1] if sums[width][1] else 0.0 for width in (1, 7, 30)),
    ]


def test_terminal_features_stay_exact_through_late_transactions_labels_and_redeliveries():
    rng = random.Random(7)
    state, ids = TerminalState(), []
    for step in range(3000):
        day = step // 40 + rng.choice([0, 0, 0, 0, -1, -3, -8, -40])  # some late, some expired
        event_ms = START_MS + day * DAY_MS + rng.randrange(DAY_MS)
        if ids and rng.random() < 0.3:
            state.add_label(rng.choice(ids)[1], rng.random() < 0.2)  # often a day cached earlier
            continue
        if ids and rng.random() < 0.05:
            transaction_id, event_ms = rng.choice(ids)  # a redelivery
        else:
            transaction_id = f"tx-{step}"
            ids.append((transaction_id, event_ms))
        found = state.add_transaction(event_ms, transaction_id)
        assert found == windows_of(state, event_ms // DAY_MS), step
    restored = TerminalState.from_list(orjson.loads(orjson.dumps(state.to_list())))
    assert restored.features(state.latest_day) == state.features(state.latest_day)


def test_card_numbers_in_ids_are_tokenised_alike_in_transactions_labels_and_terminal_state():
    """An upstream system that wrote the card number into the ids: the job keys and counts by
    the token, so a transaction, its label and its terminal still meet, and no id in a row or
    in the state holds the number."""
    ids = {"transaction_id": f"tx-{CARD}", "customer_id": CARD, "terminal_id": f"T{CARD}"}
    first = transaction(**ids, merchant_id=CARD, device_id=CARD, region=CARD, event_time=at(0))
    fraud = label_event(1, 0, 0.1, True) | ids
    second = transaction(**ids | {"transaction_id": "tx-2"}, event_time=at(0.2))
    rows, states = run_stage([("transactions", first), ("labels", fraud), ("transactions", second)])
    token = card_token(CARD, KEY)
    assert [(account, kind) for account, kind, _ in rows] == [
        (token, "transaction"), (token, "label"), (token, "transaction")
    ]  # fmt: skip
    assert list(states) == [f"T{token}"]
    assert features_of(rows)["tx-2"]["terminal_nb_tx_1day"] == 2.0
    assert features_of(rows)["tx-2"]["terminal_risk_1day"] == 1.0  # the label counted
    assert orjson.loads(rows[1][2])[0] == orjson.loads(rows[0][2])[0] == f"tx-{token}"
    assert not any(CARD in str(row) for row in rows) and CARD not in str(states)
