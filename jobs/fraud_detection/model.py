"""The fraud model: features (Fraud Detection Handbook style) and scoring.

A transaction's features are its card's (`card_features`, from the card's state before the
transaction is added) then its terminal's (fraud_detection.terminals), computed the same way in
training (jobs/train_model.py) and in the streaming job. The artifact is a
folder: `model.pkl` (a scikit-learn classifier) and `metadata.json` (version, features,
training settings and the measured quality).
"""

from __future__ import annotations

import bisect
import json
import math
import pickle
from functools import cache
from pathlib import Path

import numpy as np

from fraud_detection.rules import CardState, Txn, haversine_km
from fraud_detection.terminals import TERMINAL_FEATURES
from fraud_detection.trees import CompiledForest, compile_forest

CARD_FEATURES = (
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
FEATURES = (*CARD_FEATURES, *TERMINAL_FEATURES)
DAY_S = 86400
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def card_features(card: CardState, txn: Txn) -> list[float]:
    """The CARD_FEATURES of `txn` given its card's state (windows include `txn` itself)."""
    times, values = card.amount_times, card.amount_values
    from_30 = bisect.bisect_right(times, txn.time - 30 * DAY_S)
    from_7 = bisect.bisect_right(times, txn.time - 7 * DAY_S, from_30)
    from_1 = bisect.bisect_right(times, txn.time - DAY_S, from_7)
    with_txn = 1 + len(times)
    count_1, count_7, count_30 = with_txn - from_1, with_txn - from_7, with_txn - from_30
    sum_1 = sum(values[from_1:], 0.0)
    sum_7 = sum(values[from_7:], 0.0)
    sum_30 = sum(values[from_30:], 0.0)
    mean_30 = (sum_30 + txn.amount) / count_30
    previous = card.recent[-1] if card.recent else None
    if previous is None:
        gap, speed = 30 * DAY_S, 0.0
    else:
        gap = max(txn.time - previous.time, 1.0)
        distance = haversine_km(previous.latitude, previous.longitude, txn.latitude, txn.longitude)
        speed = distance / (gap / 3600)
    days, seconds = divmod(txn.time, DAY_S)
    return [
        txn.amount,
        float((days + EPOCH_WEEKDAY) % 7 >= 5),
        float(seconds < 6 * 3600),
        float(count_1),
        float(count_7),
        float(count_30),
        (sum_1 + txn.amount) / count_1,
        (sum_7 + txn.amount) / count_7,
        mean_30,
        txn.amount / mean_30,
        float(bool(txn.device_id) and txn.device_id not in card.devices),
        float(txn.channel == "ecommerce"),
        math.log1p(gap),
        math.log1p(speed),
        float(1 + len([past for past in card.recent if past.time > txn.time - 600])),
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


@cache
def compiled(classifier) -> CompiledForest | None:
    """The classifier's compiled trees (fraud_detection.trees), built once per process."""
    return compile_forest(classifier)


def fraud_scores(classifier, rows) -> np.ndarray:
    """Probability of fraud per feature row (a list of lists or a 2-D array): by the compiled
    trees when the classifier has them, else by its `predict_proba`; the same either way."""
    if len(rows) == 0:
        return np.empty(0)
    rows = np.asarray(rows, dtype=float)
    forest = compiled(classifier)
    return forest.probabilities(rows) if forest else classifier.predict_proba(rows)[:, 1]
