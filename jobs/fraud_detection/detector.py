"""The per-card stateful function run by applyInPandasWithState: rules, then the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from fraud_detection.alerts import alert_id
from fraud_detection.model import FEATURES, card_features, fraud_scores, load_model
from fraud_detection.rules import CardState, Txn

STATE_SCHEMA = "card string"
ALERT_SCHEMA = (
    "alert_id string, rule string, score double, explanation string, "
    "transaction_ids array<string>, card_token string, customer_id string, terminal_id string, "
    "event_ms long, kafka_ms long"
)
ALERT_COLUMNS = tuple(part.split()[0] for part in ALERT_SCHEMA.split(", "))
# What the stateful operator emits: rule alerts, and (rule `model`) every transaction with its
# features for the model to score.
CANDIDATE_SCHEMA = ALERT_SCHEMA + ", features array<double>"
CANDIDATE_COLUMNS = tuple(part.split()[0] for part in CANDIDATE_SCHEMA.split(", "))
MODEL_RULE = "model"
# A card idle this long (in event time) is forgotten, amount history included.
STATE_TTL_MS = 30 * 86_400_000


def to_txn(row: dict[str, Any]) -> Txn:
    return Txn(
        row["transaction_id"],
        row["event_ms"] / 1000,
        float(row["amount"]),
        row["merchant_category"],
        float(row["latitude"]),
        float(row["longitude"]),
        row["region"],
        row["channel"],
        row["device_id"],
    )


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts in event-time order (plain lists: far cheaper than pandas per row)."""
    columns = {name: frame[name].tolist() for name in frame.columns}
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    return sorted(rows, key=lambda row: (row["event_ms"], row["transaction_id"]))


def card_alerts(
    card: CardState, card_token: str, frame: pd.DataFrame, rules: dict, with_features: bool
) -> list[dict[str, Any]]:
    """Run the rules over one card's new transactions in event-time order (updates `card`).

    With `with_features`, every transaction also yields a `model` candidate with its features.
    """
    alerts = []
    for row in frame_rows(frame):
        txn = to_txn(row)
        context = {
            "card_token": card_token,
            "customer_id": row["customer_id"],
            "terminal_id": row["terminal_id"],
            "event_ms": int(row["event_ms"]),
            "kafka_ms": int(row["kafka_ms"]),
        }
        if with_features:
            alerts.append(
                {
                    "alert_id": "",
                    "rule": MODEL_RULE,
                    "score": 0.0,
                    "explanation": "",
                    "transaction_ids": [txn.transaction_id],
                    "features": card_features(card, txn),
                    **context,
                }
            )
        for hit in card.observe(txn, rules):
            alerts.append(
                {
                    "alert_id": alert_id(hit.rule, hit.transaction_ids),
                    "rule": hit.rule,
                    "score": hit.score,
                    "explanation": json.dumps(hit.explanation, sort_keys=True),
                    "transaction_ids": list(hit.transaction_ids),
                    "features": None,
                    **context,
                }
            )
    return alerts


def detect_for_card(rules: dict, with_features: bool):
    """The function for applyInPandasWithState, keyed by card token."""

    def detect(key: tuple, frames: Iterator[pd.DataFrame], state) -> Iterator[pd.DataFrame]:
        if state.hasTimedOut:
            state.remove()
            return
        card = CardState.from_json(json.loads(state.get[0])) if state.exists else CardState()
        frame = pd.concat(list(frames), ignore_index=True)
        alerts = card_alerts(card, key[0], frame, rules, with_features)
        state.update((json.dumps(card.to_json()),))
        state.setTimeoutTimestamp(int(card.latest * 1000) + STATE_TTL_MS)
        if alerts:
            yield pd.DataFrame(alerts, columns=list(CANDIDATE_COLUMNS))

    return detect


def model_alerts(frame: pd.DataFrame, classifier, threshold: float) -> pd.DataFrame:
    """Score the `model` candidates; keep those at or above `threshold`, and every rule alert."""
    candidates = frame["rule"] == MODEL_RULE
    scored = frame[candidates].copy()
    scored["score"] = fraud_scores(classifier, list(scored["features"]))
    scored = scored[scored["score"] >= threshold]
    scored["alert_id"] = [alert_id(MODEL_RULE, ids) for ids in scored["transaction_ids"]]
    scored["explanation"] = [
        json.dumps(
            {
                "threshold": threshold,
                "features": {
                    name: round(float(v), 4) for name, v in zip(FEATURES, row, strict=True)
                },
            },
            sort_keys=True,
        )
        for row in scored["features"]
    ]
    kept = pd.concat([frame[~candidates], scored], ignore_index=True)
    return kept[list(ALERT_COLUMNS)]


def score_batches(model_folder: str, threshold: float):
    """A mapInPandas function applying model_alerts with the model loaded once per worker."""

    def score(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = load_model(model_folder)[0] if model_folder else None
        for frame in frames:
            if classifier is None:
                yield frame[frame["rule"] != MODEL_RULE][list(ALERT_COLUMNS)]
            else:
                yield model_alerts(frame, classifier, threshold)

    return score
