"""The detection job end to end on the test bed, driven by simulator data.

One simulated week (plus bad input) goes through Kafka; the job runs in this process on the
shared SparkSession and writes to Kafka, Elasticsearch and its Prometheus endpoint. A second run
of the same job as spark-submit is killed mid-stream and restarted from its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import fraud_simulator
from fraud_detection import runner
from fraud_detection.config import parse_config
from fraud_detection.evaluation import card_history, labelled_scenarios, scenario_scores
from fraud_detection.events import parse_event_time
from fraud_detection.harness import (
    BAD_INPUTS,
    CARD,
    create_topics,
    deeply_nested,
    encode,
    job_document,
    label,
    produce,
    read_json,
    transaction,
    write_job_yaml,
)
from fraud_detection.job import MAX_OFFSETS_PER_TRIGGER
from fraud_detection.metrics import JobMetrics
from fraud_detection.runner import session_settings, start_job
from fraud_detection.terminals import TERMINAL_FEATURES, TerminalState
from fraud_detection.tokens import card_token
from fraud_testbed.process import free_port
from fraud_testbed.spark import local_conf

# Spark's Python workers must run this interpreter, which has the project installed; the session
# fixture starts after collection, so this takes effect (fraud_testbed.spark should set it).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

KEY = "integration-tokenization-key"
SIMULATION = {"customers": 800, "terminals": 300, "fraudRate": 0.08, "seed": 11}
START, DAYS = datetime(2026, 3, 2, tzinfo=UTC), 8
RUN_TIMEOUT_S = 420
# Records per micro-batch of the job that is killed, and of the uninterrupted run it is compared
# with: the model's terminal risk features depend on which labels a micro-batch has seen.
BATCH_RECORDS = 1500
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def environment(elasticsearch):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOKENIZATION_KEY", KEY)
        patch.setenv("ES_USERNAME", elasticsearch.username)
        patch.setenv("ES_PASSWORD", elasticsearch.password)
        yield


@pytest.fixture(scope="module")
def simulated_topic(kafka):
    """A transactions topic with a simulated week, a bad message every 500; a labels topic with
    its labels and three bad ones."""
    events = list(fraud_simulator.generate(SIMULATION, START, timedelta(days=DAYS)))
    transactions = [event for event in events if event.kind == "transaction"]
    bad = list(BAD_INPUTS.values())
    messages = []
    for number, event in enumerate(transactions):
        messages.append((event.key, event.payload.encode()))
        if number % 500 == 250:
            messages.append((None, bad[(number // 500) % len(bad)][0]))
    # a wrong terminal clock, years ahead of the Kafka timestamp (maxEventTimeAhead: 1 hour)
    messages.append((None, encode(transaction(event_time="2099-01-01T00:00:00.000Z"))))
    # one key, so the closing run of bad messages lands on one partition, in order
    messages += [("bad-input", raw) for raw, _ in bad]
    topic = f"sim-{uuid.uuid4().hex[:6]}-transactions"
    create_topics(kafka.bootstrap_servers, [topic])
    produce(kafka.bootstrap_servers, topic, messages)
    label_events = [event for event in events if event.kind == "label"]
    labels_topic = f"{topic}-labels"
    create_topics(kafka.bootstrap_servers, [labels_topic])
    produce(
        kafka.bootstrap_servers,
        labels_topic,
        [(e.key, e.payload.encode()) for e in label_events]
        + [(None, b"{}"), (None, b"oops"), (None, deeply_nested(label()))],
    )
    labels = labelled_scenarios(event.value for event in label_events)
    return topic, transactions, labels, labels_topic


def pipeline_config(kafka, elasticsearch, topics, checkpoint: Path, metrics_port: int):
    pipeline = f"p{uuid.uuid4().hex[:6]}"
    document = job_document(
        pipeline,
        kafka.bootstrap_servers,
        checkpoint,
        elasticsearch.url,
        metrics_port,
        detection={"maxEventTimeAhead": "1 hour"},
    )
    document["kafka"]["topics"]["transactions"] = topics[0]
    document["kafka"]["topics"]["labels"] = topics[3]
    inputs = ("transactions", "labels")
    outputs = [name for key, name in document["kafka"]["topics"].items() if key not in inputs]
    create_topics(kafka.bootstrap_servers, outputs)
    return document


@pytest.fixture(scope="module")
def run(kafka, spark, elasticsearch, prometheus, environment, simulated_topic, tmp_path_factory):
    """The job in this process over the whole topic (availableNow), metrics scraped."""
    _, transactions, labels, _ = simulated_topic
    port = free_port()
    document = pipeline_config(
        kafka, elasticsearch, simulated_topic, tmp_path_factory.mktemp("checkpoint"), port
    )
    config = parse_config(document)
    metrics = JobMetrics()
    metrics.serve(port, "127.0.0.1")
    prometheus.add_target("fraud-detection", f"127.0.0.1:{port}")
    began = time.monotonic()
    alerts = run_to_end(spark, kafka, config, metrics)
    print(f"\njob over {len(transactions)} transactions: {time.monotonic() - began:.1f} s")
    return config, alerts, labels, len(transactions)


def run_to_end(spark, kafka, config, metrics, batch_records: int = MAX_OFFSETS_PER_TRIGGER):
    """Run the job in this process over the whole topic (availableNow); the alerts."""
    job = start_job(
        spark, config, metrics, {"availableNow": True}, max_offsets_per_trigger=batch_records
    )
    try:
        for query in job.queries:
            assert query.awaitTermination(RUN_TIMEOUT_S), f"{query.name} still running"
            assert query.exception() is None, query.exception()
    finally:
        job.close()
    return read_json(kafka.bootstrap_servers, config.topics["alerts"])


def test_rules_catch_their_scenarios_with_high_recall_and_precision(run, simulated_topic):
    _, alerts, labels, _ = run
    history = card_history([event.value for event in simulated_topic[1]])
    scores = scenario_scores(labels, alerts, history)
    print(json.dumps(scores, indent=1))
    assert set(scores) == {"impossible_travel", "spending_spree", "card_testing", "high_amount"}
    for scenario in scores:
        assert scores[scenario]["recall"] >= 0.99, scores[scenario]
        assert scores[scenario]["precision"] >= 0.95, scores[scenario]


def test_the_model_raises_explained_alerts_that_are_mostly_fraud(run):
    _, alerts, labels, _ = run
    model = [alert for alert in alerts if alert["rule"] == "model"]
    correct = sum(labels[alert["transaction_ids"][0]] is not None for alert in model)
    print(f"model alerts: {len(model)}, of them fraud: {correct}")
    assert len(model) > 20
    assert correct / len(model) >= 0.8
    for alert in model:
        assert alert["score"] >= alert["explanation"]["threshold"] == 0.8
        assert set(alert["explanation"]["features"]) >= {"amount", "terminal_risk_7day"}


def test_model_alerts_carry_the_terminal_features_of_a_replay_in_event_time(run, simulated_topic):
    """One micro-batch holds the whole topic, so the job sees each terminal's transactions and
    labels in time order: its terminal features equal those of the simulated stream replayed."""
    _, alerts, _, _ = run
    terminals: dict[str, TerminalState] = {}
    expected = {}
    for event in fraud_simulator.generate(SIMULATION, START, timedelta(days=DAYS)):
        value = event.value
        if event.kind == "transaction":
            terminal = terminals.setdefault(value["terminal_id"], TerminalState())
            event_ms = int(parse_event_time(value["event_time"]).timestamp() * 1000)
            expected[value["transaction_id"]] = terminal.add_transaction(
                event_ms, value["transaction_id"]
            )
        elif event.kind == "label" and "transaction_id" in value:
            event_ms = int(parse_event_time(value["event_time"]).timestamp() * 1000)
            terminals[value["terminal_id"]].add_label(event_ms, value["is_fraud"])
    model = [alert for alert in alerts if alert["rule"] == "model"]
    risky = 0
    for alert in model:
        features = alert["explanation"]["features"]
        found = [features[name] for name in TERMINAL_FEATURES]
        assert found == pytest.approx(expected[alert["transaction_ids"][0]], abs=1e-4)
        risky += features["terminal_risk_30day"] > 0
    assert risky > 0


def test_alerts_are_explained_unique_and_in_elasticsearch_by_id(run, elasticsearch):
    config, alerts, _, _ = run
    ids = [alert["alert_id"] for alert in alerts]
    assert len(ids) == len(set(ids)) > 100
    for alert in alerts:
        assert alert["explanation"] and alert["transaction_ids"]
        assert alert["card_token"].startswith("tok_")
        assert alert["detection_time"] >= alert["event_time"]
    client = elasticsearch.client()
    client.indices.refresh(index=config.index("alerts"))
    stored = client.search(index=config.index("alerts"), size=10_000, _source=False)
    assert {hit["_id"] for hit in stored["hits"]["hits"]} == set(ids)
    template = client.indices.get_index_template(name=config.index("alerts"))
    assert template["index_templates"][0]["index_template"]["index_patterns"] == [
        config.index("alerts")
    ]


def test_bad_input_lands_in_dead_letters_with_reasons_while_good_events_flow(run, kafka):
    config, alerts, _, _ = run
    letters = read_json(kafka.bootstrap_servers, config.topics["deadLetters"])
    expected = sorted(reason for _, reason in BAD_INPUTS.values())
    assert len(letters) >= len(BAD_INPUTS) >= 20
    bad_labels = [letter for letter in letters if letter["source_topic"].endswith("-labels")]
    assert sorted(letter["reason"] for letter in bad_labels) == [
        "invalid_json",
        "invalid_label",
        "invalid_label",
    ]
    letters = [letter for letter in letters if letter not in bad_labels]
    assert {letter["reason"] for letter in letters} == {*expected, "future_event"}
    assert all(letter["error"] and letter["source_topic"] for letter in letters)
    # the closing run of bad messages, in order, each with its own reason (offsets are per
    # partition, so look at the tail of each partition's dead letters)
    by_partition: dict[int, list[dict]] = {}
    for letter in letters:
        by_partition.setdefault(letter["partition"], []).append(letter)
    tails = [
        [letter["reason"] for letter in sorted(group, key=lambda letter: letter["offset"])]
        for group in by_partition.values()
    ]
    expected_run = [reason for _, reason in BAD_INPUTS.values()]
    assert any(tail[-len(expected_run) :] == expected_run for tail in tails), tails
    assert alerts, "good events around the bad ones were processed"


def test_no_card_number_leaves_the_job(run, kafka, simulated_topic):
    config, _, _, _ = run
    transactions = simulated_topic[1]
    cards = {event.value["card_number"] for event in transactions}
    for name in ("alerts", "deadLetters"):
        for message in read_json(kafka.bootstrap_servers, config.topics[name]):
            text = json.dumps(message)
            assert not any(card in text for card in cards if card[:6] in text)


def test_card_numbers_written_into_ids_leave_the_job_only_as_tokens(
    spark, kafka, elasticsearch, environment, tmp_path
):
    """An upstream system that put the card number into every id: the card's transactions, its
    label and its terminal still meet (keyed by the token), and the number is in no output, on
    Kafka or in Elasticsearch."""
    topic = f"ids-{uuid.uuid4().hex[:6]}"
    topics = (topic, None, None, f"{topic}-labels")
    create_topics(kafka.bootstrap_servers, [topic, topics[3]])
    document = pipeline_config(kafka, elasticsearch, topics, tmp_path / "checkpoint", free_port())
    config = parse_config(document)
    grouped = " ".join([CARD[:4], CARD[4:8], CARD[8:12], CARD[12:]])
    halves, uneven = f"{CARD[:8]}-{CARD[8:]}", f"{CARD[:4]} {CARD[4:]}"
    ids = {"customer_id": CARD, "terminal_id": f"T-{CARD}", "merchant_id": grouped}
    small = transaction(
        **ids, device_id=uneven, region=CARD, transaction_id=f"tx-{CARD}-1", amount=1
    )
    large = {**small, "transaction_id": f"tx-{CARD}-2", "amount": 950.0, "device_id": halves,
             "event_time": "2026-01-01T08:16:02.123Z"}  # fmt: skip
    # an invalid transaction's dead letter keeps its payload (card numbers redacted)
    slashed, dotted = "/".join(grouped.split()), f"{CARD[:8]}.{CARD[8:]}"
    expiring = f"{CARD[:8]} {CARD[8:]}1228"  # an expiry date glued on
    invalid = {**small, "transaction_id": f"tx-{CARD}-3", "merchant_id": slashed,
               "device_id": dotted, "region": expiring, "amount": "12.5"}  # fmt: skip
    # `small` delivered twice: its duplicate's dead letter carries every id of the transaction
    deliveries = [(None, encode(small)), (None, encode(small)), (None, encode(large)),
                  (None, encode(invalid))]  # fmt: skip
    produce(kafka.bootstrap_servers, topic, deliveries)
    fraud = label(
        **{name: large[name] for name in ("transaction_id", "customer_id", "terminal_id")},
        event_time=large["event_time"],
        is_fraud=True,
        scenario="card_testing",
    )
    produce(kafka.bootstrap_servers, topics[3], [(None, encode(fraud))])

    alerts = run_to_end(spark, kafka, config, JobMetrics())
    token = card_token(CARD, KEY.encode())
    testing = [alert for alert in alerts if alert["rule"] == "cardTesting"]
    assert len(testing) == 1, alerts
    assert (testing[0]["customer_id"], testing[0]["terminal_id"]) == (token, f"T-{token}")
    assert f"tx-{token}-2" in testing[0]["transaction_ids"]
    client = elasticsearch.client()
    client.indices.refresh(index=config.index("*"))
    outcome = {"rule": "cardTesting", "outcome": "true_positive"}
    # the label found its transaction under the tokenised id
    assert total(client, config.index("outcomes"), "transactions", **outcome) == 1
    documents = client.search(index=config.index("*"), size=1_000)["hits"]["hits"]
    assert {config.index("accounts"), config.index("alerts")} <= {d["_index"] for d in documents}
    letters = read_json(kafka.bootstrap_servers, config.topics["deadLetters"], limit_s=10)
    by_reason = {letter["reason"]: json.loads(letter["payload"]) for letter in letters}
    assert len(letters) == 2 and set(by_reason) == {"duplicate_transaction", "schema_violation"}
    duplicate, invalid_letter = by_reason["duplicate_transaction"], by_reason["schema_violation"]
    assert (duplicate["merchant_id"], duplicate["device_id"], duplicate["region"]) == (token,) * 3
    assert (invalid_letter["merchant_id"], invalid_letter["device_id"]) == (token, token)
    assert invalid_letter["region"] == card_token(f"{CARD}1228", KEY.encode())
    outputs = [json.dumps(document) for document in documents] + [
        json.dumps(message)
        for message in [
            *letters,
            *read_json(kafka.bootstrap_servers, config.topics["alerts"], limit_s=10),
        ]
    ]
    forms = (CARD, grouped, halves, uneven, slashed, dotted, expiring)
    assert not any(card in output for output in outputs for card in forms)


def total(client, index: str, field: str, **terms) -> float:
    query = {"bool": {"filter": [{"term": {name: value}} for name, value in terms.items()]}}
    found = client.search(index=index, size=0, query=query, aggs={"t": {"sum": {"field": field}}})
    return found["aggregations"]["t"]["value"]


def test_per_minute_kpis_and_account_totals_are_indexed(run, elasticsearch, simulated_topic):
    config, _, _, transactions = run
    client = elasticsearch.client()
    client.indices.refresh(index=[config.index("kpis"), config.index("accounts")])
    assert total(client, config.index("kpis"), "transactions") == transactions
    amount = sum(event.value["amount"] for event in simulated_topic[1])
    assert total(client, config.index("kpis"), "amount_total") == pytest.approx(amount, rel=1e-6)
    sample = client.search(index=config.index("kpis"), size=1)["hits"]["hits"][0]["_source"]
    assert (sample["pipeline"], sample["namespace"]) == (config.pipeline, config.namespace)
    customers = {event.value["customer_id"] for event in simulated_topic[1]}
    accounts = client.count(index=config.index("accounts"))["count"]
    assert accounts == len(customers)
    assert total(client, config.index("accounts"), "transactions") == transactions


def expected_outcomes(alerts: list[dict], labels: dict[str, str | None]) -> dict[str, int]:
    """Outcome of rule `any` per labelled transaction, from the alerts read back from Kafka."""
    alerted = {tx for alert in alerts for tx in alert["transaction_ids"]}
    counts = {"true_positive": 0, "false_positive": 0, "false_negative": 0, "true_negative": 0}
    for transaction_id, scenario in labels.items():
        if transaction_id in alerted:
            counts["true_positive" if scenario else "false_positive"] += 1
        else:
            counts["false_negative" if scenario else "true_negative"] += 1
    return counts


def test_labels_are_joined_with_the_alerts_into_outcomes(run, elasticsearch, prometheus):
    config, alerts, labels, _ = run
    expected = expected_outcomes(alerts, labels)
    series = prometheus.wait_for('fraud_detection_label_outcomes_total{rule="any"}', 30)
    scraped: dict[str, float] = {}
    for found in series:
        outcome = found["metric"]["outcome"]
        scraped[outcome] = scraped.get(outcome, 0) + float(found["value"][1])
    print(f"outcomes of rule any: {scraped}, expected {expected}")
    assert scraped == expected
    client = elasticsearch.client()
    client.indices.refresh(index=config.index("outcomes"))
    indexed = {
        outcome: total(
            client, config.index("outcomes"), "transactions", rule="any", outcome=outcome
        )
        for outcome in expected
    }
    assert indexed == expected and sum(indexed.values()) == len(labels)
    # per rule: its true positives are its alerts' fraudulent transactions
    card_testing = {
        tx for alert in alerts if alert["rule"] == "cardTesting" for tx in alert["transaction_ids"]
    }
    tp = sum(1 for tx in card_testing if labels.get(tx))
    assert tp > 0
    rows = prometheus.query(
        'sum(fraud_detection_label_outcomes_total{rule="cardTesting",outcome="true_positive"})'
    )
    assert float(rows[0]["value"][1]) == tp


def test_prometheus_scrapes_the_job_metrics(run, prometheus, simulated_topic):
    _, alerts, _, transactions = run
    rules = prometheus.wait_for('fraud_detection_alerts_total{job="fraud-detection"}', 30)
    assert sum(float(series["value"][1]) for series in rules) == len(alerts)
    dead = prometheus.wait_for("sum(fraud_detection_dead_letters_total)", 30)
    assert float(dead[0]["value"][1]) >= len(BAD_INPUTS)
    rows = prometheus.wait_for('fraud_detection_input_rows_total{query="detection"}', 30)
    assert float(rows[0]["value"][1]) >= transactions
    accepted = prometheus.wait_for("sum(fraud_detection_transactions_total)", 30)
    assert float(accepted[0]["value"][1]) == transactions
    for name in (
        "fraud_detection_batch_duration_seconds_count",
        "fraud_detection_event_to_alert_latency_seconds_bucket",
        "fraud_detection_processed_rows_per_second",
        "fraud_detection_consumer_lag_records",
    ):
        assert prometheus.wait_for(name, 30), name
    lag = prometheus.query('fraud_detection_consumer_lag_records{query="detection"}')
    assert float(lag[0]["value"][1]) == 0
    # every simulated customer is held (bad input reaches no account), and about a kilobyte each
    customers = {event.value["customer_id"] for event in simulated_topic[1]}
    held = prometheus.wait_for("fraud_detection_accounts_held", 30)
    assert float(held[0]["value"][1]) == len(customers)
    stored = prometheus.query("fraud_detection_account_state_bytes")
    assert 100 < float(stored[0]["value"][1]) / len(customers) < 10_000, stored


def spark_submit(config_path: Path, *args: str, log: Path) -> subprocess.Popen:
    conf = local_conf(config_path.parent / "spark")
    command = [str(Path(sys.executable).parent / "spark-submit")]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(REPO / "jobs" / "run_detection.py"), "--config", str(config_path), *args]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    with open(log, "ab") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def test_a_job_killed_mid_stream_and_restarted_raises_the_same_alerts(
    run, spark, kafka, elasticsearch, environment, simulated_topic, tmp_path
):
    """The same alerts as an uninterrupted run in the same micro-batches; the rules' alerts the
    same as in one micro-batch (`run`)."""
    uninterrupted = parse_config(
        pipeline_config(
            kafka, elasticsearch, simulated_topic, tmp_path / "uninterrupted", free_port()
        )
    )
    reference = run_to_end(spark, kafka, uninterrupted, JobMetrics(), BATCH_RECORDS)
    document = pipeline_config(
        kafka, elasticsearch, simulated_topic, tmp_path / "checkpoint", free_port()
    )
    config_path = write_job_yaml(document, tmp_path / "job.yaml")
    config = parse_config(document)
    log = tmp_path / "job.log"
    batches = ("--max-offsets-per-trigger", str(BATCH_RECORDS))
    first = spark_submit(config_path, *batches, log=log)
    commits = tmp_path / "checkpoint" / "detection" / "commits"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(commits.glob("[0-9]*"))) < 3:
        assert first.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    assert len(list(commits.glob("[0-9]*"))) >= 3, "no progress within 240 s"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    state = tmp_path / "checkpoint" / "detection" / "state"
    assert list(state.rglob("*.changelog")), "the state stores write no changelog"
    partial = read_json(kafka.bootstrap_servers, config.topics["alerts"])
    assert 0 < len({alert["alert_id"] for alert in partial}) < len(reference)

    second = spark_submit(config_path, "--available-now", *batches, log=log)
    assert second.wait(RUN_TIMEOUT_S) == 0, log.read_text()[-3000:]
    restarted = read_json(kafka.bootstrap_servers, config.topics["alerts"])
    assert {a["alert_id"] for a in restarted} == {a["alert_id"] for a in reference}
    rule_alerts = {a["alert_id"] for a in run[1] if a["rule"] != "model"}
    assert {a["alert_id"] for a in restarted if a["rule"] != "model"} == rule_alerts
    client = elasticsearch.client()
    client.indices.refresh(index=config.index("alerts"))
    stored = client.search(index=config.index("alerts"), size=10_000, _source=False)
    assert {hit["_id"] for hit in stored["hits"]["hits"]} == {a["alert_id"] for a in reference}


def test_a_checkpoint_written_with_spark_defaults_resumes_with_the_same_alerts(
    spark, kafka, elasticsearch, environment, simulated_topic, tmp_path, monkeypatch
):
    """A pipeline checkpointed with Spark's defaults (no changelogs, Hadoop's FileContext), as the
    job ran before it set them (runner.session_settings), resumes under the job's settings and
    raises the same alerts as a pipeline that always had them."""
    transactions = simulated_topic[1]
    half = len(transactions) // 2
    topic = f"upgrade-{uuid.uuid4().hex[:6]}"
    create_topics(kafka.bootstrap_servers, [topic, f"{topic}-labels"])
    topics = (topic, None, None, f"{topic}-labels")
    configs = {
        name: parse_config(
            pipeline_config(kafka, elasticsearch, topics, tmp_path / name, free_port())
        )
        for name in ("always", "upgraded")
    }
    changelogs = "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"
    manager = "spark.sql.streaming.checkpointFileManagerClass"

    def spark_defaults(location: str) -> dict[str, str]:
        settings = {k: v for k, v in session_settings(location).items() if k != manager}
        return {**settings, changelogs: "false"}

    state = tmp_path / "upgraded" / "detection" / "state"

    produce(
        kafka.bootstrap_servers, topic, [(e.key, e.payload.encode()) for e in transactions[:half]]
    )
    run_to_end(spark, kafka, configs["always"], JobMetrics())
    with monkeypatch.context() as patch:
        patch.setattr(runner, "session_settings", spark_defaults)
        spark.conf.unset(manager)
        run_to_end(spark, kafka, configs["upgraded"], JobMetrics())
    assert state.is_dir() and not list(state.rglob("*.changelog"))

    produce(
        kafka.bootstrap_servers, topic, [(e.key, e.payload.encode()) for e in transactions[half:]]
    )
    always = run_to_end(spark, kafka, configs["always"], JobMetrics())
    upgraded = run_to_end(spark, kafka, configs["upgraded"], JobMetrics())
    assert list(state.rglob("*.changelog"))
    assert len(always) > 20
    assert {a["alert_id"] for a in upgraded} == {a["alert_id"] for a in always}


def test_the_terminal_key_is_the_parsed_terminal_id_whatever_its_spelling(spark):
    """Plain ids take the regular expression, escaped ones get_json_object; the same result."""
    from pyspark.sql import functions as F

    from fraud_detection.job import terminal_of

    values = {
        '{"amount": 1, "terminal_id": "t-12"}': "t-12",
        '{"terminal_id" :  "t-7", "x": 1}': "t-7",
        '{"terminal_id": "Ren\\u00e9"}': "René",
        '{"terminal_id": "a\\"b"}': 'a"b',
        '{"merchant_id": "m\\"terminal_id\\": \\"x", "terminal_id": "t-3"}': "t-3",
        '{"amount": 1}': "",
        "hello fraud": "",
    }
    frame = spark.createDataFrame([(value,) for value in values], "value string")
    found = frame.select("value", terminal_of(F.col("value")).alias("terminal")).collect()
    assert {row.value: row.terminal for row in found} == values
    assert all(json.loads(value).get("terminal_id", "") == terminal
               for value, terminal in values.items() if value.startswith("{"))  # fmt: skip


def test_state_buckets_are_dealt_out_evenly_over_the_shuffle_partitions(spark):
    from pyspark.sql import functions as F

    from fraud_detection.job import SPREADABLE, bucket_key, spark_hash, spread_keys

    keys = spread_keys(64)
    assert [key % 64 for key in keys] == list(range(64))  # one key per bucket, all distinct
    ids = [*range(-300, 300), *keys, 2**40 + 7, 2**63 - 1, -(2**63)]
    hashed = spark.createDataFrame([(n,) for n in ids], "id bigint").select("id", F.hash("id"))
    assert dict(hashed.collect()) == {n: spark_hash(n) for n in ids}  # Spark's own hash

    def partition_sizes(frame, column: str, partitions: int) -> list[int]:
        placed = frame.repartition(partitions, column).groupBy(F.spark_partition_id()).count()
        return sorted(row["count"] for row in placed.collect())

    named = spark.createDataFrame([(key,) for key in keys], "key bigint")
    for partitions in (2, 4, 8):
        assert partition_sizes(named, "key", partitions) == [64 // partitions] * partitions
    assert partition_sizes(spark.range(64), "id", 2) == [28, 36]  # the bucket numbers as they are
    accounts = spark.createDataFrame([(f"c-{n}",) for n in range(500)], "account string")
    found = accounts.select(bucket_key("account", 64, keys).alias("key")).collect()
    assert {row.key for row in found} <= set(keys)
    assert spread_keys(SPREADABLE + 1) is None
