"""The local run checks a manifest like the API server: schema, defaults and CEL rules."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fraud_local.manifest import CEL_EQUIVALENTS, crd_schema, load_pipeline, problems

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraudpipeline.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _rules(schema: dict):
    yield from (v["rule"] for v in schema.get("x-kubernetes-validations", []))
    for child in schema.get("properties", {}).values():
        yield from _rules(child)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _rules(schema["additionalProperties"])


def test_every_cel_rule_of_the_crd_has_a_python_equivalent():
    assert set(_rules(crd_schema())) == set(CEL_EQUIVALENTS)


def test_the_example_is_valid_and_gets_the_defaults():
    assert problems(example()) == []
    pipeline = load_pipeline(EXAMPLE)
    assert (pipeline.name, pipeline.namespace) == ("payments", "fraud")
    assert pipeline.spec["simulator"]["seed"] == 42


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["spec"]["simulator"].update(fraudRate=2), "spec.simulator.fraudRate: 2 is"),
        (lambda d: d["spec"].update(simulatr={}), "spec.simulatr: unknown field"),
        (
            lambda d: d["spec"]["detection"].update(triggerInterval="soon"),
            "spec.detection.triggerInterval: 'soon' does not match",
        ),
        (
            lambda d: d["spec"]["detection"]["rules"]["cardTesting"].update(smallAmountMax=500),
            "spec.detection.rules.cardTesting.smallAmountMax: smallAmountMax must be less",
        ),
        (
            lambda d: d["spec"]["detection"]["model"].update(uri=""),
            "spec.detection.model.uri: uri is required when the model is enabled",
        ),
        (
            lambda d: d["spec"]["spark"].update(sparkConf={"executor.cores": "2"}),
            "spec.spark.sparkConf: sparkConf keys must start with 'spark.'",
        ),
        (
            lambda d: d["spec"]["monitoring"]["grafana"].update(mode="operator"),
            "spec.monitoring.grafana.instanceSelector: instanceSelector is required",
        ),
        (lambda d: d["metadata"].update(name="x" * 41), "metadata.name: metadata.name must be"),
        (lambda d: d.update(kind="Pipeline"), "kind: expected 'FraudPipeline'"),
    ],
)
def test_a_bad_field_is_named(change, expected):
    document = copy.deepcopy(example())
    change(document)
    found = problems(document)
    assert any(problem.startswith(expected) for problem in found), found


def test_the_cli_fails_fast_on_a_bad_manifest_before_starting_anything(tmp_path):
    document = example()
    document["spec"]["simulator"]["ratePerSecond"] = -5
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(document))
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fraud_local", "run", str(manifest), "--report-dir", tmp_path / "r"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "spec.simulator.ratePerSecond" in done.stdout, done.stdout + done.stderr
    assert time.monotonic() - began < 20
    assert not (tmp_path / "r").exists()
