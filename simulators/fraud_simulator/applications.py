"""Card and loan applications, with rings of synthetic identities.

A synthetic identity ring files several applications that share one phone number, address or
device, while names, birth dates and e-mail addresses differ by small edits. Every application
of a ring is labelled `synthetic_identity`.
"""

from __future__ import annotations

import numpy as np

from fraud_simulator.transactions import DAY_MS, LEGIT
from fraud_simulator.world import REGION_CODES

APPLICATIONS_PER_CUSTOMER_PER_DAY = 0.01
RING_SIZE = (3, 7)  # applications per ring, low inclusive, high exclusive
FIRST_NAMES = (
    "Anna",
    "Lucas",
    "Sofia",
    "Noah",
    "Emma",
    "Liam",
    "Mia",
    "Elias",
    "Lea",
    "Jonas",
    "Clara",
    "Mateo",
    "Julia",
    "Hugo",
    "Eva",
    "Luca",
    "Nora",
    "Leon",
    "Ines",
    "Finn",
)
LAST_NAMES = (
    "Jansen",
    "Martin",
    "Garcia",
    "Rossi",
    "Muller",
    "Huber",
    "Silva",
    "Papadopoulos",
    "Virtanen",
    "Murphy",
    "Bakker",
    "Bernard",
    "Lopez",
    "Russo",
    "Schmidt",
    "Wagner",
    "Santos",
    "Nikolaou",
    "Korhonen",
    "Kelly",
)
STREETS = ("Main St", "Station Rd", "Church Ln", "Park Ave", "Mill Rd", "High St", "Canal St")
DOMAINS = ("mail.example", "post.example", "inbox.example")


def _edit_name(rng: np.random.Generator, name: str) -> str:
    """A small edit: swap two neighbouring letters, drop one, or double one."""
    letters = list(name)
    i = int(rng.integers(1, len(letters) - 1))
    edit = int(rng.integers(0, 3))
    if edit == 0:
        letters[i], letters[i + 1] = letters[i + 1], letters[i]
    elif edit == 1 and letters[i] != " ":
        del letters[i]
    else:
        letters.insert(i, letters[i])
    return "".join(letters)


class ApplicationFactory:
    """Random applicants; deterministic for the generator it is given."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def _pick(self, options):
        return options[int(self.rng.integers(0, len(options)))]

    def applicant(self) -> dict:
        rng = self.rng
        first, last = self._pick(FIRST_NAMES), self._pick(LAST_NAMES)
        born = np.datetime64("1950-01-01") + int(rng.integers(0, 54 * 365))
        return {
            "applicant_name": f"{first} {last}",
            "date_of_birth": str(born),
            "national_id": f"{int(rng.integers(10**8, 10**9))}",
            "email": f"{first}.{last}{int(rng.integers(1, 100))}@{self._pick(DOMAINS)}".lower(),
            "phone": f"+{int(rng.integers(30, 50))}6{int(rng.integers(10**7, 10**8))}",
            "address_line": f"{int(rng.integers(1, 300))} {self._pick(STREETS)}",
            "postcode": f"{int(rng.integers(1000, 10000))}{self._pick('ABCDEFGH')}"
            f"{self._pick('JKLMNPRS')}",
            "region": self._pick(REGION_CODES),
            "device_id": f"D{int(rng.integers(10**9, 10**10))}",
            "ip_address": ".".join(str(int(x)) for x in rng.integers(1, 255, 4)),
        }

    def product(self) -> dict:
        rng = self.rng
        loan = bool(rng.random() < 0.4)
        amount = rng.uniform(2_000, 50_000) if loan else rng.uniform(1_000, 10_000)
        return {
            "product": "personal_loan" if loan else "credit_card",
            "requested_amount": round(float(amount), 2),
            "annual_income": round(float(rng.lognormal(np.log(40_000), 0.5)), 2),
        }

    def ring(self) -> list[dict]:
        """The applicant fields of one synthetic-identity ring."""
        rng = self.rng
        base = self.applicant()
        shared = self._pick((("phone",), ("address_line", "postcode"), ("device_id",)))
        members = []
        for _ in range(int(rng.integers(*RING_SIZE))):
            member = self.applicant()
            member.update({key: base[key] for key in shared})
            name = _edit_name(rng, base["applicant_name"])
            born = np.datetime64(base["date_of_birth"]) + int(rng.integers(-2, 3))
            member["applicant_name"] = name
            member["date_of_birth"] = str(born)
            number = int(rng.integers(1, 1000))
            member["email"] = f"{name.replace(' ', '.')}{number}@{self._pick(DOMAINS)}".lower()
            member["ip_address"] = (
                base["ip_address"].rsplit(".", 1)[0] + f".{int(rng.integers(1, 255))}"
            )
            members.append(member)
        return members


def applications_day(
    customers: int, fraud_rate: float, day_start_ms: int, rng: np.random.Generator, scenario: int
) -> list[tuple[int, int, dict]]:
    """(time_ms, scenario, fields) of one day's applications, in time order."""
    factory = ApplicationFactory(rng)
    per_day = customers * APPLICATIONS_PER_CUSTOMER_PER_DAY
    rows = [
        (
            day_start_ms + int(rng.integers(0, DAY_MS)),
            LEGIT,
            {**factory.applicant(), **factory.product()},
        )
        for _ in range(rng.poisson(per_day))
    ]
    rings = rng.poisson(fraud_rate * per_day / (sum(RING_SIZE) / 2))
    for _ in range(rings):
        for fields in factory.ring():
            rows.append(
                (
                    day_start_ms + int(rng.integers(0, DAY_MS)),
                    scenario,
                    {**fields, **factory.product()},
                )
            )
    rows.sort(key=lambda row: row[0])
    return rows
