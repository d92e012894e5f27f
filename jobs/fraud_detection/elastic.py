"""Elasticsearch: index templates of alerts and KPIs, and idempotent bulk writes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from elasticsearch import Elasticsearch, helpers

ALERT_PROPERTIES = {
    "alert_id": {"type": "keyword"},
    "rule": {"type": "keyword"},
    "score": {"type": "float"},
    "explanation": {"type": "object", "enabled": False},
    "transaction_ids": {"type": "keyword"},
    "card_token": {"type": "keyword"},
    "customer_id": {"type": "keyword"},
    "terminal_id": {"type": "keyword"},
    "event_time": {"type": "date"},
    "detection_time": {"type": "date"},
}
KPI_PROPERTIES = {
    "minute": {"type": "date"},
    "merchant_category": {"type": "keyword"},
    "transactions": {"type": "long"},
    "amount_total": {"type": "double"},
    "average_ticket": {"type": "double"},
    "cards": {"type": "long"},
    "updated_at": {"type": "date"},
}


def index_template(index: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A composable index template for exactly `index`, strict mappings, one shard."""
    return {
        "index_patterns": [index],
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"dynamic": "strict", "properties": properties},
        },
        "priority": 200,
        "_meta": {"managed_by": "fraudpipeline detection job"},
    }


def connect(url: str, environ: dict[str, str] | None = None) -> Elasticsearch:
    """A client with basic auth from ES_USERNAME / ES_PASSWORD when they are set."""
    env = os.environ if environ is None else environ
    auth = (env["ES_USERNAME"], env["ES_PASSWORD"]) if env.get("ES_USERNAME") else None
    return Elasticsearch(url, basic_auth=auth, request_timeout=30, retry_on_timeout=True)


def install_templates(client: Elasticsearch, alerts_index: str, kpis_index: str) -> None:
    """Create or update the index templates of alerts and KPIs (idempotent)."""
    for index, properties in ((alerts_index, ALERT_PROPERTIES), (kpis_index, KPI_PROPERTIES)):
        body = index_template(index, properties)
        client.indices.put_index_template(name=index, **body)


def index_documents(client: Elasticsearch, index: str, documents: Iterable[tuple[str, dict]]):
    """Index (create or overwrite) documents by id; raises when any of them fails."""
    actions = (
        {"_op_type": "index", "_index": index, "_id": doc_id, "_source": source}
        for doc_id, source in documents
    )
    indexed, errors = helpers.bulk(client, actions, raise_on_error=False, max_retries=3)
    if errors:
        raise RuntimeError(f"{len(errors)} documents failed to index into {index}: {errors[:1]}")
    return indexed
