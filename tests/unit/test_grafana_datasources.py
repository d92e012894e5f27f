"""Per-pipeline Grafana content: datasources derived from the spec, dashboards pointed at them."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from fraud_operator import builders, config, grafana
from fraud_operator.builders import GrafanaContent, Pipeline
from fraud_operator.controller import Settings
from fraud_operator.reconcile import load_grafana_content
from fraud_testbed.paths import THIRD_PARTY_CRDS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "examples" / "fraudpipeline.yaml").read_text())
CONTENT = load_grafana_content(ROOT / "grafana")
UID = re.compile(r"^[a-zA-Z0-9-_]{1,40}$")  # Grafana's and grafana-operator's uid rule
SELECTOR = {"matchLabels": {"dashboards": "grafana"}}
OPERATOR_MODE = {"mode": "operator", "folder": "Fraud", "instanceSelector": SELECTOR}


def pipeline(name: str = "payments", namespace: str = "fraud", **grafana_settings) -> Pipeline:
    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["monitoring"]["grafana"].update(grafana_settings)
    obj = {"metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}"}, "spec": spec}
    return Pipeline.from_object(obj)


def datasources(p: Pipeline) -> dict[str, dict]:
    return grafana.build_datasources(p.name, p.namespace, p.spec, grafana.DEFAULT_PROMETHEUS_URL)


def references(node: object) -> list[dict]:
    """Every datasource reference in a dashboard."""
    if isinstance(node, list):
        return [r for item in node for r in references(item)]
    if not isinstance(node, dict):
        return []
    found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
    return found + [r for value in node.values() for r in references(value)]


def test_datasources_follow_the_elasticsearch_sink():
    p = pipeline()
    p.spec["sinks"]["elasticsearch"]["indexPrefix"] = "cards"
    made = datasources(p)
    assert list(made) == [
        grafana.PROMETHEUS,
        grafana.ALERTS,
        grafana.KPIS,
        grafana.OUTCOMES,
        grafana.ACCOUNTS,
    ]
    assert made[grafana.PROMETHEUS]["url"] == "http://prometheus-operated.monitoring.svc:9090"
    indices = {
        uid: (d["jsonData"]["index"], d["jsonData"]["timeField"])
        for uid, d in made.items()
        if d["type"] == "elasticsearch"
    }
    assert indices[grafana.ALERTS] == ("cards-alerts", "detection_time")
    assert indices[grafana.KPIS] == ("cards-kpis", "minute")
    assert indices[grafana.OUTCOMES] == ("cards-outcomes", "minute")
    assert indices[grafana.ACCOUNTS] == ("cards-accounts", "last_seen")
    # The example's bare Service name is resolved in the pipeline's namespace, as the job does.
    job_url = config.render_job_config(p.name, p.namespace, p.spec)["elasticsearch"]["url"]
    assert job_url == "http://fraud-es-es-http:9200"
    assert made[grafana.ALERTS]["url"] == "http://fraud-es-es-http.fraud.svc:9200"
    assert {d["type"] for d in made.values()} == {"prometheus", "elasticsearch"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://fraud-es-es-http:9200", "http://fraud-es-es-http.fraud.svc:9200"),
        ("https://es", "https://es.fraud.svc"),
        ("http://reader@es:9200/base", "http://reader@es.fraud.svc:9200/base"),
        ("http://es.search:9200", "http://es.search:9200"),
        ("http://es.search.svc.cluster.local:9200", "http://es.search.svc.cluster.local:9200"),
        ("https://search.example.com/es", "https://search.example.com/es"),
        ("http://localhost:9200", "http://localhost:9200"),
        ("http://10.0.0.7:9200", "http://10.0.0.7:9200"),
        ("http://[::1]:9200", "http://[::1]:9200"),
    ],
)
def test_a_service_name_resolves_in_the_pipeline_namespace(url, expected):
    assert grafana.grafana_url(url, "fraud") == expected


def test_without_an_elasticsearch_sink_there_is_only_prometheus():
    p = pipeline()
    del p.spec["sinks"]["elasticsearch"]
    assert list(datasources(p)) == [grafana.PROMETHEUS]
    unauthenticated = pipeline()
    del unauthenticated.spec["sinks"]["elasticsearch"]["credentialsSecretRef"]
    alerts = datasources(unauthenticated)[grafana.ALERTS]
    assert "basicAuth" not in alerts and "secureJsonData" not in alerts


def test_the_prometheus_url_is_an_operator_setting():
    settings = Settings.from_environment({"FRAUDPIPELINE_PROMETHEUS_URL": "http://prom:9090"})
    assert settings.prometheus_url == "http://prom:9090"
    assert Settings.from_environment({}).prometheus_url == grafana.DEFAULT_PROMETHEUS_URL
    content = GrafanaContent(CONTENT.dashboards, settings.prometheus_url)
    config_map = builders.build_grafana(pipeline(), content)[1]
    (text,) = config_map["data"].values()
    assert json.loads(text)["datasources"][0]["url"] == "http://prom:9090"


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("fraud", "payments"),
        ("n" * 63, "p" * 40),
        ("team-payments-production-europe-west", "card-payments-realtime"),
    ],
)
def test_uids_fit_grafana_and_stay_apart(namespace, name):
    keys = [*grafana.TEMPLATE_TYPES, *(b["uid"] for b in CONTENT.dashboards.values())]
    uids = [grafana.pipeline_uid(namespace, name, key) for key in keys]
    assert all(UID.match(uid) for uid in uids), uids
    assert len(set(uids)) == len(uids)
    # a pipeline with the same long head is told apart by the hash
    other = [grafana.pipeline_uid(namespace, name + "x", key) for key in keys]
    assert not set(uids) & set(other)
    assert grafana.pipeline_uid("fraud", "payments", "fraud-alerts") == "fraud_payments_alerts"


def test_credential_variables_are_per_pipeline():
    assert grafana.credential_variables("fraud", "payments") == (
        "FRAUD_FRAUD__PAYMENTS_ES_USERNAME",
        "FRAUD_FRAUD__PAYMENTS_ES_PASSWORD",
    )
    pairs = [("a--b", "c"), ("a", "b--c"), ("a-b", "c"), ("a", "b-c"), ("fraud", "cards")]
    variables = [grafana.credential_variables(ns, n) for ns, n in pairs]
    assert len(set(variables)) == len(pairs)
    assert all(re.match(r"^[A-Z_][A-Z0-9_]*$", v) for pair in variables for v in pair)


@pytest.mark.parametrize("mode", ["sidecar", "operator"])
def test_two_pipelines_in_one_namespace_do_not_collide(mode):
    settings = OPERATOR_MODE if mode == "operator" else {"mode": "sidecar"}
    made = [builders.build_grafana(pipeline(n, **settings), CONTENT) for n in ("cards", "loans")]
    keys = [{(m["kind"], m["metadata"]["name"]) for m in items} for items in made]
    assert not keys[0] & keys[1]

    def grafana_side(items: list[dict]) -> tuple[set, set, set]:
        """Datasource uids and names, dashboard uids and titles, sidecar file names."""
        if mode == "sidecar":
            files = {key for m in items for key in m["data"]}
            boards = [
                json.loads(m["data"][f]) for m in items for f in m["data"] if f.endswith(".json")
            ]
            sources = [
                s
                for m in items
                for f in m["data"]
                if f.endswith(".yaml")
                for s in json.loads(m["data"][f])["datasources"]
            ]
            uids = {s["uid"] for s in sources}
        else:
            files = set()
            boards = [json.loads(m["spec"]["json"]) for m in items if "json" in m["spec"]]
            sources = [m["spec"]["datasource"] for m in items if "datasource" in m["spec"]]
            uids = {m["spec"]["uid"] for m in items if "datasource" in m["spec"]}
        names = {s["name"] for s in sources} | {b["title"] for b in boards}
        uids |= {b["uid"] for b in boards}
        assert len(uids) == len(sources) + len(boards) == 9
        return uids, names, files

    first, second = (grafana_side(items) for items in made)
    for mine, theirs in zip(first, second, strict=True):
        assert not mine & theirs


@pytest.mark.parametrize("mode", ["sidecar", "operator"])
def test_every_dashboard_points_at_its_pipelines_datasources(mode):
    settings = OPERATOR_MODE if mode == "operator" else {"mode": "sidecar"}
    p = pipeline(**settings)
    types = {d["uid"]: d["type"] for d in datasources(p).values()}
    for template in CONTENT.dashboards.values():
        board = grafana.build_dashboard(p.name, p.namespace, template)
        assert board["uid"] == grafana.pipeline_uid("fraud", "payments", template["uid"])
        assert board["title"] == f"{template['title']} (fraud/payments)"
        found = references(board)
        assert len(found) == len(references(template)) > 0
        for reference in found:
            if reference["type"] != "__expr__":  # Grafana's expressions: the same everywhere
                assert types[reference["uid"]] == reference["type"], reference
        assert board["panels"][0]["title"] == template["panels"][0]["title"]


def test_a_pipelines_dashboards_open_on_its_own_data():
    """Its Prometheus panels on its namespace and pipeline (the variables' current value), its
    Elasticsearch panels on its own documents (pipeline and namespace fields)."""
    p = pipeline()
    for template in CONTENT.dashboards.values():
        board = grafana.build_dashboard(p.name, p.namespace, template)
        variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
        if template["uid"] != "fraud-operator":
            assert set(variables) == {"namespace", "pipeline"}
        for name, value in (("namespace", "fraud"), ("pipeline", "payments")):
            if name in variables:
                assert variables[name]["current"]["value"] == [value]
                assert variables[name]["options"][0]["value"] == value
                # the template itself still opens on every pipeline
                original = next(v for v in template["templating"]["list"] if v["name"] == name)
                assert not original.get("current", {}).get("value")
        for panel, original in zip(board["panels"], template["panels"], strict=True):
            for target, before in zip(panel["targets"], original["targets"], strict=True):
                if "expression" in target:
                    assert target == before
                    continue
                if panel["datasource"]["type"] != "elasticsearch":
                    assert target["expr"] == before["expr"]
                    continue
                own = 'namespace:"fraud" AND pipeline:"payments"'
                query = before["query"]
                assert target["query"] == (own if query == "*" else f"{own} AND ({query})")


def test_sidecar_credentials_are_grafana_environment_placeholders():
    made = builders.build_grafana(pipeline(), CONTENT)
    config_map = next(m for m in made if m["metadata"]["name"] == "payments-datasources")
    assert config_map["metadata"]["labels"]["grafana_datasource"] == "1"
    (file,) = config_map["data"]
    assert file == "fraud_payments_datasources.yaml"
    alerts = next(
        d for d in json.loads(config_map["data"][file])["datasources"] if "alerts" in d["uid"]
    )
    assert alerts["basicAuthUser"] == "${FRAUD_FRAUD__PAYMENTS_ES_USERNAME}"
    assert alerts["secureJsonData"] == {"basicAuthPassword": "${FRAUD_FRAUD__PAYMENTS_ES_PASSWORD}"}


def grafana_operator_schema(plural: str) -> dict:
    path = THIRD_PARTY_CRDS / f"grafana.integreatly.org_{plural}.yaml"
    if not path.exists():
        pytest.skip(f"no upstream grafana-operator CRDs in {THIRD_PARTY_CRDS}")
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    return version["schema"]["openAPIV3Schema"]


def test_operator_mode_takes_the_credentials_from_the_pipelines_secret():
    p = pipeline(**OPERATOR_MODE)
    p.spec["sinks"]["elasticsearch"]["credentialsSecretRef"] = {
        "name": "es-reader",
        "usernameKey": "user",
        "passwordKey": "secret",
    }
    made = builders.build_grafana(p, CONTENT)
    objects = {m["metadata"]["name"]: m for m in made if m["kind"] == "GrafanaDatasource"}
    assert set(objects) == {
        "payments-ds-prometheus",
        "payments-ds-alerts",
        "payments-ds-kpis",
        "payments-ds-outcomes",
        "payments-ds-accounts",
    }
    schema = grafana_operator_schema("grafanadatasources")
    for obj in objects.values():
        jsonschema.validate(obj, schema)
        assert UID.match(obj["spec"]["uid"])
    assert "valuesFrom" not in objects["payments-ds-prometheus"]["spec"]
    alerts = objects["payments-ds-alerts"]["spec"]
    assert alerts["datasource"]["basicAuthUser"] == "${user}"
    assert alerts["datasource"]["secureJsonData"] == {"basicAuthPassword": "${secret}"}
    assert alerts["valuesFrom"] == [
        {
            "targetPath": "basicAuthUser",
            "valueFrom": {"secretKeyRef": {"name": "es-reader", "key": "user"}},
        },
        {
            "targetPath": "secureJsonData.basicAuthPassword",
            "valueFrom": {"secretKeyRef": {"name": "es-reader", "key": "secret"}},
        },
    ]
    dashboard_schema = grafana_operator_schema("grafanadashboards")
    for obj in made:
        if obj["kind"] == "GrafanaDashboard":
            jsonschema.validate(obj, dashboard_schema)
