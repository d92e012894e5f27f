"""fraud_simulator.generate: deterministic, ordered, valid events with exact ground truth."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from fraud_events import problems
from fraud_simulator import ConfigError, generate

START = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
ALL_SOURCES = {
    "customers": 300,
    "terminals": 80,
    "seed": 5,
    "fraudRate": 0.05,
    "sources": ["transactions", "sensors", "applications"],
}


def payloads(settings, duration=timedelta(hours=30), start=START):
    return [(e.kind, e.key, e.payload) for e in generate(settings, start, duration)]


def test_the_same_seed_gives_the_same_events_and_another_seed_others():
    first = payloads(ALL_SOURCES)
    assert first == payloads(ALL_SOURCES)
    assert len(first) > 1000
    assert first != payloads({**ALL_SOURCES, "seed": 6})


def test_events_come_in_event_time_order_within_the_window_and_follow_their_schema():
    events = list(generate(ALL_SOURCES, START, timedelta(hours=30)))
    times = [e.event_time for e in events]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + timedelta(hours=30)
    assert {e.kind for e in events} == {"transaction", "label", "sensor", "application"}
    for event in events[:: max(1, len(events) // 1500)]:
        assert problems(event.value) == [], event
        assert event.value["event_type"] == event.kind


def test_every_transaction_has_exactly_one_label_and_no_ground_truth_inside():
    events = list(generate({**ALL_SOURCES, "sources": ["transactions"]}, START, timedelta(days=2)))
    transactions = {e.value["transaction_id"]: e for e in events if e.kind == "transaction"}
    labels = [e for e in events if e.kind == "label"]
    assert Counter(label.key for label in labels) == Counter(set(transactions))
    for label in labels:
        tx = transactions[label.value["transaction_id"]].value
        assert (
            label.value["customer_id"],
            label.value["terminal_id"],
            label.value["event_time"],
        ) == (tx["customer_id"], tx["terminal_id"], tx["event_time"])
        assert label.value["is_fraud"] == (label.value["scenario"] is not None)
    assert all(set(e.value) & {"is_fraud", "scenario"} == set() for e in transactions.values())
    assert all(e.key == e.value["card_number"] for e in transactions.values())
    assert sum(label.value["is_fraud"] for label in labels) > 10


def test_labels_are_delayed_like_chargebacks_and_come_after_the_end_if_need_be():
    delay = timedelta(hours=6)
    events = list(
        generate({**ALL_SOURCES, "labelDelaySeconds": 6 * 3600}, START, timedelta(hours=12))
    )
    labels = [e for e in events if e.kind == "label"]
    parse = datetime.fromisoformat
    for label in labels:
        assert parse(label.value["label_time"]) - parse(label.value["event_time"]) == delay
        assert label.event_time == parse(label.value["label_time"])
    assert max(e.event_time for e in labels) > START + timedelta(hours=12)
    assert len(labels) == sum(e.kind != "label" for e in events)


def test_a_run_without_end_is_lazy():
    assert len(list(islice(generate({"customers": 50}, START, None), 10))) == 10


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"fraudRate": 0.9}, "simulator.fraudRate"),
        ({"customers": 0}, "simulator.customers"),
        ({"customers": 2.5}, "simulator.customers"),
        ({"scenarios": ["bank_robbery"]}, "simulator.scenarios"),
        ({"sources": []}, "simulator.sources"),
        ({"ratePerSecond": "fast"}, "simulator.ratePerSecond"),
        ({"labelDelaySeconds": -1}, "simulator.labelDelaySeconds"),
    ],
)
def test_bad_settings_name_the_setting(settings, named):
    with pytest.raises(ConfigError, match=named):
        next(generate(settings, START, timedelta(hours=1)))


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        next(generate({}, datetime(2026, 1, 1), timedelta(hours=1)))


def test_sensor_events_are_keyed_by_terminal_and_skimmers_show_on_compromised_terminals():
    settings = {
        "customers": 2000,
        "terminals": 200,
        "seed": 3,
        "fraudRate": 0.1,
        "scenarios": ["compromised_terminal"],
        "sources": ["transactions", "sensors"],
    }
    events = list(generate(settings, START, timedelta(days=4)))
    values = {e.value.get("sensor_event_id"): e.value for e in events if e.kind == "sensor"}
    assert all(e.key == e.value["terminal_id"] for e in events if e.kind == "sensor")
    skimmed = [e.value for e in events if e.kind == "label" and e.value["scenario"] == "skimmer"]
    compromised = {
        e.value["terminal_id"]
        for e in events
        if e.kind == "label" and e.value["scenario"] == "compromised_terminal"
    }
    assert skimmed, "expected at least one skimmer in 4 days at this fraud rate"
    for terminal in {label["terminal_id"] for label in skimmed}:
        assert terminal in compromised
        readings = sorted(
            (v for v in values.values() if v["terminal_id"] == terminal),
            key=lambda v: v["event_time"],
        )
        flagged = [v["sensor_event_id"] for v in skimmed if v["terminal_id"] == terminal]
        first = next(r for r in readings if r["sensor_event_id"] in flagged)
        assert first["tamper_detected"] and first["vibration_g"] >= 0.5
        later = [values[i]["card_reader_anomaly_score"] for i in flagged]
        clean = [
            r["card_reader_anomaly_score"] for r in readings if r["sensor_event_id"] not in flagged
        ]
        assert min(later) > 0.3 and sorted(later)[len(later) // 2] > 0.5
        assert sorted(clean)[len(clean) // 2] < 0.05


def test_synthetic_identities_reuse_a_phone_address_or_device_with_edited_names():
    settings = {"customers": 5000, "seed": 11, "fraudRate": 0.2, "sources": ["applications"]}
    events = list(generate(settings, START.replace(hour=0, minute=0), timedelta(days=3)))
    apps = {e.key: e.value for e in events if e.kind == "application"}
    fraud = [apps[e.key] for e in events if e.kind == "label" and e.value["is_fraud"]]
    assert {e.value["scenario"] for e in events if e.kind == "label"} == {
        None,
        "synthetic_identity",
    }
    assert len(fraud) >= 6
    for app in fraud:
        shares = [
            other
            for other in fraud
            if other is not app
            and (
                other["phone"] == app["phone"]
                or other["device_id"] == app["device_id"]
                or other["address_line"] == app["address_line"]
            )
        ]
        assert shares, app
        assert any(other["applicant_name"] != app["applicant_name"] for other in shares)
    legit = [a for a in apps.values() if a not in fraud]
    phones = Counter(a["phone"] for a in legit)
    assert phones.most_common(1)[0][1] <= 2
