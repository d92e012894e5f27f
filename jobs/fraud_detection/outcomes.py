"""Ground-truth labels: parsing them, and the outcome of a labelled transaction per rule.

A label is joined with what the job decided for its transaction (detector.settle): the rules
that named it in an alert and whether the model's score reached the threshold. Each labelled
transaction counts once under rule `any` (true_positive, false_positive, false_negative or
true_negative; `unknown` when the job no longer remembers the transaction and no rule named it)
and once under every rule that alerted on it (true_positive or false_positive), with the label's
scenario: precision per rule, and recall per scenario, over time.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs

from fraud_detection.events import Rejection, parse_event_time, tokenise_identifiers
from fraud_events import load_schema

ANY_RULE = "any"
LABEL_FIELDS = ("transaction_id", "event_ms", "is_fraud", "scenario", "kafka_ms")


@cache
def _label_validator() -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(load_schema("label"), validate_formats=True)


def parse_label(
    event: Any, key: bytes, ids_may_hold_cards: bool = True
) -> tuple[dict[str, Any] | None, Rejection | None]:
    """The label of a transaction (card numbers in its ids tokenised with `key`, as in its
    transaction, unless its payload was seen to show none), (None, None) for a sensor or
    application label, or why the event is rejected. Never raises."""
    try:
        _label_validator().validate(event)
    except jsonschema_rs.ValidationError as error:
        where = ".".join(str(part) for part in error.instance_path) or "label"
        return None, Rejection("invalid_label", f"{where}: {error.message}")
    except ValueError as error:  # jsonschema-rs: "Recursion limit reached" (deep nesting)
        return None, Rejection("invalid_label", f"label: {error}")
    if "transaction_id" not in event:
        return None, None
    try:
        event_time = parse_event_time(event["event_time"])
        label_time = parse_event_time(event["label_time"])
    except ValueError as error:
        return None, Rejection("invalid_event_time", str(error))
    record = {
        "transaction_id": event["transaction_id"],
        "customer_id": event["customer_id"],
        "terminal_id": event["terminal_id"],
        "event_ms": int(event_time.timestamp() * 1000),
        "label_ms": int(label_time.timestamp() * 1000),
        "is_fraud": event["is_fraud"],
        "scenario": event["scenario"] or "",
    }
    return tokenise_identifiers(record, key) if ids_may_hold_cards else record, None


def outcome_dimensions(
    is_fraud: bool, scenario: str, rules: list[str], model_alerted: bool | None
) -> list[str]:
    """`rule|outcome|scenario` for rule `any` and every alerting rule (`model` included).

    `model_alerted` is None when the model's decision is no longer known.
    """
    alerting = sorted({*rules, *(["model"] if model_alerted else [])})
    if alerting:
        overall = "true_positive" if is_fraud else "false_positive"
    elif model_alerted is None:
        overall = "unknown"
    else:
        overall = "false_negative" if is_fraud else "true_negative"
    per_rule = "true_positive" if is_fraud else "false_positive"
    return [
        f"{ANY_RULE}|{overall}|{scenario}",
        *(f"{rule}|{per_rule}|{scenario}" for rule in alerting),
    ]
