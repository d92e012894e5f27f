"""The FraudPipeline operator against the test bed's real API server and upstream CRDs."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from fraud_operator.reconcile import load_grafana_content
from fraud_testbed.operator_process import LocalOperator, run_operator, stand_in_prerequisites
from fraud_testbed.process import free_port
from fraud_testbed.prometheus import promtool

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "examples" / "fraudpipeline.yaml").read_text())
CRD_FILE = ROOT / "crds" / "fraudpipeline.dev_fraudpipelines.yaml"
GROUP, VERSION = "fraudpipeline.dev", "v1alpha1"
RESYNC_SECONDS = 2
WAIT_SECONDS = 30
DATASOURCES = ("prometheus", "alerts", "kpis", "outcomes", "accounts")  # `<pipeline>-ds-<what>`
CHILD_PLURALS = {
    ("kafka.strimzi.io", "v1", "kafkatopics"): "KafkaTopic",
    ("sparkoperator.k8s.io", "v1beta2", "sparkapplications"): "SparkApplication",
    ("monitoring.coreos.com", "v1", "servicemonitors"): "ServiceMonitor",
    ("monitoring.coreos.com", "v1", "podmonitors"): "PodMonitor",
    ("monitoring.coreos.com", "v1", "prometheusrules"): "PrometheusRule",
    ("grafana.integreatly.org", "v1beta1", "grafanafolders"): "GrafanaFolder",
    ("grafana.integreatly.org", "v1beta1", "grafanadashboards"): "GrafanaDashboard",
    ("grafana.integreatly.org", "v1beta1", "grafanadatasources"): "GrafanaDatasource",
}
EXAMPLE_CHILDREN = {
    ("KafkaTopic", "payments-transactions"),
    ("KafkaTopic", "payments-alerts"),
    ("KafkaTopic", "payments-labels"),
    ("KafkaTopic", "payments-dead-letters"),
    ("ConfigMap", "payments-detector-config"),
    ("ServiceAccount", "payments-detector"),
    ("Role", "payments-detector"),
    ("RoleBinding", "payments-detector"),
    ("SparkApplication", "payments-detector"),
    ("Service", "payments-detector-metrics"),
    ("ConfigMap", "payments-simulator-config"),
    ("Deployment", "payments-simulator"),
    ("ServiceMonitor", "payments-detector"),
    ("PodMonitor", "payments-simulator"),
    ("PrometheusRule", "payments"),
    ("ConfigMap", "payments-dashboards"),
    ("ConfigMap", "payments-datasources"),
}


def wait_for(probe: Callable[[], object], what: str, timeout: float = WAIT_SECONDS):
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(kube):
    return config.new_client_from_config(config_file=str(kube.kubeconfig))


@pytest.fixture(scope="module")
def crd(kube, api):
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    extensions = client.ApiextensionsV1Api(api)

    def established() -> bool:
        crd = extensions.read_custom_resource_definition("fraudpipelines.fraudpipeline.dev")
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    wait_for(established, "the FraudPipeline CRD to be established")


@pytest.fixture(scope="module")
def operator(kube, crd, tmp_path_factory) -> LocalOperator:
    workdir = tmp_path_factory.mktemp("operator")
    env = {"FRAUDPIPELINE_RESYNC_SECONDS": str(RESYNC_SECONDS)}  # dashboards from grafana/
    with run_operator(kube.kubeconfig, workdir, free_port(), free_port(), env=env) as running:
        yield running
        assert running.total("fraudpipeline_operator_reconcile_errors_total") == 0, (
            running.log_tail()
        )


class Cluster:
    """Small helpers over the typed and custom-object clients, in one namespace."""

    def __init__(self, api: client.ApiClient, kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.serialize = api.sanitize_for_serialization

    def prerequisites(self) -> None:
        """The Kafka object and Secrets the example pipeline refers to."""
        manifests = yaml.safe_dump_all(stand_in_prerequisites())
        self.kube.kubectl("apply", "-n", self.namespace, "-f", "-", input=manifests)

    def create_pipeline(self, name: str = "payments", **spec_changes) -> dict:
        body = copy.deepcopy(EXAMPLE)
        body["metadata"] = {"name": name, "namespace": self.namespace}
        body["spec"].update(spec_changes)
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "fraudpipelines", body
        )

    def pipeline(self, name: str = "payments") -> dict:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "fraudpipelines", name
        )

    def patch_spec(self, spec: dict, name: str = "payments") -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "fraudpipelines", name, {"spec": spec}
        )

    def children(self, pipeline: str = "payments") -> dict[tuple[str, str], dict]:
        """Every object labelled as a child of `pipeline`, keyed by (kind, name)."""
        selector = f"fraudpipeline.dev/pipeline={pipeline}"
        found = {}
        for (group, version, plural), kind in CHILD_PLURALS.items():
            for item in self.custom.list_namespaced_custom_object(
                group, version, self.namespace, plural, label_selector=selector
            )["items"]:
                found[(kind, item["metadata"]["name"])] = item
        typed = {
            "ConfigMap": self.core.list_namespaced_config_map,
            "Service": self.core.list_namespaced_service,
            "ServiceAccount": self.core.list_namespaced_service_account,
            "Deployment": self.apps.list_namespaced_deployment,
            "Role": self.rbac.list_namespaced_role,
            "RoleBinding": self.rbac.list_namespaced_role_binding,
        }
        for kind, lister in typed.items():
            for item in lister(self.namespace, label_selector=selector).items:
                found[(kind, item.metadata.name)] = self.serialize(item)
        return found

    def versions(self, pipeline: str = "payments") -> dict[tuple[str, str], str]:
        """Per child: its generation where it has one (spec changes), else its resourceVersion."""
        return {
            key: str(obj["metadata"].get("generation") or obj["metadata"]["resourceVersion"])
            for key, obj in self.children(pipeline).items()
        }

    def status(self, name: str = "payments") -> dict:
        return self.pipeline(name).get("status") or {}

    def condition(self, kind: str, name: str = "payments") -> dict:
        for entry in self.status(name).get("conditions", []):
            if entry["type"] == kind:
                return entry
        return {}

    def patch_child_status(self, plural_key: tuple[str, str, str], name: str, status: dict):
        group, version, plural = plural_key
        self.custom.patch_namespaced_custom_object_status(
            group, version, self.namespace, plural, name, {"status": status}
        )

    def event_reasons(self) -> set[str]:
        events = self.core.list_namespaced_event(self.namespace).items
        return {e.reason for e in events if e.involved_object.kind == "FraudPipeline"}


TOPICS = ("kafka.strimzi.io", "v1", "kafkatopics")
SPARK_APPS = ("sparkoperator.k8s.io", "v1beta2", "sparkapplications")


@pytest.fixture
def cluster(api, kube, namespace) -> Cluster:
    return Cluster(api, kube, namespace)


def settled(cluster: Cluster, operator: LocalOperator, name: str = "payments") -> dict:
    """Wait until the status reflects the current generation and the operator stops writing."""
    generation = cluster.pipeline(name)["metadata"]["generation"]
    wait_for(
        lambda: cluster.status(name).get("observedGeneration") == generation,
        f"status of generation {generation}",
    )
    previous = -1.0
    for _ in range(50):
        writes = operator.total("fraudpipeline_operator_api_writes_total")
        if writes == previous:
            break
        previous = writes
        time.sleep(RESYNC_SECONDS * 0.75)
    return cluster.children(name)


def test_create_makes_every_child_accepted_by_the_upstream_schemas(cluster, operator, kube):
    cluster.prerequisites()
    began = time.monotonic()
    created = cluster.create_pipeline()
    wait_for(lambda: set(cluster.children()) >= EXAMPLE_CHILDREN, "every child of the example")
    elapsed = time.monotonic() - began
    assert elapsed < 10, f"children took {elapsed:.1f} s"

    children = settled(cluster, operator)
    assert set(children) == EXAMPLE_CHILDREN
    for (kind, name), child in children.items():
        assert child["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"], (
            f"{kind} {name} is not owned by the pipeline"
        )
    topic = children[("KafkaTopic", "payments-transactions")]
    assert topic["spec"]["partitions"] == 6
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "fraud-kafka"
    app = children[("SparkApplication", "payments-detector")]["spec"]
    assert app["image"] == EXAMPLE["spec"]["spark"]["image"]
    assert app["executor"]["instances"] == 2 and app["suspend"] is False
    job = yaml.safe_load(children[("ConfigMap", "payments-detector-config")]["data"]["job.yaml"])
    assert job["kafka"]["topics"]["deadLetters"] == "payments-dead-letters"
    assert children[("Deployment", "payments-simulator")]["spec"]["replicas"] == 1
    dashboards = children[("ConfigMap", "payments-dashboards")]["metadata"]
    assert dashboards["labels"]["grafana_dashboard"] == "1"

    pipeline = cluster.pipeline()
    assert not pipeline["metadata"].get("finalizers"), "a finalizer could block deletion"
    assert pipeline["status"]["phase"] == "Provisioning"
    table = kube.kubectl("get", "fp", "-n", cluster.namespace)
    assert "Provisioning" in table and "NotSubmitted" in table


def test_grafana_operator_mode_objects_are_accepted(cluster, operator):
    cluster.prerequisites()
    selector = {"matchLabels": {"dashboards": "grafana"}}
    monitoring = copy.deepcopy(EXAMPLE["spec"]["monitoring"])
    monitoring["grafana"] = {"mode": "operator", "folder": "Fraud", "instanceSelector": selector}
    cluster.create_pipeline(monitoring=monitoring)
    content = load_grafana_content(ROOT / "grafana")
    expected = {("GrafanaFolder", "payments")}
    expected |= {("GrafanaDashboard", f"payments-{Path(f).stem}") for f in content.dashboards}
    expected |= {("GrafanaDatasource", f"payments-ds-{what}") for what in DATASOURCES}
    assert len(content.dashboards) > 2, "grafana/ has no dashboards"
    wait_for(lambda: set(cluster.children()) >= expected, "grafana-operator objects")
    children = settled(cluster, operator)
    assert ("ConfigMap", "payments-dashboards") not in children
    for kind, name in expected:
        assert children[(kind, name)]["spec"]["instanceSelector"] == selector
    assert cluster.condition("MonitoringReady")["status"] == "True"

    cluster.patch_spec({"monitoring": {"grafana": {"mode": "none", "instanceSelector": None}}})
    wait_for(
        lambda: not any(k[0].startswith("Grafana") for k in cluster.children()),
        "grafana objects to be pruned",
    )


def test_two_pipelines_get_datasources_of_their_own(cluster, operator):
    cluster.prerequisites()
    monitoring = copy.deepcopy(EXAMPLE["spec"]["monitoring"])
    monitoring["grafana"] = {
        "mode": "operator",
        "instanceSelector": {"matchLabels": {"dashboards": "grafana"}},
    }
    sinks = {
        name: {**EXAMPLE["spec"]["sinks"]["elasticsearch"], "indexPrefix": name}
        for name in ("cards", "loans")
    }
    for name, sink in sinks.items():
        cluster.create_pipeline(name, monitoring=monitoring, sinks={"elasticsearch": sink})

    boards = len(load_grafana_content(ROOT / "grafana").dashboards)

    def grafana_objects(name: str) -> dict[tuple[str, str], dict]:
        found = {k: o["spec"] for k, o in cluster.children(name).items() if "Grafana" in k[0]}
        return found if len(found) == 1 + boards + len(DATASOURCES) else {}

    made = {
        name: wait_for(lambda n=name: grafana_objects(n), f"{name}'s objects") for name in sinks
    }
    uids, names = [], []
    for name, objects in made.items():
        sources = {n: spec for (kind, n), spec in objects.items() if kind == "GrafanaDatasource"}
        assert set(sources) == {f"{name}-ds-{what}" for what in DATASOURCES}
        alerts = sources[f"{name}-ds-alerts"]
        assert alerts["datasource"]["jsonData"]["index"] == f"{name}-alerts"
        assert (
            alerts["datasource"]["url"] == f"http://fraud-es-es-http.{cluster.namespace}.svc:9200"
        )
        secret = {"name": "fraud-es-credentials", "key": "password"}
        assert {
            "targetPath": "secureJsonData.basicAuthPassword",
            "valueFrom": {"secretKeyRef": secret},
        } in alerts["valuesFrom"]
        uids += [spec["uid"] for spec in sources.values()]
        uids += [
            json.loads(s["json"])["uid"] for (k, _), s in objects.items() if k == "GrafanaDashboard"
        ]
        names += [spec["datasource"]["name"] for spec in sources.values()]
    assert len(set(uids)) == len(uids) == 2 * (boards + len(DATASOURCES))
    assert len(set(names)) == len(names)


def test_updates_change_only_the_affected_children(cluster, operator):
    cluster.prerequisites()
    cluster.create_pipeline()
    settled(cluster, operator)

    def changed_by(spec: dict) -> set[tuple[str, str]]:
        before = cluster.versions()
        cluster.patch_spec(spec)
        settled(cluster, operator)
        after = cluster.versions()
        assert after.keys() == before.keys()
        return {key for key in before if before[key] != after[key]}

    threshold = {"detection": {"rules": {"velocity": {"maxTransactions": 3}}}}
    assert changed_by(threshold) == {
        ("ConfigMap", "payments-detector-config"),
        ("SparkApplication", "payments-detector"),
    }
    partitions = {"kafka": {"topics": {"alerts": {"partitions": 12}}}}
    assert changed_by(partitions) == {("KafkaTopic", "payments-alerts")}
    assert cluster.children()[("KafkaTopic", "payments-alerts")]["spec"]["partitions"] == 12
    rate = {"simulator": {"ratePerSecond": 20}}
    assert changed_by(rate) == {
        ("ConfigMap", "payments-simulator-config"),
        ("Deployment", "payments-simulator"),
    }


WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY"}


def apiserver_writes(kube) -> Counter[tuple[str, str, str]]:
    """Creates and updates the API server served for the kinds only the operator writes.

    Deletes and refused requests are left out: the namespace controller empties the namespaces
    of earlier tests, and kube-root-ca.crt is refused in namespaces being deleted.
    """
    resources = {
        "fraudpipelines",
        "kafkatopics",
        "sparkapplications",
        "servicemonitors",
        "podmonitors",
        "prometheusrules",
        "roles",
        "rolebindings",
        "services",
        "configmaps",
    }
    total: Counter[tuple[str, str, str]] = Counter()
    for line in kube.kubectl("get", "--raw", "/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        verb, resource, subresource = (
            labels.get(k, "").strip('"') for k in ("verb", "resource", "subresource")
        )
        succeeded = labels.get("code", "").strip('"').startswith("2")
        if resource in resources and verb in WRITE_VERBS and succeeded:
            total[(verb, resource, subresource)] += float(line.rsplit(" ", 1)[1])
    return total


def test_a_no_op_resync_writes_nothing(cluster, operator, kube):
    def quiet() -> bool:
        """No namespace of an earlier test is still being emptied (its pipelines change)."""
        return all(n.status.phase != "Terminating" for n in cluster.core.list_namespace().items)

    wait_for(quiet, "the namespaces of earlier tests to be deleted", timeout=120)
    cluster.prerequisites()
    cluster.create_pipeline()
    settled(cluster, operator)
    reconciles = operator.total("fraudpipeline_operator_reconciles_total")
    writes = operator.total("fraudpipeline_operator_api_writes_total")
    served = apiserver_writes(kube)
    time.sleep(RESYNC_SECONDS * 3 + 1)
    assert operator.total("fraudpipeline_operator_reconciles_total") >= reconciles + 2
    assert operator.total("fraudpipeline_operator_api_writes_total") == writes
    assert apiserver_writes(kube) - served == Counter()


def test_drift_is_repaired(cluster, operator):
    cluster.prerequisites()
    cluster.create_pipeline()
    settled(cluster, operator)
    ns = cluster.namespace
    cluster.core.delete_namespaced_config_map("payments-detector-config", ns)
    cluster.custom.patch_namespaced_custom_object(
        *SPARK_APPS[:2], ns, SPARK_APPS[2], "payments-detector", {"spec": {"image": "evil:1"}}
    )
    cluster.apps.patch_namespaced_deployment_scale(
        "payments-simulator", ns, {"spec": {"replicas": 7}}
    )
    cluster.custom.delete_namespaced_custom_object(*TOPICS[:2], ns, TOPICS[2], "payments-labels")

    def repaired() -> bool:
        children = cluster.children()
        return (
            set(children) >= EXAMPLE_CHILDREN
            and children[("SparkApplication", "payments-detector")]["spec"]["image"]
            == EXAMPLE["spec"]["spark"]["image"]
            and children[("Deployment", "payments-simulator")]["spec"]["replicas"] == 1
        )

    wait_for(repaired, "the children to be restored")


def test_suspend_and_resume(cluster, operator):
    cluster.prerequisites()
    cluster.create_pipeline()
    settled(cluster, operator)
    cluster.patch_spec({"suspend": True})
    children = settled(cluster, operator)
    assert children[("SparkApplication", "payments-detector")]["spec"]["suspend"] is True
    assert children[("Deployment", "payments-simulator")]["spec"]["replicas"] == 0
    assert sum(1 for kind, _ in children if kind == "KafkaTopic") == 4
    assert cluster.status()["phase"] == "Suspended"

    cluster.patch_spec({"suspend": False})
    children = settled(cluster, operator)
    assert children[("SparkApplication", "payments-detector")]["spec"]["suspend"] is False
    assert children[("Deployment", "payments-simulator")]["spec"]["replicas"] == 1
    assert cluster.status()["phase"] == "Provisioning"
    assert {"Suspended", "Provisioning"} <= cluster.event_reasons()


def test_delete_garbage_collects_every_child(cluster, operator):
    cluster.prerequisites()
    cluster.create_pipeline()
    settled(cluster, operator)
    cluster.custom.delete_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "fraudpipelines", "payments"
    )
    wait_for(lambda: not cluster.children(), "garbage collection of the children", timeout=60)


def test_status_follows_the_children(cluster, operator):
    cluster.prerequisites()
    cluster.create_pipeline(simulator={"enabled": False})
    children = settled(cluster, operator)
    topics = [name for kind, name in children if kind == "KafkaTopic"]
    assert cluster.condition("SimulatorReady")["reason"] == "Disabled"
    assert cluster.status()["phase"] == "Provisioning"

    ready = {"conditions": [{"type": "Ready", "status": "True"}], "observedGeneration": 1}
    for topic in topics:
        cluster.patch_child_status(TOPICS, topic, ready)
    wait_for(lambda: cluster.condition("TopicsReady").get("status") == "True", "TopicsReady")

    def detector(state: str, error: str = "") -> None:
        cluster.patch_child_status(
            SPARK_APPS,
            "payments-detector",
            {
                "applicationState": {"state": state, "errorMessage": error},
                "driverInfo": {"podName": "payments-detector-driver"},
                "sparkApplicationId": "spark-0001",
            },
        )

    detector("RUNNING")
    wait_for(lambda: cluster.status().get("phase") == "Running", "phase Running")
    assert cluster.condition("Ready")["status"] == "True"
    assert cluster.status()["detectorState"] == "RUNNING"

    detector("FAILED", "driver OOMKilled")
    wait_for(lambda: cluster.status().get("phase") == "Failed", "phase Failed")
    assert "driver OOMKilled" in cluster.condition("DetectorReady")["message"]

    detector("RUNNING")
    wait_for(lambda: cluster.status().get("phase") == "Running", "phase Running again")
    not_ready = {"conditions": [{"type": "Ready", "status": "False", "message": "ISR too small"}]}
    cluster.patch_child_status(TOPICS, "payments-alerts", not_ready)
    wait_for(lambda: cluster.status().get("phase") == "Degraded", "phase Degraded")
    assert "ISR too small" in cluster.condition("TopicsReady")["message"]
    assert {"Running", "Failed", "Degraded", "TopicsReadyTrue"} <= cluster.event_reasons()


def test_missing_prerequisites_degrade_with_a_fix(cluster, operator):
    cluster.create_pipeline()
    wait_for(lambda: cluster.status().get("phase") == "Degraded", "phase Degraded")
    assert "Kafka 'fraud-kafka' not found" in cluster.condition("TopicsReady")["message"]
    detector = cluster.condition("DetectorReady")
    assert detector["reason"] == "SecretNotFound"
    assert "fraud-es-credentials" in detector["message"]
    assert ("SparkApplication", "payments-detector") in cluster.children()

    cluster.prerequisites()
    wait_for(lambda: cluster.status().get("phase") == "Provisioning", "the prerequisites to count")


INVALID = [
    ("spec.kafka", lambda s: s.pop("kafka")),
    ("spec.kafka.clusterRef.name", lambda s: s["kafka"]["clusterRef"].pop("name")),
    ("partitions", lambda s: s["kafka"]["topics"]["alerts"].update(partitions=0)),
    ("replicas", lambda s: s["kafka"]["topics"]["alerts"].update(replicas=100)),
    ("smallAmountMax", lambda s: s["detection"]["rules"]["cardTesting"].update(smallAmountMax=500)),
    ("triggerInterval", lambda s: s["detection"].update(triggerInterval="fast")),
    ("triggerInterval", lambda s: s["detection"].update(triggerInterval="0 milliseconds")),
    ("maxEventTimeAhead", lambda s: s["detection"].update(maxEventTimeAhead="1 fortnight")),
    ("scoreThreshold", lambda s: s["detection"]["model"].update(scoreThreshold=1.5)),
    ("spec.detection.rules", lambda s: disable_all_detection(s)),
    ("memory", lambda s: s["spark"]["executor"].update(memory="2GB")),
    ("sparkConf", lambda s: s["spark"].update(sparkConf={"driver.memory": "1g"})),
    ("fraudRate", lambda s: s["simulator"].update(fraudRate=2)),
    ("scenarios", lambda s: s["simulator"].update(scenarios=["bank_heist"])),
    ("sources", lambda s: s["simulator"].update(sources=[])),
    ("url", lambda s: s["sinks"]["elasticsearch"].update(url="fraud-es:9200")),
    ("mode", lambda s: s["monitoring"]["grafana"].update(mode="grafana-cloud")),
    ("instanceSelector", lambda s: s["monitoring"]["grafana"].update(mode="operator")),
]


def disable_all_detection(spec: dict) -> None:
    for rule in spec["detection"]["rules"].values():
        rule["enabled"] = False
    spec["detection"]["model"]["enabled"] = False


@pytest.mark.parametrize(("field", "break_it"), INVALID, ids=[f for f, _ in INVALID])
def test_invalid_pipelines_are_rejected_naming_the_field(api, crd, namespace, field, break_it):
    body = copy.deepcopy(EXAMPLE)
    body["metadata"] = {"name": "broken", "namespace": namespace}
    break_it(body["spec"])
    with pytest.raises(ApiException) as rejected:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "fraudpipelines", body
        )
    assert rejected.value.status == 422
    assert field in rejected.value.body, rejected.value.body


def test_partitions_cannot_shrink_state_buckets_cannot_change_long_names_are_rejected(cluster, crd):
    cluster.create_pipeline()
    with pytest.raises(ApiException) as shrink:
        cluster.patch_spec({"kafka": {"topics": {"transactions": {"partitions": 2}}}})
    assert shrink.value.status == 422 and "partitions cannot be decreased" in shrink.value.body
    with pytest.raises(ApiException) as buckets:
        cluster.patch_spec({"detection": {"stateBuckets": 512}})
    assert buckets.value.status == 422 and "stateBuckets cannot change" in buckets.value.body
    cluster.patch_spec({"detection": {"triggerInterval": "2 seconds"}})  # other fields can
    cluster.patch_spec({"detection": {"triggerInterval": "500 milliseconds"}})  # as recommended
    with pytest.raises(ApiException) as long_name:
        cluster.create_pipeline(name="a" * 41)
    assert long_name.value.status == 422 and "metadata.name" in long_name.value.body


def test_prometheus_rule_is_valid_for_promtool(cluster, operator, tmp_path):
    cluster.prerequisites()
    cluster.create_pipeline()
    rule = wait_for(
        lambda: cluster.children().get(("PrometheusRule", "payments")), "the PrometheusRule"
    )
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = promtool("check", "rules", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = {r["alert"] for r in rule["spec"]["groups"][0]["rules"]}
    assert alerts == {"FraudDetectorDown", "FraudDetectorConsumerLag", "FraudDetectorDeadLetters"}


def test_the_documented_examples_are_accepted(api, crd, namespace):
    contract = (ROOT / "docs" / "contracts.md").read_text()
    documented = contract.split("```yaml\napiVersion: fraudpipeline.dev/v1alpha1", 1)[1]
    documented = "apiVersion: fraudpipeline.dev/v1alpha1" + documented.split("```", 1)[0]
    for body in (yaml.safe_load(documented), copy.deepcopy(EXAMPLE)):
        body["metadata"]["namespace"] = namespace
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "fraudpipelines", body
        )
        assert created["spec"]["detection"]["rules"]["velocity"]["windowMinutes"] == 10
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "fraudpipelines", body["metadata"]["name"]
        )
