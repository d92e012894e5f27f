"""A pipeline's Grafana content: its datasources, derived from the spec, and its dashboards.

Pure functions, like config.py. The dashboards of grafana/ are templates: they refer to the
template datasource uids below. Every pipeline gets datasources and dashboard copies with uids,
names and titles of its own, so that any number of pipelines share one Grafana without colliding.
Passwords never appear here: sidecar mode refers to Grafana's environment, operator mode to the
pipeline's Secret through GrafanaDatasource `valuesFrom`.
"""

from __future__ import annotations

import hashlib
import urllib.parse

from fraud_operator import config

PROMETHEUS = "fraud-prometheus"
ALERTS = "fraud-alerts"
KPIS = "fraud-kpis"
OUTCOMES = "fraud-outcomes"
ACCOUNTS = "fraud-accounts"
# template uid -> (index suffix, time field, what the datasource shows)
ELASTICSEARCH_INDICES = {
    ALERTS: ("alerts", "detection_time", "alerts"),
    KPIS: ("kpis", "minute", "KPIs per minute"),
    OUTCOMES: ("outcomes", "minute", "outcomes per minute"),
    ACCOUNTS: ("accounts", "last_seen", "accounts"),
}
TEMPLATE_TYPES = {PROMETHEUS: "prometheus", **dict.fromkeys(ELASTICSEARCH_INDICES, "elasticsearch")}
DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
UID_MAX = 40  # Grafana's limit for dashboard and datasource uids
TEMPLATE_PREFIX = "fraud-"


def _digest(namespace: str, name: str) -> str:
    return hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]


def pipeline_uid(namespace: str, name: str, key: str) -> str:
    """`<namespace>_<name>_<what>` (`what`: `key`, a template uid, without `fraud-`), at most 40
    characters: a longer one keeps its head and gets `__<hash of namespace/name>` instead."""
    what = key.removeprefix(TEMPLATE_PREFIX)
    uid = f"{namespace}_{name}_{what}"
    if len(uid) <= UID_MAX:
        return uid
    # `__` never occurs in a short uid: Kubernetes names have no `_`.
    digest = _digest(namespace, name)
    head = f"{namespace}_{name}"[: UID_MAX - len(what) - len(digest) - 3]
    return f"{head}__{digest}_{what}"


def credential_variables(namespace: str, name: str) -> tuple[str, str]:
    """Grafana environment variables of the pipeline's Elasticsearch user and password (sidecar
    mode): `FRAUD_<NAMESPACE>__<NAME>_ES_USERNAME` / `_ES_PASSWORD`, `-` becoming `_`."""
    if "--" in namespace or "--" in name:  # would make the `__` between the two ambiguous
        stem = _digest(namespace, name).upper()
    else:
        stem = f"{namespace}__{name}".upper().replace("-", "_")
    return f"FRAUD_{stem}_ES_USERNAME", f"FRAUD_{stem}_ES_PASSWORD"


def grafana_url(url: str, namespace: str) -> str:
    """The job's Elasticsearch URL as Grafana, in another namespace, reaches it: a single-label
    host is a Service of the pipeline's namespace for the job's pods, so it gets `.<ns>.svc`."""
    parts = urllib.parse.urlsplit(url)
    user, at, host_port = parts.netloc.rpartition("@")
    host, colon, port = host_port.partition(":")
    if "." in host or host.startswith("[") or host.lower() == "localhost":
        return url
    netloc = f"{user}{at}{host}.{namespace}.svc{colon}{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def build_datasources(
    name: str, namespace: str, spec: dict, prometheus_url: str
) -> dict[str, dict]:
    """The pipeline's datasources as Grafana provisioning entries, by template uid: Prometheus,
    and with an Elasticsearch sink one per index of the job. Credentials are `${...}`
    placeholders: of `credential_variables` in sidecar mode, of the Secret's keys (filled by
    `values_from`) in operator mode."""
    label = f"{namespace}/{name}"
    result = {
        PROMETHEUS: {
            "name": f"Fraud Prometheus ({label})",
            "uid": pipeline_uid(namespace, name, PROMETHEUS),
            "type": "prometheus",
            "access": "proxy",
            "url": prometheus_url,
            "jsonData": {"timeInterval": "15s"},
            "editable": False,
        }
    }
    sink = config.render_job_config(name, namespace, spec).get("elasticsearch")
    if not sink:
        return result
    credentials = spec["sinks"]["elasticsearch"].get("credentialsSecretRef")
    auth = {}
    if credentials:
        user, password = credential_variables(namespace, name)
        if spec["monitoring"]["grafana"]["mode"] == "operator":
            user, password = credentials["usernameKey"], credentials["passwordKey"]
        auth = {
            "basicAuth": True,
            "basicAuthUser": f"${{{user}}}",
            "secureJsonData": {"basicAuthPassword": f"${{{password}}}"},
        }
    for template_uid, (suffix, time_field, what) in ELASTICSEARCH_INDICES.items():
        result[template_uid] = {
            "name": f"Fraud {what} ({label})",
            "uid": pipeline_uid(namespace, name, template_uid),
            "type": "elasticsearch",
            "access": "proxy",
            "url": grafana_url(sink["url"], namespace),
            **auth,
            "jsonData": {
                "index": f"{sink['indexPrefix']}-{suffix}",
                "timeField": time_field,
                "maxConcurrentShardRequests": 5,
            },
            "editable": False,
        }
    return result


def values_from(spec: dict, datasource: dict) -> list[dict]:
    """GrafanaDatasource `valuesFrom` filling an Elasticsearch datasource's `${<key>}`
    placeholders from the pipeline's credentials Secret (grafana-operator substitutes them)."""
    credentials = spec.get("sinks", {}).get("elasticsearch", {}).get("credentialsSecretRef")
    if datasource["type"] != "elasticsearch" or not credentials:
        return []
    return [
        {
            "targetPath": path,
            "valueFrom": {"secretKeyRef": {"name": credentials["name"], "key": credentials[key]}},
        }
        for path, key in (
            ("basicAuthUser", "usernameKey"),
            ("secureJsonData.basicAuthPassword", "passwordKey"),
        )
    ]


def _point_at(node: object, uids: dict[str, str]) -> object:
    """`node` with every datasource reference to a template uid replaced by the pipeline's."""
    if isinstance(node, list):
        return [_point_at(item, uids) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _point_at(value, uids) for key, value in node.items()}
    reference = result.get("datasource")
    if isinstance(reference, dict) and reference.get("uid") in uids:
        result["datasource"] = {**reference, "uid": uids[reference["uid"]]}
    return result


def _own_documents(panel: dict, namespace: str, name: str) -> dict:
    """The panel with every Elasticsearch target's query limited to the pipeline's documents
    (every document has `namespace` and `pipeline`; two pipelines may share an `indexPrefix`)."""
    own = f'namespace:"{namespace}" AND pipeline:"{name}"'
    targets = []
    for target in panel.get("targets") or []:
        reference = target.get("datasource") or panel.get("datasource") or {}
        if reference.get("type") == "elasticsearch":
            query = (target.get("query") or "*").strip()
            target = {**target, "query": own if query == "*" else f"{own} AND ({query})"}
        targets.append(target)
    return {**panel, "targets": targets} if "targets" in panel else panel


def _select(variable: dict, value: str) -> dict:
    """A query variable opening on `value` (Grafana keeps it when the refreshed options hold it)."""
    current = [value] if variable.get("multi") else value
    return {
        **variable,
        "current": {"selected": True, "text": current, "value": current},
        "options": [{"selected": True, "text": value, "value": value}],
    }


def build_dashboard(name: str, namespace: str, board: dict) -> dict:
    """The pipeline's copy of a template dashboard: its own uid and title, its panels and
    variables on the pipeline's datasources, the `namespace` and `pipeline` variables opening on
    the pipeline, and its Elasticsearch queries limited to the pipeline's documents."""
    uids = {uid: pipeline_uid(namespace, name, uid) for uid in TEMPLATE_TYPES}
    result = _point_at(board, uids)
    result["panels"] = [_own_documents(p, namespace, name) for p in result.get("panels", [])]
    result["uid"] = pipeline_uid(namespace, name, board["uid"])
    result["title"] = f"{board['title']} ({namespace}/{name})"
    values = {"namespace": namespace, "pipeline": name}
    templating = result.get("templating") or {}
    if templating.get("list"):
        templating["list"] = [
            _select(v, values[v["name"]]) if v.get("name") in values else v
            for v in templating["list"]
        ]
    return result
