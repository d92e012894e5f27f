"""Elasticsearch: index templates of the job's documents, and idempotent bulk writes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from elasticsearch import Elasticsearch, helpers

# Every document names its pipeline, so one index pattern can serve many pipelines.
PIPELINE_PROPERTIES = {"pipeline": {"type": "keyword"}, "namespace": {"type": "keyword"}}
ALERT_PROPERTIES = {
    **PIPELINE_PROPERTIES,
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
    **PIPELINE_PROPERTIES,
    "minute": {"type": "date"},
    "merchant_category": {"type": "keyword"},
    "transactions": {"type": "long"},
    "amount_total": {"type": "double"},
    "batch_id": {"type": "long"},
}
OUTCOME_PROPERTIES = {
    **PIPELINE_PROPERTIES,
    "minute": {"type": "date"},
    "rule": {"type": "keyword"},
    "outcome": {"type": "keyword"},
    "scenario": {"type": "keyword"},
    "transactions": {"type": "long"},
    "batch_id": {"type": "long"},
}
ACCOUNT_PROPERTIES = {
    **PIPELINE_PROPERTIES,
    "customer_id": {"type": "keyword"},
    "transactions": {"type": "long"},
    "amount_total": {"type": "double"},
    "alerts": {"type": "long"},
    "last_seen": {"type": "date"},
}
# Document kind -> mapping; the index of a kind is `<indexPrefix>-<kind>`.
INDEX_PROPERTIES = {
    "alerts": ALERT_PROPERTIES,
    "kpis": KPI_PROPERTIES,
    "outcomes": OUTCOME_PROPERTIES,
    "accounts": ACCOUNT_PROPERTIES,
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


def install_templates(client: Elasticsearch, indices: dict[str, str]) -> None:
    """Create or update the index template of every document kind (kind -> index name)."""
    for kind, index in indices.items():
        body = index_template(index, INDEX_PROPERTIES[kind])
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
