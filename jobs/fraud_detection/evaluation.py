"""Scoring alerts against the simulator's labels: recall and precision per fraud scenario."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# The rule written for each rule scenario of the simulator.
RULE_FOR_SCENARIO = {
    "impossible_travel": "impossibleTravel",
    "spending_spree": "spendingSpree",
    "card_testing": "cardTesting",
    "high_amount": "amountThreshold",
}


def card_history(transactions: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Transaction id -> how many transactions its card made before it (event-time order)."""
    seen: dict[str, int] = defaultdict(int)
    history = {}
    for event in sorted(transactions, key=lambda e: (e["event_time"], e["transaction_id"])):
        history[event["transaction_id"]] = seen[event["card_number"]]
        seen[event["card_number"]] += 1
    return history


def scenario_scores(
    scenarios: dict[str, str | None],
    alerts: Iterable[dict[str, Any]],
    history: dict[str, int] | None = None,
    min_history: int = 5,
) -> dict[str, dict[str, float]]:
    """Per rule scenario: recall and precision of its rule, and the counts behind them.

    `scenarios` maps every transaction id to its labelled scenario (None when legitimate).
    Recall: the share of the scenario's fraudulent transactions named in an alert of its rule.
    Precision: the share of the rule's alerts whose triggering (last) transaction is fraud.
    With `history` (see card_history), amountThreshold also gets `recall_with_history`: recall
    over the transactions whose card had at least `min_history` earlier transactions.
    """
    covered: dict[str, set[str]] = defaultdict(set)
    raised: dict[str, int] = defaultdict(int)
    correct: dict[str, int] = defaultdict(int)
    for alert in alerts:
        rule, ids = alert["rule"], alert["transaction_ids"]
        covered[rule].update(ids)
        raised[rule] += 1
        correct[rule] += scenarios.get(ids[-1]) is not None
    scores = {}
    for scenario, rule in RULE_FOR_SCENARIO.items():
        fraud = {tx for tx, label in scenarios.items() if label == scenario}
        if not fraud:
            continue
        found = len(fraud & covered[rule])
        scores[scenario] = {
            "rule": rule,
            "fraud_transactions": len(fraud),
            "detected": found,
            "recall": round(found / len(fraud), 4),
            "alerts": raised[rule],
            "precision": round(correct[rule] / raised[rule], 4) if raised[rule] else 0.0,
        }
        if rule == "amountThreshold" and history is not None:
            judged = {tx for tx in fraud if history.get(tx, 0) >= min_history}
            scores[scenario]["with_history"] = len(judged)
            scores[scenario]["recall_with_history"] = (
                round(len(judged & covered[rule]) / len(judged), 4) if judged else 0.0
            )
    return scores


def labelled_scenarios(label_values: Iterable[dict[str, Any]]) -> dict[str, str | None]:
    """Transaction id -> scenario (None when legitimate) from label events."""
    return {
        label["transaction_id"]: (label["scenario"] if label["is_fraud"] else None)
        for label in label_values
        if "transaction_id" in label
    }


def card_precision_at_k(days: list, cards: list, scores: list, frauds: list, k: int = 100):
    """The Handbook's CP@k: per day, the share of fraudulent cards among the k cards of highest
    score (a card scores its highest transaction of the day), averaged over the days."""
    best: dict = defaultdict(dict)
    fraudulent: dict = defaultdict(set)
    for day, card, score, fraud in zip(days, cards, scores, frauds, strict=True):
        best[day][card] = max(score, best[day].get(card, float("-inf")))
        if fraud:
            fraudulent[day].add(card)
    precisions = []
    for day, card_scores in best.items():
        top = sorted(card_scores, key=lambda card: -card_scores[card])[:k]
        precisions.append(sum(card in fraudulent[day] for card in top) / k)
    return sum(precisions) / len(precisions) if precisions else 0.0
