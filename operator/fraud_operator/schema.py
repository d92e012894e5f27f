"""The FraudPipeline API: the one source of truth for the CRD schema, its defaults and the CRD.

`crds/fraudpipeline.dev_fraudpipelines.yaml` is generated from `build_crd()`
(`python -m fraud_operator.schema`), and so is the Helm chart's copy; a unit test checks
both are current.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from fraud_events import SOURCES, TRANSACTION_SCENARIOS

GROUP = "fraudpipeline.dev"
VERSION = "v1alpha1"
KIND = "FraudPipeline"
PLURAL = "fraudpipelines"
CRD_FILE_NAME = f"{GROUP}_{PLURAL}.yaml"

PHASES = ["Pending", "Provisioning", "Running", "Degraded", "Suspended", "Failed", "Deleting"]
SCENARIOS = list(TRANSACTION_SCENARIOS)
DURATION_PATTERN = r"^[1-9][0-9]* (millisecond|second|minute|hour)s?$"
SPARK_MEMORY_PATTERN = r"^[1-9][0-9]*[kmgt]$"
MAX_NAME_LENGTH = 40


def _field(kind: str, description: str, default: Any = None, **extra: Any) -> dict:
    schema = {"type": kind, "description": description, **extra}
    if default is not None:
        schema["default"] = default
    return schema


def string(description: str, default: str | None = None, **extra: Any) -> dict:
    return _field("string", description, default, **extra)


def integer(description: str, default: int | None = None, **extra: Any) -> dict:
    return _field("integer", description, default, **extra)


def number(description: str, default: float | None = None, **extra: Any) -> dict:
    return _field("number", description, default, **extra)


def boolean(description: str, default: bool | None = None) -> dict:
    return _field("boolean", description, default)


def string_map(description: str, **extra: Any) -> dict:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"type": "string"},
        **extra,
    }


def obj(
    description: str,
    properties: dict,
    required: list[str] | None = None,
    rules: list[dict] | None = None,
    default: dict | None = None,
) -> dict:
    """An object; with `default` ({} as a rule) its fields' defaults are filled in when absent."""
    schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = rules
    if default is not None:
        schema["default"] = with_defaults(schema, default)
    return schema


def rule(expression: str, message: str, field_path: str | None = None, **extra: Any) -> dict:
    validation = {"rule": expression, "message": message, **extra}
    if field_path:
        validation["fieldPath"] = field_path
    return validation


def _topic(description: str, partitions: int, config: dict | None = None) -> dict:
    return obj(
        description,
        {
            "partitions": integer(
                "Number of partitions; can grow but never shrink.",
                partitions,
                minimum=1,
                maximum=1000,
            ),
            "replicas": integer("Replication factor.", 1, minimum=1, maximum=10),
            "config": string_map(
                "Kafka topic configuration (for example retention.ms), values as strings.",
                **({"default": config} if config else {}),
                maxProperties=50,
            ),
        },
        rules=[
            rule(
                "self.partitions >= oldSelf.partitions",
                "partitions cannot be decreased: Kafka cannot remove partitions",
                ".partitions",
            )
        ],
        default={},
    )


def _window(description: str, default: int) -> dict:
    return integer(description, default, minimum=1, maximum=1440)


def _detection_rules() -> dict:
    def enabled() -> dict:
        return boolean("Whether the rule runs.", True)

    return obj(
        "The detection rules and their parameters.",
        {
            "impossibleTravel": obj(
                "Two uses of a card too far apart for the time between them.",
                {
                    "enabled": enabled(),
                    "maxSpeedKmh": number(
                        "Speed above which travel is impossible, in km/h.",
                        900,
                        minimum=1,
                        maximum=20000,
                    ),
                },
                default={},
            ),
            "spendingSpree": obj(
                "Purchases in many merchant categories within a short window.",
                {
                    "enabled": enabled(),
                    "minCategories": integer(
                        "Distinct categories that trigger an alert.", 4, minimum=2, maximum=10
                    ),
                    "windowMinutes": _window("Window length in minutes.", 15),
                },
                default={},
            ),
            "cardTesting": obj(
                "Small probing amounts followed by a large purchase.",
                {
                    "enabled": enabled(),
                    "smallAmountMax": number(
                        "Largest amount counted as a probe.", 2.0, minimum=0, exclusiveMinimum=True
                    ),
                    "largeAmountMin": number(
                        "Smallest amount counted as the cash-out.",
                        200.0,
                        minimum=0,
                        exclusiveMinimum=True,
                    ),
                    "windowMinutes": _window("Window length in minutes.", 5),
                },
                rules=[
                    rule(
                        "self.smallAmountMax < self.largeAmountMin",
                        "smallAmountMax must be less than largeAmountMin",
                        ".smallAmountMax",
                    )
                ],
                default={},
            ),
            "velocity": obj(
                "Too many transactions or too much money on one card within a window.",
                {
                    "enabled": enabled(),
                    "maxTransactions": integer(
                        "Transactions allowed per window.", 10, minimum=1, maximum=100000
                    ),
                    "maxAmount": number(
                        "Total amount allowed per window.", 5000.0, minimum=0, exclusiveMinimum=True
                    ),
                    "windowMinutes": _window("Window length in minutes.", 10),
                },
                default={},
            ),
            "amountThreshold": obj(
                "An amount far above the card's usual amounts.",
                {
                    "enabled": enabled(),
                    "multiplier": number(
                        "Multiple of the card's mean amount that triggers an alert.",
                        5.0,
                        minimum=1,
                        maximum=1000,
                    ),
                    "minHistory": integer(
                        "Transactions seen before the rule applies to a card.",
                        5,
                        minimum=1,
                        maximum=10000,
                    ),
                },
                default={},
            ),
        },
        default={},
    )


def _resources(description: str, memory: str, instances: bool) -> dict:
    properties = {
        "cores": integer("CPU cores.", 1, minimum=1, maximum=64),
        "memory": string(
            "Memory in Spark's format: a number and k, m, g or t (for example 2g).",
            memory,
            pattern=SPARK_MEMORY_PATTERN,
        ),
    }
    if instances:
        properties["instances"] = integer("Number of executors.", 2, minimum=1, maximum=200)
    return obj(description, properties, default={})


def _secret_key_ref(description: str, keys: dict[str, tuple[str, str]]) -> dict:
    properties = {"name": string("Name of the Secret in the pipeline's namespace.", minLength=1)}
    for field, (text, default) in keys.items():
        properties[field] = string(text, default, minLength=1)
    return obj(description, properties, required=["name"])


def spec_schema() -> dict:
    """The OpenAPI v3 schema of `spec`, with a description on every field."""
    return obj(
        "Desired state of a real-time fraud detection pipeline.",
        {
            "suspend": boolean(
                "Stop the simulator and the detection job; topics and their data are kept.", False
            ),
            "kafka": obj(
                "The Strimzi Kafka cluster and the pipeline's topics.",
                {
                    "clusterRef": obj(
                        "The Strimzi Kafka resource in the pipeline's namespace.",
                        {"name": string("Name of the Kafka resource.", minLength=1, maxLength=63)},
                        required=["name"],
                    ),
                    "bootstrapServers": string(
                        "Bootstrap servers override; default <cluster>-kafka-bootstrap:9092.",
                        "",
                    ),
                    "topics": obj(
                        "Per topic settings; topic names are <pipeline>-<topic>.",
                        {
                            "transactions": _topic(
                                "Card transactions.", 6, {"retention.ms": "604800000"}
                            ),
                            "alerts": _topic("Alerts raised by the detection job.", 3),
                            "labels": _topic("Delayed fraud labels (ground truth).", 3),
                            "deadLetters": _topic(
                                "Events the job could not parse (<pipeline>-dead-letters).", 1
                            ),
                            "sensors": _topic(
                                "Sensor events; created when simulator.sources has sensors.", 3
                            ),
                            "applications": _topic(
                                "Account applications; created when simulator.sources has "
                                "applications.",
                                3,
                            ),
                        },
                        default={},
                    ),
                },
                required=["clusterRef"],
            ),
            "detection": obj(
                "What the streaming job detects and how often.",
                {
                    "triggerInterval": string(
                        "Micro-batch trigger interval, for example '5 seconds'. Each alert waits "
                        "up to this long for its micro-batch; an interval no longer than a "
                        "micro-batch, such as '500 milliseconds', gives the lowest latency but "
                        "runs micro-batches back to back, using CPU even on little traffic "
                        "(docs/performance.md).",
                        "5 seconds",
                        pattern=DURATION_PATTERN,
                    ),
                    "watermarkDelay": string(
                        "How far behind its account's latest transaction a transaction may arrive "
                        "and still be evaluated, for example '10 minutes'; later ones go to the "
                        "dead-letter topic as late_event.",
                        "10 minutes",
                        pattern=DURATION_PATTERN,
                    ),
                    "maxEventTimeAhead": string(
                        "How far a transaction's event_time may be ahead of its Kafka timestamp, "
                        "for example '1 hour'; later ones (a wrong clock, which would move its "
                        "account's watermark) go to the dead-letter topic as future_event. Unset: "
                        "no bound (the simulator's live clock runs ahead of the wall clock).",
                        pattern=DURATION_PATTERN,
                    ),
                    "stateBuckets": integer(
                        "How many state keys the job hashes accounts (and, in its first stage, "
                        "terminals) into. Spark's Python state has a cost per key and "
                        "micro-batch, so one key holds a bucket of accounts; a micro-batch "
                        "rewrites the state of every account of each bucket it touches. About "
                        "one bucket per 500 accounts, at least 4 per shuffle partition "
                        "(docs/detection.md). Fixed for the pipeline's life: "
                        "the checkpointed state is partitioned by it.",
                        64,
                        minimum=1,
                        maximum=1048576,
                        **{
                            "x-kubernetes-validations": [
                                rule(
                                    "self == oldSelf",
                                    "stateBuckets cannot change: the job's checkpointed state is "
                                    "partitioned by it; create a new pipeline to change it",
                                )
                            ]
                        },
                    ),
                    "rules": _detection_rules(),
                    "model": obj(
                        "The machine-learning model that scores each transaction.",
                        {
                            "enabled": boolean("Whether the model scores transactions.", True),
                            "uri": string(
                                "Where the job loads the model from.",
                                "local:///opt/fraudpipeline/models/default",
                            ),
                            "scoreThreshold": number(
                                "Score at or above which an alert is raised.",
                                0.8,
                                minimum=0,
                                maximum=1,
                            ),
                        },
                        rules=[
                            rule(
                                "!self.enabled || self.uri != ''",
                                "uri is required when the model is enabled",
                                ".uri",
                            )
                        ],
                        default={},
                    ),
                },
                rules=[
                    rule(
                        "self.model.enabled || self.rules.impossibleTravel.enabled || "
                        "self.rules.spendingSpree.enabled || self.rules.cardTesting.enabled || "
                        "self.rules.velocity.enabled || self.rules.amountThreshold.enabled",
                        "at least one rule or the model must be enabled",
                        ".rules",
                    )
                ],
                default={},
            ),
            "spark": obj(
                "The Spark application that runs the detection job.",
                {
                    "image": string(
                        "Image of the detection job.",
                        "ghcr.io/fraudpipeline/detection:0.1.0",
                        minLength=1,
                    ),
                    "sparkVersion": string(
                        "Spark version of the image.", "4.2.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$"
                    ),
                    "driver": _resources("Driver resources.", "1g", instances=False),
                    "executor": _resources("Executor resources and count.", "2g", instances=True),
                    "checkpointLocation": string(
                        "Checkpoint root; the job appends /<namespace>/<pipeline>. It must be "
                        "shared by the driver and executors and outlive them: a path on "
                        "checkpointClaimName's volume, or a URI such as s3a://bucket/checkpoints.",
                        "/checkpoints",
                        minLength=1,
                    ),
                    "checkpointClaimName": string(
                        "A ReadWriteMany PersistentVolumeClaim mounted at checkpointLocation on "
                        "the driver and every executor, so a restarted job resumes where it "
                        "stopped. Leave it out when checkpointLocation is a URI.",
                        maxLength=253,
                    ),
                    "sparkConf": string_map(
                        "Extra Spark configuration. spark.sql.shuffle.partitions defaults to "
                        "the executors' cores (instances x cores) and, like stateBuckets, is "
                        "kept in the checkpoint from the first start.",
                        maxProperties=100,
                        **{
                            "x-kubernetes-validations": [
                                rule(
                                    "self.all(k, k.startsWith('spark.'))",
                                    "sparkConf keys must start with 'spark.'",
                                )
                            ]
                        },
                    ),
                },
                default={},
            ),
            "simulator": obj(
                "The transaction simulator that feeds the pipeline with labelled fraud.",
                {
                    "enabled": boolean("Whether the simulator runs.", True),
                    "image": string(
                        "Image of the simulator.",
                        "ghcr.io/fraudpipeline/simulator:0.1.0",
                        minLength=1,
                    ),
                    "replicas": integer("Simulator pods.", 1, minimum=0, maximum=50),
                    "ratePerSecond": number(
                        "Transactions per second per replica.", 200, minimum=0.001, maximum=100000
                    ),
                    "customers": integer("Simulated customers.", 5000, minimum=1, maximum=2000000),
                    "terminals": integer("Simulated terminals.", 1000, minimum=1, maximum=1000000),
                    "fraudRate": number(
                        "Share of transactions that are fraud.", 0.01, minimum=0, maximum=0.5
                    ),
                    "scenarios": {
                        "type": "array",
                        "description": "Fraud scenarios to simulate.",
                        "items": {"type": "string", "enum": SCENARIOS},
                        "default": SCENARIOS,
                        "maxItems": len(SCENARIOS),
                        "x-kubernetes-list-type": "set",
                    },
                    "sources": {
                        "type": "array",
                        "description": "Event streams to produce.",
                        "items": {"type": "string", "enum": list(SOURCES)},
                        "default": ["transactions"],
                        "minItems": 1,
                        "maxItems": len(SOURCES),
                        "x-kubernetes-list-type": "set",
                    },
                    "labelDelaySeconds": integer(
                        "Delay before a transaction's label is published.",
                        0,
                        minimum=0,
                        maximum=2592000,
                    ),
                    "seed": integer(
                        "Random seed: the same seed gives the same events.", 42, minimum=0
                    ),
                },
                default={},
            ),
            "sinks": obj(
                "Where alerts are written besides the alerts topic.",
                {
                    "elasticsearch": obj(
                        "Elasticsearch index <indexPrefix>-alerts.",
                        {
                            "url": string(
                                "Elasticsearch URL.", pattern=r"^https?://[^\s/]+(/.*)?$"
                            ),
                            "credentialsSecretRef": _secret_key_ref(
                                "Secret holding the Elasticsearch user and password.",
                                {
                                    "usernameKey": ("Key of the user name.", "username"),
                                    "passwordKey": ("Key of the password.", "password"),
                                },
                            ),
                            "indexPrefix": string(
                                "Prefix of the index names.",
                                "fraud",
                                pattern=r"^[a-z0-9][a-z0-9_-]*$",
                                maxLength=100,
                            ),
                        },
                        required=["url"],
                    ),
                },
            ),
            "tokenization": obj(
                "The HMAC key the job uses to tokenise card numbers.",
                {
                    "secretRef": _secret_key_ref(
                        "Secret holding the HMAC key.", {"key": ("Key in the Secret.", "hmac-key")}
                    )
                },
            ),
            "monitoring": obj(
                "Prometheus and Grafana objects for the pipeline.",
                {
                    "serviceMonitor": boolean(
                        "Create a ServiceMonitor for the job and a PodMonitor for the simulator.",
                        True,
                    ),
                    "prometheusRule": boolean(
                        "Create a PrometheusRule (detector down, consumer lag, dead letters).",
                        True,
                    ),
                    "grafana": obj(
                        "Dashboards and datasources.",
                        {
                            "mode": string(
                                "sidecar: labelled ConfigMaps; operator: grafana-operator "
                                "objects; none: nothing.",
                                "sidecar",
                                enum=["sidecar", "operator", "none"],
                            ),
                            "folder": string("Grafana folder of the dashboards.", "Fraud"),
                            "instanceSelector": obj(
                                "Label selector of the Grafana instances (operator mode).",
                                {
                                    "matchLabels": string_map("Labels the instances carry."),
                                },
                            ),
                        },
                        rules=[
                            rule(
                                "self.mode != 'operator' || has(self.instanceSelector)",
                                "instanceSelector is required when mode is operator",
                                ".instanceSelector",
                            )
                        ],
                        default={},
                    ),
                },
                default={},
            ),
        },
        required=["kafka"],
    )


def _condition_schema() -> dict:
    return obj(
        "A condition of the pipeline.",
        {
            "type": string("Ready, TopicsReady, DetectorReady, SimulatorReady or MonitoringReady."),
            "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": string("One-word reason in CamelCase."),
            "message": string("Human-readable detail."),
            "lastTransitionTime": string("When the status last changed.", format="date-time"),
            "observedGeneration": integer("Generation the condition was computed for."),
        },
        required=["type", "status"],
    )


def status_schema() -> dict:
    return obj(
        "Observed state, written by the operator.",
        {
            "observedGeneration": integer("Generation of the spec last reconciled."),
            "phase": string("Summary of the pipeline's state.", enum=PHASES),
            "message": string("Why the pipeline is in this phase."),
            "detectorState": string("applicationState of the SparkApplication."),
            "topics": {
                "type": "array",
                "description": "Names of the Kafka topics of the pipeline.",
                "items": {"type": "string"},
            },
            "conditions": {
                "type": "array",
                "description": "Ready and one condition per part of the pipeline.",
                "items": _condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    )


def build_crd() -> dict:
    """The CustomResourceDefinition of FraudPipeline."""
    root = obj(
        "A real-time fraud detection pipeline: Kafka topics, a Spark streaming job, "
        "simulators and dashboards, reconciled by the fraudpipeline operator.",
        {
            "apiVersion": string("API version of this object."),
            "kind": string("Kind of this object."),
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        required=["spec"],
        rules=[
            rule(
                f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
                f"metadata.name must be at most {MAX_NAME_LENGTH} characters: child names "
                "append suffixes",
            ),
        ],
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "fraudpipeline"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "fraudpipeline",
                "shortNames": ["fp"],
                "categories": ["fraud"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {"name": "Detector", "type": "string", "jsonPath": ".status.detectorState"},
                        {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def with_defaults(schema: dict, value: Any) -> Any:
    """`value` with every default of `schema` filled in, as the API server does."""
    if value is None and "default" in schema:
        value = copy.deepcopy(schema["default"])
    if isinstance(value, dict) and "properties" in schema:
        filled = dict(value)
        for name, child in schema["properties"].items():
            result = with_defaults(child, filled.get(name))
            if result is not None:
                filled[name] = result
        return filled
    return value


def spec_with_defaults(spec: dict) -> dict:
    """A FraudPipeline spec with every default filled in."""
    return with_defaults(spec_schema(), spec or {})


REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = REPO_ROOT / "crds" / CRD_FILE_NAME
CHART_CRD_PATH = REPO_ROOT / "charts" / "fraudpipeline-operator" / "templates" / "crd.yaml"
GENERATED_BY = "Generated by `python -m fraud_operator.schema`: do not edit by hand."


def crd_yaml() -> str:
    return f"# {GENERATED_BY}\n" + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


def chart_crd_template() -> str:
    """The CRD as a template of the Helm chart, so that `helm upgrade` upgrades it too."""
    body = yaml.safe_dump(build_crd(), sort_keys=False, width=100)
    if "{{" in body:
        raise ValueError("a description contains '{{', which Helm would read as a template")
    keep = (
        "  {{- if .Values.crds.keep }}\n"
        "  annotations:\n"
        "    helm.sh/resource-policy: keep\n"
        "  {{- end }}\n"
    )
    body = body.replace("metadata:\n", "metadata:\n" + keep, 1)
    header = f"{{{{- /* {GENERATED_BY} */ -}}}}\n{{{{- if .Values.crds.install }}}}\n"
    return f"{header}{body}{{{{- end }}}}\n"


GENERATED = {CRD_PATH: crd_yaml, CHART_CRD_PATH: chart_crd_template}


def main() -> int:
    """Write the CRD into crds/ and into the Helm chart."""
    for path, render in GENERATED.items():
        path.write_text(render())
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
