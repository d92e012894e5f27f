"""A Prometheus server scraping targets that tests add at run time (file-based discovery)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fraud_testbed.process import ComponentError, ManagedProcess, free_port

READY_TIMEOUT = 60
SCRAPE_INTERVAL = "1s"


def executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ComponentError(f"{name} is not on PATH: run `make deps` (Debian package prometheus)")
    return path


@dataclass
class PrometheusServer:
    url: str
    workdir: Path
    process: ManagedProcess
    targets: dict[str, list[dict]] = field(default_factory=dict)

    def add_target(self, job: str, address: str, labels: dict[str, str] | None = None) -> None:
        """Scrape `address` (host:port) under `job` from now on."""
        self.targets.setdefault(job, []).append(
            {"targets": [address], "labels": {"job": job, **(labels or {})}}
        )
        groups = [group for job_groups in self.targets.values() for group in job_groups]
        staging = self.workdir / "targets.json.tmp"
        staging.write_text(json.dumps(groups))
        staging.replace(self.workdir / "targets.json")

    def query(self, promql: str) -> list[dict]:
        """The result vector of an instant query."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        if body["status"] != "success":
            raise ComponentError(f"query {promql!r} failed: {body}")
        return body["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 30) -> list[dict]:
        """Poll an instant query until it returns at least one series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise ComponentError(f"{promql!r} returned no series within {timeout:.0f} s")
            time.sleep(0.5)


def promtool(*args: str) -> subprocess.CompletedProcess:
    """Run promtool; the caller reads returncode, stdout and stderr."""
    return subprocess.run(
        [executable("promtool"), *args], capture_output=True, text=True, timeout=60
    )


@contextlib.contextmanager
def run_prometheus(workdir: Path, rule_files: list[Path] = ()) -> Iterator[PrometheusServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "targets.json").write_text("[]")
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "testbed",
                "file_sd_configs": [
                    {"files": [str(workdir / "targets.json")], "refresh_interval": "1s"}
                ],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = ManagedProcess(
        "prometheus",
        [
            executable("prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        workdir / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(
            lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200,
            "ready",
            READY_TIMEOUT,
        )
        yield PrometheusServer(url, workdir, server)
    finally:
        server.stop()
