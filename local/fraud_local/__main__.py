"""python -m fraud_local run MANIFEST [--duration 2m] [--report-dir DIR] [--with-elasticsearch]
[--with-prometheus] [--kafka HOST:PORT] [--rate N]; python -m fraud_local validate MANIFEST"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rich.console import Console

from fraud_local.manifest import ManifestError, load_pipeline


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '10m' or '1h'."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a positive number with s, m or h (2m)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fraud_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a manifest as the API server would")
    validate.add_argument("manifest", type=Path)
    run = commands.add_parser("run", help="run the pipeline of a manifest on this machine")
    run.add_argument("manifest", type=Path, help="a FraudPipeline manifest")
    run.add_argument("--duration", type=parse_duration, default=120.0, help="run time (2m)")
    run.add_argument(
        "--report-dir", type=Path, default=Path("fraudpipeline-report"), help="report folder"
    )
    run.add_argument("--with-elasticsearch", action="store_true", help="alerts and KPIs to ES")
    run.add_argument("--with-prometheus", action="store_true", help="scrape job and simulator")
    run.add_argument("--kafka", help="use this broker (host:port) instead of starting one")
    run.add_argument("--rate", type=float, help="override spec.simulator.ratePerSecond")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    console = Console()
    try:
        pipeline = load_pipeline(args.manifest)
    except ManifestError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
    if args.command == "validate":
        console.print(
            f"{args.manifest}: a valid FraudPipeline {pipeline.namespace}/{pipeline.name}"
        )
        return 0
    from fraud_local.run import Options, run  # Spark, Kafka and matplotlib only when running

    options = Options(
        args.duration,
        args.report_dir,
        args.with_elasticsearch,
        args.with_prometheus,
        args.kafka,
        args.rate,
    )
    return run(pipeline, options, console)


if __name__ == "__main__":
    sys.exit(main())
