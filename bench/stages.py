"""The detection job's Python work per transaction, without Spark.

Writes bench/results/stages.json and prints a summary (one process, no component, about a
minute a round). The benchmark's traffic (detection.SIMULATION, detection.THROUGHPUT_DAYS days
of transactions) goes through both stages' Python functions as the job's tasks call them, in
micro-batches of BATCH transactions and config.STATE_BUCKETS buckets, every rule and the
model on, Python's garbage collector paused as in the job:
1. stage 1, per bucket of terminals: `intake.read`, the bucket's state unpacked,
   `intake.intake_bucket`, the state packed;
2. stage 2, per bucket of accounts: `detector.read_inputs`, unpacked, `detector.detect_bucket`,
   packed, `detector.summarise`.
Each stage's input is grouped into per-bucket frames (Spark's work in the job) and its output
digested outside the timing. Buckets are chosen by CRC-32 here, not by Spark's hash: what a
bucket costs does not depend on which accounts share it. The CPU time per transaction is taken
over the second half of the micro-batches (the state a month of history leaves), the best of
ROUNDS rounds: this is most of a micro-batch's cost per transaction in Spark (docs/performance.md,
Less Python per transaction). `outputs_sha256` digests every row and state the stages produce: a
change meant only to make the job faster must leave it as it was.
"""

from __future__ import annotations

import gc
import hashlib
import re
import time
import zlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from detection import SIMULATION, THROUGHPUT_DAYS, simulated_payloads
from recording import machine, write_results

from fraud_detection import detector, intake
from fraud_detection.bucket_state import pack, unpack
from fraud_detection.config import STATE_BUCKETS, model_path, parse_config
from fraud_detection.harness import job_document
from fraud_detection.job import PLAIN_TERMINAL_ID
from fraud_detection.model import load_model

RESULTS = Path(__file__).parent / "results" / "stages.json"
KEY = b"benchmark-tokenization-key"
BATCH = 15_000  # about the job's micro-batch at half its throughput on the fast machine
ROUNDS = 3
KAFKA_START_MS = 1_775_433_600_000
_TERMINAL = re.compile(PLAIN_TERMINAL_ID.encode())


def _bucket(name: str) -> int:
    return zlib.crc32(name.encode()) % STATE_BUCKETS


def _frames(rows: list[tuple], columns: list[str], key_of) -> dict[int, pd.DataFrame]:
    """`rows` as one frame per bucket of `key_of(row)`, as Spark hands a stage its input."""
    buckets = defaultdict(list)
    for row in rows:
        buckets[_bucket(key_of(row))].append(row)
    return {bucket: pd.DataFrame(found, columns=columns) for bucket, found in buckets.items()}


def terminal_frames(messages: list[tuple[str, bytes]], offset: int) -> dict[int, pd.DataFrame]:
    """A micro-batch of Kafka values as the first stage's input per bucket of terminals."""
    records = [
        (
            _TERMINAL.search(value).group(1).decode(),
            value,
            f"transactions,0,{i},{KAFKA_START_MS + i}",
        )
        for i, (_, value) in enumerate(messages, start=offset)
    ]
    return _frames(records, ["terminal", "value", "meta"], lambda record: record[0])


def account_frames(rows: list[tuple]) -> dict[int, pd.DataFrame]:
    """The first stage's rows as the second stage's input per bucket of accounts."""
    return _frames(rows, list(intake.INTAKE_COLUMNS), lambda row: row[0])


class Stages:
    """Both stages' Python work with their states kept between micro-batches."""

    def __init__(self) -> None:
        config = parse_config(job_document("stages", "127.0.0.1:9", "/tmp/stages", 0))
        settings = config.detection
        # no maxEventTimeAhead: the Kafka timestamps here are made up
        self.intake_settings = intake.IntakeSettings(KEY, config.topics.get("labels"))
        # without `account` rows, as in the benchmark, which runs without Elasticsearch
        self.detect_settings = detector.DetectSettings.of(settings, KEY, True, with_accounts=False)
        self.classifier = load_model(str(model_path(settings.model["uri"])))[0]
        self.threshold = float(settings.model["scoreThreshold"])
        self.terminals: dict[int, str] = {}
        self.accounts: dict[int, str] = {}

    def first(self, frames: dict[int, pd.DataFrame]) -> list[tuple]:
        """Stage 1 over a micro-batch's `terminal_frames`: its output rows."""
        rows = []
        for bucket, frame in frames.items():
            inputs, output = intake.read(iter([frame]), self.intake_settings)
            found, states = intake.intake_bucket(unpack(self.terminals.get(bucket)), inputs)
            self.terminals[bucket] = pack(states)
            rows += output + found
        return rows

    def second(self, frames: dict[int, pd.DataFrame]) -> list[tuple]:
        """Stage 2 over a micro-batch's `account_frames`: its output rows, and each bucket's
        state as a row."""
        rows = []
        for bucket, frame in frames.items():
            inputs, letters = detector.read_inputs(iter([frame]))
            found, states = detector.detect_bucket(
                unpack(self.accounts.get(bucket)),
                inputs,
                self.detect_settings,
                self.classifier,
                self.threshold,
            )
            self.accounts[bucket] = pack(states)
            rows += [*detector.summarise(letters + found), (bucket, states)]
        return rows


def measure_round(messages: list[tuple[str, bytes]]) -> dict:
    """One run over every micro-batch: CPU microseconds per transaction of each stage over the
    second half (the stages' input made ready and their output digested outside it), and the
    digest of every stage's output."""
    stages = Stages()
    digest = hashlib.sha256()
    batches = [messages[start : start + BATCH] for start in range(0, len(messages), BATCH)]
    batches = [batch for batch in batches if len(batch) == BATCH]
    first_measured = len(batches) // 2
    cpu = {"first": 0.0, "second": 0.0}
    gc.disable()
    try:
        for index, batch in enumerate(batches):
            frames = terminal_frames(batch, index * BATCH)
            began = time.process_time()
            rows = stages.first(frames)
            spent = time.process_time() - began
            frames = account_frames(rows)
            began = time.process_time()
            output = stages.second(frames)
            if index >= first_measured:
                cpu["first"] += spent
                cpu["second"] += time.process_time() - began
            digest.update(repr(rows).encode())
            digest.update(repr(sorted(map(repr, output))).encode())
    finally:
        gc.enable()
    count = (len(batches) - first_measured) * BATCH
    return {
        "first_stage_us": round(cpu["first"] / count * 1e6, 1),
        "second_stage_us": round(cpu["second"] / count * 1e6, 1),
        "outputs_sha256": digest.hexdigest(),
    }


def summary(results: dict) -> str:
    best = results["best"]
    return "\n".join(
        [
            f"Python CPU per transaction ({results['measured_transactions']:,} transactions, "
            f"micro-batches of {BATCH:,}, best of {ROUNDS}):",
            f"  first stage (parse, validate, tokenise, terminal features): "
            f"{best['first_stage_us']} us",
            f"  second stage (rules, card features, model, account state): "
            f"{best['second_stage_us']} us",
            f"  outputs sha256 {results['outputs_sha256']}",
        ]
    )


def main() -> None:
    results = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    messages = simulated_payloads(THROUGHPUT_DAYS, datetime(2026, 4, 6, tzinfo=UTC), SIMULATION)
    rounds = []
    for number in range(ROUNDS):
        rounds.append(measure_round(messages))
        print(f"round {number + 1}/{ROUNDS}: {rounds[-1]}", flush=True)
    digests = {found["outputs_sha256"] for found in rounds}
    if len(digests) != 1:
        raise RuntimeError(f"the rounds' outputs differ: {digests}")
    batches = len(messages) // BATCH
    results.update(
        measured_transactions=(batches - batches // 2) * BATCH,
        rounds=rounds,
        best={
            key: min(found[key] for found in rounds)
            for key in ("first_stage_us", "second_stage_us")
        },
        outputs_sha256=digests.pop(),
    )
    write_results(RESULTS, results, summary)


if __name__ == "__main__":
    main()
