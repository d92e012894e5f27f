"""Terminal features for the model: each terminal's transactions and known frauds per day.

The Fraud Detection Handbook's terminal features, for a transaction on day D (UTC, event time)
and windows of w = 1, 7 and 30 days (days D-w+1 to D):
- `terminal_nb_tx_<w>day`: the terminal's transactions in the window, this one included;
- `terminal_risk_<w>day`: the share of frauds among the window's transactions whose label has
  arrived (0 when none has).
A label counts from the moment it is processed, on the day of its transaction: the delay
between a transaction and its label is the real one (the Handbook shifts its windows by a fixed
7-day delay instead, on data where every label is known). Days are whole UTC days, so the state
of a terminal is at most 30 small counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 86_400_000
WINDOW_DAYS = (1, 7, 30)
TERMINAL_FEATURES = (
    *(f"terminal_nb_tx_{days}day" for days in WINDOW_DAYS),
    *(f"terminal_risk_{days}day" for days in WINDOW_DAYS),
)
KEPT_DAYS = max(WINDOW_DAYS)


@dataclass
class TerminalState:
    """Per UTC day (days since the epoch) of one terminal: [transactions, labelled, frauds]."""

    days: dict[int, list[int]] = field(default_factory=dict)

    @property
    def latest_day(self) -> int:
        return max(self.days, default=0)

    def add_transaction(self, event_ms: int) -> list[float]:
        """Count a transaction; its TERMINAL_FEATURES (the transaction included)."""
        day = event_ms // DAY_MS
        if day not in self.days:
            if day > self.latest_day:  # a new day: the oldest falls out of the windows
                self.days = {when: c for when, c in self.days.items() if when > day - KEPT_DAYS}
            self.days[day] = [0, 0, 0]
        self.days[day][0] += 1
        return self.features(day)

    def add_label(self, event_ms: int, is_fraud: bool) -> None:
        """Count the label of a transaction at `event_ms` (older than the windows: ignored)."""
        counts = self.days.get(event_ms // DAY_MS)
        if counts is not None:
            counts[1] += 1
            counts[2] += int(is_fraud)

    def features(self, day: int) -> list[float]:
        """TERMINAL_FEATURES on `day`, from the counts so far."""
        totals = [[0, 0, 0] for _ in WINDOW_DAYS]
        for when, counts in self.days.items():
            age = day - when
            for total, days in zip(totals, WINDOW_DAYS, strict=True):
                if 0 <= age < days:
                    total[0] += counts[0]
                    total[1] += counts[1]
                    total[2] += counts[2]
        return [
            *(float(transactions) for transactions, _, _ in totals),
            *(frauds / labelled if labelled else 0.0 for _, labelled, frauds in totals),
        ]

    def to_list(self) -> list[list[int]]:
        return [[day, *counts] for day, counts in self.days.items()]

    @classmethod
    def from_list(cls, entries: list[list[int]]) -> TerminalState:
        return cls({day: counts for day, *counts in entries})
