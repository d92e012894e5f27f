"""Run a simulation into an output with a clock: live (rate-limited) or fast-forward."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from fraud_simulator.engine import TRANSACTION, Batch, simulate
from fraud_simulator.metrics import Metrics
from fraud_simulator.settings import Settings

log = logging.getLogger(__name__)
FAST_SLICE_EVENTS = 50_000
PROGRESS_EVERY_S = 5.0


@dataclass
class Summary:
    events: int = 0
    transactions: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def slices(batch: Batch, live_rate: float | None) -> list[tuple[int, int]]:
    """Index ranges of a batch: ~1/20 s of transactions when live, else fixed-size chunks."""
    if live_rate is None:
        return [
            (lo, min(lo + FAST_SLICE_EVENTS, len(batch)))
            for lo in range(0, len(batch), FAST_SLICE_EVENTS)
        ]
    per_slice = max(1, int(live_rate / 20))
    cumulative = np.cumsum(batch.kind == TRANSACTION)
    cuts = np.searchsorted(cumulative, np.arange(per_slice, cumulative[-1], per_slice), "right")
    edges = [0, *np.unique(cuts).tolist(), len(batch)]
    return [(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]


def pace(started: float, transactions_so_far: int, rate: float, should_stop) -> None:
    """Sleep until `transactions_so_far` transactions are due at `rate` per second."""
    due = started + transactions_so_far / rate
    while not should_stop() and (wait := due - time.monotonic()) > 0:
        time.sleep(min(wait, 0.5))


def run(
    settings: Settings,
    output,
    metrics: Metrics,
    start: datetime,
    duration: timedelta | None,
    live: bool,
    stop: threading.Event,
    max_events: int | None = None,
) -> Summary:
    """Hand events to `output` until the duration, `max_events` or `stop`; then close it."""
    rate = settings.rate_per_second if live else None
    metrics.target_rate.set(rate or 0)
    summary, began = Summary(), time.monotonic()
    next_report = began + PROGRESS_EVERY_S
    end_s = (start + duration).timestamp() if duration is not None else None
    try:
        for batch in simulate(settings, start, duration):
            for lo, hi in slices(batch, rate):
                if stop.is_set() or (max_events is not None and summary.events >= max_events):
                    summary.stopped_early = True
                    return summary
                if max_events is not None:
                    hi = min(hi, lo + max_events - summary.events)
                part = batch.slice(lo, hi)
                output.write(part)
                metrics.count(part.kind, part.scenario)
                metrics.event_time.set(part.time_ms[-1] / 1000)
                summary.events += len(part)
                summary.transactions += int((part.kind == TRANSACTION).sum())
                if rate is not None:
                    pace(began, summary.transactions, rate, stop.is_set)
                if time.monotonic() >= next_report:
                    next_report += PROGRESS_EVERY_S
                    _report(summary, began, part.time_ms[-1] / 1000, start.timestamp(), end_s)
        return summary
    finally:
        summary.seconds = time.monotonic() - began
        output.close()
        log.info(
            "done: %d events (%d transactions) in %.1f s",
            summary.events,
            summary.transactions,
            summary.seconds,
        )


def _report(summary: Summary, began: float, now_s: float, start_s: float, end_s) -> None:
    elapsed = time.monotonic() - began
    done = f" ({100 * (now_s - start_s) / (end_s - start_s):.0f}%)" if end_s else ""
    log.info(
        "event time %s%s: %d events, %d transactions, %.0f transactions/s",
        datetime.fromtimestamp(now_s).astimezone().isoformat(timespec="seconds"),
        done,
        summary.events,
        summary.transactions,
        summary.transactions / max(elapsed, 1e-9),
    )
