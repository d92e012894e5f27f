"""The checked-in dashboards: current, parseable, consistent with the datasources."""

from __future__ import annotations

import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard

from fraud_dashboards import esquery
from fraud_dashboards.generate import GRAFANA_DIR, rendered, stale
from fraud_dashboards.panels import load_dashboards, targets
from fraud_operator.builders import Pipeline, build_grafana
from fraud_operator.grafana import TEMPLATE_TYPES
from fraud_operator.reconcile import load_grafana_content
from fraud_operator.schema import spec_with_defaults

DASHBOARDS = load_dashboards()
UIDS = {"fraud-overview", "fraud-detection-quality", "fraud-pipeline-health", "fraud-operator"}
PER_PIPELINE = UIDS - {"fraud-operator"}
MINUTE = {"interval": "1m"}


def test_checked_in_files_are_current_with_the_generator():
    assert not stale(), "run `make dashboards` (python -m fraud_dashboards)"
    assert set(rendered()) == {f"dashboards/{uid}.json" for uid in UIDS}


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_every_dashboard_parses_with_the_foundation_sdk(uid):
    board = Dashboard.from_json(DASHBOARDS[uid])
    assert board.uid == uid
    assert board.title and board.refresh == "30s"
    assert len(board.panels) == len(DASHBOARDS[uid]["panels"]) >= 6


def test_uids_are_stable_and_unique():
    assert set(DASHBOARDS) == UIDS
    titles = [board["title"] for board in DASHBOARDS.values()]
    assert len(set(titles)) == len(titles)
    for board in DASHBOARDS.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert ids == list(range(1, len(ids) + 1))


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_every_datasource_reference_resolves(uid):
    board = DASHBOARDS[uid]
    references = [t.datasource for t in targets(board)]
    references += [v["datasource"] for v in board.get("templating", {}).get("list", [])]
    assert references
    for reference in references:
        assert TEMPLATE_TYPES.get(reference["uid"]) == reference["type"], reference


@pytest.mark.parametrize("uid", sorted(PER_PIPELINE))
def test_pipeline_dashboards_filter_by_namespace_and_pipeline(uid):
    board = DASHBOARDS[uid]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["namespace", "pipeline"]
    for t in targets(board):
        if "expr" in t.target:
            assert 'namespace=~"$namespace", pipeline=~"$pipeline"' in t.target["expr"], t.name


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_panels_have_units_and_timeseries_have_a_floor(uid):
    for panel in DASHBOARDS[uid]["panels"]:
        defaults = panel["fieldConfig"]["defaults"]
        if panel["type"] != "table":
            assert defaults.get("unit"), panel["title"]
        if panel["type"] == "timeseries":
            assert defaults["min"] == 0, panel["title"]


def test_thresholds_mark_the_alerting_levels():
    lag = next(
        p
        for p in DASHBOARDS["fraud-pipeline-health"]["panels"]
        if p["title"] == "Kafka consumer lag"
    )
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": 10000}  # FraudDetectorConsumerLag


def test_the_operator_loads_and_provisions_the_content_in_both_modes():
    content = load_grafana_content(GRAFANA_DIR)
    assert {board["uid"] for board in content.dashboards.values()} == UIDS
    spec = spec_with_defaults({"kafka": {"clusterRef": {"name": "k"}}})
    pipeline = Pipeline("payments", "fraud", "0000", spec)
    for mode, kinds in (
        ("sidecar", {"ConfigMap"}),
        ("operator", {"GrafanaFolder", "GrafanaDashboard", "GrafanaDatasource"}),
    ):
        spec["monitoring"]["grafana"]["mode"] = mode
        made = build_grafana(pipeline, content)
        assert {item["kind"] for item in made} == kinds
        assert all(len(item["metadata"]["name"]) <= 63 for item in made)


def test_elasticsearch_targets_become_nested_aggregations_in_the_time_range():
    target = {
        "query": "*",
        "timeField": "minute",
        "bucketAggs": [
            {"id": "3", "type": "terms", "field": "merchant_category", "settings": {"size": "5"}},
            {
                "id": "2",
                "type": "date_histogram",
                "field": "minute",
                "settings": {"interval": "1m"},
            },
        ],
        "metrics": [{"id": "1", "type": "sum", "field": "transactions"}],
    }
    body = esquery.request(target, 1000, 2000)
    assert body["size"] == 0
    assert body["query"]["bool"]["filter"][0]["range"]["minute"]["gte"] == 1000
    terms = body["aggs"]["3"]
    assert terms["terms"] == {"field": "merchant_category", "size": 5, "order": {"_count": "desc"}}
    histogram = terms["aggs"]["2"]
    assert histogram["date_histogram"]["fixed_interval"] == "1m"
    assert histogram["aggs"] == {"1": {"sum": {"field": "transactions"}}}
    raw = esquery.request({**target, "metrics": [{"id": "1", "type": "raw_data"}]}, 0, 1)
    assert raw["sort"] == [{"minute": {"order": "desc"}}] and "aggs" not in raw
