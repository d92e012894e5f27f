"""python -m fraud_simulator --config simulator.yaml [--output kafka|DIR] [--clock live|fast]"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fraud_simulator.metrics import Metrics
from fraud_simulator.outputs import DeliveryFailed, FileOutput, KafkaOutput
from fraud_simulator.runner import run
from fraud_simulator.settings import ConfigError, load_config

log = logging.getLogger("fraud_simulator")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, where: str = "--duration") -> timedelta:
    """'90s', '15m', '2h', '7d' or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match[1]) <= 0:
        raise ConfigError(
            f"{where}: expected a positive duration like 90s, 15m, 2h or 7d, got {text!r}"
        )
    return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])


def parse_start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start: expected an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m fraud_simulator", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=env("FRAUDSIM_CONFIG"),
        help="simulator.yaml (FRAUDSIM_* variables override its simulator block)",
    )
    parser.add_argument(
        "--output",
        default=env("FRAUDSIM_OUTPUT", "kafka"),
        help="'kafka' (default) or a directory for files",
    )
    parser.add_argument(
        "--format",
        default=env("FRAUDSIM_FORMAT", "jsonl"),
        choices=("jsonl", "parquet"),
        help="file format with a directory output",
    )
    parser.add_argument(
        "--clock",
        default=env("FRAUDSIM_CLOCK"),
        choices=("live", "fast"),
        help="live: ratePerSecond transactions a second (default for kafka); "
        "fast: as fast as possible (default for files)",
    )
    parser.add_argument(
        "--start", default=env("FRAUDSIM_START"), help="first event time, ISO 8601 (default: now)"
    )
    parser.add_argument(
        "--duration",
        default=env("FRAUDSIM_DURATION"),
        help="event time to simulate: 90s, 15m, 2h, 7d (default: forever when live, 1d when fast)",
    )
    parser.add_argument(
        "--max-events",
        type=int,
        default=env("FRAUDSIM_MAX_EVENTS"),
        help="stop after this many events",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = arguments(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        config = load_config(args.config)
        live = (args.clock or ("live" if args.output == "kafka" else "fast")) == "live"
        start = parse_start(args.start) if args.start else datetime.now(UTC)
        duration = (
            parse_duration(args.duration)
            if args.duration
            else (None if live else timedelta(days=1))
        )
        if args.max_events is not None and int(args.max_events) < 1:
            raise ConfigError(f"--max-events: must be at least 1, got {args.max_events}")
        metrics = Metrics()
        if config.metrics_port is not None:
            metrics.serve(config.metrics_port, env("FRAUDSIM_METRICS_ADDRESS", "0.0.0.0"))
        if args.output == "kafka":
            output = KafkaOutput(config.bootstrap_servers, config.topics, metrics)
        else:
            output = FileOutput(Path(args.output), args.format)
    except ConfigError as error:
        log.error("bad configuration: %s", error)
        return 2
    target = "kafka " + config.bootstrap_servers if args.output == "kafka" else args.output
    clock = "live" if live else "fast-forward"
    sources = ", ".join(config.settings.sources)
    log.info(
        "simulating %s from %s for %s, %s clock, into %s",
        sources,
        start.isoformat(),
        duration or "ever",
        clock,
        target,
    )
    try:
        run(
            config.settings,
            output,
            metrics,
            start,
            duration,
            live,
            stop,
            int(args.max_events) if args.max_events is not None else None,
        )
    except DeliveryFailed as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
