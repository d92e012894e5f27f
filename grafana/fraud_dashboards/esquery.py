"""Run a panel's Elasticsearch target as Grafana's Elasticsearch datasource would."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

METRICS = ("sum", "avg", "max", "min")


def _bucket(agg: dict[str, Any], time_field: str) -> dict[str, Any]:
    settings = agg.get("settings") or {}
    if agg["type"] == "terms":
        order = settings.get("orderBy", "_count")
        direction = "asc" if order == "_term" else "desc"
        key = "_key" if order == "_term" else order
        return {
            "terms": {
                "field": agg["field"],
                "size": int(settings.get("size", "10")),
                "order": {key: direction},
            }
        }
    if agg["type"] == "date_histogram":
        interval = settings.get("interval", "auto")
        return {
            "date_histogram": {
                "field": agg.get("field", time_field),
                "fixed_interval": "1m" if interval == "auto" else interval,
                "min_doc_count": int(settings.get("min_doc_count", "0")),
            }
        }
    if agg["type"] == "histogram":
        return {
            "histogram": {
                "field": agg["field"],
                "interval": float(settings.get("interval", "1")),
                "min_doc_count": int(settings.get("min_doc_count", "0")),
            }
        }
    raise ValueError(f"unsupported bucket aggregation {agg['type']!r}")


def request(target: dict[str, Any], start_ms: int, end_ms: int) -> dict[str, Any]:
    """The search body: the Lucene query in the time range, bucket aggregations nested in order."""
    time_field = target["timeField"]
    body: dict[str, Any] = {
        "query": {
            "bool": {
                "filter": [
                    {
                        "range": {
                            time_field: {"gte": start_ms, "lte": end_ms, "format": "epoch_millis"}
                        }
                    },
                    {"query_string": {"query": target.get("query") or "*"}},
                ]
            }
        }
    }
    metrics = target["metrics"]
    if metrics[0]["type"] == "raw_data":
        body["size"] = int((metrics[0].get("settings") or {}).get("size", "500"))
        body["sort"] = [{time_field: {"order": "desc"}}]
        return body
    body["size"] = 0
    aggs: dict[str, Any] = {}
    for metric in metrics:
        if metric["type"] in METRICS:
            aggs[metric["id"]] = {metric["type"]: {"field": metric["field"]}}
        elif metric["type"] != "count":
            raise ValueError(f"unsupported metric {metric['type']!r}")
    for agg in reversed(target.get("bucketAggs") or []):
        aggs = {agg["id"]: {**_bucket(agg, time_field), **({"aggs": aggs} if aggs else {})}}
    if aggs:
        body["aggs"] = aggs
    return body


def _rows(aggs: dict, target: dict, path: dict) -> list[dict]:
    buckets = target.get("bucketAggs") or []
    depth = len(path)
    if depth == len(buckets):
        row = dict(path)
        for metric in target["metrics"]:
            if metric["type"] == "count":
                row["count"] = aggs["doc_count"]
            else:
                row[metric["type"]] = aggs[metric["id"]]["value"]
        return [row]
    agg = buckets[depth]
    rows = []
    for bucket in aggs[agg["id"]]["buckets"]:
        rows += _rows(bucket, target, {**path, agg.get("field", agg["id"]): bucket["key"]})
    return rows


def run(client: Elasticsearch, index: str, target: dict, start_ms: int, end_ms: int) -> list[dict]:
    """Documents (raw data) or one row per innermost bucket, with bucket keys and metrics."""
    response = client.search(index=index, **request(target, start_ms, end_ms)).body
    if target["metrics"][0]["type"] == "raw_data":
        return [hit["_source"] for hit in response["hits"]["hits"]]
    return _rows(response["aggregations"], target, {})
