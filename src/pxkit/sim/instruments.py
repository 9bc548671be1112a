"""The simulator's product catalogue: contract specs and front/next contract listing for a date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..models import Contract

_QUARTERS = ((3, "H", "March"), (6, "M", "June"), (9, "U", "September"), (12, "Z", "December"))


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

    @property
    def symbol_id(self) -> str:
        return f"F.US.{self.root}"


PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec("MNQ", "MNQ", "Micro E-mini Nasdaq-100", 0.25, 0.50, 21000.0, 0.012, 0.37, 2100.0, "/MNQ"),
    ProductSpec("ENQ", "NQ", "E-mini NASDAQ-100", 0.25, 5.00, 21000.0, 0.012, 1.40, 21000.0, "/NQ"),
    ProductSpec("MES", "MES", "Micro E-mini S&P 500", 0.25, 1.25, 6000.0, 0.009, 0.37, 1500.0, "/MES"),
    ProductSpec("EP", "ES", "E-mini S&P 500", 0.25, 12.50, 6000.0, 0.009, 1.40, 15000.0, "/ES"),
    ProductSpec("MYM", "MYM", "Micro E-mini Dow Jones", 1.0, 0.50, 44000.0, 0.008, 0.37, 1300.0, "/MYM"),
    ProductSpec("YM", "YM", "E-mini Dow Jones", 1.0, 5.00, 44000.0, 0.008, 1.40, 13000.0, "/YM"),
    ProductSpec("M2K", "M2K", "Micro E-mini Russell 2000", 0.1, 0.50, 2300.0, 0.013, 0.37, 700.0, "/M2K"),
    ProductSpec("RTY", "RTY", "E-mini Russell 2000", 0.1, 5.00, 2300.0, 0.013, 1.40, 7000.0, "/RTY"),
    ProductSpec("MGC", "MGC", "Micro Gold", 0.1, 1.00, 2700.0, 0.010, 0.52, 1100.0, "/MGC"),
    ProductSpec("GCE", "GC", "Gold", 0.1, 10.00, 2700.0, 0.010, 1.62, 11000.0, "/GC"),
    ProductSpec("MCLE", "MCL", "Micro WTI Crude Oil", 0.01, 1.00, 70.0, 0.020, 0.52, 700.0, "/MCL"),
    ProductSpec("CLE", "CL", "Crude Oil", 0.01, 10.00, 70.0, 0.020, 1.62, 7000.0, "/CL"),
)

PRODUCTS_BY_ROOT = {p.root: p for p in PRODUCTS}


def listed_months(at: datetime) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """(year, month code, month name) of the front and the next quarterly contract at a date.

    The front contract rolls on the 10th of its expiry month.
    """
    year = at.year
    candidates = [(year, code, name) for month, code, name in _QUARTERS if (at.month, at.day) < (month, 10)]
    candidates += [(year + 1, code, name) for _, code, name in _QUARTERS]
    return candidates[0], candidates[1]


def contract_for(spec: ProductSpec, year: int, code: str, month_name: str, active: bool) -> Contract:
    """The Contract a product lists for one expiry."""
    return Contract(
        id=f"CON.F.US.{spec.root}.{code}{year % 100:02d}",
        name=f"{spec.ticker}{code}{year % 10}",
        description=f"{spec.description}: {month_name} {year}",
        tick_size=spec.tick_size,
        tick_value=spec.tick_value,
        active_contract=active,
        symbol_id=spec.symbol_id,
    )


def listed_contracts(at: datetime) -> list[tuple[ProductSpec, Contract]]:
    """Every listed contract at a date: the active front month and the next one of each product."""
    front, nxt = listed_months(at)
    out = []
    for spec in PRODUCTS:
        out.append((spec, contract_for(spec, *front, active=True)))
        out.append((spec, contract_for(spec, *nxt, active=False)))
    return out
