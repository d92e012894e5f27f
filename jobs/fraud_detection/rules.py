"""The detection rules: pure functions of one card's recent history and a new transaction.

Times are epoch seconds. A card's state (`CardState`) holds the transactions of the longest rule
window plus running amount statistics; `CardState.observe` evaluates every enabled rule for a new
transaction, then adds it. Evaluation only looks at transactions at or before the new one, so the
same events in the same per-card order always give the same alerts.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

EARTH_RADIUS_KM = 6371.0
# Below this distance two uses of a card are never "impossible travel" (same city, GPS noise).
MIN_TRAVEL_KM = 50.0
TRAVEL_LOOKBACK_S = 6 * 3600  # an earlier use within this time can make travel impossible
FEATURE_DAYS_S = 30 * 86400  # amounts kept for the model's 1, 7 and 30-day card aggregates
KNOWN_DEVICES = 20
USUAL_AMOUNTS = 50  # amounts kept per card for its usual amount


class Txn(NamedTuple):
    """The fields of a transaction the rules read (a named tuple: cards hold many, built fast)."""

    transaction_id: str
    time: float
    amount: float
    category: str
    latitude: float
    longitude: float
    region: str
    channel: str = "pos"
    device_id: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any], time: float) -> Txn:
        """The rules' view of a parsed transaction record (fraud_detection.events) at `time`."""
        return cls(
            record["transaction_id"],
            time,
            record["amount"],
            record["merchant_category"],
            record["latitude"],
            record["longitude"],
            record["region"],
            record["channel"],
            record["device_id"],
        )

    def as_list(self) -> list:
        return list(self)


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired: its score in (0, 1], the values that triggered it, the transactions."""

    rule: str
    score: float
    explanation: dict[str, Any]
    transaction_ids: tuple[str, ...]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _score(observed: float, threshold: float) -> float:
    """0.5 at the threshold, 1.0 at twice it and beyond."""
    return round(min(1.0, 0.5 * observed / threshold), 4)


def _speed_kmh(previous: Txn, txn: Txn) -> tuple[float, float]:
    """(distance in km, speed in km/h) between two uses; time gaps under a second count as one."""
    distance = haversine_km(previous.latitude, previous.longitude, txn.latitude, txn.longitude)
    return distance, distance / (max(txn.time - previous.time, 1.0) / 3600)


def surely_near(one: Txn, other: Txn) -> bool:
    """Whether two uses are certainly less than MIN_TRAVEL_KM apart, without trigonometry: the
    great-circle distance is at most the path along a meridian, then along a parallel, which is
    at most EARTH_RADIUS_KM x (|latitude difference| + |longitude difference|) in radians."""
    degrees = abs(one.latitude - other.latitude) + abs(one.longitude - other.longitude)
    return EARTH_RADIUS_KM * math.radians(degrees) < 0.99 * MIN_TRAVEL_KM  # 1 % for rounding


def impossible_travel(history: list[Txn], txn: Txn, max_speed_kmh: float) -> RuleHit | None:
    """Earlier uses of the card too far away (over MIN_TRAVEL_KM) to reach at `max_speed_kmh`.

    Every such earlier use is named, so a fraudster's use in between does not hide the trip.
    """
    impossible = []
    for previous in history:
        if surely_near(previous, txn):
            continue
        distance, speed = _speed_kmh(previous, txn)
        if distance >= MIN_TRAVEL_KM and speed > max_speed_kmh:
            impossible.append((speed, distance, previous))
    if not impossible:
        return None
    speed, distance, fastest = max(impossible, key=lambda found: found[0])
    return RuleHit(
        "impossibleTravel",
        _score(speed, max_speed_kmh),
        {
            "distance_km": round(distance, 1),
            "elapsed_seconds": round(txn.time - fastest.time, 3),
            "speed_kmh": round(speed, 1),
            "max_speed_kmh": max_speed_kmh,
            "from_region": fastest.region,
            "to_region": txn.region,
        },
        (*(previous.transaction_id for _, _, previous in impossible), txn.transaction_id),
    )


def _within(history: list[Txn], txn: Txn, minutes: float) -> list[Txn]:
    start = txn.time - minutes * 60
    return [past for past in history if past.time >= start]


def spending_spree(history: list[Txn], txn: Txn, min_categories: int, minutes: float):
    """`min_categories` or more distinct merchant categories within the window."""
    window = [*_within(history, txn, minutes), txn]
    categories = {past.category for past in window}
    if len(categories) < min_categories:
        return None
    return RuleHit(
        "spendingSpree",
        _score(len(categories), min_categories),
        {
            "categories": sorted(categories),
            "min_categories": min_categories,
            "window_minutes": minutes,
        },
        tuple(past.transaction_id for past in window),
    )


def card_testing(history: list[Txn], txn: Txn, small_max: float, large_min: float, minutes: float):
    """Probing amounts up to `small_max`, then a purchase of at least `large_min`."""
    if txn.amount < large_min:
        return None
    probes = [past for past in _within(history, txn, minutes) if past.amount <= small_max]
    if not probes:
        return None
    return RuleHit(
        "cardTesting",
        _score(txn.amount, large_min),
        {
            "probe_amounts": [past.amount for past in probes],
            "amount": txn.amount,
            "small_amount_max": small_max,
            "large_amount_min": large_min,
            "window_minutes": minutes,
        },
        (*(past.transaction_id for past in probes), txn.transaction_id),
    )


def velocity(history: list[Txn], txn: Txn, max_count: int, max_amount: float, minutes: float):
    """More than `max_count` transactions, or more than `max_amount` in total, in the window."""
    window = [*_within(history, txn, minutes), txn]
    count, total = len(window), round(sum(past.amount for past in window), 2)
    if count <= max_count and total <= max_amount:
        return None
    return RuleHit(
        "velocity",
        max(_score(count, max_count), _score(total, max_amount)),
        {
            "transactions": count,
            "total_amount": total,
            "max_transactions": max_count,
            "max_amount": max_amount,
            "window_minutes": minutes,
        },
        tuple(past.transaction_id for past in window),
    )


def amount_threshold(usual: list[float], txn: Txn, multiplier: float, min_history: int):
    """An amount above `multiplier` times the card's usual amount.

    The usual amount is the mean of the card's last usual amounts without the largest one, so
    the odd large payment (fraud that went unnoticed included) does not hide the next; the rule
    needs at least `min_history` of them.
    """
    if len(usual) < min_history:
        return None
    typical = (sum(usual) - max(usual)) / (len(usual) - 1) if len(usual) > 1 else usual[0]
    if txn.amount <= multiplier * typical:
        return None
    return RuleHit(
        "amountThreshold",
        _score(txn.amount, multiplier * typical),
        {
            "amount": txn.amount,
            "card_usual_amount": round(typical, 2),
            "history_transactions": len(usual),
            "multiplier": multiplier,
        },
        (txn.transaction_id,),
    )


def longest_window_seconds(rules: dict[str, dict[str, Any]]) -> float:
    """How long transactions stay in a card's state: the longest rule window, at least
    TRAVEL_LOOKBACK_S (how far back impossible travel looks)."""
    minutes = [
        params["windowMinutes"]
        for params in rules.values()
        if params.get("enabled", True) and "windowMinutes" in params
    ]
    return max([TRAVEL_LOOKBACK_S / 60, *minutes]) * 60


@dataclass
class CardState:
    """One card's recent transactions (time order) and running amount statistics."""

    recent: list[Txn] = field(default_factory=list)
    # the card's usual amounts, oldest first, and their transaction ids (None once a transaction
    # is no longer recent and the card was stored: see to_json)
    usual_amounts: list[float] = field(default_factory=list)
    usual_ids: list[str | None] = field(default_factory=list)
    # the times (ascending) and amounts of the last 30 days' transactions, as two lists: a
    # window of the model's card features is then a slice found by bisection
    amount_times: list[float] = field(default_factory=list)
    amount_values: list[float] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # the last KNOWN_DEVICES devices used
    latest: float = 0.0

    def evaluate(self, txn: Txn, rules: dict[str, dict[str, Any]]) -> list[RuleHit]:
        """The rules that fire for `txn` given what came before it."""
        recent = self.recent  # in time order: all before `txn` when the latest is
        history = (
            recent
            if not recent or recent[-1].time <= txn.time
            else [past for past in recent if past.time <= txn.time]
        )
        hits = []
        if (params := _enabled(rules, "impossibleTravel")) is not None:
            hits.append(impossible_travel(history, txn, params["maxSpeedKmh"]))
        if (params := _enabled(rules, "spendingSpree")) is not None:
            hits.append(
                spending_spree(history, txn, params["minCategories"], params["windowMinutes"])
            )
        if (params := _enabled(rules, "cardTesting")) is not None:
            hits.append(
                card_testing(
                    history,
                    txn,
                    params["smallAmountMax"],
                    params["largeAmountMin"],
                    params["windowMinutes"],
                )
            )
        if (params := _enabled(rules, "velocity")) is not None:
            hits.append(
                velocity(
                    history,
                    txn,
                    params["maxTransactions"],
                    params["maxAmount"],
                    params["windowMinutes"],
                )
            )
        if (params := _enabled(rules, "amountThreshold")) is not None:
            hits.append(
                amount_threshold(
                    self.usual_amounts,
                    txn,
                    params["multiplier"],
                    params["minHistory"],
                )
            )
        return [hit for hit in hits if hit is not None]

    def add(self, txn: Txn, keep_seconds: float, flagged: set[str] = frozenset()) -> None:
        """Remember `txn` and forget what is older than `keep_seconds` before the newest.

        The card's usual amounts (the last USUAL_AMOUNTS) leave out every `flagged` transaction,
        that is, any named in an alert.
        """
        bisect.insort(self.recent, txn, key=lambda past: (past.time, past.transaction_id))
        self.usual_ids.append(txn.transaction_id)
        self.usual_amounts.append(txn.amount)
        if flagged:
            kept = [index for index, tx_id in enumerate(self.usual_ids) if tx_id not in flagged]
            self.usual_ids = [self.usual_ids[index] for index in kept]
            self.usual_amounts = [self.usual_amounts[index] for index in kept]
        del self.usual_ids[:-USUAL_AMOUNTS], self.usual_amounts[:-USUAL_AMOUNTS]
        index = bisect.bisect_right(self.amount_times, txn.time)
        self.amount_times.insert(index, txn.time)
        self.amount_values.insert(index, txn.amount)
        expired = bisect.bisect_left(self.amount_times, txn.time - FEATURE_DAYS_S)
        del self.amount_times[:expired], self.amount_values[:expired]
        if txn.device_id and txn.device_id not in self.devices:
            self.devices = [*self.devices, txn.device_id][-KNOWN_DEVICES:]
        self.latest = max(self.latest, txn.time)
        horizon = self.latest - keep_seconds
        if self.recent[0].time < horizon:
            self.recent = [past for past in self.recent if past.time >= horizon]

    def observe(
        self, txn: Txn, rules: dict[str, dict[str, Any]], keep_seconds: float | None = None
    ) -> list[RuleHit]:
        """Evaluate the rules for `txn`, then add it to the state.

        `keep_seconds` is longest_window_seconds(rules), passed in by callers that loop.
        """
        hits = self.evaluate(txn, rules)
        flagged = {tx for hit in hits for tx in hit.transaction_ids}
        if keep_seconds is None:
            keep_seconds = longest_window_seconds(rules)
        self.add(txn, keep_seconds, flagged)
        return hits

    def to_json(self) -> list:
        """The card as JSON: [recent transactions, usual amounts, the ids of the last usual
        amounts, amount times, amount values, devices, latest].

        A usual amount keeps its transaction id only while the transaction is recent: only a
        recent transaction can be named by a later alert (`add`'s `flagged`), and the ids were
        a fifth of an account's JSON; the ids kept are those of the usual amounts from the first
        with a recent id on (None for a later one no longer recent). A list, not a dict: the
        keys' names were written again for every card."""
        recent_ids = {txn.transaction_id for txn in self.recent}
        ids = [tx_id if tx_id in recent_ids else None for tx_id in self.usual_ids]
        first = next((index for index, tx_id in enumerate(ids) if tx_id is not None), len(ids))
        return [
            [txn.as_list() for txn in self.recent],
            self.usual_amounts,
            ids[first:],
            self.amount_times,
            self.amount_values,
            self.devices,
            self.latest,
        ]

    @classmethod
    def from_json(cls, data: list | dict) -> CardState:
        """A card from `to_json`'s JSON, or from the dict that jobs before stored (their
        checkpoints resume)."""
        if isinstance(data, dict):
            return cls._from_dict(data)
        recent, usual_amounts, ids, amount_times, amount_values, devices, latest = data
        return cls(
            recent=[Txn(*values) for values in recent],
            usual_amounts=usual_amounts,
            usual_ids=[None] * (len(usual_amounts) - len(ids)) + ids,
            amount_times=amount_times,
            amount_values=amount_values,
            devices=devices,
            latest=latest,
        )

    @classmethod
    def _from_dict(cls, data: dict) -> CardState:
        """A card as jobs before stored it: a dict, with a [time, amount] list `amounts` before
        the amount times and values were two lists."""
        if "amounts" in data:
            pairs = sorted(data["amounts"], key=lambda pair: pair[0])
            amount_times = [time for time, _ in pairs]
            amount_values = [amount for _, amount in pairs]
        else:
            amount_times, amount_values = data["amount_times"], data["amount_values"]
        return cls(
            recent=[Txn(*values) for values in data["recent"]],
            usual_amounts=[amount for _, amount in data["usual"]],
            usual_ids=[tx_id for tx_id, _ in data["usual"]],
            amount_times=amount_times,
            amount_values=amount_values,
            devices=data["devices"],
            latest=data["latest"],
        )


def _enabled(rules: dict[str, dict[str, Any]], name: str) -> dict[str, Any] | None:
    params = rules.get(name)
    return params if params and params.get("enabled", True) else None
