"""Run the local stack of real components until Ctrl-C (or --duration), printing how to reach them.

python -m fraud_testbed.stack [--duration 10m] [--no-elasticsearch] [--no-spark]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from fraud_testbed.elasticsearch import run_elasticsearch
from fraud_testbed.kafka import run_kafka
from fraud_testbed.kube import install_crds, run_control_plane
from fraud_testbed.process import ComponentError
from fraud_testbed.prometheus import run_prometheus
from fraud_testbed.spark import local_session


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '10m' or '1h'."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"--duration {text!r}: use a number with s, m or h (10m)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=parse_duration, help="stop after this long (10m)")
    parser.add_argument(
        "--no-elasticsearch", action="store_true", help="do not start Elasticsearch"
    )
    parser.add_argument("--no-spark", action="store_true", help="do not start a Spark session")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="fraudpipeline-stack-"))
    endpoints: list[tuple[str, str]] = []
    try:
        with contextlib.ExitStack() as stack:

            def start(what: str, context):
                print(f"starting {what} ...", flush=True)
                began = time.monotonic()
                running = stack.enter_context(context)
                print(f"  {what} ready in {time.monotonic() - began:.1f} s", flush=True)
                return running

            kube = start("Kubernetes API", run_control_plane(workdir / "kube"))
            install_crds(kube)
            endpoints.append(("kubeconfig", str(kube.kubeconfig)))
            kafka = start("Kafka", run_kafka(workdir / "kafka"))
            endpoints.append(("Kafka bootstrap", kafka.bootstrap_servers))
            prometheus = start("Prometheus", run_prometheus(workdir / "prometheus"))
            endpoints.append(("Prometheus", prometheus.url))
            if not args.no_elasticsearch:
                node = start("Elasticsearch", run_elasticsearch())
                credentials = workdir / "elasticsearch-credentials"
                credentials.touch(mode=0o600)
                credentials.write_text(f"{node.username}:{node.password}\n")
                endpoints.append(("Elasticsearch", f"{node.url} (user:password in {credentials})"))
            if not args.no_spark:
                print("starting Spark (local[2]) ...", flush=True)
                session = local_session(workdir / "spark")
                stack.callback(session.stop)
                endpoints.append(("Spark", session.sparkContext.master))

            print("\nthe local stack is up (Ctrl-C stops it):")
            for name, where in endpoints:
                print(f"  {name:<16} {where}")
            deadline = time.monotonic() + args.duration if args.duration else float("inf")
            with contextlib.suppress(KeyboardInterrupt):
                while time.monotonic() < deadline:
                    time.sleep(0.5)
            print("stopping ...", flush=True)
    except ComponentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("stopped; nothing left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
