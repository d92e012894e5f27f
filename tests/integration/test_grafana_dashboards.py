"""Every panel of every dashboard shows real data from the simulator, the job and the operator."""

from __future__ import annotations

import json
import math
import os
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from fraud_dashboards import esquery, pictures
from fraud_dashboards.feed import feed
from fraud_dashboards.generate import GRAFANA_DIR
from fraud_dashboards.panels import load_dashboards, promql, targets
from fraud_operator.builders import (
    Pipeline,
    build_grafana,
    dashboard_object_name,
    datasource_object_name,
)
from fraud_operator.grafana import TEMPLATE_TYPES
from fraud_operator.reconcile import load_grafana_content

RULES = ("impossibleTravel", "spendingSpree", "cardTesting", "velocity", "amountThreshold", "model")

pytestmark = pytest.mark.testbed
# Spark's Python workers must run this interpreter (the project is installed in it).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
DASHBOARDS = load_dashboards()
SERIES_TIMEOUT_S = 90
# Panels on the new outputs of the job, and the series (label values) each must show.
NEW_PROMETHEUS_PANELS = {
    ("fraud-detection-quality", "Precision per rule", "A"): "rule",
    ("fraud-detection-quality", "Recall, overall and per scenario", "A"): "",
    ("fraud-detection-quality", "Recall, overall and per scenario", "B"): "scenario",
    ("fraud-overview", "Fraud rate", "A"): "",
    ("fraud-overview", "Fraud rate (labelled, last 15m)", "A"): "",
    ("fraud-overview", "Average ticket by category", "A"): "merchant_category",
    ("fraud-overview", "Transactions per minute", "A"): "",
    ("fraud-overview", "Transactions per minute, total and by category", "A"): "",
    ("fraud-overview", "Transactions per minute, total and by category", "B"): "merchant_category",
    ("fraud-pipeline-health", "Dead letters in range by reason", "A"): "reason",
}
# Reasons of the bad input the feed produces, in the dead-letter panel once scraped twice.
DEAD_LETTER_REASONS = {"invalid_json", "invalid_label"}
NEW_ELASTICSEARCH_PANELS = {
    "Average ticket by category (event time)",
    "Top accounts by amount",
    "Precision per rule (event time, 5 min)",
    "Recall per scenario (event time, 5 min)",
    "Fraud rate (event time, 5 min)",
    "Labelled outcomes in range by rule",
}


@pytest.fixture(scope="module")
def fed(kafka, spark, elasticsearch, prometheus, kube, tmp_path_factory):
    with feed(
        kafka, spark, elasticsearch, prometheus, kube, tmp_path_factory.mktemp("feed")
    ) as running:
        yield running


def fed_pipeline(kube, fed) -> Pipeline:
    obj = json.loads(kube.kubectl("get", "fp", fed.pipeline, "-n", fed.namespace, "-o", "json"))
    return Pipeline.from_object(obj)


def finite(result: list[dict]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


def test_every_prometheus_query_returns_series(fed, prometheus):
    queries = [t for board in DASHBOARDS.values() for t in targets(board) if "expr" in t.target]
    assert len(queries) >= 30
    keys = {(t.dashboard, t.panel["title"], t.target["refId"]) for t in queries}
    assert set(NEW_PROMETHEUS_PANELS) <= keys, set(NEW_PROMETHEUS_PANELS) - keys
    deadline = time.monotonic() + SERIES_TIMEOUT_S
    while True:
        problems = {t.name: panel_problem(t, fed, prometheus) for t in queries}
        problems = {name: problem for name, problem in problems.items() if problem}
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not problems, json.dumps(problems, indent=1)


def panel_problem(target, fed, prometheus) -> str | None:
    """What the panel's query is still missing on the fed test bed, or None."""
    query = promql(target.target["expr"], fed.namespace, fed.pipeline)
    result = [s for s in prometheus.query(query) if math.isfinite(float(s["value"][1]))]
    if not result:
        return f"no finite series: {query}"
    key = (target.dashboard, target.panel["title"], target.target["refId"])
    label = NEW_PROMETHEUS_PANELS.get(key)
    if label is None:
        return None
    values = {s["metric"].get(label, "") for s in result}
    if label and not all(values):
        return f"series without {label}: {result}"
    title = target.panel["title"]
    if title == "Dead letters in range by reason" and not values >= DEAD_LETTER_REASONS:
        return f"reasons {sorted(values)} lack one of {sorted(DEAD_LETTER_REASONS)}"
    if title == "Precision per rule" and ("any" in values or not values <= set(RULES)):
        return f"rules {sorted(values)} are not the job's rules"
    return None


def test_the_outcome_counters_hold_every_outcome(fed, prometheus):
    """The job's `outcomes` query joined the simulator's labels with the alerts."""
    selector = f'namespace="{fed.namespace}", pipeline="{fed.pipeline}"'
    expr = f"sum by (rule, outcome) (fraud_detection_label_outcomes_total{{{selector}}})"
    wanted = {("any", "true_positive"), ("any", "true_negative")}
    deadline = time.monotonic() + SERIES_TIMEOUT_S
    while True:
        found = {(s["metric"]["rule"], s["metric"]["outcome"]) for s in prometheus.query(expr)}
        if wanted <= found or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert wanted <= found, found
    assert {rule for rule, _ in found} - {"any"} <= set(RULES), found
    assert {rule for rule, _ in found} - {"any"}, found


def test_variables_list_the_fed_namespace_and_pipeline(fed, prometheus, kube):
    """And the pipeline's own copies open on its namespace and pipeline."""
    copies = {board["uid"]: board for board in provisioned_dashboards(fed_pipeline(kube, fed))[0]}
    for board in (*DASHBOARDS.values(), *copies.values()):
        for variable in board.get("templating", {}).get("list", []):
            metric, label = variable["query"].removeprefix("label_values(")[:-1].rsplit(", ", 1)
            match = promql(metric, fed.namespace, fed.pipeline)
            url = f"{prometheus.url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
                {"match[]": match}
            )
            with urllib.request.urlopen(url, timeout=10) as response:
                values = json.load(response)["data"]
            assert getattr(fed, label) in values, (board["uid"], variable["name"], values)
            if board["uid"] in copies:
                assert variable["current"]["value"] == [getattr(fed, label)], variable


def provisioned_dashboards(pipeline: Pipeline) -> tuple[list[dict], dict[str, dict]]:
    """The pipeline's dashboards and its datasources by uid, as the operator provisions them."""
    pipeline.spec["monitoring"]["grafana"]["mode"] = "operator"
    made = build_grafana(pipeline, load_grafana_content(GRAFANA_DIR))
    boards = [json.loads(m["spec"]["json"]) for m in made if m["kind"] == "GrafanaDashboard"]
    by_uid = {m["spec"]["uid"]: m["spec"]["datasource"] for m in made if "uid" in m["spec"]}
    return boards, by_uid


def test_every_elasticsearch_query_returns_hits(fed, elasticsearch, kube):
    """Through the pipeline's own dashboards and datasources, as the operator provisions them:
    on the pipeline's documents only (its `namespace` and `pipeline` fields)."""
    client = elasticsearch.client()
    client.indices.refresh(index=list(fed.indices.values()))
    check_elasticsearch_panels(client, fed_pipeline(kube, fed), fed, datetime.now(UTC))


def check_elasticsearch_panels(client, pipeline: Pipeline, fed, end: datetime) -> None:
    """Every Elasticsearch panel of the pipeline's dashboards shows data over the last 6 hours:
    its targets run on the index of their datasource, its math expression over their results."""
    boards, by_uid = provisioned_dashboards(pipeline)
    start_ms, end_ms = (
        int((end - timedelta(hours=6)).timestamp() * 1000),
        int(end.timestamp() * 1000),
    )
    own = f'namespace:"{fed.namespace}" AND pipeline:"{fed.pipeline}"'

    def index_of(reference: dict) -> str:
        index = by_uid[reference["uid"]]["jsonData"]["index"]
        assert index in fed.indices.values(), index
        return index

    searched = {}
    for board in boards:
        for panel in board["panels"]:
            if panel["datasource"]["type"] != "elasticsearch":
                continue
            name = f"{board['uid']} / {panel['title']}"
            for target in panel["targets"]:
                if "expression" not in target:
                    assert target["query"].startswith(own), (name, target["query"])
                    rows = esquery.run(
                        client,
                        index_of(target.get("datasource") or panel["datasource"]),
                        target,
                        start_ms,
                        end_ms,
                    )
                    assert rows, f"{name} / {target['refId']}: no hits"
            shown = esquery.run_panel(client, index_of, panel, start_ms, end_ms)
            assert shown.rows, f"{name}: nothing to show"
            if not shown.raw:
                values = [row[shown.value] for row in shown.rows if row[shown.value] is not None]
                assert any(values), (name, shown.rows[:5])
                if panel["fieldConfig"]["defaults"].get("unit") == "percentunit":
                    assert all(0 <= v <= 1 for v in values), (name, values)
            searched[panel["title"]] = shown.rows
    assert set(searched) >= NEW_ELASTICSEARCH_PANELS, NEW_ELASTICSEARCH_PANELS - set(searched)
    assert len(searched) >= 13
    # The table's first account is one of the pipeline's largest amounts in the accounts index
    # (in the range; the live feed may have moved an account since).
    top = searched["Top accounts by amount"]
    span = {"gte": start_ms, "lte": end_ms, "format": "epoch_millis"}
    largest = client.search(
        index=fed.accounts_index,
        size=3,
        sort=[{"amount_total": "desc"}],
        query={
            "bool": {
                "filter": [
                    {"range": {"last_seen": span}},
                    {"term": {"pipeline": fed.pipeline}},
                    {"term": {"namespace": fed.namespace}},
                ]
            }
        },
    )["hits"]["hits"]
    assert top[0]["customer_id"] in {h["_source"]["customer_id"] for h in largest}, (top, largest)
    amounts = [row["1"] for row in top]
    assert 0 < len(top) <= 10 and amounts == sorted(amounts, reverse=True)


def test_provisioned_objects_are_valid_against_the_upstream_crds(fed, kube):
    content = load_grafana_content(GRAFANA_DIR)
    assert len(content.dashboards) == 4
    pipeline = fed_pipeline(kube, fed)
    expected = {("GrafanaFolder", fed.pipeline)}
    expected |= {
        ("GrafanaDashboard", dashboard_object_name(pipeline, f)) for f in content.dashboards
    }
    expected |= {
        ("GrafanaDatasource", datasource_object_name(pipeline, uid)) for uid in TEMPLATE_TYPES
    }
    deadline = time.monotonic() + SERIES_TIMEOUT_S
    while (live := provisioned(kube, fed.namespace)) != expected and time.monotonic() < deadline:
        time.sleep(1)
    assert live == expected
    for mode in ("sidecar", "operator"):
        pipeline.spec["monitoring"]["grafana"]["mode"] = mode
        items = build_grafana(pipeline, content)
        assert len(items) == (2 if mode == "sidecar" else 10)
        assert kube.dry_run(items) == len(items)


def provisioned(kube, namespace: str) -> set[tuple[str, str]]:
    kinds = "grafanadashboards,grafanadatasources,grafanafolders"
    listing = json.loads(kube.kubectl("get", kinds, "-n", namespace, "-o", "json"))
    return {(item["kind"], item["metadata"]["name"]) for item in listing["items"]}


def test_pictures_are_drawn_from_the_same_queries(fed, prometheus, elasticsearch, tmp_path):
    written = pictures.render(
        prometheus.url, elasticsearch.client(), fed, tmp_path, datetime.now(UTC)
    )
    assert sorted(p.name for p in written) == sorted(f"{uid}.png" for uid in DASHBOARDS)
    assert all(p.stat().st_size > 20_000 for p in written)
