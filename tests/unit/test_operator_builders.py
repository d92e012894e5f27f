"""The pure parts of the operator: schema and defaults, rendered configuration, child manifests."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from fraud_operator import builders, config, schema
from fraud_operator.builders import GrafanaContent, Pipeline
from fraud_operator.reconcile import needs_apply

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraudpipeline.yaml"
GRAFANA = GrafanaContent({"overview.json": {"uid": "fraud-overview", "title": "Overview"}})


def make_pipeline(**overrides) -> Pipeline:
    spec = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text())["spec"])
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        target = spec
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    obj = {"metadata": {"name": "payments", "namespace": "fraud", "uid": "u-1"}, "spec": spec}
    return Pipeline.from_object(obj)


def by_kind_name(children: list[dict]) -> dict[tuple[str, str], dict]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


@pytest.mark.parametrize("path", schema.GENERATED, ids=lambda path: path.name)
def test_crd_files_are_generated_from_the_schema(path):
    assert path.read_text() == schema.GENERATED[path](), (
        f"{path} is stale: run `python -m fraud_operator.schema`"
    )


def test_every_schema_field_has_a_description():
    missing = []

    def walk(node: dict, path: str) -> None:
        if path and "description" not in node:
            missing.append(path)
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")

    walk(schema.spec_schema(), "spec")
    walk(schema.status_schema(), "status")
    assert missing == []


def test_defaults_fill_a_minimal_spec_like_the_contract():
    spec = schema.spec_with_defaults({"kafka": {"clusterRef": {"name": "fraud-kafka"}}})
    assert spec["kafka"]["topics"]["transactions"] == {
        "partitions": 6,
        "replicas": 1,
        "config": {"retention.ms": "604800000"},
    }
    assert spec["detection"]["rules"]["velocity"]["maxTransactions"] == 10
    assert spec["simulator"]["sources"] == ["transactions"]
    assert spec["monitoring"]["grafana"]["mode"] == "sidecar"
    assert "sinks" not in spec or "elasticsearch" not in spec["sinks"]


def test_job_config_follows_the_contract():
    pipeline = make_pipeline()
    job = config.render_job_config("payments", "fraud", pipeline.spec)
    assert job["pipeline"] == {"name": "payments", "namespace": "fraud"}
    assert job["kafka"] == {
        "bootstrapServers": "fraud-kafka-kafka-bootstrap:9092",
        "topics": {
            "transactions": "payments-transactions",
            "alerts": "payments-alerts",
            "labels": "payments-labels",
            "deadLetters": "payments-dead-letters",
        },
    }
    assert job["checkpointLocation"] == "/checkpoints/fraud/payments"
    assert job["elasticsearch"] == {"url": "http://fraud-es-es-http:9200", "indexPrefix": "fraud"}
    assert job["detection"]["rules"]["cardTesting"]["largeAmountMin"] == 200.0
    assert job["metrics"] == {"port": 9108}


def test_simulator_config_has_no_image_or_replicas_and_no_secret():
    pipeline = make_pipeline(**{"simulator.ratePerSecond": 50})
    sim = config.render_simulator_config("payments", "fraud", pipeline.spec)
    assert sim["simulator"]["ratePerSecond"] == 50
    assert "image" not in sim["simulator"] and "replicas" not in sim["simulator"]
    assert sim["kafka"]["topics"]["sensors"] == "payments-sensors"
    text = config.dump(sim) + config.dump(config.render_job_config("p", "n", pipeline.spec))
    assert "password" not in text.lower() and "hmac-key" not in text


def test_children_carry_labels_owner_and_hash():
    children = builders.build_children(make_pipeline(), GRAFANA)
    for child in children:
        meta = child["metadata"]
        assert meta["labels"]["app.kubernetes.io/instance"] == "payments"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == builders.MANAGER
        assert meta["ownerReferences"][0]["uid"] == "u-1"
        assert meta["ownerReferences"][0]["controller"] is True
        assert builders.HASH_ANNOTATION in meta["annotations"]
    names = by_kind_name(children)
    assert names[("KafkaTopic", "payments-transactions")]["metadata"]["labels"][
        "strimzi.io/cluster"
    ] == ("fraud-kafka")
    assert ("KafkaTopic", "payments-sensors") not in names
    assert ("ConfigMap", "payments-dashboards") in names


def test_sources_add_their_topics():
    pipeline = make_pipeline(**{"simulator.sources": ["transactions", "sensors"]})
    topics = {t["metadata"]["name"] for t in builders.build_topics(pipeline)}
    assert "payments-sensors" in topics and "payments-applications" not in topics


def test_spark_application_uses_secret_references_and_mounts_the_config():
    app = by_kind_name(builders.build_detector(make_pipeline()))[
        ("SparkApplication", "payments-detector")
    ]["spec"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in app["driver"]["env"]}
    assert env["ES_PASSWORD"] == {"name": "fraud-es-credentials", "key": "password"}
    assert env["TOKENIZATION_KEY"] == {"name": "fraud-tokenization", "key": "hmac-key"}
    assert app["volumes"][0]["configMap"]["name"] == "payments-detector-config"
    assert app["executor"]["instances"] == 2 and app["suspend"] is False


def test_the_job_gets_a_shuffle_partition_per_executor_core_unless_spark_conf_says_otherwise():
    def conf(**overrides) -> dict:
        children = builders.build_detector(make_pipeline(**overrides))
        return by_kind_name(children)[("SparkApplication", "payments-detector")]["spec"][
            "sparkConf"
        ]

    assert conf()["spark.sql.shuffle.partitions"] == "2"  # 2 executors of 1 core
    executors = {"instances": 3, "cores": 4, "memory": "2g"}
    assert conf(**{"spark.executor": executors})["spark.sql.shuffle.partitions"] == "12"
    chosen = {"spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false"}
    assert conf(**{"spark.sparkConf": chosen}) == chosen


def test_only_inputs_of_a_child_change_it():
    before = by_kind_name(builders.build_children(make_pipeline(), GRAFANA))

    def changed(**overrides) -> set[tuple[str, str]]:
        after = by_kind_name(builders.build_children(make_pipeline(**overrides), GRAFANA))
        assert after.keys() == before.keys()
        return {key for key in before if before[key] != after[key]}

    assert changed(**{"simulator.ratePerSecond": 10}) == {
        ("ConfigMap", "payments-simulator-config"),
        ("Deployment", "payments-simulator"),
    }
    assert changed(**{"kafka.topics.alerts": {"partitions": 6, "replicas": 1}}) == {
        ("KafkaTopic", "payments-alerts")
    }
    assert changed(**{"detection.rules.velocity": {"enabled": True, "maxTransactions": 3}}) == {
        ("ConfigMap", "payments-detector-config"),
        ("SparkApplication", "payments-detector"),
    }


def test_scraped_series_are_labelled_with_their_pipeline():
    children = by_kind_name(builders.build_children(make_pipeline(), GRAFANA))
    service_monitor = children[("ServiceMonitor", "payments-detector")]["spec"]["endpoints"][0]
    pod_monitor = children[("PodMonitor", "payments-simulator")]["spec"]["podMetricsEndpoints"][0]
    for endpoint in (service_monitor, pod_monitor):
        assert endpoint["relabelings"] == [
            {
                "sourceLabels": ["__meta_kubernetes_pod_label_fraudpipeline_dev_pipeline"],
                "targetLabel": "pipeline",
            }
        ]
    spark = children[("SparkApplication", "payments-detector")]["spec"]
    simulator = children[("Deployment", "payments-simulator")]["spec"]["template"]["metadata"]
    assert spark["driver"]["labels"]["fraudpipeline.dev/pipeline"] == "payments"
    assert simulator["labels"]["fraudpipeline.dev/pipeline"] == "payments"


def test_every_pod_runs_as_non_root_and_executors_get_no_elasticsearch_credentials():
    children = by_kind_name(builders.build_children(make_pipeline(), GRAFANA))
    spark = children[("SparkApplication", "payments-detector")]["spec"]
    pod = children[("Deployment", "payments-simulator")]["spec"]["template"]["spec"]
    for security in (spark["driver"], spark["executor"]):
        assert security["podSecurityContext"]["runAsNonRoot"] is True
        assert security["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {var["name"] for var in spark["driver"]["env"]} >= {"ES_PASSWORD", "TOKENIZATION_KEY"}
    assert [var["name"] for var in spark["executor"]["env"]] == ["TOKENIZATION_KEY"]


def test_checkpoint_claim_is_mounted_at_the_checkpoint_location_on_every_spark_pod():
    pipeline = make_pipeline(**{"spark.checkpointClaimName": "payments-checkpoints"})
    spark = by_kind_name(builders.build_children(pipeline, GRAFANA))[
        ("SparkApplication", "payments-detector")
    ]["spec"]
    assert {
        "name": "checkpoints",
        "persistentVolumeClaim": {"claimName": "payments-checkpoints"},
    } in (spark["volumes"])
    for pod in (spark["driver"], spark["executor"]):
        assert {"name": "checkpoints", "mountPath": "/checkpoints"} in pod["volumeMounts"]


def test_suspend_stops_job_and_simulator_but_keeps_topics():
    running = by_kind_name(builders.build_children(make_pipeline(), GRAFANA))
    suspended = by_kind_name(builders.build_children(make_pipeline(suspend=True), GRAFANA))
    assert suspended[("SparkApplication", "payments-detector")]["spec"]["suspend"] is True
    assert suspended[("Deployment", "payments-simulator")]["spec"]["replicas"] == 0
    assert {k for k in suspended if k[0] == "KafkaTopic"} == {
        k for k in running if k[0] == "KafkaTopic"
    }


def test_grafana_operator_mode_builds_grafana_objects_with_the_selector():
    selector = {"matchLabels": {"dashboards": "grafana"}}
    pipeline = make_pipeline(
        **{
            "monitoring.grafana": {
                "mode": "operator",
                "folder": "Fraud",
                "instanceSelector": selector,
            }
        }
    )
    grafana = [c for c in builders.build_grafana(pipeline, GRAFANA)]
    assert {c["kind"] for c in grafana} == {
        "GrafanaFolder",
        "GrafanaDashboard",
        "GrafanaDatasource",
    }
    assert all(c["spec"]["instanceSelector"] == selector for c in grafana)
    none = make_pipeline(**{"monitoring.grafana": {"mode": "none"}})
    assert builders.build_grafana(none, GRAFANA) == []


def test_possible_children_cover_every_built_child():
    for overrides in ({}, {"simulator.sources": list(schema.SOURCES)}):
        pipeline = make_pipeline(**overrides)
        built = {
            (c["kind"], c["metadata"]["name"]) for c in builders.build_children(pipeline, GRAFANA)
        }
        optional = built - builders.possible_children(pipeline, GRAFANA)
        assert all(kind not in ("KafkaTopic", "Deployment", "PodMonitor") for kind, _ in optional)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda live: None, False),
        (lambda live: live["metadata"].setdefault("resourceVersion", "7"), False),
        (lambda live: live["spec"].update(sessionAffinity="None"), False),
        (lambda live: live["spec"].update(clusterIP="10.0.0.9"), True),
        (lambda live: live["spec"]["ports"][0].update(port=1), True),
        (lambda live: live["metadata"]["annotations"].pop(builders.HASH_ANNOTATION), True),
        (lambda live: live["spec"].pop("selector"), True),
    ],
)
def test_needs_apply_ignores_server_defaults_but_not_edits(edit, expected):
    service = by_kind_name(builders.build_detector(make_pipeline()))[
        ("Service", "payments-detector-metrics")
    ]
    live = copy.deepcopy(service)
    edit(live)
    assert needs_apply(service, live) is expected
    assert needs_apply(service, None) is True
