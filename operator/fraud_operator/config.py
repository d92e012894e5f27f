"""The configuration files the operator renders from a spec: job.yaml and simulator.yaml.

Pure functions, shared by the operator and the local run. Secrets never appear here: the job and
the simulator read them from the environment.
"""

from __future__ import annotations

from typing import Any

import yaml

from fraud_operator.schema import spec_with_defaults

JOB_METRICS_PORT = 9108
SIMULATOR_METRICS_PORT = 9109
CONFIG_DIR = "/etc/fraudpipeline"
JOB_CONFIG_KEY = "job.yaml"
SIMULATOR_CONFIG_KEY = "simulator.yaml"
TOPIC_SUFFIXES = {
    "transactions": "transactions",
    "alerts": "alerts",
    "labels": "labels",
    "deadLetters": "dead-letters",
    "sensors": "sensors",
    "applications": "applications",
}
OPTIONAL_TOPICS = ("sensors", "applications")


def topic_name(pipeline: str, topic: str) -> str:
    """Kafka topic name of `topic` (a key of spec.kafka.topics): `<pipeline>-<suffix>`."""
    return f"{pipeline}-{TOPIC_SUFFIXES[topic]}"


def active_topics(spec: dict) -> list[str]:
    """Keys of spec.kafka.topics the pipeline uses: the four core ones plus enabled sources."""
    sources = spec["simulator"]["sources"] if spec["simulator"]["enabled"] else []
    return [t for t in TOPIC_SUFFIXES if t not in OPTIONAL_TOPICS or t in sources]


def bootstrap_servers(spec: dict) -> str:
    kafka = spec["kafka"]
    return kafka.get("bootstrapServers") or f"{kafka['clusterRef']['name']}-kafka-bootstrap:9092"


def render_job_config(name: str, namespace: str, spec: dict) -> dict[str, Any]:
    """job.yaml of the detection job, as a dict (see docs/contracts.md)."""
    spec = spec_with_defaults(spec)
    checkpoint_root = spec["spark"]["checkpointLocation"].rstrip("/")
    config: dict[str, Any] = {
        "pipeline": {"name": name, "namespace": namespace},
        "kafka": {
            "bootstrapServers": bootstrap_servers(spec),
            "topics": {t: topic_name(name, t) for t in active_topics(spec)},
        },
        "detection": spec["detection"],
        "checkpointLocation": f"{checkpoint_root}/{namespace}/{name}",
        "metrics": {"port": JOB_METRICS_PORT},
    }
    sink = spec.get("sinks", {}).get("elasticsearch")
    if sink:
        config["elasticsearch"] = {"url": sink["url"], "indexPrefix": sink["indexPrefix"]}
    return config


def render_simulator_config(name: str, namespace: str, spec: dict) -> dict[str, Any]:
    """simulator.yaml of the simulators, as a dict (see docs/contracts.md)."""
    spec = spec_with_defaults(spec)
    simulator = {k: v for k, v in spec["simulator"].items() if k not in ("image", "replicas")}
    return {
        "pipeline": {"name": name, "namespace": namespace},
        "kafka": {
            "bootstrapServers": bootstrap_servers(spec),
            "topics": {
                t: topic_name(name, t)
                for t in ("transactions", "labels", "sensors", "applications")
            },
        },
        "simulator": simulator,
        "metrics": {"port": SIMULATOR_METRICS_PORT},
    }


def dump(config: dict) -> str:
    """A rendered configuration as the YAML text of its file."""
    return yaml.safe_dump(config, sort_keys=False)
