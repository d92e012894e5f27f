"""How the operator scales: N FraudPipelines created at once against the real API server.

For each N (default 10, 100, 500) on a fresh control plane: create N pipelines (the example spec,
sidecar dashboards), then measure per pipeline the time from its creation until its status reports
the generation (the operator writes status after every child in the same pass; all children are
checked to exist at the end), p50 and p99; the time until all N are reconciled; the operator's
memory; API writes per pipeline on create; API writes during one full no-op resync of all N.

Writes bench/results/operator_scale.json and prints a table. Usage: bench/operator_scale.py [N...]
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import yaml
from kubernetes import client, config
from recording import machine, write_results

from fraud_operator.kubeapi import KubeApi
from fraud_testbed.kube import install_crds, run_control_plane
from fraud_testbed.operator_process import run_operator, stand_in_prerequisites
from fraud_testbed.process import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "operator_scale.json"
EXAMPLE = yaml.safe_load((ROOT / "examples" / "fraudpipeline.yaml").read_text())
NAMESPACE = "bench"
RESYNC_SECONDS = 20
RECONCILE_TIMEOUT = 300
CHILDREN_PER_PIPELINE = 17  # the example, dashboards and datasources in two ConfigMaps
WRITES = "fraudpipeline_operator_api_writes_total"
RECONCILES = "fraudpipeline_operator_reconciles_total"
LISTS = {
    "kafkatopics": "/apis/kafka.strimzi.io/v1/namespaces/bench/kafkatopics",
    "sparkapplications": "/apis/sparkoperator.k8s.io/v1beta2/namespaces/bench/sparkapplications",
    "configmaps": "/api/v1/namespaces/bench/configmaps",
    "services": "/api/v1/namespaces/bench/services",
    "serviceaccounts": "/api/v1/namespaces/bench/serviceaccounts",
    "roles": "/apis/rbac.authorization.k8s.io/v1/namespaces/bench/roles",
    "rolebindings": "/apis/rbac.authorization.k8s.io/v1/namespaces/bench/rolebindings",
    "deployments": "/apis/apps/v1/namespaces/bench/deployments",
    "servicemonitors": "/apis/monitoring.coreos.com/v1/namespaces/bench/servicemonitors",
    "podmonitors": "/apis/monitoring.coreos.com/v1/namespaces/bench/podmonitors",
    "prometheusrules": "/apis/monitoring.coreos.com/v1/namespaces/bench/prometheusrules",
}
PIPELINES = "/apis/fraudpipeline.dev/v1alpha1/namespaces/bench/fraudpipelines"


def wait_until(probe, what: str, timeout: float, interval: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout} s")


def measure(count: int, workdir: Path) -> dict:
    with run_control_plane(workdir / "kube") as cluster:
        install_crds(cluster)
        install_crds(cluster, ROOT / "crds")
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        raw = KubeApi(api)
        cluster.kubectl("create", "namespace", NAMESPACE)
        manifests = yaml.safe_dump_all(stand_in_prerequisites())
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=manifests)
        env = {"FRAUDPIPELINE_RESYNC_SECONDS": str(RESYNC_SECONDS)}  # dashboards of grafana/
        with run_operator(
            cluster.kubeconfig, workdir, free_port(), free_port(), env=env
        ) as operator:
            writes_before = operator.total(WRITES)
            custom = client.CustomObjectsApi(api)
            created_at = {}
            began = time.monotonic()
            for number in range(count):
                body = copy.deepcopy(EXAMPLE)
                body["metadata"] = {"name": f"p{number:04d}", "namespace": NAMESPACE}
                custom.create_namespaced_custom_object(
                    "fraudpipeline.dev", "v1alpha1", NAMESPACE, "fraudpipelines", body
                )
                created_at[body["metadata"]["name"]] = time.monotonic()
            create_seconds = time.monotonic() - began

            observed_at: dict[str, float] = {}

            def all_observed() -> bool:
                for item in raw.get(PIPELINES)["items"]:
                    name = item["metadata"]["name"]
                    if name not in observed_at and (item.get("status") or {}).get(
                        "observedGeneration"
                    ):
                        observed_at[name] = time.monotonic()
                return len(observed_at) == count

            interval = 0.05 if count <= 10 else 0.5
            wait_until(all_observed, "every pipeline reconciled", RECONCILE_TIMEOUT, interval)
            all_reconciled = max(observed_at.values()) - began
            children = sum(len(raw.get(path)["items"]) for path in LISTS.values())
            expected = count * CHILDREN_PER_PIPELINE + 1  # + kube-root-ca.crt
            expected += 1  # the default ServiceAccount
            rss_mib = psutil.Process(operator.process.pid).memory_info().rss / 2**20

            def deployments_observed() -> bool:
                """kube-controller-manager has reported on every Deployment (the pipelines'
                status follows it, so until then status writes are not no-op ones)."""
                items = raw.get(LISTS["deployments"])["items"]
                return all(d.get("status", {}).get("conditions") for d in items)

            wait_until(deployments_observed, "Deployment status", RECONCILE_TIMEOUT, 1)
            quiet_since = {"writes": -1.0}

            def quiet() -> bool:
                """Nothing queued and no write for 3 s: the pipelines' status has caught up."""
                writes = operator.total(WRITES)
                unchanged = writes == quiet_since["writes"]
                quiet_since["writes"] = writes
                return unchanged and operator.total("fraudpipeline_operator_queue_depth") == 0

            wait_until(quiet, "the operator to stop writing", RECONCILE_TIMEOUT, 3)
            settled_writes = operator.total(WRITES)
            settled_samples = operator.metrics()
            reconciles = operator.total(RECONCILES)
            wait_until(
                lambda: operator.total(RECONCILES) >= reconciles + count,
                "a full resync",
                RESYNC_SECONDS * 2 + RECONCILE_TIMEOUT,
                0.5,
            )
            resync_writes = operator.total(WRITES) - settled_writes
            resync_breakdown = {
                key: value - settled_samples.get(key, 0.0)
                for key, value in operator.metrics().items()
                if key.startswith(WRITES + "{") and value != settled_samples.get(key, 0.0)
            }
            per_kind = {kind: len(raw.get(path)["items"]) for kind, path in LISTS.items()}
            pipelines = raw.get(PIPELINES)["items"]
            phases = Counter(p.get("status", {}).get("phase") for p in pipelines)
            not_ready = Counter(
                f"{c['type']}={c['reason']}"
                for p in pipelines
                for c in p.get("status", {}).get("conditions", [])
                if c["status"] != "True"
            )

    latencies = [observed_at[name] - created_at[name] for name in created_at]
    return {
        "pipelines": count,
        "create_requests_s": round(create_seconds, 2),
        "time_to_children_p50_s": round(float(np.percentile(latencies, 50)), 3),
        "time_to_children_p99_s": round(float(np.percentile(latencies, 99)), 3),
        "all_reconciled_s": round(all_reconciled, 2),
        "children_found": children,
        "children_expected": expected,
        "operator_rss_mib": round(rss_mib, 1),
        "writes_per_pipeline_on_create": round((settled_writes - writes_before) / count, 2),
        "writes_per_noop_resync": resync_writes,
        "noop_resync_writes_by_kind": resync_breakdown,
        "children_after_resync": per_kind,
        "phases": dict(phases),
        "not_ready_conditions": dict(not_ready),
    }


def main(counts: list[int]) -> None:
    rows = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix=f"bench-operator-{count}-") as workdir:
            rows.append(measure(count, Path(workdir)))
        print(json.dumps(rows[-1]), flush=True)
    report = {
        "benchmark": "operator_scale",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "targets": {
            "time_to_children_p99_s_at_10": 2.0,
            "all_reconciled_s_at_500": 120.0,
            "writes_per_noop_resync": 0,
        },
        "runs": rows,
    }
    write_results(RESULTS, report, summary)


def summary(report: dict) -> str:
    header = f"{'N':>5} {'p50 s':>7} {'p99 s':>7} {'all s':>7} {'RSS MiB':>8}"
    lines = [header + f" {'writes/create':>13} {'no-op writes':>12} {'children':>10}"]
    for row in report["runs"]:
        lines.append(
            f"{row['pipelines']:>5} {row['time_to_children_p50_s']:>7} "
            f"{row['time_to_children_p99_s']:>7} {row['all_reconciled_s']:>7} "
            f"{row['operator_rss_mib']:>8} {row['writes_per_pipeline_on_create']:>13} "
            f"{row['writes_per_noop_resync']:>12} "
            f"{row['children_found']:>5}/{row['children_expected']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10, 100, 500])
