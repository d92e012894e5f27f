"""The fraud model: features from a card's state (Fraud Detection Handbook style) and scoring.

Features are computed for a transaction from its card's state before the transaction is added,
the same way in training (jobs/train_model.py) and in the streaming job. The artifact is a
folder: `model.pkl` (a scikit-learn classifier) and `metadata.json` (version, features,
training settings and the measured quality).
"""

from __future__ import annotations

import json
import math
import pickle
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np

from fraud_detection.rules import CardState, Txn, haversine_km

FEATURES = (
    "amount",
    "during_weekend",
    "during_night",
    "card_nb_tx_1day",
    "card_nb_tx_7day",
    "card_nb_tx_30day",
    "card_avg_amount_1day",
    "card_avg_amount_7day",
    "card_avg_amount_30day",
    "amount_to_30day_avg",
    "new_device",
    "ecommerce",
    "log_seconds_since_previous",
    "log_speed_kmh_from_previous",
    "card_nb_tx_10min",
)
DAY_S = 86400


def card_features(card: CardState, txn: Txn) -> list[float]:
    """The feature vector of `txn` given its card's state (windows include `txn` itself)."""
    moment = datetime.fromtimestamp(txn.time, UTC)
    windows = []
    for seconds in (DAY_S, 7 * DAY_S, 30 * DAY_S):
        amounts = [amount for time, amount in card.amounts if time > txn.time - seconds]
        amounts.append(txn.amount)
        windows.append((len(amounts), sum(amounts) / len(amounts)))
    previous = card.recent[-1] if card.recent else None
    if previous is None:
        gap, speed = 30 * DAY_S, 0.0
    else:
        gap = max(txn.time - previous.time, 1.0)
        distance = haversine_km(previous.latitude, previous.longitude, txn.latitude, txn.longitude)
        speed = distance / (gap / 3600)
    return [
        txn.amount,
        float(moment.weekday() >= 5),
        float(moment.hour < 6),
        *(float(count) for count, _ in windows),
        *(average for _, average in windows),
        txn.amount / windows[2][1],
        float(bool(txn.device_id) and txn.device_id not in card.devices),
        float(txn.channel == "ecommerce"),
        math.log1p(gap),
        math.log1p(speed),
        float(1 + sum(1 for past in card.recent if past.time > txn.time - 600)),
    ]


def save_model(classifier, folder: Path, metadata: dict) -> dict:
    """Write the artifact; the version is a digest of the pickled classifier."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(classifier)
    (folder / "model.pkl").write_bytes(blob)
    metadata = {
        **metadata,
        "version": hashlib.sha256(blob).hexdigest()[:12],
        "features": list(FEATURES),
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return metadata


@cache
def load_model(folder: str):
    """(classifier, metadata) of an artifact folder, loaded once per process."""
    metadata = json.loads((Path(folder) / "metadata.json").read_text())
    if metadata["features"] != list(FEATURES):
        raise ValueError(f"model in {folder} was trained on other features: {metadata['features']}")
    with open(Path(folder) / "model.pkl", "rb") as blob:
        return pickle.load(blob), metadata


def fraud_scores(classifier, rows: list[list[float]]) -> np.ndarray:
    """Probability of fraud per feature row."""
    if not rows:
        return np.empty(0)
    return classifier.predict_proba(np.asarray(rows, dtype=float))[:, 1]
