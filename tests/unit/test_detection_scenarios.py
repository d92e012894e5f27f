"""The rules on simulator data, without Spark: the same per-card function the job runs."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pandas as pd

import fraud_simulator
from fraud_detection.config import DEFAULT_RULES
from fraud_detection.detector import card_alerts
from fraud_detection.evaluation import card_history, labelled_scenarios, scenario_scores
from fraud_detection.events import parse_transaction
from fraud_detection.rules import CardState

SIMULATION = {"customers": 600, "terminals": 200, "fraudRate": 0.08, "seed": 3}


def test_each_rule_finds_its_scenario_in_a_simulated_week():
    events = list(
        fraud_simulator.generate(SIMULATION, datetime(2026, 2, 2, tzinfo=UTC), timedelta(days=7))
    )
    per_card = defaultdict(list)
    for event in events:
        if event.kind == "transaction":
            record, rejection = parse_transaction(event.payload.encode(), b"k" * 16)
            assert rejection is None
            record.update(event_ms=int(record["event_time"].timestamp() * 1000), kafka_ms=0)
            per_card[record["card_token"]].append(record)
    alerts = []
    for token, records in per_card.items():
        alerts += card_alerts(CardState(), token, pd.DataFrame(records), DEFAULT_RULES, False)
    labels = labelled_scenarios(event.value for event in events if event.kind == "label")
    history = card_history(event.value for event in events if event.kind == "transaction")
    scores = scenario_scores(labels, alerts, history)
    for scenario in ("impossible_travel", "spending_spree", "card_testing"):
        assert scores[scenario]["fraud_transactions"] > 50
        assert scores[scenario]["recall"] >= 0.99, scores[scenario]
        assert scores[scenario]["precision"] >= 0.95, scores[scenario]
    assert scores["high_amount"]["recall_with_history"] >= 0.95, scores["high_amount"]
    assert scores["high_amount"]["precision"] >= 0.95, scores["high_amount"]
