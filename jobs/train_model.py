"""Train the fraud model on simulator output and measure it with the Handbook's protocol.

    python jobs/train_model.py --output models/default

Simulates `--warmup-days` + 21 days; features come from the same card and terminal state the
streaming job keeps, labels reaching the terminals `--label-delay-days` after their
transaction. Training set: the 7 days after the warm-up; then 7 days of delay (the protocol's
gap between training and testing); test set: the 7 days after that. Reports AUC ROC, average
precision and card precision@100 on the test week and stores them in the artifact.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score

import fraud_simulator
from fraud_detection.config import DEFAULT_RULES
from fraud_detection.evaluation import card_precision_at_k
from fraud_detection.events import parse_transaction
from fraud_detection.model import FEATURES, card_features, save_model
from fraud_detection.outcomes import parse_label
from fraud_detection.rules import CardState, Txn
from fraud_detection.terminals import TerminalState

# The key only names cards consistently inside this process; the model never sees tokens.
TRAINING_KEY = b"train-model-tokenization-key"
START = datetime(2026, 1, 5, tzinfo=UTC)


def simulate_features(settings: dict, days: int):
    """Per transaction: day index, card token, feature row and fraud label, in event order.
    Labels reach the terminals' state at their label time, as in the job."""
    labels, rows = {}, []
    cards: dict[str, CardState] = {}
    terminals: dict[str, TerminalState] = {}
    for event in fraud_simulator.generate(settings, START, timedelta(days=days)):
        if event.kind == "label":
            label, _ = parse_label(event.value, TRAINING_KEY)
            if label is not None:
                labels[label["transaction_id"]] = label["is_fraud"]
                terminal = terminals.setdefault(label["terminal_id"], TerminalState())
                terminal.add_label(label["event_ms"], label["is_fraud"])
            continue
        if event.kind != "transaction":
            continue
        record, _ = parse_transaction(event.payload.encode(), TRAINING_KEY)
        txn = Txn.from_record(record, record["event_time"].timestamp())
        card = cards.setdefault(record["card_token"], CardState())
        terminal = terminals.setdefault(record["terminal_id"], TerminalState())
        features = card_features(card, txn) + terminal.add_transaction(
            int(txn.time * 1000), txn.transaction_id
        )
        card.observe(txn, DEFAULT_RULES)
        day = int((txn.time - START.timestamp()) // 86400)
        rows.append((txn.transaction_id, day, record["card_token"], features))
    fraud = np.array([labels[tx] for tx, _, _, _ in rows])
    return rows, fraud


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="artifact folder")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--fraud-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--warmup-days", type=int, default=9)
    parser.add_argument(
        "--label-delay-days",
        type=float,
        default=0.0,
        help="time from a transaction to its label, as the simulator's labelDelaySeconds (the "
        "terminal risk features see a label from then on)",
    )
    args = parser.parse_args(argv)

    began = time.monotonic()
    settings = {
        "customers": args.customers,
        "terminals": args.terminals,
        "fraudRate": args.fraud_rate,
        "seed": args.seed,
        "labelDelaySeconds": round(args.label_delay_days * 86400),
    }
    rows, fraud = simulate_features(settings, args.warmup_days + 21)
    days = np.array([day for _, day, _, _ in rows])
    features = np.array([row for _, _, _, row in rows])
    train = (days >= args.warmup_days) & (days < args.warmup_days + 7)
    test = days >= args.warmup_days + 14
    classifier = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=0)
    classifier.fit(features[train], fraud[train])
    scores = classifier.predict_proba(features[test])[:, 1]
    test_cards = [card for (_, _, card, _), keep in zip(rows, test, strict=True) if keep]
    quality = {
        "auc_roc": round(float(roc_auc_score(fraud[test], scores)), 4),
        "average_precision": round(float(average_precision_score(fraud[test], scores)), 4),
        "card_precision_at_100": round(
            card_precision_at_k(list(days[test]), test_cards, list(scores), list(fraud[test])), 4
        ),
        "train_transactions": int(train.sum()),
        "train_frauds": int(fraud[train].sum()),
        "test_transactions": int(test.sum()),
        "test_frauds": int(fraud[test].sum()),
    }
    metadata = save_model(
        classifier,
        args.output,
        {
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "algorithm": "sklearn HistGradientBoostingClassifier(max_iter=300, lr=0.05)",
            "simulator": settings,
            "protocol": {
                "start": START.isoformat(),
                "warmup_days": args.warmup_days,
                "train_days": 7,
                "delay_days": 7,
                "test_days": 7,
            },
            "quality": quality,
        },
    )
    print(json.dumps({"version": metadata["version"], **quality}, indent=2))
    print(f"{len(FEATURES)} features, {len(rows)} transactions, {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
