"""Run a panel's Elasticsearch target as Grafana's Elasticsearch datasource would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

METRICS = ("sum", "avg", "max", "min")


def _bucket(agg: dict[str, Any], time_field: str) -> dict[str, Any]:
    settings = agg.get("settings") or {}
    if agg["type"] == "terms":
        order = settings.get("orderBy", "_count")
        direction = "asc" if order == "_term" else "desc"
        key = "_key" if order == "_term" else order  # `_count` or a metric's id
        body = {
            "field": agg["field"],
            "size": int(settings.get("size", "10")),
            "order": {key: direction},
        }
        if "min_doc_count" in settings:
            body["min_doc_count"] = int(settings["min_doc_count"])
        return {"terms": body}
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
        bucket = _bucket(agg, time_field)
        if "date_histogram" in bucket and bucket["date_histogram"]["min_doc_count"] == 0:
            bucket["date_histogram"]["extended_bounds"] = {"min": start_ms, "max": end_ms}
        aggs = {agg["id"]: {**bucket, **({"aggs": aggs} if aggs else {})}}
    if aggs:
        body["aggs"] = aggs
    return body


def _rows(aggs: dict, target: dict, path: dict) -> list[dict]:
    buckets = target.get("bucketAggs") or []
    depth = len(path)
    if depth == len(buckets):
        row = dict(path)
        for metric in target["metrics"]:
            count = metric["type"] == "count"
            value = aggs["doc_count"] if count else aggs[metric["id"]]["value"]
            row[metric["id"]] = value
            if not metric.get("hide"):  # by type: the first shown metric of each type
                row.setdefault(metric["type"], value)
        return [row]
    agg = buckets[depth]
    rows = []
    for bucket in aggs[agg["id"]]["buckets"]:
        rows += _rows(bucket, target, {**path, agg.get("field", agg["id"]): bucket["key"]})
    return rows


def shown(target: dict) -> dict:
    """The first metric Grafana shows."""
    return next(m for m in target["metrics"] if not m.get("hide"))


def run(client: Elasticsearch, index: str, target: dict, start_ms: int, end_ms: int) -> list[dict]:
    """Documents (raw data) or one row per innermost bucket, with bucket keys and metrics (by
    metric id, and by type for the first shown metric of each type)."""
    response = client.search(index=index, **request(target, start_ms, end_ms)).body
    if target["metrics"][0]["type"] == "raw_data":
        return [hit["_source"] for hit in response["hits"]["hits"]]
    return _rows(response["aggregations"], target, {})


@dataclass
class PanelResult:
    """What a panel shows: rows of bucket keys and `value`, or documents (raw data)."""

    rows: list[dict]
    value: str  # the row key of the shown value; "" for raw data
    buckets: list[str]  # the bucket fields, outermost first
    raw: bool = False


def _bucket_fields(target: dict) -> list[str]:
    """The fields (or ids) of a target's bucket aggregations, outermost first."""
    return [agg.get("field", agg["id"]) for agg in target.get("bucketAggs") or []]


def _series_key(row: dict, buckets: list[str], time_field: str) -> tuple:
    return tuple((b, row[b]) for b in buckets if b != time_field)


def _divide(numerator: list[dict], denominator: list[dict], a: str, b: str, fields) -> list[dict]:
    """`$A / $B` as Grafana's math expression: series joined by their labels (one side without
    labels applies to every series of the other), points by time; x / 0 shows no point."""
    buckets, time_field = fields
    by_key = {}
    for row in denominator:
        by_key[(_series_key(row, buckets, time_field), row.get(time_field))] = row[b]
    rows = []
    for row in numerator:
        labels = _series_key(row, buckets, time_field)
        bottom = by_key.get((labels, row.get(time_field)))
        if bottom is None:
            bottom = by_key.get(((), row.get(time_field)))
        top = row[a]
        value = top / bottom if top is not None and bottom else None
        rows.append({**{k: row[k] for k in buckets if k in row}, "value": value})
    return rows


def run_panel(client: Elasticsearch, index_of, panel: dict, start_ms: int, end_ms: int):
    """Run a panel's Elasticsearch targets (`index_of(datasource reference)` names the index)
    and its math expression (`$A / $B`), as Grafana would; returns a PanelResult."""
    results: dict[str, tuple[dict, list[dict]]] = {}
    expression = None
    for target in panel["targets"]:
        reference = target.get("datasource") or panel["datasource"]
        if reference.get("type") == "__expr__":
            expression = target
            continue
        rows = run(client, index_of(reference), target, start_ms, end_ms)
        results[target["refId"]] = (target, rows)
    if expression is None:
        target, rows = next(iter(results.values()))
        if target["metrics"][0]["type"] == "raw_data":
            return PanelResult(rows, "", [], raw=True)
        return PanelResult(rows, shown(target)["type"], _bucket_fields(target))
    match = re.fullmatch(r"\s*\$(\w+)\s*/\s*\$(\w+)\s*", expression["expression"])
    if expression.get("type") != "math" or match is None:
        raise ValueError(f"unsupported expression {expression!r}")
    (top_target, top), (bottom_target, bottom) = results[match[1]], results[match[2]]
    fields = _bucket_fields(top_target)
    rows = _divide(
        top,
        bottom,
        shown(top_target)["type"],
        shown(bottom_target)["type"],
        (fields, top_target["timeField"]),
    )
    return PanelResult(rows, "value", fields)
