"""job.yaml loading, alert ids and Kafka lag: small pure functions the job depends on."""

from __future__ import annotations

import json

import pytest
import yaml

from fraud_detection.alerts import alert_id
from fraud_detection.config import ConfigError, duration_seconds, load_config, model_path
from fraud_detection.metrics import kafka_lag
from fraud_detection.runner import FILE_SYSTEM_CHECKPOINTS, session_settings

JOB_YAML = """
pipeline: {name: payments, namespace: fraud}
kafka:
  bootstrapServers: kafka:9092
  topics: {transactions: payments-transactions, alerts: payments-alerts,
           labels: payments-labels, deadLetters: payments-dead-letters}
detection:
  triggerInterval: 2 seconds
  rules: {velocity: {maxTransactions: 3}, cardTesting: {enabled: false}}
  model: {scoreThreshold: 0.9}
checkpointLocation: /checkpoints/fraud/payments
elasticsearch: {url: http://es:9200, indexPrefix: bank}
metrics: {port: 9200}
"""


def test_job_yaml_is_loaded_with_defaults_for_what_it_omits(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(JOB_YAML)
    config = load_config(path)
    assert config.topics["deadLetters"] == "payments-dead-letters"
    assert config.detection.trigger_interval == "2 seconds"
    assert config.detection.watermark_delay == "10 minutes"
    assert config.detection.rules["velocity"] == {
        "enabled": True,
        "maxTransactions": 3,
        "maxAmount": 5000.0,
        "windowMinutes": 10,
    }
    assert config.detection.rules["cardTesting"]["enabled"] is False
    assert config.detection.model["scoreThreshold"] == 0.9
    assert config.detection.model["enabled"] is True
    assert (config.index("alerts"), config.metrics_port) == ("bank-alerts", 9200)


def test_missing_topics_and_bad_durations_are_refused():
    document = yaml.safe_load(JOB_YAML)
    del document["kafka"]["topics"]["alerts"]
    with pytest.raises(ConfigError, match=r"kafka\.topics\.alerts"):
        load_config_from(document)
    document = yaml.safe_load(JOB_YAML)
    document["detection"]["watermarkDelay"] = "soon"
    with pytest.raises(ConfigError, match="duration"):
        load_config_from(document)
    document = yaml.safe_load(JOB_YAML)
    document["detection"]["maxEventTimeAhead"] = "1 fortnight"
    with pytest.raises(ConfigError, match="duration"):
        load_config_from(document)
    document = yaml.safe_load(JOB_YAML)
    document["detection"]["stateBuckets"] = 0
    with pytest.raises(ConfigError, match="stateBuckets"):
        load_config_from(document)


def test_the_job_s_defaults_are_the_crd_s():
    """A job.yaml without detection settings runs as a FraudPipeline that leaves them out."""
    from fraud_operator.schema import spec_with_defaults

    crd = spec_with_defaults({})["detection"]
    document = yaml.safe_load(JOB_YAML)
    del document["detection"]
    job = load_config_from(document).detection
    assert job.trigger_interval == crd["triggerInterval"]
    assert job.watermark_delay == crd["watermarkDelay"]
    assert job.state_buckets == crd["stateBuckets"]
    assert job.max_event_time_ahead is None and "maxEventTimeAhead" not in crd
    assert job.rules == crd["rules"]
    assert job.model == crd["model"]


def load_config_from(document):
    from fraud_detection.config import parse_config

    return parse_config(document)


def test_durations_and_model_uris():
    assert duration_seconds("10 minutes") == 600
    assert duration_seconds("1 second") == 1
    assert str(model_path("local:///opt/fraudpipeline/models/default")) == (
        "/opt/fraudpipeline/models/default"
    )


def test_the_crd_recommends_a_trigger_interval_the_job_reads():
    """The CRD's description recommends '500 milliseconds' for the lowest latency (the API
    server's acceptance of it: tests/integration/test_operator.py)."""
    from fraud_operator.schema import spec_schema

    trigger = spec_schema()["properties"]["detection"]["properties"]["triggerInterval"]
    assert "'500 milliseconds'" in trigger["description"]
    assert duration_seconds("500 milliseconds") == 0.5


def test_alert_ids_depend_on_rule_and_transaction_set_only():
    assert alert_id("velocity", ["b", "a"]) == alert_id("velocity", ("a", "b"))
    assert alert_id("velocity", ["a", "b"]) != alert_id("spendingSpree", ["a", "b"])
    assert alert_id("velocity", ["a"]) != alert_id("velocity", ["a", "b"])


def test_an_alert_document_has_the_contract_fields():
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from fraud_detection.sinks import alert_document

    payload = json.dumps(
        {"alert_id": alert_id("velocity", ["t1", "t2"]), "rule": "velocity", "score": 0.7,
         "explanation": {"transactions": 11}, "transaction_ids": ["t1", "t2"],
         "card_token": "tok_x", "customer_id": "c1", "terminal_id": "t9"}
    )  # fmt: skip
    row = SimpleNamespace(payload=payload, event_ms=1_767_254_400_000)
    origin = {"pipeline": "payments", "namespace": "fraud"}
    document = alert_document(row, origin, datetime(2026, 1, 1, 8, 0, 1, tzinfo=UTC))
    assert set(document) == {
        "alert_id", "rule", "score", "explanation", "transaction_ids", "card_token",
        "customer_id", "terminal_id", "event_time", "detection_time", "pipeline", "namespace",
    }  # fmt: skip
    assert document["event_time"] == "2026-01-01T08:00:00.000Z"
    assert document["detection_time"] == "2026-01-01T08:00:01.000Z"
    assert (document["pipeline"], document["namespace"]) == ("payments", "fraud")


def test_consumer_lag_is_latest_minus_batch_end_summed_over_partitions():
    source = {
        "latestOffset": '{"tx": {"0": 100, "1": 50}}',
        "endOffset": '{"tx": {"0": 90, "1": 50}}',
    }
    assert kafka_lag(source) == {"tx": 10}
    assert kafka_lag({"latestOffset": None, "endOffset": None}) == {}


@pytest.mark.parametrize(
    "location, local",
    [
        ("/checkpoints/fraud/payments", True),
        ("file:///tmp/checkpoints", True),
        ("s3a://bank-checkpoints/fraud", False),
        ("hdfs://namenode/checkpoints", False),
    ],
)
def test_local_checkpoints_skip_hadoop_file_context_and_state_stores_write_changelogs(
    location, local
):
    settings = session_settings(location)
    assert settings["spark.sql.streaming.stateStore.providerClass"].endswith(
        "RocksDBStateStoreProvider"
    )
    assert settings["spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"] == (
        "true"
    )
    manager = settings.get("spark.sql.streaming.checkpointFileManagerClass")
    assert (manager == FILE_SYSTEM_CHECKPOINTS) is local
    assert local or manager is None
