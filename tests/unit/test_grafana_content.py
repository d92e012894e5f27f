"""The checked-in dashboards: current, parseable, consistent with the datasources."""

from __future__ import annotations

import json

import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard

from fraud_dashboards import esquery
from fraud_dashboards.feed import BAD_LABELS
from fraud_dashboards.generate import GRAFANA_DIR, rendered, stale
from fraud_dashboards.panels import load_dashboards, targets
from fraud_detection.outcomes import parse_label
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
        if reference["type"] == "__expr__":  # Grafana's server-side expressions
            assert reference["uid"] == "__expr__"
            continue
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


def test_elasticsearch_ratios_divide_sums_in_a_grafana_expression():
    """Several documents per minute and key (one per micro-batch): ratios divide sums, in a math
    expression (Elasticsearch would need a script language for a bucket_script)."""
    overview = {p["title"]: p for p in DASHBOARDS["fraud-overview"]["panels"]}
    panel = overview["Average ticket by category (event time)"]
    numerator, denominator, expression = panel["targets"]
    assert expression == {
        "datasource": {"type": "__expr__", "uid": "__expr__"},
        "expression": "$A / $B",
        "refId": "C",
        "type": "math",
    }
    assert numerator["hide"] and denominator["hide"]
    assert numerator["metrics"] == [{"field": "amount_total", "id": "1", "type": "sum"}]
    assert denominator["metrics"] == [{"field": "transactions", "id": "1", "type": "sum"}]
    assert numerator["bucketAggs"] == denominator["bucketAggs"]
    body = esquery.request(numerator, 1000, 2000)
    histogram = body["aggs"]["3"]["aggs"]["2"]["date_histogram"]
    assert histogram["extended_bounds"] == {"min": 1000, "max": 2000}  # the same points
    quality = {p["title"]: p for p in DASHBOARDS["fraud-detection-quality"]["panels"]}
    a, b, _ = quality["Precision per rule (event time, 5 min)"]["targets"]
    assert a["query"] == "rule:* AND NOT rule:any AND outcome:true_positive"
    assert b["query"] == "rule:* AND NOT rule:any"
    accounts = overview["Top accounts by amount"]["targets"][0]
    assert esquery.request(accounts, 0, 1)["aggs"]["4"]["terms"]["order"] == {"1": "desc"}


def test_a_math_expression_joins_series_by_labels_and_time():
    top = [
        {"rule": "velocity", "minute": 1, "sum": 1.0},
        {"rule": "velocity", "minute": 2, "sum": 0.0},
        {"rule": "model", "minute": 1, "sum": 3.0},
    ]
    bottom = [
        {"rule": "velocity", "minute": 1, "sum": 2.0},
        {"rule": "velocity", "minute": 2, "sum": 0.0},
        {"rule": "model", "minute": 1, "sum": 4.0},
    ]
    rows = esquery._divide(top, bottom, "sum", "sum", (["rule", "minute"], "minute"))
    assert [r["value"] for r in rows] == [0.5, None, 0.75]


def test_quality_panels_read_the_label_outcomes():
    exprs = {
        (t.panel["title"], t.target["refId"]): t.target["expr"]
        for t in targets(DASHBOARDS["fraud-detection-quality"])
        if "expr" in t.target
    }
    precision = exprs[("Precision per rule", "A")]
    assert 'rule!="any", outcome="true_positive"' in precision and "by (rule)" in precision
    recall = exprs[("Recall, overall and per scenario", "B")]
    assert 'rule="any", outcome=~"true_positive|false_negative"' in recall
    assert "by (scenario)" in recall
    for board in DASHBOARDS.values():
        for t in targets(board):
            expr = t.target.get("expr", "")
            assert 'query="kpis"' not in expr and 'query="dead-letters"' not in expr, t.name
            assert "average_ticket" not in str(t.target) and '"cards"' not in str(t.target)


def test_the_feeds_bad_labels_are_dead_letters_of_reason_invalid_label():
    """So that the dead-letter panels show the reason the label join adds."""
    for message in BAD_LABELS:
        record, rejection = parse_label(json.loads(message), b"k")
        assert record is None and rejection.reason == "invalid_label", message
