"""python -m fraud_dashboards [--check]: write (or check) grafana/dashboards."""

from __future__ import annotations

import argparse
import sys

from fraud_dashboards.generate import GRAFANA_DIR, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a file is not current")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for path in outdated:
            print(f"{path} is not current: run `make dashboards`", file=sys.stderr)
        return 1 if outdated else 0
    for path in write():
        print(f"wrote {path.relative_to(GRAFANA_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
