"""The rules on simulator data, without Spark: the same per-account function the job runs."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import fraud_simulator
from fraud_detection.config import DEFAULT_RULES
from fraud_detection.detector import AccountState, DetectSettings
from fraud_detection.evaluation import card_history, labelled_scenarios, scenario_scores
from fraud_detection.events import parse_transaction
from fraud_detection.harness import detect

SIMULATION = {"customers": 600, "terminals": 200, "fraudRate": 0.08, "seed": 3}


def test_each_rule_finds_its_scenario_in_a_simulated_week():
    events = list(
        fraud_simulator.generate(SIMULATION, datetime(2026, 2, 2, tzinfo=UTC), timedelta(days=7))
    )
    per_account = defaultdict(list)
    for event in events:
        if event.kind == "transaction":
            record, rejection = parse_transaction(event.payload.encode(), b"k" * 16)
            assert rejection is None
            record.update(
                event_ms=int(record["event_time"].timestamp() * 1000),
                kafka_ms=0, topic="transactions", partition=0, offset=0,
            )  # fmt: skip
            per_account[record["customer_id"]].append(record)
    settings = DetectSettings(DEFAULT_RULES, 600_000, False, b"k" * 16)
    alerts = []
    for records in per_account.values():
        account, half = AccountState(), len(records) // 2
        for batch in (records[:half], records[half:]):  # two micro-batches, state in between
            rows = detect(account, batch, settings)
            alerts += [json.loads(row[-1]) for row in rows if row[0] == "alert"]
            account = AccountState.from_json(account.to_json())
    labels = labelled_scenarios(event.value for event in events if event.kind == "label")
    history = card_history(event.value for event in events if event.kind == "transaction")
    scores = scenario_scores(labels, alerts, history)
    # high_amount too: the simulator injects it on cards with a history in the stream
    for scenario in ("impossible_travel", "spending_spree", "card_testing", "high_amount"):
        assert scores[scenario]["fraud_transactions"] > 50
        assert scores[scenario]["recall"] >= 0.99, scores[scenario]
        assert scores[scenario]["precision"] >= 0.95, scores[scenario]
