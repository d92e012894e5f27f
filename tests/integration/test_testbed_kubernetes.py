"""The test bed's API server is a real one: upstream CRD schemas enforced, garbage collection on."""

from __future__ import annotations

import time

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

UPSTREAM_KINDS = {
    ("kafka.strimzi.io", "KafkaTopic"),
    ("kafka.strimzi.io", "Kafka"),
    ("sparkoperator.k8s.io", "SparkApplication"),
    ("grafana.integreatly.org", "GrafanaDashboard"),
    ("grafana.integreatly.org", "GrafanaDatasource"),
    ("grafana.integreatly.org", "GrafanaFolder"),
    ("monitoring.coreos.com", "ServiceMonitor"),
    ("monitoring.coreos.com", "PodMonitor"),
    ("monitoring.coreos.com", "PrometheusRule"),
}


@pytest.fixture
def api(kube):
    return config.new_client_from_config(config_file=str(kube.kubeconfig))


def kafka_topic(name: str, partitions) -> dict:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": "fraud-kafka"}},
        "spec": {"partitions": partitions, "replicas": 1, "config": {"retention.ms": 3600000}},
    }


def spark_application(name: str, app_type: str) -> dict:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name},
        "spec": {
            "type": app_type,
            "mode": "cluster",
            "sparkVersion": "4.2.0",
            "image": "example.org/fraud-detection:dev",
            "mainApplicationFile": "local:///opt/fraud/job.py",
            "driver": {"cores": 1, "memory": "1g"},
            "executor": {"cores": 1, "instances": 1, "memory": "1g"},
        },
    }


def test_upstream_crds_are_served(api):
    served = {
        (crd.spec.group, crd.spec.names.kind)
        for crd in client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    }
    assert served >= UPSTREAM_KINDS


def test_valid_kafka_topic_is_accepted_and_invalid_rejected(api, namespace):
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        "kafka.strimzi.io", "v1", namespace, "kafkatopics", kafka_topic("transactions", 3)
    )
    assert created["spec"]["partitions"] == 3

    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(
            "kafka.strimzi.io", "v1", namespace, "kafkatopics", kafka_topic("broken", 0)
        )
    assert rejected.value.status == 422
    assert "spec.partitions" in rejected.value.body


def test_valid_spark_application_is_accepted_and_invalid_rejected(api, namespace):
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        "sparkoperator.k8s.io",
        "v1beta2",
        namespace,
        "sparkapplications",
        spark_application("detector", "Python"),
    )
    assert created["spec"]["type"] == "Python"

    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(
            "sparkoperator.k8s.io",
            "v1beta2",
            namespace,
            "sparkapplications",
            spark_application("bad", "Go"),
        )
    assert rejected.value.status == 422
    assert "spec.type" in rejected.value.body and "Unsupported value" in rejected.value.body


def test_deleting_an_owner_garbage_collects_what_it_owns(api, namespace):
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="owned", owner_references=[reference])
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
        if "owned" not in names:
            break
        time.sleep(0.5)
    assert "owned" not in names, (
        "kube-controller-manager's garbage collector did not delete the owned object"
    )
