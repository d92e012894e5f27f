"""Start the pipeline of a manifest on this machine, show it live, stop everything, report."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from fraud_local.manifest import Pipeline
from fraud_local.report import write_report
from fraud_local.tally import TopicReader, percentile
from fraud_operator.config import (
    active_topics,
    render_job_config,
    render_simulator_config,
    topic_name,
)
from fraud_testbed.elasticsearch import run_elasticsearch
from fraud_testbed.kafka import run_kafka
from fraud_testbed.process import ComponentError, ManagedProcess, free_port
from fraud_testbed.prometheus import run_prometheus
from fraud_testbed.spark import local_conf

REPO = Path(__file__).resolve().parents[2]  # the layout of /opt/fraudpipeline in the images
IMAGE_ROOT = "local:///opt/fraudpipeline/"
JOB_START_TIMEOUT = 240
DRAIN_TIMEOUT = 45


class Stopped(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


@dataclass
class Options:
    duration: float
    report_dir: Path
    with_elasticsearch: bool = False
    with_prometheus: bool = False
    kafka: str | None = None  # an existing broker instead of starting one
    rate: float | None = None  # override of spec.simulator.ratePerSecond


@dataclass
class View:
    """What the live view shows; rendered by rich on every refresh."""

    pipeline: str
    stages: dict[str, list] = field(default_factory=dict)  # name -> [state, started, seconds]
    reader: TopicReader | None = None
    running_since: float | None = None
    deadline: float | None = None
    rates: deque = field(default_factory=lambda: deque(maxlen=12))
    measures: Table | None = None

    def stage(self, name: str, state: str) -> None:
        entry = self.stages.setdefault(name, [state, time.monotonic(), None])
        entry[0] = state
        if state in ("stopping", "catching up"):
            entry[1:] = [time.monotonic(), None]
        if state in ("ready", "stopped"):
            entry[2] = time.monotonic() - entry[1]

    def sample(self) -> None:
        """Measure in the main thread; rich's refresh thread only shows the last table."""
        self.rates.append((time.monotonic(), len(self.reader.tally.transactions)))
        self.measures = self._measures()

    def __rich__(self) -> Group:
        stages = Table(title=f"FraudPipeline {self.pipeline}: local run", title_justify="left")
        for column in ("component", "state", "seconds"):
            stages.add_column(column)
        for name, (state, started, seconds) in list(self.stages.items()):
            shown = seconds if seconds is not None else time.monotonic() - started
            stages.add_row(name, state, f"{shown:.0f}")
        return Group(stages, *([self.measures] if self.measures else []))

    def _measures(self) -> Table:
        tally = self.reader.tally
        now = time.monotonic()
        rate = 0.0
        if len(self.rates) > 1 and self.rates[-1][0] > self.rates[0][0]:
            rate = (self.rates[-1][1] - self.rates[0][1]) / (self.rates[-1][0] - self.rates[0][0])
        table = Table(show_header=False)
        table.add_column(style="bold")
        table.add_column()
        left = f", {max(0, self.deadline - now):.0f} s left" if self.deadline else ""
        table.add_row("running", f"{now - self.running_since:.0f} s{left} (Ctrl-C stops)")
        table.add_row(
            "transactions",
            f"{len(tally.transactions)} ({rate:.0f}/s), {len(tally.fraud)} fraudulent",
        )
        precision = tally.precision()
        for rule, count in sorted(tally.alerts_by_rule().items()):
            hit, total = precision[rule]
            table.add_row(f"alerts {rule}", f"{count} (precision {hit / total:.2f})")
        for name, after_start_up in (("latency p50 / p99", False), ("  after start-up", True)):
            latencies = tally.latencies(after_start_up)
            if latencies:
                p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
                table.add_row(name, f"{p50:.1f} s / {p99:.1f} s")
        for scenario, (hit, total) in tally.recall().items():
            table.add_row(f"recall {scenario}", f"{hit}/{total}")
        return table


def _detection_rows(url: str) -> float:
    """Kafka records the detection query has read (its finished micro-batches)."""
    with urllib.request.urlopen(url, timeout=3) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, query = sample.name, sample.labels.get("query")
            if name == "fraud_detection_input_rows_total" and query == "detection":
                return sample.value
    return 0.0


def localise(pipeline: Pipeline, workdir: Path, bootstrap: str, es_url: str | None) -> tuple:
    """job.yaml and simulator.yaml as the operator renders them, pointed at local services."""
    job = render_job_config(pipeline.name, pipeline.namespace, pipeline.spec)
    simulator = render_simulator_config(pipeline.name, pipeline.namespace, pipeline.spec)
    job["kafka"]["bootstrapServers"] = simulator["kafka"]["bootstrapServers"] = bootstrap
    job["checkpointLocation"] = str(workdir / "checkpoints" / pipeline.namespace / pipeline.name)
    job["metrics"]["port"] = free_port()
    simulator["metrics"]["port"] = free_port()
    model = job["detection"]["model"]
    if model["uri"].startswith(IMAGE_ROOT):
        model["uri"] = "local://" + str(REPO / model["uri"].removeprefix(IMAGE_ROOT))
    if es_url:
        prefix = job.get("elasticsearch", {}).get("indexPrefix", "fraud")
        job["elasticsearch"] = {"url": es_url, "indexPrefix": prefix}
    else:
        job.pop("elasticsearch", None)
    return job, simulator


def create_topics(admin: AdminClient, pipeline: Pipeline) -> list[str]:
    """The topics the spec asks for (replicas capped at the one local broker)."""
    wanted = []
    for key in active_topics(pipeline.spec):
        topic = pipeline.spec["kafka"]["topics"][key]
        wanted.append(
            NewTopic(
                topic_name(pipeline.name, key),
                topic["partitions"],
                1,
                config=dict(topic.get("config") or {}),
            )
        )
    existing = set(admin.list_topics(timeout=10).topics)
    clash = [t.topic for t in wanted if t.topic in existing]
    if clash:
        raise ComponentError(
            f"topics {clash} already exist on the broker: delete them or rename the pipeline"
        )
    for future in admin.create_topics(wanted, operation_timeout=30).values():
        future.result(timeout=60)
    return [t.topic for t in wanted]


def _spark_submit(workdir: Path, job_yaml: Path) -> list[str]:
    argv = [str(Path(sys.executable).parent / "spark-submit")]
    for key, value in local_conf(workdir / "spark").items():
        argv += ["--conf", f"{key}={value}"]
    return [
        *argv,
        str(REPO / "jobs" / "run_detection.py"),
        "--config",
        str(job_yaml),
        "--metrics-address",
        "127.0.0.1",
    ]


def _model_quality(job: dict) -> dict | None:
    uri = job["detection"]["model"]["uri"]
    metadata = Path(uri.removeprefix("local://").removeprefix("file://")) / "metadata.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(metadata.read_text()).get("quality")
    return None


def _raise_stopped(*_) -> None:
    raise Stopped


def run(pipeline: Pipeline, options: Options, console: Console) -> int:
    """The whole run; 0 when the report was written."""
    workdir = Path(tempfile.mkdtemp(prefix="fraudpipeline-local-"))
    view = View(pipeline.name)
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        with Live(view, console=console, refresh_per_second=2), contextlib.ExitStack() as stack:
            return _run(pipeline, options, console, view, workdir, stack)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(workdir, ignore_errors=True)


def _start(view: View, name: str, stack: contextlib.ExitStack, context):
    view.stage(name, "starting")
    running = stack.enter_context(context)
    view.stage(name, "ready")
    return running


def _wait_for_group(pgid: int, timeout: float = 10) -> None:
    """Wait until every member of a process group killed with SIGKILL is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _process(view: View, stack: contextlib.ExitStack, process: ManagedProcess) -> ManagedProcess:
    def stop() -> None:
        view.stage(process.name, "stopping")
        process.stop()
        _wait_for_group(process.pid)
        view.stage(process.name, "stopped")

    stack.callback(stop)
    return process


def _run(pipeline, options, console, view, workdir, stack) -> int:
    interrupted = False
    simulator = job_process = None
    try:
        if options.kafka:
            bootstrap = options.kafka
            view.stage("kafka", f"using {bootstrap}")
        else:
            bootstrap = _start(view, "kafka", stack, run_kafka(workdir / "kafka")).bootstrap_servers
        view.stage("topics", "creating")
        topics = create_topics(AdminClient({"bootstrap.servers": bootstrap}), pipeline)
        view.stage("topics", "ready")
        console.print(f"topics: {', '.join(topics)}")
        env = {
            **os.environ,
            "TOKENIZATION_KEY": os.environ.get("TOKENIZATION_KEY") or secrets.token_hex(16),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "FRAUDSIM_METRICS_ADDRESS": "127.0.0.1",
        }
        es_url = None
        if options.with_elasticsearch:
            node = _start(view, "elasticsearch", stack, run_elasticsearch())
            es_url = node.url
            console.print(f"Elasticsearch: {node.url}")
            env |= {"ES_USERNAME": node.username, "ES_PASSWORD": node.password}
        job, sim = localise(pipeline, workdir, bootstrap, es_url)
        if options.rate:
            env["FRAUDSIM_RATE_PER_SECOND"] = str(options.rate)
        for name, config in (("job.yaml", job), ("simulator.yaml", sim)):
            (workdir / name).write_text(yaml.safe_dump(config, sort_keys=False))
        metrics_url = f"http://127.0.0.1:{job['metrics']['port']}/metrics"
        if options.with_prometheus:
            prometheus = _start(view, "prometheus", stack, run_prometheus(workdir / "prometheus"))
            prometheus.add_target("fraud-detection", f"127.0.0.1:{job['metrics']['port']}")
            prometheus.add_target("fraud-simulator", f"127.0.0.1:{sim['metrics']['port']}")
            console.print(f"Prometheus: {prometheus.url}")
        view.stage("detection job", "starting Spark")
        job_log = workdir / "detection.log"
        job_process = _process(
            view,
            stack,
            ManagedProcess(
                "detection job", _spark_submit(workdir, workdir / "job.yaml"), job_log, env
            ),
        )
        job_process.wait_until(
            lambda: (
                "started" in job_log.read_text(errors="replace")
                and _detection_rows(metrics_url) >= 0
            ),
            "running its queries",
            JOB_START_TIMEOUT,
        )
        view.stage("detection job", "ready")
        reader = TopicReader(bootstrap, job["kafka"]["topics"])
        stack.callback(reader.close)
        reader.subscribe()
        view.reader = reader
        if not pipeline.spec["simulator"]["enabled"]:
            console.print("spec.simulator.enabled is false: the local run starts it anyway")
        simulator = _process(
            view,
            stack,
            ManagedProcess(
                "simulator",
                [sys.executable, "-m", "fraud_simulator", "--config", workdir / "simulator.yaml"],
                workdir / "simulator.log",
                env,
            ),
        )
        view.stage("simulator", "ready")
        view.running_since = time.monotonic()
        view.deadline = view.running_since + options.duration
        while time.monotonic() < view.deadline:
            reader.poll(0.5)
            view.sample()
            for process in (job_process, simulator):
                if process.popen.poll() is not None:
                    raise process.failure(f"exited with code {process.popen.returncode}")
    except (KeyboardInterrupt, Stopped):
        interrupted = True
        console.print("interrupted: stopping ...")
    except ComponentError as error:
        console.print(f"[red]error:[/red] {error}")
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # let the clean-up finish
            signal.signal(sig, signal.SIG_IGN)
    try:
        if simulator is None or job_process is None:
            return 130 if interrupted else 1
        simulator.stop()
        _wait_for_group(simulator.pid)
        view.stage("simulator", "stopped")
        _drain(view, metrics_url, job_process)
        job_process.stop()
        _wait_for_group(job_process.pid)
        view.stage("detection job", "stopped")
        return _report(bootstrap, job, pipeline, options, console)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_stopped)


def _drain(view: View, metrics_url: str, job_process: ManagedProcess) -> None:
    """Let the job finish reading the transactions topic (bounded by DRAIN_TIMEOUT)."""
    view.stage("detection job", "catching up")
    written = view.reader.end_offset("transactions")
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline and job_process.popen.poll() is None:
        view.reader.poll(0.5)
        view.sample()
        with contextlib.suppress(OSError, ValueError):
            if _detection_rows(metrics_url) >= written:
                return
    view.stage("detection job", f"stopped catching up after {DRAIN_TIMEOUT} s")


def _report(bootstrap, job, pipeline, options, console) -> int:
    reader = TopicReader(bootstrap, job["kafka"]["topics"])
    try:
        tally = reader.read_to_end()
    finally:
        reader.close()
    settings = {
        "pipeline": f"{pipeline.namespace}/{pipeline.name}",
        "ratePerSecond": options.rate or pipeline.spec["simulator"]["ratePerSecond"],
        "customers": pipeline.spec["simulator"]["customers"],
        "fraudRate": pipeline.spec["simulator"]["fraudRate"],
        "triggerInterval": pipeline.spec["detection"]["triggerInterval"],
    }
    path = write_report(tally, options.report_dir, settings, _model_quality(job))
    console.print(f"report: {path}")
    return 0
