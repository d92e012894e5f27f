"""A cluster without Strimzi or spark-operator: the pipeline says what to install, then recovers."""

from __future__ import annotations

import json
import time

import yaml

from fraud_testbed.kube import KubeCluster, install_crds, run_control_plane
from fraud_testbed.operator_process import run_operator, stand_in_prerequisites
from fraud_testbed.paths import REPO_ROOT
from fraud_testbed.process import free_port

PIPELINE = yaml.safe_load((REPO_ROOT / "examples" / "fraudpipeline-minimal.yaml").read_text())


def wait_for_phase(cluster: KubeCluster, phase: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        found = cluster.kubectl("get", "fraudpipeline", "payments", "-n", "fraud", "-o", "json")
        status = json.loads(found).get("status", {})
        if status.get("phase") == phase:
            return status
        time.sleep(0.5)
    raise AssertionError(f"phase {phase} not reached within {timeout:.0f} s: {status}")


def test_missing_prerequisites_degrade_the_pipeline_until_installed(tmp_path):
    with run_control_plane(tmp_path / "kube") as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
        cluster.kubectl("create", "namespace", "fraud")
        with run_operator(
            cluster.kubeconfig,
            tmp_path,
            free_port(),
            free_port(),
            env={"FRAUDPIPELINE_RESYNC_SECONDS": "2"},
        ) as operator:
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(PIPELINE))
            degraded = wait_for_phase(cluster, "Degraded")
            assert "install Strimzi" in degraded["message"], degraded["message"]
            assert "install spark-operator" in degraded["message"], degraded["message"]
            assert operator.process.popen.poll() is None, "the operator exited"

            install_crds(cluster)
            prerequisites = stand_in_prerequisites()
            for obj in prerequisites:
                obj["metadata"]["namespace"] = "fraud"
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(prerequisites))
            recovered = wait_for_phase(cluster, "Provisioning")
            assert "install" not in recovered["message"], recovered["message"]
            assert operator.total("fraudpipeline_operator_reconcile_errors_total") == 0
