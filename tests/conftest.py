"""Session-scoped fixtures that run the real test-bed components on 127.0.0.1.

Each component starts on first use, once per session, in a temporary folder, and stops at the
end. A component that cannot start fails the test with its log tail; nothing is skipped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from fraud_testbed.elasticsearch import ElasticsearchNode, run_elasticsearch
from fraud_testbed.kafka import KafkaBroker, run_kafka
from fraud_testbed.kube import KubeCluster, install_crds, run_control_plane
from fraud_testbed.prometheus import PrometheusServer, run_prometheus
from fraud_testbed.spark import local_session


@pytest.fixture(scope="session")
def kube(tmp_path_factory) -> Iterator[KubeCluster]:
    """etcd, kube-apiserver and kube-controller-manager, with the upstream CRDs installed."""
    with run_control_plane(tmp_path_factory.mktemp("kube")) as cluster:
        install_crds(cluster)
        yield cluster


@pytest.fixture
def namespace(kube: KubeCluster, request) -> Iterator[str]:
    """A namespace of this test's own, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> Iterator[KafkaBroker]:
    with run_kafka(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    session = local_session(tmp_path_factory.mktemp("spark"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def elasticsearch() -> Iterator[ElasticsearchNode]:
    with run_elasticsearch() as node:
        yield node


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory) -> Iterator[PrometheusServer]:
    with run_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server
