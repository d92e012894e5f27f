"""Per-account detection: rules, the model's features and the labels, account by account.

The detection query groups transactions and their labels by account (`customer_id`) and runs
`detect` on each account's new input with the account's state (`AccountState`: its cards'
recent history, running totals, and what was decided about transactions not labelled yet).
`detect` is pure: it sorts each batch's transactions by event time, so in-order input gives the
same rows whatever the micro-batch boundaries. `detect_for_accounts` wraps it for
applyInPandasWithState; `score_batches` then scores the model's features in bulk.

Every output row has OUTPUT_SCHEMA, `kind` saying what it is:
- `transaction`: one per accepted transaction (`dimension` = merchant category, `features`);
- `alert`: a rule's (or, after scoring, the model's) alert (`dimension` = rule, `payload` = the
  alert document without detection time);
- `label`: a label joined with its transaction (`features` to re-score, `payload` = [is_fraud,
  scenario, rules that alerted]); scoring turns it into `outcome` rows (`dimension` =
  `rule|outcome|scenario`, see outcomes.py);
- `dead_letter`: rejected input, late transactions included (`dimension` = reason);
- `account`: the account's running totals after the batch (`dimension` = customer id).
"""

from __future__ import annotations

import base64
import json
import warnings
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from fraud_detection.alerts import alert_id, rfc3339
from fraud_detection.events import Rejection, dead_letter, decode_event, transaction_record
from fraud_detection.model import FEATURES, card_features, fraud_scores, load_model
from fraud_detection.outcomes import LABEL_FIELDS, outcome_dimensions, parse_label
from fraud_detection.rules import CardState, Txn, longest_window_seconds

# PySpark's applyInPandasWithState pads its output with all-NA frames, which pandas 2 warns
# about on every batch (a warning about pandas' future behaviour, not about our data).
warnings.filterwarnings(
    "ignore", "The behavior of DataFrame concatenation with empty or all-NA", FutureWarning
)
# The fields of an accepted transaction, as `detect` reads them.
RECORD_FIELDS = (
    "transaction_id",
    "event_ms",
    "amount",
    "merchant_category",
    "latitude",
    "longitude",
    "region",
    "channel",
    "device_id",
    "card_token",
    "customer_id",
    "terminal_id",
    "merchant_id",
    "currency",
    "kafka_ms",
    "topic",
    "partition",
    "offset",
)
STATE_SCHEMA = "account string"
OUTPUT_SCHEMA = (
    "kind string, event_ms long, kafka_ms long, dimension string, amount double, "
    "features binary, payload string"
)
OUTPUT_COLUMNS = tuple(part.split()[0] for part in OUTPUT_SCHEMA.split(", "))
MODEL_RULE = "model"
# A card unused this long (event time) is forgotten; the account keeps its totals.
CARD_TTL_MS = 30 * 86_400_000
# What was decided about a transaction is kept for its label this long (event time), for at
# most this many transactions per account; a label arriving later counts as `unknown`.
UNLABELLED_TTL_MS = 7 * 86_400_000
UNLABELLED_KEPT = 50
WAITING_KEPT = 100  # labels ahead of their transaction; more are counted `unknown`


@dataclass
class AccountState:
    """One account's cards (their recent history) and its running totals."""

    cards: dict[str, CardState] = field(default_factory=dict)
    transactions: int = 0
    amount_total: float = 0.0
    alerts: int = 0
    latest_ms: int = 0
    # transaction id -> [event ms, rules that named it, base64 of its features] until labelled
    unlabelled: dict[str, list] = field(default_factory=dict)
    waiting: list[list] = field(default_factory=list)  # labels ahead of their transaction

    def to_json(self) -> str:
        return json.dumps(
            [
                {token: card.to_json() for token, card in self.cards.items()},
                self.transactions,
                self.amount_total,
                self.alerts,
                self.latest_ms,
                self.unlabelled,
                self.waiting,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> AccountState:
        cards, transactions, amount_total, alerts, latest_ms, unlabelled, waiting = json.loads(text)
        return cls(
            {token: CardState.from_json(card) for token, card in cards.items()},
            transactions,
            amount_total,
            alerts,
            latest_ms,
            unlabelled,
            waiting,
        )


@dataclass(frozen=True)
class DetectSettings:
    """What `detect` needs from the job configuration."""

    rules: dict[str, dict[str, Any]]
    lateness_ms: int
    with_features: bool
    key: bytes

    @property
    def keep_seconds(self) -> float:
        return longest_window_seconds(self.rules)


def _letter(record: dict[str, Any], rejection: Rejection, settings: DetectSettings) -> tuple:
    """A dead-letter row for an accepted transaction the account cannot evaluate; its payload is
    the tokenised transaction."""
    event = {name: record[name] for name in RECORD_FIELDS[:14]}
    event["event_time"] = rfc3339(datetime.fromtimestamp(event.pop("event_ms") / 1000, UTC))
    letter = dead_letter(
        json.dumps(event).encode(),
        rejection,
        record["topic"],
        record["partition"],
        record["offset"],
        datetime.now(UTC),
        settings.key,
    )
    return ("dead_letter", record["event_ms"], record["kafka_ms"], rejection.reason, 0.0, None,
            json.dumps(letter))  # fmt: skip


def _late(record: dict[str, Any], latest_ms: int, settings: DetectSettings) -> Rejection:
    watermark = rfc3339(datetime.fromtimestamp((latest_ms - settings.lateness_ms) / 1000, UTC))
    event_time = rfc3339(datetime.fromtimestamp(record["event_ms"] / 1000, UTC))
    return Rejection(
        "late_event",
        f"event_time {event_time} is before the account's watermark {watermark} "
        f"(latest event minus watermarkDelay): it can no longer be evaluated in order",
    )


def _seen(account: AccountState, card: CardState, transaction_id: str) -> bool:
    """Whether the account has already evaluated this transaction (a duplicate delivery)."""
    return transaction_id in account.unlabelled or any(
        past.transaction_id == transaction_id for past in card.recent
    )


def alert_row(
    rule: str,
    score: float,
    explanation: dict[str, Any],
    transaction_ids: list[str],
    context: list[str],
    event_ms: int,
    kafka_ms: int,
) -> tuple:
    """An `alert` row; `context` is [transaction id, card token, customer id, terminal id] of
    the transaction that triggered it."""
    _, card_token, customer_id, terminal_id = context
    document = {
        "alert_id": alert_id(rule, transaction_ids),
        "rule": rule,
        "score": score,
        "explanation": explanation,
        "transaction_ids": list(transaction_ids),
        "card_token": card_token,
        "customer_id": customer_id,
        "terminal_id": terminal_id,
    }
    return ("alert", event_ms, kafka_ms, rule, score, None, json.dumps(document, sort_keys=True))


def detect(
    account: AccountState,
    records: list[dict[str, Any]],
    settings: DetectSettings,
    labels: list[list] = (),
) -> list[tuple]:
    """Output rows for an account's new transactions (in event-time order), then its new labels
    (LABEL_FIELDS lists); updates `account`.

    A transaction more than `lateness_ms` older than the account's latest is a dead letter. A
    label is joined with what was decided about its transaction; one ahead of the account's
    latest transaction waits for it.
    """
    rows: list[tuple] = []
    keep_seconds = settings.keep_seconds
    for record in sorted(records, key=lambda r: (r["event_ms"], r["transaction_id"])):
        if record["event_ms"] < account.latest_ms - settings.lateness_ms:
            rows.append(_letter(record, _late(record, account.latest_ms, settings), settings))
            continue
        card = account.cards.setdefault(record["card_token"], CardState())
        if _seen(account, card, record["transaction_id"]):
            duplicate = Rejection("duplicate_transaction", "this transaction_id was evaluated")
            rows.append(_letter(record, duplicate, settings))
            continue
        txn = Txn.from_record(record, record["event_ms"] / 1000)
        features = None
        if settings.with_features:
            features = array("d", card_features(card, txn)).tobytes()
        hits = card.observe(txn, settings.rules, keep_seconds)
        context = [record["transaction_id"], record["card_token"], record["customer_id"],
                   record["terminal_id"]]  # fmt: skip
        rows.append(("transaction", record["event_ms"], record["kafka_ms"],
                     record["merchant_category"], record["amount"], features,
                     json.dumps(context)))  # fmt: skip
        for hit in hits:
            rows.append(
                alert_row(
                    hit.rule,
                    hit.score,
                    hit.explanation,
                    hit.transaction_ids,
                    context,
                    record["event_ms"],
                    record["kafka_ms"],
                )
            )
        account.unlabelled[record["transaction_id"]] = [
            record["event_ms"], [], base64.b64encode(features).decode() if features else None
        ]  # fmt: skip
        for hit in hits:
            for transaction_id in hit.transaction_ids:
                if transaction_id in account.unlabelled:
                    account.unlabelled[transaction_id][1].append(hit.rule)
        account.transactions += 1
        account.amount_total = round(account.amount_total + record["amount"], 2)
        account.alerts += len(hits)
        account.latest_ms = max(account.latest_ms, record["event_ms"])
    rows.extend(_join_labels(account, [*account.waiting, *labels]))
    horizon = account.latest_ms / 1000 - CARD_TTL_MS / 1000
    account.cards = {t: c for t, c in account.cards.items() if c.latest >= horizon}
    oldest = account.latest_ms - UNLABELLED_TTL_MS
    kept = [(tx, entry) for tx, entry in account.unlabelled.items() if entry[0] >= oldest]
    account.unlabelled = dict(kept[-UNLABELLED_KEPT:])
    return rows


def _join_labels(account: AccountState, labels: list[list]) -> list[tuple]:
    """`label` rows for the labels whose transaction the account has seen; the others wait."""
    rows, account.waiting = [], []
    for label in labels:
        transaction_id, event_ms, is_fraud, scenario, kafka_ms = label
        entry = account.unlabelled.pop(transaction_id, None)
        if entry is None and event_ms > account.latest_ms and len(account.waiting) < WAITING_KEPT:
            account.waiting.append(label)
            continue
        rules, features = (sorted(set(entry[1])), entry[2]) if entry else ([], None)
        features = base64.b64decode(features) if features else None
        rows.append(("label", event_ms, kafka_ms, scenario, float(is_fraud), features,
                     json.dumps([is_fraud, scenario, rules, entry is not None])))  # fmt: skip
    return rows


def account_row(customer_id: str, account: AccountState) -> tuple:
    """The account's running totals, as an `account` output row."""
    document = {
        "customer_id": customer_id,
        "transactions": account.transactions,
        "amount_total": account.amount_total,
        "alerts": account.alerts,
        "last_seen": rfc3339(datetime.fromtimestamp(account.latest_ms / 1000, UTC)),
    }
    return ("account", account.latest_ms, 0, customer_id, account.amount_total, None,
            json.dumps(document))  # fmt: skip


def parse_input(
    account: str, value: bytes | None, meta: str, labels_topic: str | None, key: bytes, now
) -> tuple[str, Any] | None:
    """A Kafka record of `account` parsed: ("transaction", record with RECORD_FIELDS),
    ("label", LABEL_FIELDS list), ("dead_letter", document), or None for a label that is not
    about a transaction. `meta` is "topic,partition,offset,kafka ms". Never raises."""
    topic, partition, offset, kafka_ms = meta.rsplit(",", 3)
    partition, offset, kafka_ms = int(partition), int(offset), int(kafka_ms)
    event, rejection = decode_event(value)
    record = None
    if event is not None:
        if topic == labels_topic:
            record, rejection = parse_label(event)
            if record is None and rejection is None:
                return None
        else:
            record, rejection = transaction_record(event, key)
    if record is not None and record["customer_id"] != account:
        record, rejection = None, Rejection("schema_violation", "customer_id is ambiguous")
    if record is None:
        return "dead_letter", dead_letter(value, rejection, topic, partition, offset, now, key)
    record["kafka_ms"] = kafka_ms
    if topic == labels_topic:
        return "label", [record[name] for name in LABEL_FIELDS]
    record.update(
        event_ms=int(record["event_time"].timestamp() * 1000),
        topic=topic,
        partition=partition,
        offset=offset,
    )
    return "transaction", record


def detect_for_accounts(settings: DetectSettings, labels_topic: str | None):
    """The function for applyInPandasWithState, keyed by account: parses the account's Kafka
    records (the key comes from the raw JSON; "" when there is none) and runs `detect`."""

    def run(key: tuple, frames: Iterator[pd.DataFrame], state) -> Iterator[pd.DataFrame]:
        now = datetime.now(UTC)
        records, labels, rows = [], [], []
        for frame in frames:
            for value, meta in zip(frame["value"].tolist(), frame["meta"].tolist(), strict=True):
                parsed = parse_input(key[0], value, meta, labels_topic, settings.key, now)
                if parsed is None:
                    continue
                kind, found = parsed
                if kind == "transaction":
                    records.append(found)
                elif kind == "label":
                    labels.append(found)
                else:
                    letter = json.dumps(found)
                    rows.append(("dead_letter", 0, 0, found["reason"], 0.0, None, letter))
        if records or labels:
            account = AccountState.from_json(state.get[0]) if state.exists else AccountState()
            rows += detect(account, records, settings, labels)
            if account.transactions:
                rows.append(account_row(key[0], account))
            state.update((account.to_json(),))
        if rows:
            yield pd.DataFrame.from_records(rows, columns=OUTPUT_COLUMNS)

    return run


def _features(frame: pd.DataFrame) -> np.ndarray:
    values = np.frombuffer(b"".join(frame["features"]), dtype=np.float64)
    return values.reshape(len(frame), len(FEATURES))


def model_alerts(frame: pd.DataFrame, classifier, threshold: float) -> list[tuple]:
    """An alert of rule `model` for every `transaction` row scoring at or above `threshold`."""
    transactions = frame[frame["kind"] == "transaction"]
    if transactions.empty or classifier is None:
        return []
    features = _features(transactions)
    scores = fraud_scores(classifier, features)
    alerts = []
    for index in np.flatnonzero(scores >= threshold):
        row = transactions.iloc[index]
        context = json.loads(row["payload"])
        explanation = {
            "threshold": threshold,
            "features": {
                name: round(float(value), 4)
                for name, value in zip(FEATURES, features[index], strict=True)
            },
        }
        score = round(float(scores[index]), 4)
        alerts.append(alert_row(MODEL_RULE, score, explanation, [context[0]], context,
                                int(row["event_ms"]), int(row["kafka_ms"])))  # fmt: skip
    return alerts


def label_outcomes(frame: pd.DataFrame, classifier, threshold: float) -> list[tuple]:
    """`outcome` rows for the `label` rows, the model's decision re-scored from the features
    kept with the transaction (the same features give the same score)."""
    labels = frame[frame["kind"] == "label"]
    if labels.empty:
        return []
    decided = labels["features"].notna().to_numpy()
    model_alerted = np.zeros(len(labels), dtype=bool)
    if classifier is not None and decided.any():
        scores = fraud_scores(classifier, _features(labels[decided]))
        model_alerted[decided] = scores >= threshold
    rows = []
    for (_, row), alerted in zip(labels.iterrows(), model_alerted, strict=True):
        is_fraud, scenario, rules, known = json.loads(row["payload"])
        model = bool(alerted) if known else None
        for dimension in outcome_dimensions(is_fraud, scenario, rules, model):
            rows.append(("outcome", int(row["event_ms"]), 0, dimension, 1.0, None, None))
    return rows


def score_batches(model_folder: str, threshold: float):
    """A mapInPandas function: model alerts and label outcomes added; the features, contexts
    and label rows dropped."""

    def score(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = load_model(model_folder)[0] if model_folder else None
        for frame in frames:
            added = [
                *model_alerts(frame, classifier, threshold),
                *label_outcomes(frame, classifier, threshold),
            ]
            kept = frame[frame["kind"] != "label"].copy()
            kept.loc[kept["kind"] == "transaction", ["features", "payload"]] = None
            if added:
                kept = pd.concat([kept, pd.DataFrame.from_records(added, columns=OUTPUT_COLUMNS)])
            yield kept

    return score
