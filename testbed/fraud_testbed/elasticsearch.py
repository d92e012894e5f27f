"""A single-node Elasticsearch 8 with security on (basic auth over HTTP), run as a non-root user."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from elasticsearch import Elasticsearch

from fraud_testbed.paths import ELASTICSEARCH_HOME, ELASTICSEARCH_USER
from fraud_testbed.process import ComponentError, ManagedProcess, free_port, run_once

READY_TIMEOUT = 180
HEAP = "-Xms512m -Xmx512m"


@dataclass(frozen=True)
class ElasticsearchNode:
    url: str
    username: str
    password: str
    workdir: Path
    process: ManagedProcess

    def client(self) -> Elasticsearch:
        return Elasticsearch(
            self.url, basic_auth=(self.username, self.password), request_timeout=30
        )


def _run_as() -> str | None:
    """Elasticsearch refuses root: as root, run it as the user `make deps` created."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(ELASTICSEARCH_USER)
    except KeyError as missing:
        raise ComponentError(f"user {ELASTICSEARCH_USER} is missing: run `make deps`") from missing
    return ELASTICSEARCH_USER


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _java_home() -> str:
    if "JAVA_HOME" in os.environ:
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java is None:
        raise ComponentError("no java on PATH and JAVA_HOME unset: Elasticsearch needs Java 17+")
    return str(Path(java).resolve().parent.parent)


@contextlib.contextmanager
def run_elasticsearch(parent: Path | None = None) -> Iterator[ElasticsearchNode]:
    """Run a fresh node in its own folder (readable by the non-root user) until the block exits."""
    if not (ELASTICSEARCH_HOME / "bin" / "elasticsearch").exists():
        raise ComponentError(f"Elasticsearch is missing in {ELASTICSEARCH_HOME}: run `make deps`")
    user = _run_as()
    # pytest's own temporary folders are private to root, so use a folder of our own.
    workdir = Path(tempfile.mkdtemp(prefix="fraudpipeline-es-", dir=parent))
    workdir.chmod(0o755)
    config = workdir / "config"
    shutil.copytree(ELASTICSEARCH_HOME / "config", config)
    http_port, transport_port = free_port(), free_port()
    settings = {
        "cluster.name": "fraudpipeline-testbed",
        "node.name": "testbed",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": http_port,
        "transport.port": transport_port,
        "path.data": str(workdir / "data"),
        "path.logs": str(workdir / "logs"),
        "xpack.security.enabled": "true",
        "xpack.security.http.ssl.enabled": "false",
        "xpack.security.transport.ssl.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.destructive_requires_name": "false",
    }
    (config / "elasticsearch.yml").write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
    (workdir / "tmp").mkdir()
    password = secrets.token_urlsafe(18)
    env = {
        **os.environ,
        "ES_PATH_CONF": str(config),
        "ES_JAVA_HOME": _java_home(),
        "ES_JAVA_OPTS": HEAP,
        "ES_TMPDIR": str(workdir / "tmp"),
    }
    if user:
        _chown_tree(workdir, user)
    keystore = [str(ELASTICSEARCH_HOME / "bin" / "elasticsearch-keystore")]
    for args, stdin in ((["create"], None), (["add", "-x", "bootstrap.password"], password)):
        run_once(
            f"elasticsearch-keystore {args[0]}", keystore + args, input=stdin, env=env, user=user
        )
    node = ManagedProcess(
        "elasticsearch",
        [ELASTICSEARCH_HOME / "bin" / "elasticsearch"],
        workdir / "elasticsearch.log",
        env=env,
        user=user,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        running = ElasticsearchNode(url, "elastic", password, workdir, node)
        client = running.client()
        node.wait_until(
            lambda: (
                client.cluster.health(wait_for_status="yellow", timeout="1s")["status"]
                in ("yellow", "green")
            ),
            "serving with the cluster health yellow or green",
            READY_TIMEOUT,
        )
        yield running
    finally:
        node.stop()
        shutil.rmtree(workdir, ignore_errors=True)
