"""Build or download every test-bed component into the cache folder (`make deps`).

Each step records a stamp of its inputs (versions, go.mod, pom.xml); a second run whose inputs
are unchanged skips the step, so a warm run takes seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fraud_testbed.paths import (
    BIN_DIR,
    CACHE_DIR,
    DEPS_DIR,
    ELASTICSEARCH_HOME,
    ELASTICSEARCH_USER,
    KAFKA_LIBS,
    SPARK_JARS,
)

HELM_MODULE = "helm.sh/helm/v3/cmd/helm@v3.22.0"
KUBERNETES_VERSION = "v1.36.3"
STAMPS = CACHE_DIR / "stamps"
GO_ENV = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    inputs: tuple[str, ...]
    run: Callable[[], None]
    outputs: tuple[Path, ...]

    def stamp(self) -> str:
        digest = hashlib.sha256()
        for item in self.inputs:
            path = DEPS_DIR / item
            digest.update(path.read_bytes() if path.is_file() else item.encode())
        return digest.hexdigest()

    def is_current(self) -> bool:
        stamp_file = STAMPS / self.name
        return (
            stamp_file.exists()
            and stamp_file.read_text() == self.stamp()
            and all(path.exists() for path in self.outputs)
        )


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print("  $", " ".join(argv), flush=True)
    subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, check=True)


def build_kubernetes() -> None:
    """kube-apiserver, kube-controller-manager, kubectl and etcd from the Go module proxy."""
    version_flags = " ".join(
        f"-X k8s.io/{pkg}.{name}={value}"
        for pkg in ("component-base/version", "client-go/pkg/version")
        for name, value in (
            ("gitVersion", KUBERNETES_VERSION),
            ("gitMajor", KUBERNETES_VERSION.split(".")[0].lstrip("v")),
            ("gitMinor", KUBERNETES_VERSION.split(".")[1]),
            ("gitTreeState", "clean"),
        )
    )
    build = ["go", "build", "-trimpath", f"-ldflags=-s -w {version_flags}"]
    cwd = DEPS_DIR / "kubernetes"
    _run(
        [
            *build,
            "-o",
            f"{BIN_DIR}/",
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kubectl",
        ],
        cwd=cwd,
        env=GO_ENV,
    )
    _run([*build, "-o", str(BIN_DIR / "etcd"), "go.etcd.io/etcd/server/v3"], cwd=cwd, env=GO_ENV)


def install_helm() -> None:
    _run(
        ["go", "install", "-trimpath", "-ldflags=-s -w", HELM_MODULE],
        env={**GO_ENV, "GOBIN": str(BIN_DIR)},
    )


def _copy_maven_dependencies(pom_dir: str, output: Path) -> None:
    shutil.rmtree(output, ignore_errors=True)
    _run(
        [
            "mvn",
            "--batch-mode",
            "--no-transfer-progress",
            "--quiet",
            "-Dstyle.color=never",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={output}",
        ],
        cwd=DEPS_DIR / pom_dir,
    )


def install_kafka() -> None:
    _copy_maven_dependencies("kafka", KAFKA_LIBS)


def install_spark_connector() -> None:
    _copy_maven_dependencies("spark", SPARK_JARS)


def install_elasticsearch() -> None:
    downloads = CACHE_DIR / "downloads" / "elasticsearch"
    _copy_maven_dependencies("elasticsearch", downloads)
    (archive,) = downloads.glob("elasticsearch-*.zip")
    shutil.rmtree(ELASTICSEARCH_HOME, ignore_errors=True)
    unpack_to = ELASTICSEARCH_HOME.with_name("elasticsearch.unpacking")
    shutil.rmtree(unpack_to, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            target = Path(zipped.extract(info, unpack_to))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                target.chmod(mode & 0o777)
    (top,) = unpack_to.iterdir()
    for script in (top / "bin").iterdir():
        script.chmod(0o755)
    top.rename(ELASTICSEARCH_HOME)
    unpack_to.rmdir()
    if os.geteuid() == 0:
        _ensure_user(ELASTICSEARCH_USER)


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        _run(["useradd", "--system", "--create-home", "--shell", "/usr/sbin/nologin", name])


def install_prometheus() -> None:
    """prometheus and promtool from Debian's package (needs root, or both already on PATH)."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    if os.geteuid() != 0:
        raise SystemExit(
            "prometheus and promtool are missing: as root run "
            "`apt-get update && apt-get install -y --no-install-recommends prometheus`"
        )
    apt_env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], env=apt_env)
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"], env=apt_env)
    # The package starts its own daemon where an init system runs; the test bed runs its own.
    subprocess.run(["service", "prometheus", "stop"], capture_output=True, check=False)


STEPS = (
    Step(
        "kubernetes",
        f"kube-apiserver, kube-controller-manager, kubectl, etcd {KUBERNETES_VERSION} (go build)",
        ("kubernetes/go.mod", "kubernetes/go.sum", KUBERNETES_VERSION),
        build_kubernetes,
        tuple(
            BIN_DIR / b for b in ("kube-apiserver", "kube-controller-manager", "kubectl", "etcd")
        ),
    ),
    Step("helm", f"helm ({HELM_MODULE})", (HELM_MODULE,), install_helm, (BIN_DIR / "helm",)),
    Step(
        "kafka",
        "Apache Kafka broker jars (Maven)",
        ("kafka/pom.xml",),
        install_kafka,
        (KAFKA_LIBS,),
    ),
    Step(
        "spark-connector",
        "spark-sql-kafka connector jars (Maven)",
        ("spark/pom.xml",),
        install_spark_connector,
        (SPARK_JARS,),
    ),
    Step(
        "elasticsearch",
        "Elasticsearch server (Maven integ-test-zip)",
        ("elasticsearch/pom.xml",),
        install_elasticsearch,
        (ELASTICSEARCH_HOME / "bin" / "elasticsearch",),
    ),
    Step("prometheus", "prometheus and promtool (Debian)", ("prometheus",), install_prometheus, ()),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="redo every step")
    parser.add_argument("steps", nargs="*", help="only these steps (default: all)")
    args = parser.parse_args(argv)
    chosen = [s for s in STEPS if not args.steps or s.name in args.steps]
    STAMPS.mkdir(parents=True, exist_ok=True)
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for number, step in enumerate(chosen, 1):
        prefix = f"[{number}/{len(chosen)}] {step.what}"
        if step.is_current() and not args.force:
            print(f"{prefix}: cached", flush=True)
            continue
        print(f"{prefix}: installing ...", flush=True)
        step_started = time.monotonic()
        try:
            step.run()
        except subprocess.CalledProcessError as error:
            print(f"{prefix}: FAILED ({error})", file=sys.stderr)
            return 1
        (STAMPS / step.name).write_text(step.stamp())
        print(f"{prefix}: done in {time.monotonic() - step_started:.0f} s", flush=True)
    print(f"test bed ready in {CACHE_DIR} ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
