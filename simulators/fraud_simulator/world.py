"""The simulated world: regions on a map, terminals and customers with their profiles.

A model in the spirit of the Fraud Detection Handbook's simulator: customers and terminals sit
at random places, each customer uses the terminals within a radius of home, transacts a Poisson
number of times a day with normally distributed amounts. Extended with regions (cities far
apart), terminal kinds, merchant categories, cards and devices. Pure: a seed in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraud_events import luhn_check_digit

# Eurozone cities at least 430 km apart: a card seen in two of them minutes apart travelled
# far faster than any airliner.
REGIONS = (
    ("AMS", 52.3676, 4.9041),
    ("PAR", 48.8566, 2.3522),
    ("MAD", 40.4168, -3.7038),
    ("ROM", 41.9028, 12.4964),
    ("BER", 52.5200, 13.4050),
    ("VIE", 48.2082, 16.3738),
    ("LIS", 38.7223, -9.1393),
    ("ATH", 37.9838, 23.7275),
    ("HEL", 60.1699, 24.9384),
    ("DUB", 53.3498, -6.2603),
)
REGION_CODES = tuple(code for code, _, _ in REGIONS)
CURRENCY = "EUR"
REGION_RADIUS_KM = 15.0  # customers and terminals live within this distance of the centre
HOME_RADIUS_KM = 5.0  # a customer uses the physical terminals within this distance of home
MIN_HOME_TERMINALS = 2
ONLINE_TERMINALS_PER_CUSTOMER = 2
KM_PER_DEGREE = 111.32
EARTH_RADIUS_KM = 6371.0

TERMINAL_KINDS = ("pos", "atm", "online")
TERMINAL_KIND_SHARES = (0.70, 0.10, 0.20)
POS_CATEGORIES = (
    "grocery",
    "restaurants",
    "fuel",
    "fashion",
    "health",
    "entertainment",
    "electronics",
    "travel",
)
POS_CATEGORY_SHARES = (0.30, 0.20, 0.12, 0.10, 0.10, 0.08, 0.05, 0.05)
ONLINE_CATEGORIES = ("digital_goods", "electronics", "fashion", "travel", "entertainment")
BRANCH_SHARE = 0.10  # share of POS terminals that stand in a bank branch (and have sensors)


@dataclass(frozen=True)
class World:
    """Everything that does not change from day to day, as parallel arrays."""

    seed: int
    # terminals
    terminal_region: np.ndarray  # int, index into REGIONS
    terminal_xy: np.ndarray  # float (n, 2), km east/north of the region centre
    terminal_kind: np.ndarray  # int, index into TERMINAL_KINDS
    terminal_category: np.ndarray  # object, merchant category
    terminal_has_sensors: np.ndarray  # bool: ATMs and branch terminals
    terminal_daily_rate: np.ndarray  # float, expected legitimate transactions a day
    # customers
    customer_region: np.ndarray
    customer_xy: np.ndarray
    customer_mean_amount: np.ndarray
    customer_std_amount: np.ndarray
    customer_daily_rate: np.ndarray  # mean transactions a day (Poisson)
    card_numbers: list[str]
    # the terminals each customer uses: CSR rows with cumulative preference weights
    usable_offsets: np.ndarray  # int (customers + 1,)
    usable_terminals: np.ndarray  # int
    usable_cumweights: np.ndarray  # float, customer index + cumulative weight in (0, 1]

    @property
    def customers(self) -> int:
        return len(self.customer_region)

    @property
    def terminals(self) -> int:
        return len(self.terminal_region)

    def terminal_latlon(self, terminals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centre = np.array([(lat, lon) for _, lat, lon in REGIONS])[self.terminal_region[terminals]]
        xy = self.terminal_xy[terminals]
        lat = centre[:, 0] + xy[:, 1] / KM_PER_DEGREE
        lon = centre[:, 1] + xy[:, 0] / (KM_PER_DEGREE * np.cos(np.radians(centre[:, 0])))
        return lat, lon


def card_number(issuer: int, customer: int) -> str:
    """A 16-digit Luhn-valid card number: 4, a 5-digit issuer, 9 digits of the customer."""
    partial = f"4{issuer:05d}{customer:09d}"
    return partial + luhn_check_digit(partial)


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km (numpy-friendly)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def _points_in_disc(rng: np.random.Generator, count: int, radius: float) -> np.ndarray:
    r = radius * np.sqrt(rng.random(count))
    angle = rng.random(count) * 2 * np.pi
    return np.column_stack([r * np.cos(angle), r * np.sin(angle)])


def build_world(seed: int, customers: int, terminals: int) -> World:
    """Place `terminals` terminals and `customers` customers; deterministic for `seed`."""
    rng = np.random.default_rng([seed, 0])
    t_region = rng.integers(0, len(REGIONS), terminals)
    t_xy = _points_in_disc(rng, terminals, REGION_RADIUS_KM)
    t_kind = rng.choice(len(TERMINAL_KINDS), terminals, p=TERMINAL_KIND_SHARES)
    pos_category = rng.choice(len(POS_CATEGORIES), terminals, p=POS_CATEGORY_SHARES)
    online_category = rng.integers(0, len(ONLINE_CATEGORIES), terminals)
    category = np.where(
        t_kind == 0,
        np.array(POS_CATEGORIES, dtype=object)[pos_category],
        np.array(ONLINE_CATEGORIES, dtype=object)[online_category],
    )
    category[t_kind == 1] = "cash"
    has_sensors = (t_kind == 1) | ((t_kind == 0) & (rng.random(terminals) < BRANCH_SHARE))

    c_region = rng.integers(0, len(REGIONS), customers)
    c_xy = _points_in_disc(rng, customers, REGION_RADIUS_KM)
    mean_amount = rng.uniform(5, 100, customers)
    daily_rate = rng.uniform(0, 4, customers)
    issuer = int(rng.integers(10000, 100000))

    offsets, usable, weights = _usable_terminals(rng, t_region, t_xy, t_kind, c_region, c_xy)
    counts = np.diff(offsets)
    owner = np.repeat(np.arange(customers), counts)
    cumweights = owner + _cumsum_within(weights, offsets)
    cumweights[offsets[1:][counts > 0] - 1] = owner[offsets[1:][counts > 0] - 1] + 1.0
    terminal_rate = np.bincount(usable, weights=weights * daily_rate[owner], minlength=terminals)
    return World(
        seed=seed,
        terminal_region=t_region,
        terminal_xy=t_xy,
        terminal_kind=t_kind,
        terminal_category=category,
        terminal_has_sensors=has_sensors,
        terminal_daily_rate=terminal_rate,
        customer_region=c_region,
        customer_xy=c_xy,
        customer_mean_amount=mean_amount,
        customer_std_amount=mean_amount / 2,
        customer_daily_rate=np.where(counts > 0, daily_rate, 0.0),
        card_numbers=[card_number(issuer, c) for c in range(customers)],
        usable_offsets=offsets,
        usable_terminals=usable,
        usable_cumweights=cumweights,
    )


def _usable_terminals(rng, t_region, t_xy, t_kind, c_region, c_xy):
    """Per customer: physical terminals near home and a few online ones of the home region."""
    owners, picks = [], []
    for region in range(len(REGIONS)):
        in_region = np.flatnonzero(t_region == region)
        physical = in_region[t_kind[in_region] != 2]
        online = in_region[t_kind[in_region] == 2]
        members = np.flatnonzero(c_region == region)
        for start in range(0, len(members), 2048):
            block = members[start : start + 2048]
            if len(physical):
                dist = np.linalg.norm(c_xy[block, None, :] - t_xy[None, physical, :], axis=2)
                near = dist <= HOME_RADIUS_KM
                k = min(MIN_HOME_TERMINALS, len(physical))
                nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
                near[np.arange(len(block))[:, None], nearest] = True
                rows, cols = np.nonzero(near)
                owners.append(block[rows])
                picks.append(physical[cols])
            for _ in range(min(ONLINE_TERMINALS_PER_CUSTOMER, len(online))):
                owners.append(block)
                picks.append(online[rng.integers(0, len(online), len(block))])
    owner = np.concatenate(owners) if owners else np.empty(0, np.int64)
    usable = np.concatenate(picks) if picks else np.empty(0, np.int64)
    order = np.lexsort((usable, owner))
    owner, usable = owner[order], usable[order]
    keep = np.concatenate([[True], (owner[1:] != owner[:-1]) | (usable[1:] != usable[:-1])])
    owner, usable = owner[keep], usable[keep]
    counts = np.bincount(owner, minlength=len(c_region))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    # preference weights: a Dirichlet draw per customer (normalised gamma draws)
    raw = rng.gamma(1.0, 1.0, len(usable))
    totals = np.bincount(owner, weights=raw, minlength=len(c_region))
    return offsets, usable, raw / totals[owner]


def _cumsum_within(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at every CSR row."""
    total = np.cumsum(values)
    row_start = np.concatenate([[0.0], total])[offsets[:-1]]
    return total - np.repeat(row_start, np.diff(offsets))
