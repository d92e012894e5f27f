"""The test bed's Elasticsearch and Prometheus are real servers with real behaviour."""

from __future__ import annotations

import psutil
import pytest
from elasticsearch import AuthenticationException, Elasticsearch
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from fraud_testbed.prometheus import promtool


def test_elasticsearch_indexes_refreshes_and_searches(elasticsearch):
    es = elasticsearch.client()
    es.index(index="smoke-alerts", id="alert-1", document={"rule": "card_testing", "score": 0.97})
    es.indices.refresh(index="smoke-alerts")
    hits = es.search(index="smoke-alerts", query={"term": {"rule": "card_testing"}})["hits"]
    assert hits["total"]["value"] == 1
    assert hits["hits"][0]["_id"] == "alert-1"


def test_elasticsearch_requires_credentials_and_runs_as_non_root(elasticsearch):
    with pytest.raises(AuthenticationException):
        Elasticsearch(elasticsearch.url, basic_auth=("elastic", "wrong")).info()
    tree = psutil.Process(elasticsearch.process.pid)
    users = {proc.uids().real for proc in [tree, *tree.children(recursive=True)]}
    assert 0 not in users


def test_prometheus_scrapes_a_prometheus_client_endpoint(prometheus):
    registry = CollectorRegistry()
    Gauge("testbed_smoke_value", "A value set by the smoke test", registry=registry).set(42.5)
    Counter("testbed_smoke_events", "Events counted by the smoke test", registry=registry).inc(7)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        prometheus.add_target("smoke", f"127.0.0.1:{server.server_port}")
        [sample] = prometheus.wait_for('testbed_smoke_value{job="smoke"}')
        assert float(sample["value"][1]) == 42.5
        [counter] = prometheus.wait_for('testbed_smoke_events_total{job="smoke"}')
        assert float(counter["value"][1]) == 7
    finally:
        server.shutdown()
        thread.join(5)


def test_promtool_checks_rule_files(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "groups:\n- name: smoke\n  rules:\n  - alert: DetectorDown\n"
        '    expr: up{job="detector"} == 0\n    for: 1m\n'
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n- name: smoke\n  rules:\n  - alert: Broken\n    expr: rate(x[5m]\n")
    assert promtool("check", "rules", str(good)).returncode == 0
    checked = promtool("check", "rules", str(bad))
    assert checked.returncode != 0
    assert "parse error" in (checked.stdout + checked.stderr)
