"""The first stage of the detection query: each Kafka record parsed, validated and tokenised,
and each transaction given its terminal's features (fraud_detection.terminals).

The stage (`IntakeProcessor`, transformWithStateInPandas) is keyed by bucket of terminals (the
hash of the record's `terminal_id` modulo detection.stateBuckets; the bucket's state is
STATE_SCHEMA): `read` parses the bucket's records, `intake_bucket` runs each terminal's
transactions and labels in time order (a transaction at its event time, a label at its label
time, a transaction before a label at the same time) through the terminal's state. Its rows
(INTAKE_SCHEMA: account, kind, payload) go on to the second stage, keyed by bucket of accounts
(fraud_detection.detector):
- `transaction`: the record's RECORD_FIELDS values, then its terminal features (a JSON list);
- `label`: the label's LABEL_FIELDS values (a JSON list);
- `dead_letter`: the dead-letter document of rejected input (account "").
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle

from fraud_detection.alerts import rfc3339_ms
from fraud_detection.bucket_state import pack, store_entry, unpack, without_idle
from fraud_detection.events import Rejection, dead_letter, decode_event, transaction_record
from fraud_detection.outcomes import LABEL_FIELDS, parse_label
from fraud_detection.terminals import DAY_MS, TerminalState
from fraud_detection.tokens import ids_may_hold_card_numbers, tokenise_card_numbers_in_identifier

# An accepted transaction's fields from its event (the card number tokenised, the event time in
# ms); RECORD_FIELDS adds where it was read: what the second stage reads.
EVENT_FIELDS = (
    "transaction_id",
    "event_ms",
    "amount",
    "merchant_category",
    "latitude",
    "longitude",
    "region",
    "channel",
    "device_id",
    "card_token",
    "customer_id",
    "terminal_id",
    "merchant_id",
    "currency",
)
RECORD_FIELDS = (*EVENT_FIELDS, "kafka_ms", "topic", "partition", "offset")
_record_values = itemgetter(*RECORD_FIELDS)
INTAKE_SCHEMA = "account string, kind string, payload binary"
INTAKE_COLUMNS = ("account", "kind", "payload")
# A bucket of terminals: [latest Kafka ms, TerminalState list JSON] per terminal, packed
# (fraud_detection.bucket_state).
STATE_SCHEMA = "terminals string"
# A terminal without input this long (Kafka timestamps) before its bucket's latest input is
# forgotten.
TERMINAL_TTL_MS = 90 * DAY_MS


@dataclass(frozen=True)
class IntakeSettings:
    """What the first stage needs from the job configuration."""

    key: bytes  # the tokenisation key
    labels_topic: str | None
    max_ahead_ms: int | None = None  # detection.maxEventTimeAhead; None: no bound


def _future(event_ms: int, kafka_ms: int, settings: IntakeSettings) -> Rejection | None:
    """Why a transaction's event time is too far ahead of its Kafka timestamp, if it is."""
    if settings.max_ahead_ms is None or event_ms <= kafka_ms + settings.max_ahead_ms:
        return None
    return Rejection(
        "future_event",
        f"event_time {rfc3339_ms(event_ms)} is more than maxEventTimeAhead "
        f"({settings.max_ahead_ms // 1000} s) after the Kafka timestamp {rfc3339_ms(kafka_ms)}: "
        f"a wrong clock would move its account's watermark",
    )


def parse_input(
    terminal: str,
    value: bytes | None,
    meta: str,
    settings: IntakeSettings,
    now,
    ids_may_hold_cards: bool = True,
) -> tuple[str, dict[str, Any]] | None:
    """A Kafka record of `terminal` parsed: ("transaction", record with RECORD_FIELDS),
    ("label", parse_label's record), ("dead_letter", document), or None for a label that is not
    about a transaction. `meta` is "topic,partition,offset,kafka ms". The ids are searched for
    card numbers unless `ids_may_hold_cards` is False (tokens.ids_may_hold_card_numbers).
    Never raises."""
    topic, partition, offset, kafka_ms = meta.rsplit(",", 3)
    partition, offset, kafka_ms = int(partition), int(offset), int(kafka_ms)
    is_label = topic == settings.labels_topic
    event, rejection = decode_event(value)
    record = None
    if event is not None:
        if is_label:
            record, rejection = parse_label(event, settings.key, ids_may_hold_cards)
            if record is None and rejection is None:
                return None
        else:
            record, rejection = transaction_record(event, settings.key, ids_may_hold_cards)
    if ids_may_hold_cards:  # compared with the record's, whose ids are tokenised
        terminal = tokenise_card_numbers_in_identifier(terminal, settings.key)
    if record is not None and record["terminal_id"] != terminal:
        record, rejection = None, Rejection("schema_violation", "terminal_id is ambiguous")
    if record is not None and not is_label:
        record["event_ms"] = int(record["event_time"].timestamp() * 1000)
        rejection = _future(record["event_ms"], kafka_ms, settings)
        record = None if rejection else record
    if record is None:
        letter = dead_letter(value, rejection, topic, partition, offset, now, settings.key)
        return "dead_letter", letter
    record["kafka_ms"] = kafka_ms
    if is_label:
        return "label", record
    record.update(topic=topic, partition=partition, offset=offset)
    return "transaction", record


def read(
    frames: Iterator[pd.DataFrame], settings: IntakeSettings
) -> tuple[dict[str, list[tuple]], list[tuple]]:
    """Each terminal's parsed input of a bucket's Kafka records (columns terminal, value, meta)
    as (time, 0 for a transaction or 1 for a label, transaction id, kind, record), and the
    output rows of the records rejected."""
    now = datetime.now(UTC)
    inputs: dict[str, list[tuple]] = {}
    letters: list[tuple] = []
    labels = f"{settings.labels_topic},"
    for frame in frames:
        values, metas = frame["value"].tolist(), frame["meta"].tolist()
        own_cards = pc.if_else(pc.starts_with(pa.array(metas, pa.string()), labels), 0, 1)
        suspects = ids_may_hold_card_numbers(values, own_cards)
        columns = (frame["terminal"].tolist(), values, metas, suspects)
        for terminal, value, meta, suspect in zip(*columns, strict=True):
            parsed = parse_input(terminal, value, meta, settings, now, suspect)
            if parsed is None:
                continue
            kind, record = parsed
            if kind == "dead_letter":  # keyed by origin: a flood of them spreads over buckets
                origin = f"{record['source_topic']}:{record['partition']}:{record['offset']}"
                letters.append((origin, kind, orjson.dumps(record)))
                continue
            if kind == "transaction":
                order = (record["event_ms"], 0)
            else:  # never before its own transaction, whatever its label_time says
                order = (max(record["label_ms"], record["event_ms"]), 1)
            items = inputs.setdefault(record["terminal_id"], [])  # a card number in it tokenised
            items.append((*order, record["transaction_id"], kind, record))
    return inputs, letters


def intake_bucket(
    states: dict[str, list], inputs: dict[str, list[tuple]]
) -> tuple[list[tuple], dict[str, list]]:
    """The output rows of a bucket's parsed input (terminal -> `read`'s items) and the bucket's
    next state (terminal -> [latest Kafka ms, TerminalState JSON], idle terminals dropped)."""
    rows: list[tuple] = []
    states = dict(states)
    for terminal, items in inputs.items():
        entry = states.get(terminal)
        state = TerminalState.from_list(orjson.loads(entry[1])) if entry else TerminalState()
        for *_, kind, record in sorted(items, key=lambda item: item[:3]):
            if kind == "transaction":
                features = state.add_transaction(record["event_ms"], record["transaction_id"])
                payload = orjson.dumps([*_record_values(record), features])
            else:
                state.add_label(record["event_ms"], record["is_fraud"])
                payload = orjson.dumps([record[name] for name in LABEL_FIELDS])
            rows.append((record["customer_id"], kind, payload))
        seen_ms = max(record["kafka_ms"] for *_, record in items)
        store_entry(states, terminal, seen_ms, orjson.dumps(state.to_list()).decode())
    return rows, without_idle(states, TERMINAL_TTL_MS)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a bucket's work, as it was after. A bucket
    decodes thousands of small lists and dicts (its states; no reference cycles, so reference
    counting frees them): collections triggered meanwhile would scan them again and again, which
    cost about a quarter of the second stage's time with a month of state (measured)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class IntakeProcessor(StatefulProcessor):
    """The first stage, per bucket of terminals, on Spark's state (transformWithStateInPandas)."""

    def __init__(self, settings: IntakeSettings) -> None:
        self.settings = settings

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.state = handle.getValueState("terminals", STATE_SCHEMA)

    def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:
        with collector_paused():
            inputs, output = read(rows, self.settings)
            if inputs:
                stored = self.state.get()  # None when the bucket has no state yet
                found, states = intake_bucket(unpack(stored[0] if stored else None), inputs)
                output += found
                self.state.update((pack(states),))
        if output:
            yield pd.DataFrame.from_records(output, columns=INTAKE_COLUMNS)

    def close(self) -> None:
        pass
