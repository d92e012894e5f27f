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

pytestmark = pytest.mark.testbed
# Spark's Python workers must run this interpreter (the project is installed in it).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
DASHBOARDS = load_dashboards()
SERIES_TIMEOUT_S = 60


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
    assert len(queries) >= 25
    deadline = time.monotonic() + SERIES_TIMEOUT_S
    missing = {t.name: promql(t.target["expr"], fed.namespace, fed.pipeline) for t in queries}
    while missing and time.monotonic() < deadline:
        missing = {name: q for name, q in missing.items() if not finite(prometheus.query(q))}
        time.sleep(1)
    assert not missing, f"queries without a finite series: {json.dumps(missing, indent=1)}"


def test_variables_list_the_fed_namespace_and_pipeline(fed, prometheus):
    for board in DASHBOARDS.values():
        for variable in board.get("templating", {}).get("list", []):
            metric, label = variable["query"].removeprefix("label_values(")[:-1].rsplit(", ", 1)
            match = promql(metric, fed.namespace, fed.pipeline)
            url = f"{prometheus.url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
                {"match[]": match}
            )
            with urllib.request.urlopen(url, timeout=10) as response:
                values = json.load(response)["data"]
            assert getattr(fed, label) in values, (board["uid"], variable["name"], values)


def test_every_elasticsearch_query_returns_hits(fed, elasticsearch, kube):
    """Through the pipeline's own dashboards and datasources, as the operator provisions them."""
    pipeline = fed_pipeline(kube, fed)
    pipeline.spec["monitoring"]["grafana"]["mode"] = "operator"
    made = build_grafana(pipeline, load_grafana_content(GRAFANA_DIR))
    boards = [json.loads(m["spec"]["json"]) for m in made if m["kind"] == "GrafanaDashboard"]
    by_uid = {m["spec"]["uid"]: m["spec"]["datasource"] for m in made if "uid" in m["spec"]}
    client = elasticsearch.client()
    client.indices.refresh(index=[fed.alerts_index, fed.kpis_index])
    end = datetime.now(UTC)
    start_ms = int((end - timedelta(hours=6)).timestamp() * 1000)
    searched = 0
    for board in boards:
        for t in targets(board):
            if t.datasource["type"] != "elasticsearch":
                continue
            index = by_uid[t.datasource["uid"]]["jsonData"]["index"]
            assert index in (fed.alerts_index, fed.kpis_index), index
            rows = esquery.run(client, index, t.target, start_ms, int(end.timestamp() * 1000))
            assert rows, f"{t.name}: no hits"
            values = [v for row in rows for k, v in row.items() if k in ("count", "sum", "avg")]
            assert t.target["metrics"][0]["type"] == "raw_data" or any(v for v in values), t.name
            searched += 1
    assert searched >= 8


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
        assert len(items) == (2 if mode == "sidecar" else 9)
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
