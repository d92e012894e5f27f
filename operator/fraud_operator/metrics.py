"""Prometheus metrics of the operator, served by prometheus-client."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "fraudpipeline_operator_reconciles_total", "Reconcile passes by result.", ["result"]
)
RECONCILE_ERRORS = Counter(
    "fraudpipeline_operator_reconcile_errors_total", "Reconcile passes that raised an error."
)
RECONCILE_SECONDS = Histogram(
    "fraudpipeline_operator_reconcile_duration_seconds",
    "Duration of one reconcile pass.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
API_WRITES = Counter(
    "fraudpipeline_operator_api_writes_total",
    "Writes to the API server by verb (apply, delete, status, create) and kind.",
    ["verb", "kind"],
)
PIPELINES = Gauge("fraudpipeline_operator_pipelines", "Pipelines by phase.", ["phase"])
QUEUE_DEPTH = Gauge("fraudpipeline_operator_queue_depth", "Pipelines waiting for a reconcile.")
