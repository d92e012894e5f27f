"""The per-account detection function and the label join, on hand-made events."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fraud_detection.config import DEFAULT_RULES
from fraud_detection.detector import (
    OUTPUT_COLUMNS,
    AccountState,
    DetectSettings,
    detect_bucket,
    read_inputs,
    record_model_alert,
    summarise,
)
from fraud_detection.harness import detect, encode, transaction
from fraud_detection.intake import INTAKE_COLUMNS, IntakeSettings, intake_bucket
from fraud_detection.intake import read as read_records
from fraud_detection.model import FEATURES
from fraud_detection.outcomes import outcome_dimensions

MINUTE_MS = 60_000
START_MS = 1_767_614_400_000  # 2026-01-05 12:00 UTC
SETTINGS = DetectSettings(DEFAULT_RULES, 10 * MINUTE_MS, True, b"k" * 16)


def record(number: int, minutes: float, amount: float = 20.0, card: str = "tok_a", **changes):
    base = {
        "transaction_id": f"tx-{number}", "event_ms": START_MS + int(minutes * MINUTE_MS),
        "amount": amount, "merchant_category": "grocery", "latitude": 48.85, "longitude": 2.35,
        "region": "FR-IDF", "channel": "pos", "device_id": None, "card_token": card,
        "customer_id": "c-1", "terminal_id": "t-1", "merchant_id": "m-1", "currency": "EUR",
        "kafka_ms": START_MS, "topic": "transactions", "partition": 0, "offset": number,
        "terminal_features": [1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
    }  # fmt: skip
    return {**base, **changes}


def kinds(rows) -> list[str]:
    return [row[0] for row in rows]


def alerts(rows) -> list[dict]:
    return [json.loads(row[-1]) for row in rows if row[0] == "alert"]


def test_every_transaction_gets_a_row_with_its_features_and_the_totals_add_up():
    account = AccountState()
    rows = detect(account, [record(1, 0, 10.0), record(2, 5, 32.5)], SETTINGS)
    assert kinds(rows) == ["transaction", "transaction"]
    assert all(len(row[5]) == 8 * len(FEATURES) for row in rows)  # float64 features
    assert np.frombuffer(rows[0][5])[-6:].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert (account.transactions, account.amount_total) == (2, 42.5)
    assert account.latest_ms == START_MS + 5 * MINUTE_MS


def test_a_transaction_later_than_the_account_watermark_is_a_dead_letter_with_its_reason():
    account = AccountState()
    detect(account, [record(1, 60)], SETTINGS)
    rows = detect(account, [record(2, 45), record(3, 55)], SETTINGS)  # 15 and 5 minutes late
    assert kinds(rows) == ["dead_letter", "transaction"]
    letter = json.loads(rows[0][-1])
    assert letter["reason"] == "late_event" and rows[0][3] == "late_event"
    assert (letter["source_topic"], letter["offset"]) == ("transactions", 2)
    assert json.loads(letter["payload"])["transaction_id"] == "tx-2"
    assert "watermark" in letter["error"]
    assert account.transactions == 2


def test_a_late_transactions_dead_letter_shows_its_tokens_as_the_alerts_do():
    """Its payload is the job's tokenised record, not redacted again: a token with a long run of
    decimal digits (one in about 30) would otherwise become a token of a token."""
    token = "tok_59794f6b1d900287469576321c466e36"  # a run of 15 digits in the middle
    account = AccountState()
    detect(account, [record(1, 60, card=token, customer_id=token)], SETTINGS)
    rows = detect(account, [record(2, 45, card=token, customer_id=token)], SETTINGS)
    payload = json.loads(json.loads(rows[0][-1])["payload"])
    assert (payload["card_token"], payload["customer_id"]) == (token, token)


def test_alerts_do_not_depend_on_micro_batch_boundaries():
    events = [record(n, n, 1.0 if n < 3 else 30.0 * n) for n in range(12)]
    whole = alerts(detect(AccountState(), events, SETTINGS))
    split, account = [], AccountState()
    for part in (events[:4], events[4:9], events[9:]):
        split += alerts(detect(account, part, SETTINGS))
        account = AccountState.from_json(account.to_json())
    assert whole and whole == split
    assert {alert["rule"] for alert in whole} >= {"cardTesting", "velocity"}


def test_rules_run_per_card_within_an_account():
    # a probe on one card and a large payment on another card of the same account
    rows = detect(
        AccountState(), [record(1, 0, 1.0, "tok_a"), record(2, 1, 400.0, "tok_b")], SETTINGS
    )
    assert "cardTesting" not in {alert["rule"] for alert in alerts(rows)}
    rows = detect(
        AccountState(), [record(1, 0, 1.0, "tok_a"), record(2, 1, 400.0, "tok_a")], SETTINGS
    )
    assert "cardTesting" in {alert["rule"] for alert in alerts(rows)}


def label(number: int, minutes: float, is_fraud: bool, scenario: str = "") -> list:
    return [f"tx-{number}", START_MS + int(minutes * MINUTE_MS), is_fraud, scenario, START_MS]


def test_a_label_is_joined_with_the_rules_that_named_its_transaction_the_model_included():
    probes_then_large = [record(1, 0, 1.0), record(2, 1, 1.5), record(3, 2, 400.0)]
    account = AccountState()
    detect(account, probes_then_large, SETTINGS)
    record_model_alert(account, "tx-1")
    assert account.alerts == 2  # cardTesting, then the model
    account = AccountState.from_json(account.to_json())
    rows = detect(account, [], SETTINGS, [label(1, 0, True, "card_testing"), label(9, 1, False)])
    labels = [row for row in rows if row[0] == "label"]
    assert len(labels) == 2
    first = labels[0][-1]
    assert first == [True, "card_testing", ["cardTesting", "model"], True]
    assert labels[1][-1] == [False, "", [], False]  # never seen: unknown


def test_an_account_stored_as_jobs_before_stored_it_still_joins_its_labels():
    account = AccountState()
    detect(account, [record(1, 0, 1.0), record(2, 1, 1.5), record(3, 2, 400.0)], SETTINGS)
    cards, *totals, (ids, event_ms, rules), waiting = json.loads(account.to_json())
    unlabelled = {tx: [ms, named] for tx, ms, named in zip(ids, event_ms, rules, strict=True)}
    older = AccountState.from_json(json.dumps([cards, *totals, unlabelled, waiting]))
    assert older == AccountState.from_json(account.to_json()) and len(older.unlabelled) == 3
    rows = detect(older, [], SETTINGS, [label(1, 0, True, "card_testing")])
    assert [row[-1] for row in rows] == [[True, "card_testing", ["cardTesting"], True]]


def test_a_label_ahead_of_its_transaction_waits_for_it():
    account = AccountState()
    rows = detect(account, [record(1, 0)], SETTINGS, [label(2, 5, False)])
    assert kinds(rows) == ["transaction"] and len(account.waiting) == 1
    rows = detect(AccountState.from_json(account.to_json()), [record(2, 5)], SETTINGS)
    assert kinds(rows) == ["transaction", "label"]


def test_outcomes_count_once_under_any_and_once_per_alerting_rule():
    assert outcome_dimensions(True, "card_testing", ["cardTesting"], False) == [
        "any|true_positive|card_testing", "cardTesting|true_positive|card_testing",
    ]  # fmt: skip
    assert outcome_dimensions(False, "", ["velocity"], True) == [
        "any|false_positive|", "model|false_positive|", "velocity|false_positive|",
    ]  # fmt: skip
    assert outcome_dimensions(True, "high_amount", [], False) == ["any|false_negative|high_amount"]
    assert outcome_dimensions(False, "", [], False) == ["any|true_negative|"]
    assert outcome_dimensions(True, "skimmer", [], None) == ["any|unknown|skimmer"]


def test_a_label_with_an_impossible_date_is_rejected_not_raised():
    from fraud_detection.harness import label as label_event
    from fraud_detection.outcomes import parse_label

    impossible = "2026-02-30T08:15:02.123Z"
    label = label_event(event_time=impossible, label_time=impossible)
    record, rejection = parse_label(label, b"k")
    assert record is None and rejection.reason == "invalid_event_time"
    label["event_time"] = label["label_time"] = "2026-02-03T08:15:02.123Z"
    record, rejection = parse_label(label, b"k")
    assert rejection is None and record["event_ms"] > 0


def test_a_duplicate_delivery_is_a_dead_letter_not_a_second_transaction():
    account = AccountState()
    detect(account, [record(1, 0), record(2, 1)], SETTINGS)
    rows = detect(account, [record(2, 1), record(3, 2)], SETTINGS)
    assert kinds(rows) == ["dead_letter", "transaction"]
    assert json.loads(rows[0][-1])["reason"] == "duplicate_transaction"
    assert account.transactions == 3


def test_labels_ahead_of_their_transaction_wait_in_bounded_numbers():
    from fraud_detection.detector import WAITING_KEPT

    account = AccountState()
    future = [label(100 + n, 60 * 24 * 365, False) for n in range(WAITING_KEPT + 5)]
    rows = detect(account, [record(1, 0)], SETTINGS, future)
    assert len(account.waiting) == WAITING_KEPT
    assert [row[-1][3] for row in rows if row[0] == "label"] == [False] * 5


def bucket_input(
    events: list[dict], offset: int = 0, kafka_ms: int = START_MS
) -> dict[str, tuple[list, list]]:
    """The input of the account stage for Kafka records of `events` (Kafka timestamp
    `kafka_ms`): the first stage's rows (parsed, terminal features added), as the bucket
    function reads them."""
    frame = pd.DataFrame(
        {
            "terminal": [event["terminal_id"] for event in events],
            "value": [encode(event) for event in events],
            "meta": [f"transactions,0,{offset + n},{kafka_ms}" for n in range(len(events))],
        }
    )
    parsed, letters = read_records(iter([frame]), IntakeSettings(SETTINGS.key, "labels"))
    assert letters == []
    rows, _ = intake_bucket({}, parsed)
    inputs, letters = read_inputs(iter([pd.DataFrame.from_records(rows, columns=INTAKE_COLUMNS)]))
    assert letters == []
    return inputs


def test_a_bucket_keeps_each_account_and_forgets_those_without_input_for_90_days():
    first = [
        transaction(transaction_id="a-1", customer_id="c-a", event_time="2026-01-01T08:00:00.000Z"),
        transaction(transaction_id="b-1", customer_id="c-b", event_time="2026-01-01T09:00:00.000Z"),
        # a wrong clock, years ahead: the other accounts do not look idle next to it
        transaction(transaction_id="f-1", customer_id="c-f", event_time="2099-01-01T09:00:00.000Z"),
    ]
    rows, states = detect_bucket({}, bucket_input(first), SETTINGS, None, 0.8)
    output = pd.DataFrame.from_records(summarise(rows), columns=OUTPUT_COLUMNS)
    totals = output[output["kind"] == "transaction"]
    assert totals["count"].sum() == 3 and set(output["kind"]) == {"transaction", "account"}
    assert set(states) == {"c-a", "c-b", "c-f"}
    later = transaction(
        transaction_id="b-2", customer_id="c-b", event_time="2026-04-15T09:00:00.000Z"
    )
    next_day = bucket_input([later], offset=3, kafka_ms=START_MS + 86_400_000)
    _, kept = detect_bucket(states, next_day, SETTINGS, None, 0.8)
    assert set(kept) == {"c-a", "c-b", "c-f"}  # Kafka time, not event time, makes accounts idle
    in_91_days = bucket_input([later], offset=4, kafka_ms=START_MS + 91 * 86_400_000)
    _, kept = detect_bucket(states, in_91_days, SETTINGS, None, 0.8)
    assert set(kept) == {"c-b"}
    assert AccountState.from_json(kept["c-b"][1]).transactions == 2


class AmountScores:
    """A stand-in classifier: the probability of fraud is the amount (the first feature) / 1000."""

    def predict_proba(self, rows):
        return np.column_stack([1 - rows[:, 0] / 1000, rows[:, 0] / 1000])


def test_a_model_alert_reaches_the_label_of_its_transaction_in_the_same_micro_batch():
    inputs = {
        "c-1": ([record(1, 0, 900.0), record(2, 1, 20.0)], [label(1, 0, True), label(2, 1, False)])
    }
    rows, states = detect_bucket({}, inputs, SETTINGS, AmountScores(), 0.8)
    assert [alert["transaction_ids"] for alert in alerts(rows) if alert["rule"] == "model"] == [
        ["tx-1"]
    ]
    decided = {row[-1][0]: row[-1][2] for row in rows if row[0] == "label"}
    assert decided == {True: ["model"], False: []}
    account = AccountState.from_json(states["c-1"][1])
    assert (account.transactions, account.alerts) == (2, 1)
    assert states["c-1"][0] == START_MS  # the Kafka timestamp of its latest input
