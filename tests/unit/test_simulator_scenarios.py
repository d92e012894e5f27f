"""Statistics of the simulated traffic and the shape of every injected fraud scenario.

The reference rules here are the detection rules' definitions (FraudPipeline defaults): legit
traffic must rarely trigger them, and every injected incident must.
"""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fraud_events import TRANSACTION_SCENARIOS
from fraud_simulator import simulate
from fraud_simulator.engine import LABEL, TRANSACTION, Simulation
from fraud_simulator.settings import parse_settings
from fraud_simulator.transactions import ESTABLISHED_PAYMENTS, HIGH_AMOUNT_FACTORS
from fraud_simulator.world import haversine_km

DAYS = 21
SETTINGS = {"customers": 3000, "terminals": 600, "seed": 42, "fraudRate": 0.01}
START = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def traffic() -> pd.DataFrame:
    """Three weeks of transactions, with their label's scenario, sorted by card and time."""
    rows, labels = [], {}
    for batch in simulate(SETTINGS, START, timedelta(days=DAYS)):
        kinds = batch.kind.tolist()
        rows += [
            json.loads(p) for p, k in zip(batch.payloads, kinds, strict=False) if k == TRANSACTION
        ]
        labels.update(
            (label["transaction_id"], label["scenario"])
            for label in (
                json.loads(p) for p, k in zip(batch.payloads, kinds, strict=False) if k == LABEL
            )
        )
    frame = pd.DataFrame(rows)
    frame["scenario"] = frame["transaction_id"].map(labels)
    frame["time"] = pd.to_datetime(frame["event_time"])
    return frame.sort_values(["card_number", "time"], kind="stable").reset_index(drop=True)


def impossible_travel(df: pd.DataFrame, max_kmh: float = 900) -> pd.Series:
    """Both transactions of consecutive pairs of a card that moved faster than max_kmh."""
    same = df["card_number"].eq(df["card_number"].shift())
    km = haversine_km(
        df["latitude"].shift(), df["longitude"].shift(), df["latitude"], df["longitude"]
    )
    hours = (df["time"] - df["time"].shift()).dt.total_seconds() / 3600
    fast = same & (km > 1) & (km > max_kmh * hours)
    return fast | fast.shift(-1, fill_value=False)


def window_starts(df: pd.DataFrame, minutes: int) -> np.ndarray:
    """Per transaction: the row where the card's window of `minutes` before it starts."""
    card = pd.factorize(df["card_number"])[0].astype(np.int64)
    ms = df["time"].astype("int64").to_numpy() // 10**6
    key = (card << 42) + ms
    return np.searchsorted(key, key - minutes * 60_000)


def spending_spree(df):
    lo = window_starts(df, 15)
    flags = np.zeros(len(df), bool)
    categories = df["merchant_category"].to_numpy()
    for i in np.flatnonzero(np.arange(len(df)) - lo >= 3):
        flags[i] = len(set(categories[lo[i] : i + 1])) >= 4
    return pd.Series(flags, index=df.index)


def card_testing(df):
    lo = window_starts(df, 5)
    small = np.concatenate([[0], np.cumsum(df["amount"].to_numpy() <= 2.0)])
    tested = small[np.arange(len(df)) + 1] - small[lo] > 0
    return df["amount"].ge(200) & tested


def test_transaction_volume_follows_the_customers_daily_rates(traffic):
    world = Simulation(parse_settings(SETTINGS)).world
    legit = traffic[traffic["scenario"].isna() | traffic["scenario"].eq("compromised_terminal")]
    expected = world.customer_daily_rate.sum() * DAYS
    assert abs(len(legit) / expected - 1) < 0.03
    hours = legit["time"].dt.hour
    assert 0.65 < hours.between(6, 17).mean() < 0.80  # the midday peak of the daily cycle


def test_legit_amounts_follow_each_customers_profile(traffic):
    world = Simulation(parse_settings(SETTINGS)).world
    legit = traffic[traffic["scenario"].isna() & traffic["channel"].ne("atm")]
    per_customer = legit.groupby("customer_id")["amount"].agg(["mean", "count"])
    busy = per_customer[per_customer["count"] >= 40]
    profile = world.customer_mean_amount[busy.index.str[1:].astype(int)]
    assert len(busy) > 300
    assert np.median(np.abs(busy["mean"] / profile - 1)) < 0.08
    assert (legit["amount"] > 0).all()
    atm = traffic[traffic["channel"].eq("atm")]
    assert (atm["amount"] % 10 == 0).all() and atm["merchant_category"].eq("cash").all()


def test_fraud_rate_and_scenario_mix_follow_the_settings(traffic):
    fraud = traffic["scenario"].notna()
    assert 0.007 < fraud.mean() < 0.014
    share = traffic.loc[fraud, "scenario"].value_counts(normalize=True)
    assert set(share.index) == set(TRANSACTION_SCENARIOS)
    assert share.between(0.5 / 6, 1.8 / 6).all(), share


def test_only_the_chosen_scenarios_are_injected():
    settings = {**SETTINGS, "scenarios": ["high_amount"], "fraudRate": 0.05}
    scenarios = set()
    for batch in simulate(settings, START, timedelta(days=2)):
        scenarios.update(batch.scenario[batch.kind == LABEL].tolist())
    assert scenarios == {-1, TRANSACTION_SCENARIOS.index("high_amount")}


@pytest.mark.parametrize(
    ("scenario", "rule"),
    [
        ("impossible_travel", impossible_travel),
        ("spending_spree", spending_spree),
        ("card_testing", card_testing),
    ],
)
def test_rules_catch_their_scenario_and_legit_traffic_rarely_triggers_them(traffic, scenario, rule):
    flagged = rule(traffic)
    injected = traffic["scenario"].eq(scenario)
    precision = traffic.loc[flagged, "scenario"].notna().mean()
    assert precision >= 0.95, f"{scenario}: precision {precision:.3f}"
    assert flagged.sum() > 5
    incidents = traffic[injected].groupby("card_number")
    caught = traffic[injected & flagged].groupby("card_number").size()
    assert caught.size == incidents.ngroups, f"{scenario}: {caught.size}/{incidents.ngroups} caught"


def test_impossible_travel_pairs_move_far_faster_than_an_airliner(traffic):
    pairs = traffic[traffic["scenario"].eq("impossible_travel")]
    first, second = pairs.iloc[::2].reset_index(), pairs.iloc[1::2].reset_index()
    assert (first["card_number"] == second["card_number"]).all()
    km = haversine_km(
        first["latitude"], first["longitude"], second["latitude"], second["longitude"]
    )
    hours = (second["time"] - first["time"]).dt.total_seconds() / 3600
    assert (first["region"] != second["region"]).all()
    assert (km / hours >= 2000).all() and (hours <= 1.5).all()


def test_account_takeover_uses_a_new_device_and_inflated_online_amounts(traffic):
    legit = traffic[traffic["scenario"].isna()]
    usual_devices = set(legit["device_id"].dropna())
    usual_amount = legit.groupby("card_number")["amount"].mean()
    taken = traffic[traffic["scenario"].eq("account_takeover")]
    assert taken["channel"].eq("ecommerce").all()
    assert not set(taken["device_id"]) & usual_devices
    ratio = taken["amount"] / taken["card_number"].map(usual_amount)
    assert ratio.median() > 3


def test_high_amounts_are_far_above_the_customers_history(traffic):
    legit = traffic[traffic["scenario"].isna()]
    history = legit.groupby("card_number")["amount"].agg(["mean", "count"])
    high = traffic[traffic["scenario"].eq("high_amount")].join(history, on="card_number")
    high = high[high["count"] >= 5]
    assert len(high) > 10
    assert (high["amount"] >= 220).all()
    assert (high["amount"] > 5 * high["mean"]).mean() > 0.9
    assert (legit["amount"] > 5 * legit["card_number"].map(history["mean"])).mean() < 0.001


def test_high_amounts_hit_established_customers_far_above_their_usual_amount(traffic):
    """A usual amount needs a history: the victim made ESTABLISHED_PAYMENTS of its own payments
    earlier in the stream (a card first seen in the stream has none), and the amount is at
    least 8 times the customer's mean (ATM amounts are rounded to tens)."""
    world = Simulation(parse_settings(SETTINGS)).world
    own = (traffic["scenario"].isna() | traffic["scenario"].eq("compromised_terminal")).astype(int)
    earlier = own.groupby(traffic["card_number"]).cumsum() - own
    high = traffic["scenario"].eq("high_amount")
    assert high.sum() > 20
    assert earlier[high].min() >= ESTABLISHED_PAYMENTS
    mean = world.customer_mean_amount[traffic.loc[high, "customer_id"].str[1:].astype(int)]
    assert (traffic.loc[high, "amount"] + 5 >= HIGH_AMOUNT_FACTORS[0] * mean).all()


def test_a_compromised_terminal_taints_every_payment_in_its_window(traffic):
    hit = traffic[traffic["scenario"].eq("compromised_terminal")]
    assert hit["terminal_id"].nunique() >= 2
    for terminal, rows in hit.groupby("terminal_id"):
        there = traffic[traffic["terminal_id"].eq(terminal)]
        window = there[there["time"].between(rows["time"].min(), rows["time"].max())]
        assert window["scenario"].notna().all()
        assert rows["time"].max() - rows["time"].min() <= timedelta(days=7)
