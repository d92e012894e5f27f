"""The second stage of the detection query: rules, the model and the labels, account by account.

The first stage (fraud_detection.intake) parses the records and gives each transaction its
terminal's features; this stage groups its transactions and labels by bucket of accounts
(`detect_for_buckets`, applyInPandasWithState keyed by bucket, STATE_SCHEMA); `detect_bucket`
takes each account with new input, with the account's state (`AccountState`: its cards' recent
history, running totals, and what was decided about transactions not labelled yet):
1. `evaluate` runs the rules and computes the model's features of its new transactions, sorted
   by event time, so in-order input gives the same rows whatever the micro-batch boundaries;
2. the model scores all the bucket's new transactions in one call (`model_alerts`), and each
   model alert is remembered with its transaction (`record_model_alert`);
3. `settle` joins the account's new labels with what was decided about their transactions.
`summarise` then turns the bucket's rows into the query's output.

Rows of `evaluate` and `settle`: (kind, event_ms, kafka_ms, dimension, amount, features, payload):
- `transaction`: one per accepted transaction (`dimension` = merchant category, `features` for
  the model, `payload` = the list [transaction id, card token, customer id, terminal id]);
- `alert`: a rule's or the model's alert (`dimension` = rule, `payload` = the alert document
  without detection time);
- `label`: a label joined with its transaction (`payload` = the list [is_fraud, scenario, rules
  that alerted (`model` included), whether the transaction was known]);
- `dead_letter`: rejected input, late transactions included (`dimension` = reason);
- `account`: the account's running totals after the batch (`dimension` = customer id).
Transaction and label rows stay in the bucket (`summarise` sums them up), so their payloads are
plain lists; the payloads of the other kinds are the JSON the sinks write.

The query's output rows (OUTPUT_SCHEMA) keep alerts, dead letters and accounts with `count` 1,
and replace transactions and labels by per-minute totals: `transaction` (`dimension` = merchant
category, `count`, `amount`) and `outcome` (`dimension` = `rule|outcome|scenario`, see
outcomes.py). Each bucket with new input adds a `bucket` row: its state as stored (`bucket_row`).
"""

from __future__ import annotations

import json
import warnings
from array import array
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import orjson
import pandas as pd

from fraud_detection.alerts import alert_id, rfc3339_ms
from fraud_detection.bucket_state import pack, store_entry, unpack, without_idle
from fraud_detection.config import DetectionSettings, duration_seconds
from fraud_detection.events import Rejection, dead_letter
from fraud_detection.intake import EVENT_FIELDS, RECORD_FIELDS, collector_paused
from fraud_detection.model import FEATURES, card_features, fraud_scores, load_model
from fraud_detection.outcomes import outcome_dimensions
from fraud_detection.rules import CardState, Txn, longest_window_seconds

# PySpark's applyInPandasWithState pads its output with all-NA frames, which pandas 2 warns
# about on every batch (a warning about pandas' future behaviour, not about our data).
warnings.filterwarnings(
    "ignore", "The behavior of DataFrame concatenation with empty or all-NA", FutureWarning
)
# The state of a bucket of accounts (the hash of the account modulo detection.stateBuckets):
# [latest Kafka ms, AccountState JSON] per account, packed (fraud_detection.bucket_state).
# Spark's Python state has a cost per key and micro-batch, whatever the key holds: a bucket of
# accounts pays it once.
STATE_SCHEMA = "accounts string"
TRANSACTION_KEYS = (*RECORD_FIELDS, "terminal_features")
OUTPUT_SCHEMA = (
    "kind string, event_ms long, kafka_ms long, dimension string, amount double, count long, "
    "payload string"
)
MINUTE_MS = 60_000
OUTPUT_COLUMNS = tuple(part.split()[0] for part in OUTPUT_SCHEMA.split(", "))
MODEL_RULE = "model"
# A card unused this long (event time) is forgotten; the account keeps its totals.
CARD_TTL_MS = 30 * 86_400_000
# What was decided about a transaction is kept for its label this long (event time), for at
# most this many transactions per account; a label arriving later counts as `unknown`.
UNLABELLED_TTL_MS = 7 * 86_400_000
# An account without input this long (Kafka timestamps) before its bucket's latest input is
# forgotten: its state goes, its totals start again if it comes back.
ACCOUNT_TTL_MS = 90 * 86_400_000
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
    # transaction id -> [event ms, rules (the model included) that named it] until labelled
    unlabelled: dict[str, list] = field(default_factory=dict)
    waiting: list[list] = field(default_factory=list)  # labels ahead of their transaction

    def to_json(self) -> str:
        """The account as JSON: [cards, transactions, amount total, alerts, latest ms,
        unlabelled, waiting], the unlabelled transactions as three lists (ids, event ms, rules)."""
        return orjson.dumps(
            [
                {token: card.to_json() for token, card in self.cards.items()},
                self.transactions,
                self.amount_total,
                self.alerts,
                self.latest_ms,
                [
                    list(self.unlabelled),
                    [entry[0] for entry in self.unlabelled.values()],
                    [entry[1] for entry in self.unlabelled.values()],
                ],
                self.waiting,
            ]
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> AccountState:
        """An account from `to_json`'s JSON, or as jobs before stored it (the unlabelled
        transactions a dict of id -> [event ms, rules]; their checkpoints resume)."""
        cards, transactions, amount_total, alerts, latest_ms, unlabelled, waiting = orjson.loads(
            text
        )
        if not isinstance(unlabelled, dict):
            ids, event_ms, rules = unlabelled
            unlabelled = {
                tx: [ms, named] for tx, ms, named in zip(ids, event_ms, rules, strict=True)
            }
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
    """What the account stage needs from the job configuration."""

    rules: dict[str, dict[str, Any]]
    lateness_ms: int
    with_features: bool
    key: bytes
    with_accounts: bool = True  # `account` rows (the accounts index)

    @classmethod
    def of(
        cls, detection: DetectionSettings, key: bytes, with_features: bool, with_accounts: bool
    ) -> DetectSettings:
        """The settings of a job's `detection` configuration."""
        return cls(
            rules=detection.rules,
            lateness_ms=int(duration_seconds(detection.watermark_delay) * 1000),
            with_features=with_features,
            key=key,
            with_accounts=with_accounts,
        )

    @cached_property
    def keep_seconds(self) -> float:
        return longest_window_seconds(self.rules)


def _letter(record: dict[str, Any], rejection: Rejection, settings: DetectSettings) -> tuple:
    """A dead-letter row for an accepted transaction the account cannot evaluate; its payload is
    the tokenised transaction."""
    event = {name: record[name] for name in EVENT_FIELDS}
    event["event_time"] = rfc3339_ms(event.pop("event_ms"))
    letter = dead_letter(
        json.dumps(event).encode(),
        rejection,
        record["topic"],
        record["partition"],
        record["offset"],
        datetime.now(UTC),
        settings.key,
        tokenised=True,
    )
    return dead_letter_row(letter, record["event_ms"], record["kafka_ms"])


def dead_letter_row(letter: dict[str, Any], event_ms: int = 0, kafka_ms: int = 0) -> tuple:
    """A `dead_letter` row of a dead-letter document (events.dead_letter)."""
    return ("dead_letter", event_ms, kafka_ms, letter["reason"], 0.0, None, json.dumps(letter))


def _late(record: dict[str, Any], latest_ms: int, settings: DetectSettings) -> Rejection:
    watermark = rfc3339_ms(latest_ms - settings.lateness_ms)
    event_time = rfc3339_ms(record["event_ms"])
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


def evaluate(
    account: AccountState, records: list[dict[str, Any]], settings: DetectSettings
) -> list[tuple]:
    """Rows for an account's new transactions, in event-time order; updates `account`.

    A transaction more than `lateness_ms` older than the account's latest is a dead letter.
    Each evaluated transaction is kept unlabelled with the rules that named it (see
    `record_model_alert` for the model).
    """
    rows: list[tuple] = []
    keep_seconds = settings.keep_seconds
    for record in sorted(records, key=lambda r: (r["event_ms"], r["transaction_id"])):
        if record["event_ms"] < account.latest_ms - settings.lateness_ms:
            rows.append(_letter(record, _late(record, account.latest_ms, settings), settings))
            continue
        card = account.cards.get(record["card_token"])
        if card is None:
            card = account.cards[record["card_token"]] = CardState()
        if _seen(account, card, record["transaction_id"]):
            duplicate = Rejection("duplicate_transaction", "this transaction_id was evaluated")
            rows.append(_letter(record, duplicate, settings))
            continue
        txn = Txn.from_record(record, record["event_ms"] / 1000)
        features = None
        if settings.with_features:
            features = array("d", card_features(card, txn) + record["terminal_features"]).tobytes()
        hits = card.observe(txn, settings.rules, keep_seconds)
        context = [record["transaction_id"], record["card_token"], record["customer_id"],
                   record["terminal_id"]]  # fmt: skip
        rows.append(("transaction", record["event_ms"], record["kafka_ms"],
                     record["merchant_category"], record["amount"], features,
                     context))  # fmt: skip
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
        account.unlabelled[record["transaction_id"]] = [record["event_ms"], []]
        for hit in hits:
            for transaction_id in hit.transaction_ids:
                if transaction_id in account.unlabelled:
                    account.unlabelled[transaction_id][1].append(hit.rule)
        account.transactions += 1
        account.amount_total = round(account.amount_total + record["amount"], 2)
        account.alerts += len(hits)
        account.latest_ms = max(account.latest_ms, record["event_ms"])
    return rows


def record_model_alert(account: AccountState, transaction_id: str) -> None:
    """Remember that the model alerted on one of the account's transactions."""
    account.alerts += 1
    if transaction_id in account.unlabelled:
        account.unlabelled[transaction_id][1].append(MODEL_RULE)


def settle(account: AccountState, labels: list[list]) -> list[tuple]:
    """`label` rows for the account's new labels (LABEL_FIELDS lists) joined with what was
    decided about their transaction (one ahead of the account's latest transaction waits for
    it); then forgets idle cards and old unlabelled transactions."""
    rows = _join_labels(account, [*account.waiting, *labels])
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
        rules = sorted(set(entry[1])) if entry else []
        rows.append(("label", event_ms, kafka_ms, scenario, float(is_fraud), None,
                     [is_fraud, scenario, rules, entry is not None]))  # fmt: skip
    return rows


def account_row(customer_id: str, account: AccountState) -> tuple:
    """The account's running totals, as an `account` output row."""
    document = {
        "customer_id": customer_id,
        "transactions": account.transactions,
        "amount_total": account.amount_total,
        "alerts": account.alerts,
        "last_seen": rfc3339_ms(account.latest_ms),
    }
    return ("account", account.latest_ms, 0, customer_id, account.amount_total, None,
            json.dumps(document))  # fmt: skip


def detect_for_buckets(settings: DetectSettings, model_folder: str, threshold: float):
    """The function for applyInPandasWithState, keyed by a bucket of accounts (see STATE_SCHEMA):
    reads the bucket's first-stage rows (`read_inputs`), runs `detect_bucket` on them with the
    bucket's state and yields the rows `summarise`d."""

    def run(key: tuple, frames: Iterator[pd.DataFrame], state) -> Iterator[pd.DataFrame]:
        with collector_paused():
            inputs, rows = read_inputs(frames)
            held = []
            if inputs:
                classifier = load_model(model_folder)[0] if model_folder else None
                states = unpack(state.get[0] if state.exists else None)
                found, states = detect_bucket(states, inputs, settings, classifier, threshold)
                rows += found
                packed = pack(states)
                state.update((packed,))
                held = [bucket_row(key[0], len(states), packed)]
        if rows or held:
            yield pd.DataFrame.from_records(summarise(rows) + held, columns=OUTPUT_COLUMNS)

    return run


def bucket_row(bucket, accounts: int, packed: str) -> tuple:
    """The `bucket` output row of a bucket's state as stored: `dimension` the bucket's key,
    `count` the accounts held, `amount` the packed state's length."""
    return ("bucket", 0, 0, str(bucket), float(len(packed)), accounts, None)


def read_inputs(frames: Iterator[pd.DataFrame]) -> tuple[dict[str, tuple[list, list]], list[tuple]]:
    """The transactions (dicts of RECORD_FIELDS and `terminal_features`) and labels
    (LABEL_FIELDS lists) of each account of a bucket's first-stage rows (intake.INTAKE_SCHEMA),
    and the dead-letter rows."""
    inputs: dict[str, tuple[list, list]] = {}
    letters: list[tuple] = []
    for frame in frames:
        columns = (frame["account"].tolist(), frame["kind"].tolist(), frame["payload"].tolist())
        for account, kind, payload in zip(*columns, strict=True):
            found = orjson.loads(payload)
            if kind == "dead_letter":
                letters.append(dead_letter_row(found))
                continue
            records, labels = inputs.setdefault(account, ([], []))
            if kind == "transaction":
                records.append(dict(zip(TRANSACTION_KEYS, found, strict=True)))
            else:
                labels.append(found)
    return inputs, letters


def detect_bucket(
    states: dict[str, list],
    inputs: dict[str, tuple[list, list]],
    settings: DetectSettings,
    classifier,
    threshold: float,
) -> tuple[list[tuple], dict[str, list]]:
    """The rows of a bucket's new input (account -> (transactions, labels)) and the bucket's
    next state (account -> [latest Kafka ms, AccountState JSON], idle accounts dropped): each
    account's transactions evaluated, the model's alerts on all of them, then the labels
    settled. Only the accounts with new input are decoded."""
    accounts = {
        account_id: AccountState.from_json(states[account_id][1])
        if account_id in states
        else AccountState()
        for account_id in inputs
    }
    rows: list[tuple] = []
    for account_id, (records, _) in inputs.items():
        rows += evaluate(accounts[account_id], records, settings)
    transactions = [row for row in rows if row[0] == "transaction"]
    for (transaction_id, _, customer_id, _), alert in model_alerts(
        transactions, classifier, threshold
    ):
        record_model_alert(accounts[customer_id], transaction_id)
        rows.append(alert)
    states = dict(states)
    for account_id, (records, labels) in inputs.items():
        account = accounts[account_id]
        rows += settle(account, labels)
        if settings.with_accounts and account.transactions:
            rows.append(account_row(account_id, account))
        seen_ms = max([*(r["kafka_ms"] for r in records), *(label[4] for label in labels)])
        store_entry(states, account_id, seen_ms, account.to_json())
    return rows, without_idle(states, ACCOUNT_TTL_MS)


def _features(rows: list[tuple]) -> np.ndarray:
    values = np.frombuffer(b"".join(row[5] for row in rows), dtype=np.float64)
    return values.reshape(len(rows), len(FEATURES))


def model_alerts(
    transactions: list[tuple], classifier, threshold: float
) -> list[tuple[list[str], tuple]]:
    """(context, alert row) of rule `model` for every `transaction` row scoring at or above
    `threshold`; the context is the transaction row's payload."""
    if not transactions or classifier is None:
        return []
    features = _features(transactions)
    scores = fraud_scores(classifier, features)
    alerts = []
    for index in np.flatnonzero(scores >= threshold):
        _, event_ms, kafka_ms, _, _, _, context = transactions[index]
        explanation = {
            "threshold": threshold,
            "features": {
                name: round(float(value), 4)
                for name, value in zip(FEATURES, features[index], strict=True)
            },
        }
        score = round(float(scores[index]), 4)
        alert = alert_row(MODEL_RULE, score, explanation, [context[0]], context, event_ms, kafka_ms)
        alerts.append((context, alert))
    return alerts


def label_outcomes(labels: list[tuple]) -> list[tuple[int, str]]:
    """(event ms, `rule|outcome|scenario`) of every outcome of the `label` rows."""
    outcomes = []
    for row in labels:
        is_fraud, scenario, rules, known = row[6]
        model = MODEL_RULE in rules if known else None
        for dimension in outcome_dimensions(is_fraud, scenario, rules, model):
            outcomes.append((row[1], dimension))
    return outcomes


def summarise(rows: list[tuple]) -> list[tuple]:
    """OUTPUT_SCHEMA rows of a bucket's rows: alerts, dead letters and accounts kept,
    transactions and label outcomes summed per minute and dimension."""
    by_kind: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_kind[row[0]].append(row)
    kept = [*by_kind["alert"], *by_kind["dead_letter"], *by_kind["account"]]
    output = [(kind, event_ms, kafka_ms, dimension, amount, 1, payload)
              for kind, event_ms, kafka_ms, dimension, amount, _, payload in kept]  # fmt: skip
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for _, event_ms, _, category, amount, _, _ in by_kind["transaction"]:
        total = totals["transaction", event_ms // MINUTE_MS * MINUTE_MS, category]
        total[0] += 1
        total[1] += amount
    for event_ms, dimension in label_outcomes(by_kind["label"]):
        totals["outcome", event_ms // MINUTE_MS * MINUTE_MS, dimension][0] += 1
    for (kind, minute_ms, dimension), (count, amount) in totals.items():
        output.append((kind, minute_ms, 0, dimension, amount, count, None))
    return output
