"""One day of card transactions: legitimate traffic plus injected, labelled fraud scenarios.

Pure numpy: a world, a day and a random generator in, columns out. Times are milliseconds
since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraud_simulator.world import REGIONS, World, haversine_km

DAY_MS = 86_400_000
# Legitimate spending clusters around midday (the Handbook's daily cycle).
DAY_PEAK_S, DAY_SPREAD_S = 43_200.0, 20_000.0
# A card is never used twice within this gap by its owner: at most 4 legitimate payments fit
# in 18 minutes, so no legitimate spree, velocity burst or card test, and home terminals at
# most ~30 km apart keep the speed between two legitimate payments under 300 km/h.
MIN_LEGIT_GAP_MS = 6 * 60_000
COMPROMISED_TERMINAL_DAYS = 7
SKIMMER_LEAD_MS = 3_600_000  # a skimmer is fitted up to an hour before the first stolen card
IMPOSSIBLE_TRAVEL_MIN_KMH = 2_000.0
QUIET_SPEED_KMH = 600.0  # a victim's own payments stay this far (in travel time) from a trip
# A high-amount fraud is "far above the customer's usual amount": only a customer with a usual
# amount, that is at least this many of its own payments earlier in the stream, can be its
# victim (a card first seen in the stream has none), and the amount is 8 to 12 times the usual
# amount, well clear of a bank's 5x rule even when the usual amount is known from a few payments.
ESTABLISHED_PAYMENTS = 5
HIGH_AMOUNT_FACTORS = (8.0, 12.0)
HIGH_AMOUNT_MIN = (220.0, 600.0)  # and at least a draw from this range: a large payment anyway
HIGH_AMOUNT_TRIES = 8  # times of day tried for an incident before it is dropped (cold stream)
CHANNELS = ("pos", "ecommerce", "atm", "contactless")
POS, ECOMMERCE, ATM, CONTACTLESS = range(4)
NO_DEVICE = -1
LEGIT = -1


@dataclass
class Transactions:
    """Columns of transactions (unsorted until `sorted_by_time`)."""

    time_ms: np.ndarray
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    channel: np.ndarray
    device: np.ndarray  # NO_DEVICE, a customer's own device (its index) or a fraudster's
    scenario: np.ndarray  # LEGIT or an index into the settings' scenario names

    @classmethod
    def empty(cls) -> Transactions:
        ints = np.empty(0, np.int64)
        return cls(ints, ints, ints, np.empty(0), ints, ints, ints)

    def __len__(self) -> int:
        return len(self.time_ms)

    def concat(self, other: Transactions) -> Transactions:
        return Transactions(
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in _FIELDS)
        )

    def take(self, index: np.ndarray) -> Transactions:
        return Transactions(*(getattr(self, f)[index] for f in _FIELDS))

    def sorted_by_time(self) -> Transactions:
        return self.take(np.argsort(self.time_ms, kind="stable"))


_FIELDS = ("time_ms", "customer", "terminal", "amount", "channel", "device", "scenario")


@dataclass
class Incidents:
    """Scenario state that outlives a day: compromised terminals and their windows."""

    terminal: list[int] = field(default_factory=list)
    start_ms: list[int] = field(default_factory=list)
    end_ms: list[int] = field(default_factory=list)


def legit_day(world: World, day_start_ms: int, rng: np.random.Generator, last_ms: np.ndarray):
    """Every customer's own transactions of one day. `last_ms` (per customer) is updated."""
    counts = rng.poisson(world.customer_daily_rate)
    customer = np.repeat(np.arange(world.customers), counts)
    n = len(customer)
    seconds = rng.normal(DAY_PEAK_S, DAY_SPREAD_S, n)
    outside = (seconds < 0) | (seconds >= 86_400)
    seconds[outside] = rng.uniform(0, 86_400, outside.sum())
    time_ms = day_start_ms + (seconds * 1000).astype(np.int64)
    customer, time_ms = _spread_per_customer(customer, time_ms, last_ms)
    keep = time_ms < day_start_ms + DAY_MS
    customer, time_ms = customer[keep], time_ms[keep]
    n = len(customer)
    np.maximum.at(last_ms, customer, time_ms)

    picks = np.searchsorted(world.usable_cumweights, customer + rng.random(n), side="right")
    terminal = world.usable_terminals[np.minimum(picks, len(world.usable_terminals) - 1)]
    mean, std = world.customer_mean_amount[customer], world.customer_std_amount[customer]
    amount = rng.normal(mean, std)
    negative = amount <= 0
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    kind = world.terminal_kind[terminal]
    amount[kind == 1] = np.maximum(10.0, np.round(amount[kind == 1] / 10) * 10)
    amount = np.maximum(0.01, np.round(amount, 2))
    channel = np.select(
        [kind == 1, kind == 2, (amount <= 50) & (rng.random(n) < 0.6)],
        [ATM, ECOMMERCE, CONTACTLESS],
        POS,
    )
    device = np.where(channel == ECOMMERCE, customer, NO_DEVICE)
    return Transactions(time_ms, customer, terminal, amount, channel, device, np.full(n, LEGIT))


def _spread_per_customer(customer, time_ms, last_ms):
    """Push each customer's times apart by MIN_LEGIT_GAP_MS, also from the previous day's last.

    Rows come back grouped by customer and ascending in time within the customer.
    """
    order = np.lexsort((time_ms, customer))
    customer, time_ms = customer[order], time_ms[order].copy()
    if len(customer) == 0:
        return customer, time_ms
    first = np.concatenate([[True], customer[1:] != customer[:-1]])
    time_ms[first] = np.maximum(time_ms[first], last_ms[customer[first]] + MIN_LEGIT_GAP_MS)
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(customer)), 0))
    rank = np.arange(len(customer)) - group_start
    # t'_i = max over earlier j in the group of t_j + (i - j) * gap; group key keeps groups apart
    shifted = time_ms - rank * MIN_LEGIT_GAP_MS
    key = customer.astype(np.int64) << 42
    return customer, np.maximum.accumulate(key + shifted) - key + rank * MIN_LEGIT_GAP_MS


def drop_quiet(legit: Transactions, quiet: list[tuple[int, int, int]]) -> Transactions:
    """Remove a customer's own payments inside (customer, from_ms, to_ms) windows.

    A victim does not pay at home while the fraud of an incident unfolds, so that a legitimate
    payment never completes the pattern a rule looks for (a card back home minutes after it
    was used abroad). `legit` must be grouped by customer and ascending in time.
    """
    if not quiet:
        return legit
    customer, low, high = (np.array(column, np.int64) for column in zip(*quiet, strict=True))
    key = (legit.customer.astype(np.int64) << 42) + legit.time_ms
    starts = np.searchsorted(key, (customer << 42) + low)
    ends = np.searchsorted(key, (customer << 42) + high, side="right")
    inside = np.zeros(len(legit) + 1, np.int64)
    np.add.at(inside, starts, 1)
    np.add.at(inside, ends, -1)
    return legit.take(np.cumsum(inside[:-1]) == 0)


def compromise_terminals(world, day_start_ms, rng, incidents: Incidents, per_day: float) -> None:
    """Start new compromised-terminal incidents (a Poisson number) for this day."""
    candidates = np.flatnonzero((world.terminal_kind != 2) & (world.terminal_daily_rate > 0))
    for _ in range(rng.poisson(per_day) if len(candidates) else 0):
        start = day_start_ms + int(rng.integers(SKIMMER_LEAD_MS, DAY_MS))
        incidents.terminal.append(int(rng.choice(candidates)))
        incidents.start_ms.append(start)
        incidents.end_ms.append(start + COMPROMISED_TERMINAL_DAYS * DAY_MS)


def mark_compromised(legit: Transactions, incidents: Incidents, scenario: int) -> None:
    """Label the legitimate transactions at a terminal inside its compromised window."""
    for terminal, start, end in zip(
        incidents.terminal, incidents.start_ms, incidents.end_ms, strict=True
    ):
        hit = (legit.terminal == terminal) & (legit.time_ms >= start) & (legit.time_ms < end)
        legit.scenario[hit & (legit.scenario == LEGIT)] = scenario


def expire(incidents: Incidents, now_ms: int) -> None:
    alive = [i for i, end in enumerate(incidents.end_ms) if end > now_ms]
    for name in ("terminal", "start_ms", "end_ms"):
        setattr(incidents, name, [getattr(incidents, name)[i] for i in alive])


class PaymentHistory:
    """Which customers have a spending history in the stream at a given time of one day.

    `before_day`: per customer, its own payments (legitimate or at a compromised terminal) in
    the stream before the day; `legit`: the day's own payments, grouped by customer and
    ascending in time (as legit_day returns them); `stream_start_ms`: earlier payments are not
    in the stream. Indexed on first use, without the payments inside the quiet windows known
    then (so the other scenarios are injected first).
    """

    def __init__(self, before_day: np.ndarray, legit: Transactions, stream_start_ms: int) -> None:
        self.before_day, self.legit, self.stream_start_ms = before_day, legit, stream_start_ms
        self._index: tuple[np.ndarray, np.ndarray] | None = None

    def established(self, time_ms: int, quiet: list[tuple[int, int, int]]) -> np.ndarray:
        """The customers with at least ESTABLISHED_PAYMENTS own payments before `time_ms`."""
        if self._index is None:
            self._index = self._established_since(drop_quiet(self.legit, quiet))
        customers, since_ms = self._index
        return customers[: int(np.searchsorted(since_ms, time_ms, side="right"))]

    def _established_since(self, legit: Transactions) -> tuple[np.ndarray, np.ndarray]:
        """(customers sorted by the time they became established, those times)."""
        inside = legit.time_ms >= self.stream_start_ms
        customer, time_ms = legit.customer[inside], legit.time_ms[inside]
        rank = np.arange(len(customer))
        if len(customer):
            first = np.concatenate([[True], customer[1:] != customer[:-1]])
            rank -= np.maximum.accumulate(np.where(first, rank, 0))
        since = np.full(len(self.before_day), np.iinfo(np.int64).max, np.int64)
        since[self.before_day >= ESTABLISHED_PAYMENTS] = np.iinfo(np.int64).min
        # established just after the payment that brings the count to ESTABLISHED_PAYMENTS
        nth = rank == ESTABLISHED_PAYMENTS - 1 - self.before_day[customer]
        since[customer[nth]] = time_ms[nth] + 1
        order = np.argsort(since, kind="stable")
        return order, since[order]


class Injector:
    """Builds the transactions of injected scenarios for one day (small counts: plain loops).

    With a `history`, high-amount frauds only hit customers established in the stream.
    """

    def __init__(
        self,
        world: World,
        day_start_ms: int,
        rng: np.random.Generator,
        history: PaymentHistory | None = None,
    ) -> None:
        self.world, self.day_start_ms, self.rng, self.history = world, day_start_ms, rng, history
        self.rows: list[tuple[int, int, int, float, int, int, int]] = []
        self.quiet: list[tuple[int, int, int]] = []  # (customer, from_ms, to_ms): see drop_quiet
        active = np.flatnonzero(world.customer_daily_rate > 0)
        self.victims = active if len(active) else np.arange(world.customers)
        region, kind = world.terminal_region, world.terminal_kind
        self.physical = [np.flatnonzero((region == r) & (kind != 2)) for r in range(len(REGIONS))]
        self.online = [np.flatnonzero((region == r) & (kind == 2)) for r in range(len(REGIONS))]

    def result(self) -> Transactions:
        if not self.rows:
            return Transactions.empty()
        cols = list(zip(*self.rows, strict=True))
        return Transactions(
            *(np.array(col, dtype=float if i == 3 else np.int64) for i, col in enumerate(cols))
        )

    def _add(self, time_ms, customer, terminal, amount, device, scenario) -> None:
        kind = self.world.terminal_kind[terminal]
        channel = ATM if kind == 1 else ECOMMERCE if kind == 2 else POS
        amount = max(10.0, round(amount / 10) * 10) if kind == 1 else max(0.01, round(amount, 2))
        self.rows.append((time_ms, customer, terminal, amount, channel, device, scenario))

    def _start(self, span_ms: int) -> int:
        return self.day_start_ms + int(self.rng.integers(0, DAY_MS - span_ms))

    def _victim(self) -> int:
        return int(self.rng.choice(self.victims))

    def _typical_amount(self, customer: int, factor_low: float, factor_high: float) -> float:
        mean = self.world.customer_mean_amount[customer]
        return mean * self.rng.uniform(factor_low, factor_high)

    def _fraudster_device(self) -> int:
        return int(self.rng.integers(10**9, 10**10))

    def impossible_travel(self, scenario: int) -> None:
        """The card in its home region, then minutes later in another region, far away."""
        rng, world = self.rng, self.world
        customer = self._victim()
        home = int(world.customer_region[customer])
        away = int(
            rng.choice([r for r in range(len(REGIONS)) if r != home and len(self.physical[r])])
        )
        if not len(self.physical[home]):
            return
        first, second = int(rng.choice(self.physical[home])), int(rng.choice(self.physical[away]))
        lat, lon = world.terminal_latlon(np.array([first, second]))
        km = float(haversine_km(lat[0], lon[0], lat[1], lon[1]))
        longest_ms = int(km / IMPOSSIBLE_TRAVEL_MIN_KMH * 3_600_000)
        gap = int(rng.integers(60_000, max(longest_ms, 60_001)))
        start = self._start(gap)
        for time_ms, terminal in ((start, first), (start + gap, second)):
            amount = self._typical_amount(customer, 1, 3)
            self._add(time_ms, customer, terminal, amount, NO_DEVICE, scenario)
        back_home_ms = int(km / QUIET_SPEED_KMH * 3_600_000)
        self.quiet.append((customer, start - back_home_ms, start + gap + back_home_ms))

    def spending_spree(self, scenario: int) -> None:
        """4 to 6 payments in distinct categories at nearby shops within 15 minutes."""
        rng, world = self.rng, self.world
        customer = self._victim()
        shops = self.physical[int(world.customer_region[customer])]
        order = np.argsort(
            np.linalg.norm(world.terminal_xy[shops] - world.customer_xy[customer], axis=1)
        )
        chosen, seen = [], set()
        for terminal in shops[order]:
            if world.terminal_category[terminal] not in seen:
                seen.add(world.terminal_category[terminal])
                chosen.append(int(terminal))
        count = int(rng.integers(4, 7))
        if len(chosen) < 4:
            return
        times = self._times(rng.integers(90_000, 170_000, count - 1))
        self.quiet.append((customer, int(times[0]) - 15 * 60_000, int(times[-1]) + 15 * 60_000))
        for time_ms, terminal in zip(times, chosen[:count], strict=False):
            self._add(
                int(time_ms),
                customer,
                terminal,
                self._typical_amount(customer, 1, 3),
                NO_DEVICE,
                scenario,
            )

    def _online_victim(self) -> tuple[int, np.ndarray, int]:
        """A victim, the online merchants of its city (may be none) and a fraudster's device."""
        customer = self._victim()
        return (
            customer,
            self.online[int(self.world.customer_region[customer])],
            self._fraudster_device(),
        )

    def _times(self, gaps: np.ndarray) -> np.ndarray:
        """Event times of an incident with these gaps, starting at a random time of the day."""
        start = self._start(int(gaps.sum()))
        return start + np.concatenate([[0], np.cumsum(gaps)])

    def card_testing(self, scenario: int) -> None:
        """1-3 tiny online payments, then a large one at the same merchant within 5 minutes."""
        rng = self.rng
        customer, shops, device = self._online_victim()
        if not len(shops):
            return
        shop, tests = int(rng.choice(shops)), int(rng.integers(1, 4))
        gaps = np.concatenate(
            [rng.integers(10_000, 40_000, tests - 1), [rng.integers(30_000, 150_000)]]
        )
        times = self._times(gaps)
        self.quiet.append((customer, int(times[0]) - 5 * 60_000, int(times[-1]) + 5 * 60_000))
        for time_ms in times[:-1]:
            self._add(int(time_ms), customer, shop, rng.uniform(0.5, 2.0), device, scenario)
        self._add(int(times[-1]), customer, shop, rng.uniform(200, 2000), device, scenario)

    def account_takeover(self, scenario: int) -> None:
        """A new device buys online for 3 to 8 times the customer's usual amounts, over hours."""
        rng = self.rng
        customer, shops, device = self._online_victim()
        if not len(shops):
            return
        gaps = rng.integers(10 * 60_000, 3 * 3_600_000, int(rng.integers(1, 5)))
        for time_ms in self._times(gaps):
            amount = self._typical_amount(customer, 3, 8)
            self._add(int(time_ms), customer, int(rng.choice(shops)), amount, device, scenario)

    def high_amount(self, scenario: int) -> None:
        """One payment at a usual terminal for 8 to 12 times the usual amount (at least 220),
        by a customer with a usual amount: ESTABLISHED_PAYMENTS own payments in the stream."""
        rng, world = self.rng, self.world
        for _ in range(HIGH_AMOUNT_TRIES):
            time_ms = self._start(0)
            if self.history is None:
                customer = self._victim()
                break
            candidates = self.history.established(time_ms, self.quiet)
            if len(candidates):
                customer = int(candidates[rng.integers(0, len(candidates))])
                break
        else:
            return  # nobody has a history yet: the first hours of a stream
        lo, hi = world.usable_offsets[customer], world.usable_offsets[customer + 1]
        if lo == hi:
            return
        terminal = int(world.usable_terminals[rng.integers(lo, hi)])
        amount = max(
            self._typical_amount(customer, *HIGH_AMOUNT_FACTORS), rng.uniform(*HIGH_AMOUNT_MIN)
        )
        device = customer if world.terminal_kind[terminal] == 2 else NO_DEVICE
        self._add(time_ms, customer, terminal, amount, device, scenario)


# Expected transactions of one incident of each injected scenario (for the fraud-rate budget).
TRANSACTIONS_PER_INCIDENT = {
    "impossible_travel": 2.0,
    "spending_spree": 5.0,
    "card_testing": 3.0,
    "account_takeover": 3.0,
    "high_amount": 1.0,
}
