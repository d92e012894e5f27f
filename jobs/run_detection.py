"""Entry point of the detection job: `spark-submit jobs/run_detection.py --config job.yaml`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fraud_detection.job import MAX_OFFSETS_PER_TRIGGER
from fraud_detection.runner import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="/etc/fraudpipeline/job.yaml", help="job.yaml path")
    parser.add_argument("--metrics-address", default="0.0.0.0", help="address of /metrics")
    parser.add_argument(
        "--available-now", action="store_true", help="process what the topic holds, then stop"
    )
    parser.add_argument(
        "--max-offsets-per-trigger",
        type=int,
        default=MAX_OFFSETS_PER_TRIGGER,
        help="records per micro-batch",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return run(args.config, args.metrics_address, args.available_now, args.max_offsets_per_trigger)


if __name__ == "__main__":
    sys.exit(main())
