"""Model features, model alerts and the evaluation measures, on small hand-made inputs."""

from __future__ import annotations

import json
import random
from array import array

import pytest

from fraud_detection.config import DEFAULT_RULES
from fraud_detection.detector import OUTPUT_COLUMNS, label_outcomes, model_alerts, summarise
from fraud_detection.evaluation import card_precision_at_k, scenario_scores
from fraud_detection.model import CARD_FEATURES, FEATURES, card_features
from fraud_detection.rules import CardState, Txn

MONDAY_NOON = 1_767_614_400  # 2026-01-05 12:00 UTC


def txn(number, hours, amount, device=None, channel="pos"):
    return Txn(
        f"tx-{number}", MONDAY_NOON + hours * 3600, amount, "grocery", 48.85, 2.35, "PAR",
        channel, device,
    )  # fmt: skip


def test_card_features_count_and_average_over_1_7_30_days_including_the_transaction():
    card = CardState()
    for number, (hours, amount) in enumerate([(-24 * 20, 100.0), (-24 * 3, 40.0), (-2, 20.0)]):
        card.observe(txn(number, hours, amount, device="D1"), DEFAULT_RULES)
    features = dict(
        zip(CARD_FEATURES, card_features(card, txn(9, 0, 60.0, "D2", "ecommerce")), strict=True)
    )
    assert (features["card_nb_tx_1day"], features["card_nb_tx_7day"]) == (2, 3)
    assert features["card_nb_tx_30day"] == 4
    assert features["card_avg_amount_1day"] == pytest.approx(40.0)
    assert features["card_avg_amount_30day"] == pytest.approx(55.0)
    assert features["new_device"] == 1.0 and features["ecommerce"] == 1.0
    assert features["during_weekend"] == 0.0 and features["during_night"] == 0.0
    known = dict(zip(CARD_FEATURES, card_features(card, txn(10, 0, 60.0, "D1")), strict=True))
    assert known["new_device"] == 0.0


def card_windows(history: list[Txn], now: float) -> list[float]:
    """Counts and mean amounts over 1, 7 and 30 days, a transaction at `now` of 1.00 included,
    from the card's past transactions (the definition)."""
    found = []
    for days in (1, 7, 30):
        amounts = [past.amount for past in history if past.time > now - days * 86400]
        found.append((len(amounts) + 1, (sum(amounts) + 1.0) / (len(amounts) + 1)))
    return [count for count, _ in found] + [mean for _, mean in found]


def test_card_windows_hold_through_late_transactions_and_a_state_stored_by_older_jobs():
    rng = random.Random(11)
    card, history, now = CardState(), [], MONDAY_NOON
    for number in range(400):
        now += rng.uniform(0, 12 * 3600)
        time = now - rng.choice([0, 0, 0, 0, 300, 86400, 40 * 86400])  # some late, some expired
        found = card_features(card, txn(number, (time - MONDAY_NOON) / 3600, 1.0))
        assert found[3:9] == pytest.approx(card_windows(history, time), rel=1e-12), number
        purchase = txn(number, (time - MONDAY_NOON) / 3600, round(rng.uniform(1, 500), 2))
        card.observe(purchase, DEFAULT_RULES)
        history = [past for past in [*history, purchase] if past.time >= time - 30 * 86400]
    pairs = [list(pair) for pair in zip(card.amount_times, card.amount_values, strict=True)]
    older = CardState.from_json(  # as jobs before stored it: [time, amount] pairs, newest first
        {"recent": [past.as_list() for past in card.recent],
         "usual": [list(pair) for pair in zip(card.usual_ids, card.usual_amounts, strict=True)],
         "amounts": pairs[::-1], "devices": card.devices, "latest": card.latest}
    )  # fmt: skip
    probe = txn(999, (now + 60 - MONDAY_NOON) / 3600, 10.0)
    assert card_features(older, probe) == card_features(card, probe)


class FixedScores:
    """A stand-in classifier whose probability is the first feature (the amount) / 1000."""

    def predict_proba(self, rows):
        import numpy as np

        return np.column_stack([1 - rows[:, 0] / 1000, rows[:, 0] / 1000])


def transaction_row(transaction_id: str, amount: float) -> tuple:
    features = array("d", [amount] + [0.0] * (len(FEATURES) - 1)).tobytes()
    context = [transaction_id, "tok", "c", "t"]
    return ("transaction", 1, 2, "grocery", amount, features, context)


def test_model_alerts_are_raised_for_scores_at_or_above_the_threshold():
    transactions = [transaction_row("a", 900.0), transaction_row("b", 100.0)]
    found = model_alerts(transactions, FixedScores(), 0.8)
    assert [context for context, _ in found] == [transactions[0][-1]]
    alerts = [row for _, row in found]
    assert [(row[0], row[3]) for row in alerts] == [("alert", "model")]
    document = json.loads(alerts[0][-1])
    assert document["transaction_ids"] == ["a"] and document["score"] == pytest.approx(0.9)
    assert document["explanation"]["features"]["amount"] == 900.0
    assert document["explanation"]["threshold"] == 0.8


def test_label_outcomes_count_the_model_when_it_alerted_and_unknown_when_forgotten():
    labels = [
        ("label", 1, 2, "", 1.0, None, [True, "high_amount", ["model"], True]),
        ("label", 1, 2, "", 0.0, None, [False, "", [], True]),
        ("label", 1, 2, "", 0.0, None, [False, "", [], False]),
    ]
    outcomes = sorted(dimension for _, dimension in label_outcomes(labels))
    assert outcomes == [
        "any|true_negative|", "any|true_positive|high_amount", "any|unknown|",
        "model|true_positive|high_amount",
    ]  # fmt: skip


def test_a_bucket_s_output_keeps_alerts_and_sums_transactions_and_outcomes_per_minute():
    minute = 60_000

    def at(event_ms: int, row: tuple) -> tuple:
        return (row[0], event_ms, *row[2:])

    fraud = [True, "card_testing", ["cardTesting"], True]
    rows = [
        transaction_row("a", 900.0),
        at(minute + 1, transaction_row("b", 10.0)),
        at(minute + 5, transaction_row("c", 5.5)),
        ("alert", 1, 2, "velocity", 0.6, None, "{}"),
        ("dead_letter", 0, 0, "invalid_json", 0.0, None, "{}"),
        ("label", minute + 9, 2, "", 1.0, None, fraud),
    ]
    output = summarise(rows)
    assert all(len(row) == len(OUTPUT_COLUMNS) for row in output)
    by_kind: dict[str, list] = {}
    for row in output:
        by_kind.setdefault(row[0], []).append(row)
    assert [row[3] for row in by_kind["alert"]] == ["velocity"]
    assert [row[3] for row in by_kind["dead_letter"]] == ["invalid_json"]
    totals = {(row[1], row[3]): (row[5], row[4]) for row in by_kind["transaction"]}
    assert totals == {(0, "grocery"): (1, 900.0), (minute, "grocery"): (2, 15.5)}
    outcomes = {(row[1], row[3]): row[5] for row in by_kind["outcome"]}
    assert outcomes == {
        (minute, "any|true_positive|card_testing"): 1,
        (minute, "cardTesting|true_positive|card_testing"): 1,
    }


def test_card_precision_at_k_is_the_daily_share_of_fraudulent_cards_in_the_top_k():
    days = [0, 0, 0, 1, 1]
    cards = ["a", "b", "a", "a", "c"]
    scores = [0.9, 0.8, 0.1, 0.2, 0.7]
    frauds = [False, True, True, False, False]
    # day 0: card a (best 0.9) had a fraud that day; day 1: card c (best 0.7) had none
    assert card_precision_at_k(days, cards, scores, frauds, k=1) == pytest.approx(0.5)


def test_scenario_scores_count_covered_fraud_and_correct_alerts():
    scenarios = {"t1": "card_testing", "t2": "card_testing", "t3": None, "t4": "card_testing"}
    alerts = [
        {"rule": "cardTesting", "transaction_ids": ["t1", "t2"]},
        {"rule": "cardTesting", "transaction_ids": ["t3"]},
    ]
    score = scenario_scores(scenarios, alerts)["card_testing"]
    assert (score["recall"], score["precision"]) == (pytest.approx(2 / 3, abs=1e-3), 0.5)
