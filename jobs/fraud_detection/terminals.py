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
TERMINAL_FEATURES = (
    "terminal_nb_tx_1day",
    "terminal_nb_tx_7day",
    "terminal_nb_tx_30day",
    "terminal_risk_1day",
    "terminal_risk_7day",
    "terminal_risk_30day",
)
KEPT_DAYS = 30
RECENT_KEPT = 50  # transaction ids remembered per terminal, so a redelivery does not count twice


@dataclass
class TerminalState:
    """Per UTC day (days since the epoch) of one terminal: [transactions, labelled, frauds];
    and the ids of its last RECENT_KEPT transactions."""

    days: dict[int, list[int]] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)
    # (day, the counts of the 6 and 29 days before it): a terminal has many transactions a day,
    # and its earlier days only change when a label or a late transaction comes. Not stored.
    _earlier: tuple[int, tuple[list[int], list[int]]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def latest_day(self) -> int:
        return max(self.days, default=0)

    def add_transaction(self, event_ms: int, transaction_id: str) -> list[float]:
        """Count a transaction (once: a recent id again is not counted); its TERMINAL_FEATURES
        (the transaction included)."""
        day = event_ms // DAY_MS
        if transaction_id in self.recent:
            return self.features(day)
        self.recent = [*self.recent[1 - RECENT_KEPT :], transaction_id]
        if day not in self.days:  # a new day: days out of the newest day's windows go
            newest = max(day, self.latest_day)
            self.days = {when: c for when, c in self.days.items() if when > newest - KEPT_DAYS}
            self.days[day] = [0, 0, 0]
            self._earlier = None
        self._changed(day)
        self.days[day][0] += 1
        return self.features(day)

    def add_label(self, event_ms: int, is_fraud: bool) -> None:
        """Count the label of a transaction at `event_ms`, also when the label comes first;
        ignored when older than the windows."""
        day = event_ms // DAY_MS
        if day > self.latest_day - KEPT_DAYS:
            self._changed(day)
            counts = self.days.setdefault(day, [0, 0, 0])
            counts[1] += 1
            counts[2] += int(is_fraud)

    def features(self, day: int) -> list[float]:
        """TERMINAL_FEATURES on `day`, from the counts so far."""
        if self._earlier is None or self._earlier[0] != day:
            self._earlier = (day, self._counts_before(day))
        tx_1, labelled_1, frauds_1 = self.days.get(day, (0, 0, 0))
        week, month = self._earlier[1]
        tx_7, labelled_7, frauds_7 = tx_1 + week[0], labelled_1 + week[1], frauds_1 + week[2]
        tx_30, labelled_30, frauds_30 = tx_1 + month[0], labelled_1 + month[1], frauds_1 + month[2]
        return [
            float(tx_1),
            float(tx_7),
            float(tx_30),
            frauds_1 / labelled_1 if labelled_1 else 0.0,
            frauds_7 / labelled_7 if labelled_7 else 0.0,
            frauds_30 / labelled_30 if labelled_30 else 0.0,
        ]

    def _counts_before(self, day: int) -> tuple[list[int], list[int]]:
        """[transactions, labelled, frauds] of the 6 days before `day`, and of the 29."""
        tx_7 = labelled_7 = frauds_7 = tx_30 = labelled_30 = frauds_30 = 0
        for when, (transactions, labelled, frauds) in self.days.items():
            age = day - when
            if 0 < age < KEPT_DAYS:
                tx_30, labelled_30, frauds_30 = (
                    tx_30 + transactions,
                    labelled_30 + labelled,
                    frauds_30 + frauds,
                )
                if age < 7:
                    tx_7, labelled_7, frauds_7 = (
                        tx_7 + transactions,
                        labelled_7 + labelled,
                        frauds_7 + frauds,
                    )
        return [tx_7, labelled_7, frauds_7], [tx_30, labelled_30, frauds_30]

    def _changed(self, day: int) -> None:
        """Forget the counts before the cached day when `day` is one of them."""
        if self._earlier is not None and day != self._earlier[0]:
            self._earlier = None

    def to_list(self) -> list:
        return [[[day, *counts] for day, counts in self.days.items()], self.recent]

    @classmethod
    def from_list(cls, entries: list) -> TerminalState:
        days, recent = entries
        return cls({day: counts for day, *counts in days}, recent)
