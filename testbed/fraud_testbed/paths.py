"""Where the test bed keeps its downloads and builds, and where it finds the upstream CRDs."""

from __future__ import annotations

import os
from pathlib import Path

from fraud_testbed.process import ComponentError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPS_DIR = REPO_ROOT / "deps"
CACHE_DIR = Path(os.environ.get("FRAUDPIPELINE_CACHE_DIR", REPO_ROOT / ".cache"))
BIN_DIR = CACHE_DIR / "bin"
KAFKA_LIBS = CACHE_DIR / "kafka" / "libs"
SPARK_JARS = CACHE_DIR / "spark-jars"
ELASTICSEARCH_HOME = CACHE_DIR / "elasticsearch"
THIRD_PARTY_CRDS = Path(
    os.environ.get("FRAUDPIPELINE_THIRD_PARTY_CRDS", REPO_ROOT.parent / "shared/third_party/crds")
)
# Elasticsearch refuses to run as root; when the tests run as root it runs as this user.
ELASTICSEARCH_USER = "fraudpipeline-es"


def binary(name: str) -> Path:
    """A binary built by `make deps`, or a clear error saying how to get it."""
    path = BIN_DIR / name
    if not path.exists():
        raise ComponentError(f"{path} is missing: run `make deps` to build the test bed")
    return path


def java() -> str:
    """The java launcher: $JAVA_HOME/bin/java if set, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    return str(Path(java_home) / "bin" / "java") if java_home else "java"
