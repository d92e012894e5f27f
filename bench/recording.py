"""What every benchmark records: its results as JSON under bench/results, with the machine it
ran on, and a summary printed."""

from __future__ import annotations

import json
import os
import platform
import timeit
from collections.abc import Callable
from pathlib import Path

import psutil


def machine() -> dict:
    """The machine a benchmark ran on: cores, memory, Python, and its speed at the start of the
    run (the best of 5 timings of sum(range(10000)), in microseconds: about 330 on the slower
    machine of 24 November, 2 to 3 times the faster one's), so that runs on different machines
    compare."""
    timer = timeit.Timer("sum(range(10000))")
    loops, _ = timer.autorange()
    best = min(timer.repeat(5, loops)) / loops
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "sum_range_10000_us": round(best * 1e6, 1),
    }


def write_results(path: Path, results: dict, summary: Callable[[dict], str]) -> None:
    """Write a benchmark's `results` as JSON to `path` and print their summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    print(f"written to {path}")
