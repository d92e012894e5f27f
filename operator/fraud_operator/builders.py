"""Pure builders: a FraudPipeline in, the manifests of its children out.

`build_children(pipeline, content)` gives every child the spec asks for; `possible_children`
names every child some spec could ask for, so that the operator can delete the ones no longer
wanted. Each manifest carries the app.kubernetes.io labels and an ownerReference.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from fraud_operator import config, grafana
from fraud_operator.schema import GROUP, KIND, VERSION, spec_with_defaults

MANAGER = "fraudpipeline-operator"
PIPELINE_LABEL = f"{GROUP}/pipeline"
HASH_ANNOTATION = f"{GROUP}/applied-hash"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
JOB_FILE = "local:///opt/fraudpipeline/jobs/run_detection.py"
DEFAULT_DASHBOARD_FOLDER = "Fraud"


@dataclass(frozen=True)
class Kind:
    """A kind of child: where it lives in the API and what installs it."""

    api_version: str
    kind: str
    plural: str
    provider: str = ""  # what to install when the API is missing; "" for built-in kinds

    def path(self, namespace: str, name: str = "") -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" + (f"/{name}" if name else "")


KAFKA_TOPIC = Kind("kafka.strimzi.io/v1", "KafkaTopic", "kafkatopics", "Strimzi")
KAFKA = Kind("kafka.strimzi.io/v1", "Kafka", "kafkas", "Strimzi")
SPARK_APPLICATION = Kind(
    "sparkoperator.k8s.io/v1beta2", "SparkApplication", "sparkapplications", "spark-operator"
)
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SECRET = Kind("v1", "Secret", "secrets")
SERVICE = Kind("v1", "Service", "services")
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts")
ROLE = Kind("rbac.authorization.k8s.io/v1", "Role", "roles")
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE_MONITOR = Kind(
    "monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors", "prometheus-operator"
)
POD_MONITOR = Kind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors", "prometheus-operator")
PROMETHEUS_RULE = Kind(
    "monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules", "prometheus-operator"
)
GRAFANA_DASHBOARD = Kind(
    "grafana.integreatly.org/v1beta1", "GrafanaDashboard", "grafanadashboards", "grafana-operator"
)
GRAFANA_DATASOURCE = Kind(
    "grafana.integreatly.org/v1beta1", "GrafanaDatasource", "grafanadatasources", "grafana-operator"
)
GRAFANA_FOLDER = Kind(
    "grafana.integreatly.org/v1beta1", "GrafanaFolder", "grafanafolders", "grafana-operator"
)
CHILD_KINDS = (
    KAFKA_TOPIC,
    SPARK_APPLICATION,
    CONFIG_MAP,
    SERVICE,
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    DEPLOYMENT,
    SERVICE_MONITOR,
    POD_MONITOR,
    PROMETHEUS_RULE,
    GRAFANA_DASHBOARD,
    GRAFANA_DATASOURCE,
    GRAFANA_FOLDER,
)
KINDS_BY_NAME = {k.kind: k for k in CHILD_KINDS}


@dataclass(frozen=True)
class GrafanaContent:
    """Template dashboards (file name -> dashboard JSON) and the Prometheus URL as Grafana
    reaches it; each pipeline's datasources are derived from its spec."""

    dashboards: dict[str, dict] = field(default_factory=dict)
    prometheus_url: str = grafana.DEFAULT_PROMETHEUS_URL


@dataclass(frozen=True)
class Pipeline:
    """The parts of a FraudPipeline object the builders read; `spec` has every default."""

    name: str
    namespace: str
    uid: str
    spec: dict

    @classmethod
    def from_object(cls, obj: dict) -> Pipeline:
        meta = obj["metadata"]
        return cls(meta["name"], meta["namespace"], meta["uid"], spec_with_defaults(obj["spec"]))


def kind_of(manifest: dict) -> Kind:
    return KINDS_BY_NAME[manifest["kind"]]


def content_hash(value: object) -> str:
    """A short stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def labels(pipeline: Pipeline, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "fraudpipeline",
        "app.kubernetes.io/instance": pipeline.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "fraudpipeline",
        "app.kubernetes.io/managed-by": MANAGER,
        PIPELINE_LABEL: pipeline.name,
    }


def owner_reference(pipeline: Pipeline) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": pipeline.name,
        "uid": pipeline.uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def manifest(
    kind: Kind,
    pipeline: Pipeline,
    name: str,
    component: str,
    body: dict,
    extra_labels: dict | None = None,
    annotations: dict | None = None,
) -> dict:
    """A child manifest with labels, ownerReference and the hash of its own content."""
    metadata = {
        "name": name,
        "namespace": pipeline.namespace,
        "labels": {**labels(pipeline, component), **(extra_labels or {})},
        "ownerReferences": [owner_reference(pipeline)],
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    result = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata, **body}
    metadata.setdefault("annotations", {})[HASH_ANNOTATION] = content_hash(result)
    return result


def detector_name(pipeline: Pipeline) -> str:
    return f"{pipeline.name}-detector"


def simulator_name(pipeline: Pipeline) -> str:
    return f"{pipeline.name}-simulator"


def build_topics(pipeline: Pipeline) -> list[dict]:
    """One Strimzi KafkaTopic per topic the pipeline uses."""
    topics = pipeline.spec["kafka"]["topics"]
    cluster = pipeline.spec["kafka"]["clusterRef"]["name"]
    result = []
    for key in config.active_topics(pipeline.spec):
        settings = topics[key]
        name = config.topic_name(pipeline.name, key)
        body = {
            "spec": {
                "topicName": name,
                "partitions": settings["partitions"],
                "replicas": settings["replicas"],
                "config": dict(settings.get("config") or {}),
            }
        }
        result.append(
            manifest(KAFKA_TOPIC, pipeline, name, "topic", body, {"strimzi.io/cluster": cluster})
        )
    return result


def _secret_env(name: str, ref: dict, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": key}}}


def job_environment(spec: dict) -> list[dict]:
    """Environment of the job's pods: Secret references only, never values."""
    env = []
    sink = spec.get("sinks", {}).get("elasticsearch")
    if sink and sink.get("credentialsSecretRef"):
        ref = sink["credentialsSecretRef"]
        env.append(_secret_env("ES_USERNAME", ref, ref["usernameKey"]))
        env.append(_secret_env("ES_PASSWORD", ref, ref["passwordKey"]))
    tokenization = spec.get("tokenization", {}).get("secretRef")
    if tokenization:
        env.append(_secret_env("TOKENIZATION_KEY", tokenization, tokenization["key"]))
    return env


def required_secrets(spec: dict) -> list[tuple[str, list[str]]]:
    """(Secret name, keys) pairs the job's environment needs."""
    needed: dict[str, list[str]] = {}
    for entry in job_environment(spec):
        ref = entry["valueFrom"]["secretKeyRef"]
        needed.setdefault(ref["name"], []).append(ref["key"])
    return list(needed.items())


def config_file_map(pipeline: Pipeline, owner: str, component: str, key: str, text: str) -> dict:
    """The ConfigMap `<owner>-config` holding one rendered configuration file."""
    return manifest(CONFIG_MAP, pipeline, f"{owner}-config", component, {"data": {key: text}})


# Every pod the operator creates runs as non-root without privileges, whatever its image says,
# so it passes the "restricted" Pod Security Standard.
POD_SECURITY_CONTEXT = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def default_spark_conf(spark: dict) -> dict[str, str]:
    """Spark settings the job needs unless spec.spark.sparkConf says otherwise: one shuffle
    partition per executor core (Spark's default, 200, makes each micro-batch run 200 stateful
    tasks, each with its own state store commit)."""
    cores = spark["executor"]["instances"] * spark["executor"]["cores"]
    return {"spark.sql.shuffle.partitions": str(cores)}


def build_detector(pipeline: Pipeline) -> list[dict]:
    """The detection job: ConfigMap, RBAC for the driver, SparkApplication and metrics Service."""
    spec = pipeline.spec
    name = detector_name(pipeline)
    job_config = config.dump(config.render_job_config(pipeline.name, pipeline.namespace, spec))
    config_map = config_file_map(pipeline, name, "detector", config.JOB_CONFIG_KEY, job_config)
    account = manifest(SERVICE_ACCOUNT, pipeline, name, "detector", {})
    role = manifest(
        ROLE,
        pipeline,
        name,
        "detector",
        {
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
                    "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"],
                }
            ]
        },
    )
    binding = manifest(
        ROLE_BINDING,
        pipeline,
        name,
        "detector",
        {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": pipeline.namespace}],
        },
    )
    pod_labels = labels(pipeline, "detector")
    mounts = [{"name": "config", "mountPath": config.CONFIG_DIR, "readOnly": True}]
    env = job_environment(spec)
    spark = spec["spark"]
    driver = {
        "cores": spark["driver"]["cores"],
        "memory": spark["driver"]["memory"],
        "serviceAccount": name,
        "labels": pod_labels,
        # A new job configuration restarts the job (spark-operator restarts on spec changes).
        "annotations": {CONFIG_HASH_ANNOTATION: content_hash(job_config)},
        "volumeMounts": mounts,
        "ports": [{"name": "metrics", "containerPort": config.JOB_METRICS_PORT, "protocol": "TCP"}],
    }
    executor = {
        "cores": spark["executor"]["cores"],
        "memory": spark["executor"]["memory"],
        "instances": spark["executor"]["instances"],
        "labels": pod_labels,
        "volumeMounts": mounts,
    }
    volumes = [{"name": "config", "configMap": {"name": f"{name}-config"}}]
    if spark.get("checkpointClaimName"):
        volumes.append(
            {
                "name": "checkpoints",
                "persistentVolumeClaim": {"claimName": spark["checkpointClaimName"]},
            }
        )
        mounts.append({"name": "checkpoints", "mountPath": spark["checkpointLocation"]})
    for pod in (driver, executor):
        # 185 is the spark user of the official image: it may write to the checkpoint volume.
        pod["podSecurityContext"] = {**POD_SECURITY_CONTEXT, "fsGroup": 185}
        pod["securityContext"] = CONTAINER_SECURITY_CONTEXT
    if env:
        driver["env"] = env
        # Executors tokenise card numbers; only the driver writes to Elasticsearch.
        executor_env = [var for var in env if var["name"] == "TOKENIZATION_KEY"]
        if executor_env:
            executor["env"] = executor_env
    application_spec = {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": spark["image"],
        "imagePullPolicy": "IfNotPresent",
        "mainApplicationFile": JOB_FILE,
        "arguments": ["--config", f"{config.CONFIG_DIR}/{config.JOB_CONFIG_KEY}"],
        "sparkVersion": spark["sparkVersion"],
        "restartPolicy": {
            "type": "Always",
            "onFailureRetryInterval": 10,
            "onSubmissionFailureRetryInterval": 20,
        },
        "suspend": bool(spec["suspend"]),
        "volumes": volumes,
        "driver": driver,
        "executor": executor,
    }
    application_spec["sparkConf"] = {**default_spark_conf(spark), **(spark.get("sparkConf") or {})}
    application = manifest(
        SPARK_APPLICATION, pipeline, name, "detector", {"spec": application_spec}
    )
    service = manifest(
        SERVICE,
        pipeline,
        f"{name}-metrics",
        "detector",
        {
            "spec": {
                # headless: Prometheus scrapes the driver pod itself, no virtual IP needed
                "clusterIP": "None",
                "selector": {
                    "spark-role": "driver",
                    "sparkoperator.k8s.io/app-name": name,
                },
                "ports": [
                    {
                        "name": "metrics",
                        "port": config.JOB_METRICS_PORT,
                        "targetPort": config.JOB_METRICS_PORT,
                        "protocol": "TCP",
                    }
                ],
            }
        },
    )
    return [config_map, account, role, binding, application, service]


def build_simulator(pipeline: Pipeline) -> list[dict]:
    """The simulator: its ConfigMap and Deployment (0 replicas when suspended)."""
    spec = pipeline.spec
    if not spec["simulator"]["enabled"]:
        return []
    name = simulator_name(pipeline)
    text = config.dump(config.render_simulator_config(pipeline.name, pipeline.namespace, spec))
    config_map = config_file_map(pipeline, name, "simulator", config.SIMULATOR_CONFIG_KEY, text)
    pod_labels = labels(pipeline, "simulator")
    selector = {k: pod_labels[k] for k in ("app.kubernetes.io/instance", PIPELINE_LABEL)}
    selector["app.kubernetes.io/component"] = "simulator"
    container = {
        "name": "simulator",
        "image": spec["simulator"]["image"],
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "fraud_simulator"],
        "args": ["--config", f"{config.CONFIG_DIR}/{config.SIMULATOR_CONFIG_KEY}"],
        "ports": [
            {"name": "metrics", "containerPort": config.SIMULATOR_METRICS_PORT, "protocol": "TCP"}
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "volumeMounts": [{"name": "config", "mountPath": config.CONFIG_DIR, "readOnly": True}],
        "securityContext": {**CONTAINER_SECURITY_CONTEXT, "readOnlyRootFilesystem": True},
    }
    deployment = manifest(
        DEPLOYMENT,
        pipeline,
        name,
        "simulator",
        {
            "spec": {
                "replicas": 0 if spec["suspend"] else spec["simulator"]["replicas"],
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": pod_labels,
                        # A new configuration rolls the pods.
                        "annotations": {CONFIG_HASH_ANNOTATION: content_hash(text)},
                    },
                    "spec": {
                        "securityContext": POD_SECURITY_CONTEXT,
                        "containers": [container],
                        "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}],
                    },
                },
            }
        },
    )
    return [config_map, deployment]


def _alert(name: str, expr: str, duration: str, severity: str, summary: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


# Every scraped series gets a `pipeline` label, copied from the pod's pipeline label: the
# dashboards and the PrometheusRule select on it.
PIPELINE_RELABELING = {
    "sourceLabels": ["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9]", "_", PIPELINE_LABEL)],
    "targetLabel": "pipeline",
}


def build_monitoring(pipeline: Pipeline) -> list[dict]:
    """ServiceMonitor (job), PodMonitor (simulator) and PrometheusRule, as the spec asks."""
    monitoring = pipeline.spec["monitoring"]
    endpoint = {"port": "metrics", "interval": "15s", "relabelings": [PIPELINE_RELABELING]}
    result = []
    selector = {
        "app.kubernetes.io/instance": pipeline.name,
        PIPELINE_LABEL: pipeline.name,
    }
    if monitoring["serviceMonitor"]:
        result.append(
            manifest(
                SERVICE_MONITOR,
                pipeline,
                detector_name(pipeline),
                "monitoring",
                {
                    "spec": {
                        "selector": {
                            "matchLabels": {**selector, "app.kubernetes.io/component": "detector"}
                        },
                        "endpoints": [endpoint],
                    }
                },
            )
        )
        if pipeline.spec["simulator"]["enabled"]:
            result.append(
                manifest(
                    POD_MONITOR,
                    pipeline,
                    simulator_name(pipeline),
                    "monitoring",
                    {
                        "spec": {
                            "selector": {
                                "matchLabels": {
                                    **selector,
                                    "app.kubernetes.io/component": "simulator",
                                }
                            },
                            "podMetricsEndpoints": [endpoint],
                        }
                    },
                )
            )
    if monitoring["prometheusRule"]:
        service = f"{detector_name(pipeline)}-metrics"
        # the ServiceMonitor's targets carry the namespace and service labels
        matcher = f'namespace="{pipeline.namespace}",service="{service}"'
        rules = [
            _alert(
                "FraudDetectorDown",
                f"absent(up{{{matcher}}} == 1)",
                "5m",
                "critical",
                f"The detection job of {pipeline.namespace}/{pipeline.name} is not scraped.",
            ),
            _alert(
                "FraudDetectorConsumerLag",
                f"sum(fraud_detection_consumer_lag_records{{{matcher}}}) > 10000",
                "10m",
                "warning",
                f"The detection job of {pipeline.namespace}/{pipeline.name} lags behind Kafka.",
            ),
            _alert(
                "FraudDetectorDeadLetters",
                f"sum(rate(fraud_detection_dead_letters_total{{{matcher}}}[5m])) > 1",
                "10m",
                "warning",
                f"{pipeline.namespace}/{pipeline.name} sends more than 1 event/s to dead letters.",
            ),
        ]
        result.append(
            manifest(
                PROMETHEUS_RULE,
                pipeline,
                pipeline.name,
                "monitoring",
                {"spec": {"groups": [{"name": f"fraudpipeline-{pipeline.name}", "rules": rules}]}},
            )
        )
    return result


def dashboard_object_name(pipeline: Pipeline, file_name: str) -> str:
    stem = file_name.rsplit(".", 1)[0].lower().replace("_", "-")
    return f"{pipeline.name}-{stem}"[:63].rstrip("-")


def datasource_object_name(pipeline: Pipeline, template_uid: str) -> str:
    """`<pipeline>-ds-<what>` (`what`: the template uid without `fraud-`)."""
    what = template_uid.removeprefix(grafana.TEMPLATE_PREFIX)
    return f"{pipeline.name}-ds-{what}"[:63].rstrip("-")


def build_grafana(pipeline: Pipeline, content: GrafanaContent) -> list[dict]:
    """The pipeline's dashboards and datasources as sidecar ConfigMaps or grafana-operator objects.

    Uids, titles, names and file names are the pipeline's own (see `fraud_operator.grafana`).
    """
    settings = pipeline.spec["monitoring"]["grafana"]
    if settings["mode"] not in ("sidecar", "operator"):
        return []
    name, namespace, spec = pipeline.name, pipeline.namespace, pipeline.spec
    folder = settings.get("folder") or DEFAULT_DASHBOARD_FOLDER
    boards = {
        file: grafana.build_dashboard(name, namespace, board)
        for file, board in sorted(content.dashboards.items())
    }
    datasources = grafana.build_datasources(name, namespace, spec, content.prometheus_url)
    if settings["mode"] == "sidecar":
        # The sidecar writes every ConfigMap key into one directory: the file names carry uids.
        result = []
        if boards:
            result.append(
                manifest(
                    CONFIG_MAP,
                    pipeline,
                    f"{name}-dashboards",
                    "dashboards",
                    {
                        "data": {
                            f"{board['uid']}.json": json.dumps(board, sort_keys=True)
                            for board in boards.values()
                        }
                    },
                    {"grafana_dashboard": "1"},
                    {"grafana_folder": folder},
                )
            )
        file = grafana.pipeline_uid(namespace, name, "datasources") + ".yaml"
        text = json.dumps({"apiVersion": 1, "datasources": list(datasources.values())})
        result.append(
            manifest(
                CONFIG_MAP,
                pipeline,
                f"{name}-datasources",
                "dashboards",
                {"data": {file: text}},
                {"grafana_datasource": "1"},
            )
        )
        return result
    selector = settings.get("instanceSelector") or {}
    result = [
        manifest(
            GRAFANA_FOLDER,
            pipeline,
            name,
            "dashboards",
            {"spec": {"title": folder, "instanceSelector": selector}},
        )
    ]
    for file, board in boards.items():
        result.append(
            manifest(
                GRAFANA_DASHBOARD,
                pipeline,
                dashboard_object_name(pipeline, file),
                "dashboards",
                {
                    "spec": {
                        "instanceSelector": selector,
                        "folderRef": name,
                        "json": json.dumps(board, sort_keys=True),
                    }
                },
            )
        )
    for template_uid, datasource in datasources.items():
        body = {
            "instanceSelector": selector,
            "uid": datasource["uid"],
            "datasource": {k: v for k, v in datasource.items() if k != "uid"},
        }
        if references := grafana.values_from(spec, datasource):
            body["valuesFrom"] = references
        result.append(
            manifest(
                GRAFANA_DATASOURCE,
                pipeline,
                datasource_object_name(pipeline, template_uid),
                "dashboards",
                {"spec": body},
            )
        )
    return result


def build_children(pipeline: Pipeline, content: GrafanaContent) -> list[dict]:
    """Every child the spec asks for."""
    return [
        *build_topics(pipeline),
        *build_detector(pipeline),
        *build_simulator(pipeline),
        *build_monitoring(pipeline),
        *build_grafana(pipeline, content),
    ]


def possible_children(pipeline: Pipeline, content: GrafanaContent) -> set[tuple[str, str]]:
    """(kind, name) of every child any spec of this pipeline could ask for."""
    name = pipeline.name
    sim, det = simulator_name(pipeline), detector_name(pipeline)
    found = {
        *((KAFKA_TOPIC.kind, config.topic_name(name, t)) for t in config.TOPIC_SUFFIXES),
        (CONFIG_MAP.kind, f"{sim}-config"),
        (DEPLOYMENT.kind, sim),
        (SERVICE_MONITOR.kind, det),
        (POD_MONITOR.kind, sim),
        (PROMETHEUS_RULE.kind, name),
        (CONFIG_MAP.kind, f"{name}-dashboards"),
        (CONFIG_MAP.kind, f"{name}-datasources"),
        (GRAFANA_FOLDER.kind, name),
    }
    found |= {
        (GRAFANA_DASHBOARD.kind, dashboard_object_name(pipeline, f)) for f in content.dashboards
    }
    found |= {
        (GRAFANA_DATASOURCE.kind, datasource_object_name(pipeline, uid))
        for uid in grafana.TEMPLATE_TYPES
    }
    return found
