"""Sensor readings of ATMs and branch terminals, with noise, and skimmer installations.

A reading every 15 minutes per terminal with sensors. A compromised terminal that has sensors
shows its skimmer: a jolt and the tamper switch when it is fitted, then an abnormal card-reader
signal until the incident ends. Those readings are labelled `skimmer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraud_simulator.transactions import DAY_MS, LEGIT, SKIMMER_LEAD_MS, Incidents
from fraud_simulator.world import World

READING_INTERVAL_MS = 15 * 60_000
MAINTENANCE_DOOR_OPENINGS_PER_DAY = 1 / 14
FALSE_TAMPER_PER_READING = 1e-4


@dataclass
class Readings:
    time_ms: np.ndarray
    terminal: np.ndarray
    temperature_c: np.ndarray
    vibration_g: np.ndarray
    door_open: np.ndarray
    tamper: np.ndarray
    reader_score: np.ndarray
    scenario: np.ndarray


def readings_day(
    world: World, day_start_ms: int, rng: np.random.Generator, incidents: Incidents, skimmer: int
) -> Readings:
    """All readings of one day, in time order, with skimmers of active incidents."""
    terminals = np.flatnonzero(world.terminal_has_sensors)
    phase = (terminals * 7919 * 1000) % READING_INTERVAL_MS
    slots = np.arange(DAY_MS // READING_INTERVAL_MS)
    time_ms = (day_start_ms + phase[None, :] + slots[:, None] * READING_INTERVAL_MS).ravel()
    terminal = np.tile(terminals, len(slots))
    n = len(time_ms)
    hour = (time_ms % DAY_MS) / 3_600_000
    offset = (terminal * 2_654_435_761 % 1000) / 250 - 2
    temperature = 21 + offset + 3 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 0.8, n)
    vibration = rng.lognormal(np.log(0.02), 0.5, n)
    readings_per_day = DAY_MS / READING_INTERVAL_MS
    door = rng.random(n) < MAINTENANCE_DOOR_OPENINGS_PER_DAY / readings_per_day
    tamper = rng.random(n) < FALSE_TAMPER_PER_READING
    score = rng.beta(1, 40, n)
    scenario = np.full(n, LEGIT)
    for victim, start, end in zip(
        incidents.terminal, incidents.start_ms, incidents.end_ms, strict=True
    ):
        if not world.terminal_has_sensors[victim]:
            continue
        fitted = start - int(
            np.random.default_rng([world.seed, victim, start]).integers(5 * 60_000, SKIMMER_LEAD_MS)
        )
        mine = terminal == victim
        during = mine & (time_ms >= fitted) & (time_ms < end)
        scenario[during] = skimmer
        score[during] = 0.35 + 0.65 * rng.beta(6, 3, during.sum())
        first = np.flatnonzero(during & (time_ms < fitted + READING_INTERVAL_MS))
        tamper[first] = True
        vibration[first] = rng.uniform(0.5, 2.5, len(first))
    order = np.argsort(time_ms, kind="stable")
    return Readings(
        time_ms[order],
        terminal[order],
        np.round(np.clip(temperature[order], -60, 100), 2),
        np.round(vibration[order], 4),
        door[order],
        tamper[order],
        np.round(score[order], 4),
        scenario[order],
    )
