"""What finding card numbers costs the detection job: in ids, and in dead letters.

Writes bench/results/redaction.json and prints a summary (one process, no component, about a
minute):
1. `tokens.tokenise_card_numbers_in_identifier` per id of IDS (the best of 5 repeats), for the
   records the micro-batch's RE2 check flags (docs/detection.md, Card numbers in ids);
2. `tokens.ids_may_hold_card_numbers`, that check, per payload of a simulated week;
3. `events.redacted_payload` (CPU time) on pathological dead letters of growing size
   (PAYLOAD_BYTES), each shape in UTF-8 and one in UTF-16: the time per byte should stay flat,
   since a payload's search must grow with its length, not its square.
"""

from __future__ import annotations

import json
import time
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from recording import machine, write_results

import fraud_simulator
from fraud_detection.events import redacted_payload
from fraud_detection.tokens import ids_may_hold_card_numbers, tokenise_card_numbers_in_identifier

RESULTS = Path(__file__).parent / "results" / "redaction.json"
KEY = b"benchmark-tokenization-key"
IDS = (
    "C00000123",  # too few digits: the common case
    "tx-3-20514-00000000",  # the simulator's transaction ids
    "order-20260302-00012345",  # a date and a serial number
    "INV-4501-00012345678",  # two groups that start as a card does, not a card
    "4111 1111 1111 1111",  # a card in four groups
    "41111111 11111111",  # a card as a pair
)
# Dead letters that stress the search: long runs of digit groups, escapes, NULs, backslashes.
SHAPES = {
    "groups of 4 digits": "1234 ",
    "12 digits and an escaped tab": "123456789012\\t",
    "digits and escaped NULs": "1\\u0000",
    "backslashes": "\\\\1",
}
PAYLOAD_BYTES = (25_000, 100_000, 1_000_000)
SIMULATED_DAYS = 7


def id_search_us() -> dict[str, float]:
    """Microseconds per id (the best of 5 repeats)."""
    timings = {}
    for identifier in IDS:
        timer = timeit.Timer(
            lambda value=identifier: tokenise_card_numbers_in_identifier(value, KEY)
        )
        loops, _ = timer.autorange()
        timings[identifier] = round(min(timer.repeat(5, loops)) / loops * 1e6, 2)
    return timings


def hint_check_us() -> dict:
    """The RE2 check per payload over a simulated week's transactions and labels."""
    start = datetime(2026, 3, 2, tzinfo=UTC)
    settings = {"customers": 2_000, "terminals": 400, "seed": 3, "fraudRate": 0.02}
    events = list(fraud_simulator.generate(settings, start, timedelta(days=SIMULATED_DAYS)))
    payloads = [event.payload.encode() for event in events]
    own = pa.array([int(event.kind == "transaction") for event in events])
    timer = timeit.Timer(lambda: ids_may_hold_card_numbers(payloads, own))
    best = min(timer.repeat(5, 1))
    flagged = sum(ids_may_hold_card_numbers(payloads, own))
    return {"payloads": len(payloads), "us_per_payload": round(best / len(payloads) * 1e6, 3),
            "flagged": flagged}  # fmt: skip


def dead_letter_seconds() -> list[dict]:
    """CPU seconds of `redacted_payload` per shape, encoding and size."""
    rows = []
    for name, unit in SHAPES.items():
        for encoding in ("utf-8", "utf-16-le") if name == "groups of 4 digits" else ("utf-8",):
            for size in PAYLOAD_BYTES:
                text = '{"note": "' + unit * (size // len(unit)) + '"}'
                raw = text.encode(encoding)
                began = time.process_time()
                redacted_payload(raw, KEY)
                seconds = time.process_time() - began
                rows.append({"shape": name, "encoding": encoding, "bytes": len(raw),
                             "seconds": round(seconds, 3),
                             "ns_per_byte": round(seconds / len(raw) * 1e9, 1)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(results: dict) -> str:
    lines = [f"machine: {results['machine']}", "id search (us per id, flagged records only):"]
    lines += [f"  {identifier:26s} {us:7.2f}" for identifier, us in results["id_search_us"].items()]
    hints = results["hint_check"]
    lines.append(
        f"RE2 check: {hints['us_per_payload']} us a payload over {hints['payloads']:,} simulated "
        f"payloads, {hints['flagged']} flagged"
    )
    lines.append("dead letters (CPU s; ns per byte):")
    for row in results["dead_letters"]:
        lines.append(
            f"  {row['shape']:30s} {row['encoding']:9s} {row['bytes']:>9,} B "
            f"{row['seconds']:7.3f} s {row['ns_per_byte']:8.1f}"
        )
    return "\n".join(lines)


def main() -> int:
    results = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "id_search_us": id_search_us(),
        "hint_check": hint_check_us(),
        "dead_letters": dead_letter_seconds(),
    }
    write_results(RESULTS, results, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
