"""Worker threads that drain the work queue, periodic resync, and the bookkeeping around them."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import start_http_server

from fraud_operator import metrics
from fraud_operator.grafana import DEFAULT_PROMETHEUS_URL
from fraud_operator.kubeapi import KubeApi, load_api_client
from fraud_operator.reconcile import Reconciler, load_grafana_content
from fraud_operator.schema import PHASES
from fraud_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name) of a FraudPipeline
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Settings:
    """Operator settings, from FRAUDPIPELINE_* environment variables."""

    workers: int = 8
    resync_seconds: float = 60.0
    metrics_address: str = "0.0.0.0"
    metrics_port: int = 8080
    grafana_dir: Path = Path(__file__).resolve().parents[2] / "grafana"
    prometheus_url: str = DEFAULT_PROMETHEUS_URL  # as Grafana reaches it

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        default = cls()

        def read(name: str, cast, fallback):
            raw = env.get(f"FRAUDPIPELINE_{name}")
            if raw in (None, ""):
                return fallback
            try:
                return cast(raw)
            except ValueError as error:
                raise ValueError(f"FRAUDPIPELINE_{name}={raw!r} is not valid: {error}") from None

        settings = cls(
            workers=read("WORKERS", int, default.workers),
            resync_seconds=read("RESYNC_SECONDS", float, default.resync_seconds),
            metrics_address=read("METRICS_ADDRESS", str, default.metrics_address),
            metrics_port=read("METRICS_PORT", int, default.metrics_port),
            grafana_dir=read("GRAFANA_DIR", Path, default.grafana_dir),
            prometheus_url=read("PROMETHEUS_URL", str, default.prometheus_url),
        )
        if settings.workers < 1 or settings.resync_seconds <= 0:
            raise ValueError("FRAUDPIPELINE_WORKERS and FRAUDPIPELINE_RESYNC_SECONDS must be > 0")
        return settings


class Controller:
    """Reconciles queued pipelines on worker threads; every known pipeline again each resync."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = WorkQueue()
        self.api = KubeApi(load_api_client(settings.workers))
        grafana = load_grafana_content(settings.grafana_dir, settings.prometheus_url)
        self.reconciler = Reconciler(self.api, grafana)
        self.known: dict[Key, str] = {}  # key -> uid
        self.phases: dict[Key, str] = {}
        self._failures: Counter[Key] = Counter()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port, self.settings.metrics_address)
        for number in range(self.settings.workers):
            self._spawn(self._work, f"reconcile-{number}")
        self._spawn(self._resync, "resync")
        log.info(
            "started %d workers, resync every %ss, %d dashboards",
            self.settings.workers,
            self.settings.resync_seconds,
            len(self.reconciler.grafana.dashboards),
        )

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.queue.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def seen(self, key: Key, uid: str, delay: float = 0.0) -> None:
        """A pipeline changed (or a child of it did): reconcile it."""
        self.known[key] = uid
        self.queue.add(key, delay)

    def child_changed(self, key: Key, delay: float) -> None:
        if key in self.known:
            self.queue.add(key, delay)

    def forget(self, key: Key) -> None:
        uid = self.known.pop(key, None)
        if uid:
            self.reconciler.forget(uid)
        self.phases.pop(key, None)
        self._update_phase_gauge()

    def _resync(self) -> None:
        while not self._stop.wait(self.settings.resync_seconds):
            for key in list(self.known):
                self.queue.add(key)

    def _work(self) -> None:
        while not self._stop.is_set():
            key = self.queue.get(timeout=1.0)
            metrics.QUEUE_DEPTH.set(len(self.queue))
            if key is None:
                continue
            try:
                self._reconcile(key)
            finally:
                self.queue.done(key)

    def _reconcile(self, key: Key) -> None:
        began = time.monotonic()
        try:
            phase = self.reconciler.reconcile(*key)
        except Exception:  # a bad pass must never stop the worker
            self._failures[key] += 1
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** self._failures[key])
            log.exception("reconcile of %s/%s failed, retrying in %.1fs", *key, delay)
            metrics.RECONCILES.labels("error").inc()
            metrics.RECONCILE_ERRORS.inc()
            self.queue.add(key, delay)
            return
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - began)
        self._failures.pop(key, None)
        metrics.RECONCILES.labels("ok").inc()
        if phase is None:
            self.forget(key)
        else:
            self.phases[key] = phase
            self._update_phase_gauge()

    def _update_phase_gauge(self) -> None:
        counts = Counter(self.phases.values())
        for phase in PHASES:
            metrics.PIPELINES.labels(phase).set(counts.get(phase, 0))
