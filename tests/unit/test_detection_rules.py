"""The rules on hand-made card histories: each fires on its pattern and stays quiet otherwise."""

from __future__ import annotations

import random

import orjson

from fraud_detection.config import DEFAULT_RULES
from fraud_detection.rules import CardState, Txn, haversine_km, surely_near

PARIS, LYON, NEW_YORK = (48.85, 2.35), (45.76, 4.84), (40.71, -74.0)


def txn(number: int, minute: float, amount=20.0, category="grocery", where=PARIS, region="FR"):
    return Txn(f"tx-{number}", 1_700_000_000 + minute * 60, amount, category, *where, region)


def run(transactions: list[Txn], rules=None) -> list[tuple[str, tuple[str, ...]]]:
    state = CardState()
    hits = []
    for item in transactions:
        hits += [
            (hit.rule, hit.transaction_ids) for hit in state.observe(item, rules or DEFAULT_RULES)
        ]
    return hits


def only(rule: str) -> dict:
    return {name: {**params, "enabled": name == rule} for name, params in DEFAULT_RULES.items()}


def test_haversine_paris_new_york_is_about_5840_km():
    assert 5800 < haversine_km(*PARIS, *NEW_YORK) < 5880


def test_impossible_travel_fires_on_paris_then_new_york_within_an_hour_only():
    fast = run([txn(1, 0), txn(2, 60, where=NEW_YORK, region="US")], only("impossibleTravel"))
    assert fast == [("impossibleTravel", ("tx-1", "tx-2"))]
    slow = run([txn(1, 0), txn(2, 60 * 9, where=NEW_YORK, region="US")], only("impossibleTravel"))
    assert slow == []
    nearby = run([txn(1, 0), txn(2, 1, where=(48.86, 2.36))], only("impossibleTravel"))
    assert nearby == []


def test_impossible_travel_fires_for_uses_just_over_50_km_apart():
    north = (PARIS[0] + 0.46, PARIS[1])  # about 51 km: the shortcut for near uses must not hide it
    assert 50 < haversine_km(*PARIS, *north) < 52
    found = run([txn(1, 0), txn(2, 1, where=north)], only("impossibleTravel"))
    assert found == [("impossibleTravel", ("tx-1", "tx-2"))]


def test_uses_taken_as_surely_near_are_under_50_km_anywhere_on_earth():
    rng = random.Random(7)
    near = far = 0
    for _ in range(20_000):
        lat, lon = rng.uniform(-89.5, 89.5), rng.uniform(-180, 180)
        other = (lat + rng.uniform(-0.5, 0.5), lon + rng.uniform(-0.5, 0.5))
        one, two = txn(1, 0, where=(lat, lon)), txn(2, 1, where=other)
        distance = haversine_km(lat, lon, *other)
        if surely_near(one, two):
            near += 1
            assert distance < 50, (lat, lon, other)
        far += distance >= 50
    assert near > 1000 and far > 1000


def test_impossible_travel_respects_the_configured_speed():
    rules = only("impossibleTravel")
    rules["impossibleTravel"]["maxSpeedKmh"] = 100
    assert run([txn(1, 0), txn(2, 60, where=LYON)], rules) == [
        ("impossibleTravel", ("tx-1", "tx-2"))
    ]


def test_spending_spree_needs_min_categories_within_the_window():
    categories = ["grocery", "fuel", "travel", "electronics"]
    spree = [txn(n, n, category=c) for n, c in enumerate(categories)]
    assert run(spree, only("spendingSpree")) == [
        ("spendingSpree", ("tx-0", "tx-1", "tx-2", "tx-3"))
    ]
    spread = [txn(n, n * 10, category=c) for n, c in enumerate(categories)]
    assert run(spread, only("spendingSpree")) == []


def test_a_spending_spree_names_its_categories_in_order():
    categories = ["travel", "fuel", "grocery", "electronics"]
    state = CardState()
    hits = [
        state.observe(txn(n, n, category=c), only("spendingSpree"))
        for n, c in enumerate(categories)
    ]
    assert hits[-1][0].explanation["categories"] == sorted(categories)


def test_a_transaction_older_than_the_cards_latest_is_judged_on_what_came_before_it():
    categories = ["grocery", "fuel", "travel"]
    late = txn(9, 0.5, category="electronics")  # after tx-0 only: two categories, no spree
    spree = [txn(n, n, category=c) for n, c in enumerate(categories)]
    assert run([*spree, late], only("spendingSpree")) == []
    assert run([*spree, txn(9, 2.5, category="electronics")], only("spendingSpree")) == [
        ("spendingSpree", ("tx-0", "tx-1", "tx-2", "tx-9"))
    ]


def test_card_testing_is_probes_then_a_large_amount_within_the_window():
    probes = [txn(1, 0, amount=1.0), txn(2, 1, amount=0.5), txn(3, 2, amount=450.0)]
    assert run(probes, only("cardTesting")) == [("cardTesting", ("tx-1", "tx-2", "tx-3"))]
    late = [txn(1, 0, amount=1.0), txn(2, 30, amount=450.0)]
    assert run(late, only("cardTesting")) == []
    no_probe = [txn(1, 0, amount=50.0), txn(2, 1, amount=450.0)]
    assert run(no_probe, only("cardTesting")) == []


def test_velocity_fires_above_the_count_or_the_amount():
    many = [txn(n, n * 0.5) for n in range(11)]
    assert [hit[0] for hit in run(many, only("velocity"))] == ["velocity"]
    big = [txn(1, 0, amount=3000.0), txn(2, 1, amount=2500.0)]
    assert run(big, only("velocity")) == [("velocity", ("tx-1", "tx-2"))]
    assert run([txn(n, n * 2) for n in range(10)], only("velocity")) == []


def test_amount_threshold_compares_with_the_card_median_after_min_history():
    history = [txn(n, n * 60, amount=20.0) for n in range(5)]
    assert run([*history, txn(9, 400, amount=150.0)], only("amountThreshold")) == [
        ("amountThreshold", ("tx-9",))
    ]
    assert run([*history, txn(9, 400, amount=90.0)], only("amountThreshold")) == []
    assert run([*history[:4], txn(9, 400, amount=150.0)], only("amountThreshold")) == []


def test_disabled_rules_never_fire():
    rules = {name: {**params, "enabled": False} for name, params in DEFAULT_RULES.items()}
    assert run([txn(1, 0), txn(2, 1, amount=9000.0, where=NEW_YORK)], rules) == []


def test_state_survives_a_json_round_trip_with_the_same_alerts():
    events = [txn(1, 0, amount=1.0), txn(2, 1, amount=1.5), txn(3, 2, amount=300.0)]
    whole = run(events)
    state = CardState()
    for item in events[:2]:
        state.observe(item, DEFAULT_RULES)
    restored = CardState.from_json(state.to_json())
    resumed = [
        (hit.rule, hit.transaction_ids) for hit in restored.observe(events[2], DEFAULT_RULES)
    ]
    assert resumed == [hit for hit in whole if "tx-3" in hit[1]]
    uninterrupted = CardState()
    for item in events:
        uninterrupted.observe(item, DEFAULT_RULES)
    assert restored.usual_amounts == uninterrupted.usual_amounts  # the alerted ones left out


def test_usual_amounts_keep_ids_only_while_recent_and_alerts_do_not_change():
    rng = random.Random(7)
    events = [
        txn(n, n * 37, amount=rng.choice([1.0, 20.0, 25.0, 30.0, 400.0]), category=f"c{n % 7}")
        for n in range(300)
    ]
    state, hits = CardState(), []
    for item in events:  # stored after every transaction, as a micro-batch per transaction would
        state = CardState.from_json(state.to_json())
        hits += [(hit.rule, hit.transaction_ids) for hit in state.observe(item, DEFAULT_RULES)]
    assert hits == run(events) and {rule for rule, _ in hits} >= {"amountThreshold"}
    recent_txns, amounts, ids, *_ = state.to_json()
    recent = {values[0] for values in recent_txns}
    assert set(ids) - {None} == recent & set(state.usual_ids)
    assert amounts == state.usual_amounts
    assert len(ids) < len(amounts) and ids[0] is not None  # the ids of the newest amounts only


def test_a_card_stored_as_jobs_before_stored_it_resumes_to_the_same_state():
    state = CardState()
    for number in range(200):
        state.observe(txn(number, number * 37.5, amount=10.0 + number % 13), DEFAULT_RULES)
    restored = CardState.from_json(orjson.loads(orjson.dumps(state.to_json())))
    assert (restored.recent, restored.amount_times, restored.amount_values) == (
        state.recent, state.amount_times, state.amount_values
    )  # fmt: skip
    assert restored.to_json() == state.to_json()
    recent_ids = {past.transaction_id for past in state.recent}
    older = {  # a dict, the ids of transactions no longer recent as None
        "recent": [past.as_list() for past in state.recent],
        "usual": [[tx if tx in recent_ids else None, amount]
                  for tx, amount in zip(state.usual_ids, state.usual_amounts, strict=True)],
        "amount_times": state.amount_times, "amount_values": state.amount_values,
        "devices": state.devices, "latest": state.latest,
    }  # fmt: skip
    assert CardState.from_json(older).to_json() == state.to_json()


def test_old_transactions_leave_the_state():
    state = CardState()
    for n in range(3):
        state.observe(txn(n, n * 200), DEFAULT_RULES)
    assert [item.transaction_id for item in state.recent] == ["tx-1", "tx-2"]
    assert len(state.usual_amounts) == len(state.usual_ids) == 3
