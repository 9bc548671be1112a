"""The simulator's product catalogue: contract specs and the quarterly listing cycle as a function of time.

Every product follows the CME equity-index convention (a simplification for metals and energy, which list
monthly contracts on other calendars): a contract of March, June, September or December expires at 09:30
New York on the third Friday of its month (the final settlement), and the front rolls 8 days earlier, on the
Thursday: from the opening of that Thursday's trading day (18:00 New York on the Wednesday) the next contract
is the active one. At any moment the listed contracts are the ones not yet expired among the expiring one
(inactive once rolled), the active one and the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..models import Contract
from ..times import to_us

_QUARTERS = {3: ("H", "March"), 6: ("M", "June"), 9: ("U", "September"), 12: ("Z", "December")}
_MONTH_OF_CODE = {code: month for month, (code, _) in _QUARTERS.items()}
_NEW_YORK = ZoneInfo("America/New_York")
_ROLL_DAYS = 8  # the roll date is 8 days before the expiry: the Thursday of the week before


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """One futures product: ProjectX root, CME ticker, tick grid, and the simulator's market parameters."""

    root: str  # ProjectX root used in contract and symbol ids (EP for ES)
    ticker: str  # CME ticker used in contract names (ES)
    description: str
    tick_size: float
    tick_value: float
    base_price: float  # centre of the seeded price path
    daily_vol: float  # daily volatility as a fraction of price
    fee: float  # dollars per contract per fill
    margin: float  # dollars held per open contract
    symbol_name: str  # quote `symbolName`, e.g. /NQ
    carry: float  # yearly cost of carry: a contract trades at the product's level * (1 + carry * years to expiry)

    @property
    def symbol_id(self) -> str:
        return f"F.US.{self.root}"


PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec("MNQ", "MNQ", "Micro E-mini Nasdaq-100", 0.25, 0.50, 21000.0, 0.012, 0.37, 2100.0, "/MNQ", 0.02),
    ProductSpec("ENQ", "NQ", "E-mini NASDAQ-100", 0.25, 5.00, 21000.0, 0.012, 1.40, 21000.0, "/NQ", 0.02),
    ProductSpec("MES", "MES", "Micro E-mini S&P 500", 0.25, 1.25, 6000.0, 0.009, 0.37, 1500.0, "/MES", 0.02),
    ProductSpec("EP", "ES", "E-mini S&P 500", 0.25, 12.50, 6000.0, 0.009, 1.40, 15000.0, "/ES", 0.02),
    ProductSpec("MYM", "MYM", "Micro E-mini Dow Jones", 1.0, 0.50, 44000.0, 0.008, 0.37, 1300.0, "/MYM", 0.015),
    ProductSpec("YM", "YM", "E-mini Dow Jones", 1.0, 5.00, 44000.0, 0.008, 1.40, 13000.0, "/YM", 0.015),
    ProductSpec("M2K", "M2K", "Micro E-mini Russell 2000", 0.1, 0.50, 2300.0, 0.013, 0.37, 700.0, "/M2K", 0.025),
    ProductSpec("RTY", "RTY", "E-mini Russell 2000", 0.1, 5.00, 2300.0, 0.013, 1.40, 7000.0, "/RTY", 0.025),
    ProductSpec("MGC", "MGC", "Micro Gold", 0.1, 1.00, 2700.0, 0.010, 0.52, 1100.0, "/MGC", 0.03),
    ProductSpec("GCE", "GC", "Gold", 0.1, 10.00, 2700.0, 0.010, 1.62, 11000.0, "/GC", 0.03),
    ProductSpec("MCLE", "MCL", "Micro WTI Crude Oil", 0.01, 1.00, 70.0, 0.020, 0.52, 700.0, "/MCL", 0.01),
    ProductSpec("CLE", "CL", "Crude Oil", 0.01, 10.00, 70.0, 0.020, 1.62, 7000.0, "/CL", 0.01),
)

PRODUCTS_BY_ROOT = {p.root: p for p in PRODUCTS}


@dataclass(frozen=True, slots=True, order=True)
class Expiry:
    """One quarterly expiry of the cycle (March, June, September, December) and its calendar."""

    year: int
    month: int

    @classmethod
    def of(cls, code: str) -> Expiry | None:
        """The expiry of a contract id's last part (H26), or None when it is no quarterly code."""
        if len(code) != 3 or code[0] not in _MONTH_OF_CODE or not code[1:].isdigit():
            return None
        return cls(2000 + int(code[1:]), _MONTH_OF_CODE[code[0]])

    @classmethod
    def first_after(cls, t_us: int) -> Expiry:
        """The first expiry that has not expired at t_us."""
        at = datetime.fromtimestamp(t_us / 1_000_000, _NEW_YORK)
        expiry = cls(at.year, (at.month + 2) // 3 * 3)
        while expiry.expires_us <= t_us:
            expiry = expiry.next
        return expiry

    @property
    def code(self) -> str:
        return f"{_QUARTERS[self.month][0]}{self.year % 100:02d}"

    @property
    def next(self) -> Expiry:
        return Expiry(self.year + self.month // 12, self.month % 12 + 3)

    @property
    def last_day(self) -> date:
        """The third Friday of the contract month."""
        first = date(self.year, self.month, 1)
        return first + timedelta(days=(4 - first.weekday()) % 7 + 14)

    @property
    def roll_day(self) -> date:
        return self.last_day - timedelta(days=_ROLL_DAYS)

    @property
    def expires_us(self) -> int:
        """09:30 New York on the last day: the final settlement, after which the contract is gone."""
        return to_us(datetime.combine(self.last_day, time(9, 30), _NEW_YORK))

    @property
    def rolls_us(self) -> int:
        """The opening of the roll date's trading day (18:00 New York the evening before)."""
        return to_us(datetime.combine(self.roll_day - timedelta(days=1), time(18), _NEW_YORK))


def listed_expiries(t_us: int) -> list[tuple[Expiry, bool]]:
    """(expiry, active) of every contract listed at t_us, oldest first."""
    expiring = Expiry.first_after(t_us)
    if t_us < expiring.rolls_us:
        return [(expiring, True), (expiring.next, False)]
    return [(expiring, False), (expiring.next, True), (expiring.next.next, False)]


def first_listed_us(expiry: Expiry) -> int:
    """When a contract is listed: once the contract two expiries before it rolls."""
    year, month = divmod(expiry.year * 12 + expiry.month - 1 - 6, 12)
    return Expiry(year, month + 1).rolls_us


def contract_for(spec: ProductSpec, expiry: Expiry, active: bool) -> Contract:
    """The Contract a product lists for one expiry."""
    return Contract(
        id=f"CON.F.US.{spec.root}.{expiry.code}",
        name=f"{spec.ticker}{expiry.code[0]}{expiry.year % 10}",
        description=f"{spec.description}: {_QUARTERS[expiry.month][1]} {expiry.year}",
        tick_size=spec.tick_size,
        tick_value=spec.tick_value,
        active_contract=active,
        symbol_id=spec.symbol_id,
    )


def parse_contract_id(contract_id: str) -> tuple[ProductSpec, Expiry] | None:
    """The product and expiry a contract id names (CON.F.US.MNQ.H26), or None when it names none."""
    parts = contract_id.split(".")
    if len(parts) != 5 or parts[:3] != ["CON", "F", "US"] or parts[3] not in PRODUCTS_BY_ROOT:
        return None
    expiry = Expiry.of(parts[4])
    return None if expiry is None else (PRODUCTS_BY_ROOT[parts[3]], expiry)
