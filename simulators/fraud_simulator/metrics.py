"""Prometheus metrics of a simulator run (served on metrics.port)."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from fraud_events import KINDS, SCENARIOS


class Metrics:
    """Counters and gauges on a registry of their own (several runs can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "fraudsim_events",
            "Events handed to the output, by kind and scenario (none = legitimate).",
            ["kind", "scenario"],
            registry=self.registry,
        )
        self.delivery_errors = Counter(
            "fraudsim_delivery_errors",
            "Messages the broker did not accept in time (lost), by topic and error.",
            ["topic", "error"],
            registry=self.registry,
        )
        self.backpressure = Counter(
            "fraudsim_backpressure_waits",
            "Times the producer queue was full and the simulator waited for the broker.",
            registry=self.registry,
        )
        self.queued = Gauge(
            "fraudsim_producer_queue_messages",
            "Messages waiting in the producer for delivery.",
            registry=self.registry,
        )
        self.event_time = Gauge(
            "fraudsim_event_time_seconds",
            "Event time of the last event handed to the output (Unix seconds).",
            registry=self.registry,
        )
        self.target_rate = Gauge(
            "fraudsim_target_transactions_per_second",
            "Transactions per second the live clock aims at (0 when fast-forwarding).",
            registry=self.registry,
        )

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve /metrics on `address`:`port` in a background thread."""
        start_http_server(port, addr=address, registry=self.registry)

    def count(self, kind: np.ndarray, scenario: np.ndarray) -> None:
        """Add one batch slice's events to the counters."""
        if not len(kind):
            return
        pairs, counts = np.unique(
            kind.astype(np.int32) * 1000 + scenario.astype(np.int32) + 1, return_counts=True
        )
        for pair, number in zip(pairs.tolist(), counts.tolist(), strict=True):
            code = pair % 1000 - 1
            label = "none" if code < 0 else SCENARIOS[code]
            self.events.labels(KINDS[pair // 1000], label).inc(number)
