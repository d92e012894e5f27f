"""The Helm chart: lint, render, server-side dry-run, values schema, and least-privilege RBAC."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from fraud_testbed.install import KUBERNETES_VERSION
from fraud_testbed.operator_process import run_operator, stand_in_prerequisites
from fraud_testbed.paths import REPO_ROOT, binary
from fraud_testbed.process import free_port

CHART = REPO_ROOT / "charts" / "fraudpipeline-operator"
CRDS = REPO_ROOT / "crds"

# Without a cluster, helm template assumes an old Kubernetes; say which one the test bed runs.
TEMPLATE = ("template", "fraud", str(CHART), f"--kube-version={KUBERNETES_VERSION}")

VALUE_SETS = {
    "defaults": [],
    "namespaced": [
        "--set",
        "watch.allNamespaces=false",
        "--set",
        "watch.namespaces={team-a,team-b}",
    ],
    "monitored-debug": [
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
        "--set",
        "logLevel=debug",
        "--set",
        "crds.install=false",
        "--set",
        "serviceAccount.name=fraud-operator",
    ],
}


def helm(kube, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(binary("helm")), f"--kubeconfig={kube.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(kube, namespace: str, values: list[str]) -> list[dict]:
    rendered = helm(kube, *TEMPLATE, "--namespace", namespace, *values).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_chart_lints_clean(kube, values):
    linted = helm(kube, "lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in linted.stdout


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_rendered_object_passes_server_side_dry_run(kube, namespace, values):
    for team in ("team-a", "team-b"):
        kube.kubectl("create", "namespace", team, check=False)
    objects = render(kube, namespace, values)
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "ServiceAccount", "Service"} <= kinds
    assert kube.dry_run(objects) == len(objects)


def test_namespaced_mode_grants_no_cluster_wide_rights(kube, namespace):
    objects = render(kube, namespace, VALUE_SETS["namespaced"])
    kinds = [obj["kind"] for obj in objects]
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    roles = {obj["metadata"]["namespace"] for obj in objects if obj["kind"] == "Role"}
    assert roles == {"team-a", "team-b"}


def test_crd_template_matches_the_generated_crd(kube, namespace):
    rendered = [
        obj for obj in render(kube, namespace, []) if obj["kind"] == "CustomResourceDefinition"
    ]
    generated = [yaml.safe_load(path.read_text()) for path in sorted(CRDS.glob("*.yaml"))]
    assert [crd["spec"] for crd in rendered] == [crd["spec"] for crd in generated]
    assert rendered[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "logLevel=verbose"], "/logLevel"),
        (["--set", "watch.allNamespaces=false"], "/watch/namespaces"),
        (["--set", "metrics.port=70000"], "/metrics/port"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "operator.workers=0"], "/operator/workers"),
        (["--set", "watch.namespaces={Not_A_Namespace}"], "/watch/namespaces/0"),
        (["--set", "replicas=3"], "replicas"),
    ],
)
def test_bad_values_are_rejected_with_the_setting_named(kube, values, message):
    result = helm(kube, *TEMPLATE, *values, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def can_i(kube, service_account: str, verb: str, resource: str, namespace: str) -> bool:
    """`kubectl auth can-i` as the service account; `resource/sub` names a subresource."""
    resource, _, subresource = resource.partition("/")
    result = subprocess.run(
        [
            str(binary("kubectl")),
            f"--kubeconfig={kube.kubeconfig}",
            "auth",
            "can-i",
            verb,
            resource,
            f"--as={service_account}",
            f"--namespace={namespace}",
            *([f"--subresource={subresource}"] if subresource else []),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0


NEEDED = [
    ("watch", "fraudpipelines.fraudpipeline.dev"),
    ("patch", "fraudpipelines.fraudpipeline.dev/status"),
    ("create", "kafkatopics.kafka.strimzi.io"),
    ("patch", "sparkapplications.sparkoperator.k8s.io"),
    ("delete", "deployments.apps"),
    ("create", "configmaps"),
    ("get", "secrets"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "servicemonitors.monitoring.coreos.com"),
    ("create", "prometheusrules.monitoring.coreos.com"),
    ("create", "grafanadashboards.grafana.integreatly.org"),
    ("create", "events"),
]
FORBIDDEN = [
    ("list", "secrets"),
    ("watch", "secrets"),
    ("update", "secrets"),
    ("delete", "fraudpipelines.fraudpipeline.dev"),
    ("create", "fraudpipelines.fraudpipeline.dev"),
    ("create", "pods/exec"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("delete", "kafkas.kafka.strimzi.io"),
]


def install_watching_only(kube, namespace: str) -> None:
    """`helm install fraud` into `namespace`, watching only it; the CRD from crds/ (shared)."""
    kube.kubectl("apply", "--server-side", "-f", str(CRDS))
    helm(
        kube,
        "install",
        "fraud",
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "crds.install=false",
        "--set",
        "watch.allNamespaces=false",
        "--set",
        f"watch.namespaces={{{namespace}}}",
    )


def test_installed_operator_may_do_what_it_needs_and_nothing_else(kube, namespace):
    install_watching_only(kube, namespace)
    account = f"system:serviceaccount:{namespace}:fraud-fraudpipeline-operator"
    allowed = {(verb, res) for verb, res in NEEDED if can_i(kube, account, verb, res, namespace)}
    assert allowed == set(NEEDED)
    granted = {(verb, res) for verb, res in FORBIDDEN if can_i(kube, account, verb, res, namespace)}
    assert granted == set()
    # Outside its namespace, and cluster-wide, it may do nothing.
    assert not can_i(kube, account, "create", "kafkatopics.kafka.strimzi.io", "default")
    assert not can_i(kube, account, "get", "secrets", "kube-system")
    assert not can_i(kube, account, "list", "nodes", namespace)
    assert not can_i(kube, account, "create", "clusterroles.rbac.authorization.k8s.io", namespace)
    helm(kube, "uninstall", "fraud", "--namespace", namespace)


def test_operator_reconciles_a_pipeline_with_only_the_charts_rights(kube, namespace, tmp_path):
    """The real operator, authenticated as the chart's service account, builds a pipeline."""
    install_watching_only(kube, namespace)
    prerequisites = stand_in_prerequisites()
    pipeline = yaml.safe_load((REPO_ROOT / "examples" / "fraudpipeline-minimal.yaml").read_text())
    for obj in [*prerequisites, pipeline]:
        obj["metadata"]["namespace"] = namespace
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(prerequisites))
    kubeconfig = kube.service_account_kubeconfig(
        namespace, "fraud-fraudpipeline-operator", tmp_path / "operator.kubeconfig"
    )
    with run_operator(kubeconfig, tmp_path, free_port(), free_port(), namespaces=[namespace]) as op:
        kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(pipeline))
        deadline = time.monotonic() + 60
        status: dict = {}
        # The first pass may find the driver's Role not yet visible to the RBAC check of its
        # RoleBinding; the operator retries, so wait for the pipeline to settle.
        while time.monotonic() < deadline and status.get("phase") != "Provisioning":
            time.sleep(0.5)
            found = kube.kubectl("get", "fraudpipeline", "payments", "-n", namespace, "-o", "json")
            status = json.loads(found).get("status", {})
        log = op.log_path.read_text()
    assert status.get("observedGeneration") == 1, log[-3000:]
    assert status["phase"] == "Provisioning", status.get("message")
    children = kube.kubectl(
        "get",
        "sparkapplications,kafkatopics,deployments,roles,servicemonitors,prometheusrules",
        "-n",
        namespace,
        "-o",
        "name",
    ).split()
    assert "sparkapplication.sparkoperator.k8s.io/payments-detector" in children
    assert "role.rbac.authorization.k8s.io/payments-detector" in children
    assert sum(name.startswith("kafkatopic") for name in children) == 4
    assert "forbidden" not in log.lower(), "the operator was refused something it needs"
