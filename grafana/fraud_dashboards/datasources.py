"""The Grafana datasources the dashboards use, as Grafana provisioning entries."""

from __future__ import annotations

PROMETHEUS = "fraud-prometheus"
ALERTS = "fraud-alerts"
KPIS = "fraud-kpis"
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
ELASTICSEARCH_URL = "http://fraud-es-es-http.fraud.svc:9200"


def elasticsearch(uid: str, name: str, index: str, time_field: str) -> dict:
    """An Elasticsearch datasource; credentials come from Grafana's environment."""
    return {
        "name": name,
        "uid": uid,
        "type": "elasticsearch",
        "access": "proxy",
        "url": ELASTICSEARCH_URL,
        "basicAuth": True,
        "basicAuthUser": "${FRAUD_ES_USERNAME}",
        "secureJsonData": {"basicAuthPassword": "${FRAUD_ES_PASSWORD}"},
        "jsonData": {"index": index, "timeField": time_field, "maxConcurrentShardRequests": 5},
        "editable": False,
    }


DATASOURCES = [
    {
        "name": "Fraud Prometheus",
        "uid": PROMETHEUS,
        "type": "prometheus",
        "access": "proxy",
        "url": PROMETHEUS_URL,
        "jsonData": {"timeInterval": "15s"},
        "editable": False,
    },
    elasticsearch(ALERTS, "Fraud alerts", "*-alerts", "detection_time"),
    elasticsearch(KPIS, "Fraud KPIs per minute", "*-kpis", "minute"),
]
