"""Turn the world's days into events: JSON payloads with keys, in event-time order.

`simulate` yields `Batch`es (columns of one stretch of event time) for the fast sinks;
`generate` yields one `Event` at a time for everybody else. Both are pure and deterministic
for a seed: no clock, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from itertools import count

import numpy as np

from fraud_events import KINDS, SCENARIOS
from fraud_simulator.applications import applications_day
from fraud_simulator.sensors import readings_day
from fraud_simulator.settings import Settings, parse_settings
from fraud_simulator.transactions import (
    CHANNELS,
    COMPROMISED_TERMINAL_DAYS,
    DAY_MS,
    LEGIT,
    NO_DEVICE,
    TRANSACTIONS_PER_INCIDENT,
    Incidents,
    Injector,
    PaymentHistory,
    compromise_terminals,
    drop_quiet,
    expire,
    legit_day,
    mark_compromised,
)
from fraud_simulator.world import CURRENCY, REGION_CODES, build_world

TRANSACTION, LABEL, SENSOR, APPLICATION = (KINDS.index(k) for k in KINDS)
SCENARIO_CODE = {name: code for code, name in enumerate(SCENARIOS)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Batch:
    """Events of one stretch of event time, in event-time order, as parallel columns."""

    time_ms: np.ndarray  # when the event happens (label_time for labels)
    kind: np.ndarray  # index into fraud_events.KINDS
    scenario: np.ndarray  # index into fraud_events.SCENARIOS, -1 when legitimate
    keys: list[str]
    payloads: list[str]  # JSON, exactly what goes on Kafka

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def merge(cls, parts: list[Batch]) -> Batch:
        """One batch of all parts, sorted by time (stable: earlier parts first on ties)."""
        time_ms = np.concatenate([p.time_ms for p in parts])
        order = np.argsort(time_ms, kind="stable")
        keys = [k for p in parts for k in p.keys]
        payloads = [v for p in parts for v in p.payloads]
        return cls(
            time_ms[order],
            np.concatenate([p.kind for p in parts])[order],
            np.concatenate([p.scenario for p in parts])[order],
            [keys[i] for i in order],
            [payloads[i] for i in order],
        )

    def split(self, before_ms: int) -> tuple[Batch, Batch]:
        """(events before `before_ms`, the rest)."""
        cut = int(np.searchsorted(self.time_ms, before_ms))
        return self.slice(0, cut), self.slice(cut, len(self))

    def slice(self, lo: int, hi: int) -> Batch:
        return Batch(
            self.time_ms[lo:hi],
            self.kind[lo:hi],
            self.scenario[lo:hi],
            self.keys[lo:hi],
            self.payloads[lo:hi],
        )


class Event:
    """One event as on Kafka: `.kind`, `.key`, `.value` (dict), `.event_time`, `.payload`."""

    __slots__ = ("__dict__", "event_time", "key", "kind", "payload")

    def __init__(self, kind: str, key: str, payload: str, event_time: datetime) -> None:
        self.kind, self.key, self.payload, self.event_time = kind, key, payload, event_time

    @cached_property
    def value(self) -> dict:
        return json.loads(self.payload)

    def __repr__(self) -> str:
        return f"Event({self.kind!r}, {self.key!r}, {self.payload})"


def iso_times(time_ms: np.ndarray) -> list[str]:
    """RFC 3339 UTC with milliseconds, vectorised."""
    return np.datetime_as_string(
        time_ms.astype("datetime64[ms]"), unit="ms", timezone="UTC"
    ).tolist()


def device_json(device: int) -> str:
    return "null" if device == NO_DEVICE else f'"D{device:010d}"'


def customer_id(customer: int) -> str:
    return f"C{customer:08d}"


def terminal_id(terminal: int) -> str:
    return f"T{terminal:07d}"


@lru_cache(maxsize=2)
def _world_and_fragments(seed: int, customers: int, terminals: int):
    """The world and the JSON fragments that never change (cached: costly for big worlds)."""
    world = build_world(seed, customers, terminals)
    lat, lon = world.terminal_latlon(np.arange(world.terminals))
    customer_part = [
        f'"card_number":"{card}","customer_id":"{customer_id(c)}"'
        for c, card in enumerate(world.card_numbers)
    ]
    terminal_part = [
        f'"terminal_id":"{terminal_id(t)}","merchant_id":"M{t:07d}","merchant_category":"{cat}"'
        for t, cat in enumerate(world.terminal_category)
    ]
    place_part = [
        f'"region":"{REGION_CODES[r]}","latitude":{la:.5f},"longitude":{lo:.5f}'
        for r, la, lo in zip(
            world.terminal_region.tolist(), lat.tolist(), lon.tolist(), strict=True
        )
    ]
    return world, customer_part, terminal_part, place_part


def _scenario_json(code: int) -> str:
    return "null" if code == LEGIT else f'"{SCENARIOS[code]}"'


def _labels(ids, times, label_times, scenarios, label_id_field, extra) -> list[str]:
    """Label payloads; `extra` holds the JSON fragment of the ids besides `label_id_field`."""
    return [
        f'{{"schema_version":1,"event_type":"label","{label_id_field}":"{i}",{x}'
        f'"event_time":"{t}","label_time":"{lt}","is_fraud":{"false" if s == LEGIT else "true"},'
        f'"scenario":{_scenario_json(s)}}}'
        for i, x, t, lt, s in zip(ids, extra, times, label_times, scenarios, strict=True)
    ]


def _part(kind: int, time_ms, scenario, keys, payloads) -> Batch:
    return Batch(
        np.asarray(time_ms, np.int64),
        np.full(len(keys), kind, np.int8),
        np.asarray(scenario, np.int16),
        keys,
        payloads,
    )


class Simulation:
    """Day-by-day generation state: the world, incidents, each customer's last payment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.world, self.customer_part, self.terminal_part, self.place_part = _world_and_fragments(
            settings.seed, settings.customers, settings.terminals
        )
        self.incidents = Incidents()
        self.last_ms = np.full(self.world.customers, -(10**13), np.int64)
        # each customer's own payments in the stream so far (see PaymentHistory)
        self.payments = np.zeros(self.world.customers, np.int64)
        self.label_delay_ms = int(settings.label_delay_seconds * 1000)
        expected = float(self.world.customer_daily_rate.sum())
        injected = [s for s in settings.scenarios if s != "compromised_terminal"]
        share = settings.fraud_rate * expected / max(len(settings.scenarios), 1)
        self.incidents_per_day = {s: share / TRANSACTIONS_PER_INCIDENT[s] for s in injected}
        physical = (self.world.terminal_kind != 2) & (self.world.terminal_daily_rate > 0)
        terminal_rate = self.world.terminal_daily_rate[physical].mean() if physical.any() else 0
        self.compromised_per_day = (
            share / (COMPROMISED_TERMINAL_DAYS * terminal_rate)
            if "compromised_terminal" in settings.scenarios and terminal_rate > 0
            else 0.0
        )

    def day(self, day: int, start_ms: int, end_ms: int) -> list[Batch]:
        """The events of one UTC day (numbered from the epoch) within [start_ms, end_ms)."""
        seed, day_start = self.settings.seed, day * DAY_MS
        sources = self.settings.sources
        expire(self.incidents, day_start)
        compromise_terminals(
            self.world,
            day_start,
            np.random.default_rng([seed, 2, day]),
            self.incidents,
            self.compromised_per_day,
        )
        parts = []
        if "transactions" in sources:
            parts.extend(self._transactions(day, start_ms, end_ms))
        if "sensors" in sources:
            parts.extend(self._sensors(day, start_ms, end_ms))
        if "applications" in sources:
            parts.extend(self._applications(day, start_ms, end_ms))
        return parts

    def _transactions(self, day: int, start_ms: int, end_ms: int) -> list[Batch]:
        seed, day_start = self.settings.seed, day * DAY_MS
        rng = np.random.default_rng([seed, 1, day])
        tx = legit_day(self.world, day_start, rng, self.last_ms)
        mark_compromised(tx, self.incidents, SCENARIO_CODE["compromised_terminal"])
        injector = Injector(
            self.world,
            day_start,
            np.random.default_rng([seed, 3, day]),
            PaymentHistory(self.payments, tx, start_ms),
        )
        # high_amount last: its victims' history is known once the others' quiet windows are
        for name, per_day in sorted(
            self.incidents_per_day.items(), key=lambda item: item[0] == "high_amount"
        ):
            for _ in range(injector.rng.poisson(per_day)):
                getattr(injector, name)(SCENARIO_CODE[name])
        tx = drop_quiet(tx, injector.quiet).concat(injector.result()).sorted_by_time()
        numbers = np.arange(len(tx))
        inside = (tx.time_ms >= start_ms) & (tx.time_ms < end_ms)
        tx, numbers = tx.take(inside), numbers[inside]
        own = (tx.scenario == LEGIT) | (tx.scenario == SCENARIO_CODE["compromised_terminal"])
        self.payments += np.bincount(tx.customer[own], minlength=len(self.payments))
        ids = [f"tx-{seed}-{day}-{n:08d}" for n in numbers.tolist()]
        times = iso_times(tx.time_ms)
        customers, terminals = tx.customer.tolist(), tx.terminal.tolist()
        cards = [self.world.card_numbers[c] for c in customers]
        cp, tp, pp = self.customer_part, self.terminal_part, self.place_part
        payloads = [
            f'{{"schema_version":1,"event_type":"transaction","transaction_id":"{i}",'
            f'"event_time":"{t}",{cp[c]},{tp[m]},"amount":{a:.2f},"currency":"{CURRENCY}",'
            f'"channel":"{CHANNELS[ch]}","device_id":{device_json(d)},{pp[m]}}}'
            for i, t, c, m, a, ch, d in zip(
                ids,
                times,
                customers,
                terminals,
                tx.amount.tolist(),
                tx.channel.tolist(),
                tx.device.tolist(),
                strict=True,
            )
        ]
        label_ms = tx.time_ms + self.label_delay_ms
        label_times = times if self.label_delay_ms == 0 else iso_times(label_ms)
        extra = [
            f'"customer_id":"{customer_id(c)}","terminal_id":"{terminal_id(m)}",'
            for c, m in zip(customers, terminals, strict=True)
        ]
        labels = _labels(ids, times, label_times, tx.scenario.tolist(), "transaction_id", extra)
        return [
            _part(TRANSACTION, tx.time_ms, tx.scenario, cards, payloads),
            _part(LABEL, label_ms, tx.scenario, ids, labels),
        ]

    def _sensors(self, day: int, start_ms: int, end_ms: int) -> list[Batch]:
        seed = self.settings.seed
        rng = np.random.default_rng([seed, 4, day])
        r = readings_day(self.world, day * DAY_MS, rng, self.incidents, SCENARIO_CODE["skimmer"])
        inside = np.flatnonzero((r.time_ms >= start_ms) & (r.time_ms < end_ms))
        ids = [f"s-{seed}-{day}-{n:08d}" for n in inside.tolist()]
        times = iso_times(r.time_ms[inside])
        terminals = [terminal_id(t) for t in r.terminal[inside].tolist()]
        kinds = np.where(
            self.world.terminal_kind[r.terminal[inside]] == 1, "atm", "branch"
        ).tolist()
        regions = [REGION_CODES[x] for x in self.world.terminal_region[r.terminal[inside]].tolist()]
        columns = zip(
            ids,
            times,
            terminals,
            kinds,
            regions,
            r.temperature_c[inside].tolist(),
            r.vibration_g[inside].tolist(),
            r.door_open[inside].tolist(),
            r.tamper[inside].tolist(),
            r.reader_score[inside].tolist(),
            strict=True,
        )
        payloads = [
            json.dumps(
                {
                    "schema_version": 1,
                    "event_type": "sensor",
                    "sensor_event_id": i,
                    "event_time": t,
                    "terminal_id": m,
                    "device_kind": k,
                    "region": g,
                    "temperature_c": temp,
                    "vibration_g": vib,
                    "door_open": door,
                    "tamper_detected": tamper,
                    "card_reader_anomaly_score": score,
                },
                separators=(",", ":"),
            )
            for i, t, m, k, g, temp, vib, door, tamper, score in columns
        ]
        scenario = r.scenario[inside]
        label_ms = r.time_ms[inside] + self.label_delay_ms
        extra = [f'"terminal_id":"{m}",' for m in terminals]
        labels = _labels(
            ids, times, iso_times(label_ms), scenario.tolist(), "sensor_event_id", extra
        )
        return [
            _part(SENSOR, r.time_ms[inside], scenario, terminals, payloads),
            _part(LABEL, label_ms, scenario, ids, labels),
        ]

    def _applications(self, day: int, start_ms: int, end_ms: int) -> list[Batch]:
        seed, settings = self.settings.seed, self.settings
        rng = np.random.default_rng([seed, 5, day])
        rows = applications_day(
            settings.customers,
            settings.fraud_rate,
            day * DAY_MS,
            rng,
            SCENARIO_CODE["synthetic_identity"],
        )
        rows = [(n, row) for n, row in enumerate(rows) if start_ms <= row[0] < end_ms]
        ids = [f"a-{seed}-{day}-{n:06d}" for n, _ in rows]
        time_ms = np.array([row[0] for _, row in rows], np.int64)
        scenario = np.array([row[1] for _, row in rows], np.int16)
        times = iso_times(time_ms)
        payloads = [
            json.dumps(
                {
                    "schema_version": 1,
                    "event_type": "application",
                    "application_id": i,
                    "event_time": t,
                    **fields,
                },
                separators=(",", ":"),
            )
            for i, t, (_, (_, _, fields)) in zip(ids, times, rows, strict=True)
        ]
        label_ms = time_ms + self.label_delay_ms
        labels = _labels(
            ids, times, iso_times(label_ms), scenario.tolist(), "application_id", [""] * len(ids)
        )
        return [
            _part(APPLICATION, time_ms, scenario, ids, payloads),
            _part(LABEL, label_ms, scenario, ids, labels),
        ]


def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    return int((moment - _EPOCH) / timedelta(milliseconds=1))


def simulate(settings, start: datetime, duration: timedelta | None) -> Iterator[Batch]:
    """Batches of events from `start` for `duration` (None: forever), one UTC day at a time.

    Delayed labels that fall after the end come last, after the end.
    """
    if not isinstance(settings, Settings):
        settings = parse_settings(settings)
    start_ms = _to_ms(start)
    end_ms = start_ms + int(duration / timedelta(milliseconds=1)) if duration is not None else None
    simulation = Simulation(settings)
    pending: list[Batch] = []
    for day in count(start_ms // DAY_MS):
        day_end = (day + 1) * DAY_MS
        if end_ms is not None and day * DAY_MS >= end_ms:
            break
        limit = day_end if end_ms is None else min(day_end, end_ms)
        parts = simulation.day(day, start_ms, limit)
        ready, later = Batch.merge(pending + parts).split(day_end)
        pending = [later] if len(later) else []
        if len(ready):
            yield ready
    if pending:
        yield pending[0]


def generate(settings, start: datetime, duration: timedelta | None) -> Iterator[Event]:
    """Events from `start` for `duration` (None: forever) in event-time order; see Event."""
    for batch in simulate(settings, start, duration):
        moments = (_EPOCH + timedelta(milliseconds=ms) for ms in batch.time_ms.tolist())
        for kind, key, payload, moment in zip(
            batch.kind.tolist(), batch.keys, batch.payloads, moments, strict=True
        ):
            yield Event(KINDS[kind], key, payload, moment)
