"""Across the suite's instruments: exposure, the correlation of returns, and P&L."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from .errors import ClosedError, InputError
from .html import muted, panel, table
from .instrument.context import InstrumentContext
from .instrument.positions import PNL_COLUMNS, pnl_cells, size_cell


@dataclass(frozen=True, slots=True)
class InstrumentPnL:
    """P&L of one instrument (money): realised from the gateway's closing fills, unrealised at the last price."""

    symbol: str
    size: int  # signed: + long, - short
    realized: float
    unrealized: float
    fees: float

    @property
    def net(self) -> float:
        return self.realized + self.unrealized - self.fees

    def row(self) -> tuple[object, ...]:
        """This instrument as a P&L table row: symbol, size, then PNL_COLUMNS."""
        return (self.symbol, size_cell(self.size), *pnl_cells(self.realized, self.unrealized, self.fees, self.net))

    def _repr_html_(self) -> str:
        return table([self.row()], ("symbol", "size", *PNL_COLUMNS))


@dataclass(frozen=True, slots=True)
class PortfolioPnL:
    """P&L of every instrument and the totals."""

    instruments: dict[str, InstrumentPnL]

    def __repr__(self) -> str:
        each = ", ".join(f"{p.symbol} {size_cell(p.size)} {p.net:+.2f}" for p in self.instruments.values())
        return f"PortfolioPnL(net={self.net:+.2f}; {each})"

    @property
    def realized(self) -> float:
        return sum(p.realized for p in self.instruments.values())

    @property
    def unrealized(self) -> float:
        return sum(p.unrealized for p in self.instruments.values())

    @property
    def fees(self) -> float:
        return sum(p.fees for p in self.instruments.values())

    @property
    def net(self) -> float:
        return self.realized + self.unrealized - self.fees

    def _repr_html_(self) -> str:
        return table([p.row() for p in self.instruments.values()], ("symbol", "size", *PNL_COLUMNS),
                     foot=("total", "", *pnl_cells(self.realized, self.unrealized, self.fees, self.net)))


@dataclass(frozen=True, slots=True)
class PortfolioRisk:
    """Risk of the positions held now: gross and net notional, one-bar VaR 95 % (money), correlation risk."""

    gross_exposure: float
    net_exposure: float
    var_95: float
    correlation_risk: float | None
    observations: int  # bar returns the VaR and correlations were computed from


def _correlations(returns: pl.DataFrame, symbols: list[str]) -> pl.DataFrame:
    rows = {a: [returns.select(pl.corr(a, b)).item() for b in symbols] for a in symbols}
    return pl.DataFrame({"symbol": symbols, **{b: [rows[a][i] for a in symbols] for i, b in enumerate(symbols)}})


class Portfolio:
    """Read-only views over a suite's instruments (`suite.portfolio`); refused once `closed()` says so."""

    def __init__(self, contexts: Mapping[str, InstrumentContext], *, closed: Callable[[], bool] = lambda: False
                 ) -> None:
        self._all = contexts
        self._closed = closed

    def __repr__(self) -> str:
        if self._closed():
            return "Portfolio(closed)"
        pnl = self.get_portfolio_pnl()
        return f"Portfolio({list(self._all)}, net={pnl.net:+.2f}, gross exposure={self.total_exposure():,.2f})"

    def _repr_html_(self) -> str:
        if self._closed():
            return panel("Portfolio", muted("closed: its suite no longer keeps it"))
        return panel("Portfolio", self.get_portfolio_pnl()._repr_html_(),
                     note=f"gross exposure {self.total_exposure():,.2f}")

    @property
    def _contexts(self) -> Mapping[str, InstrumentContext]:
        if self._closed():
            raise ClosedError("this suite is closed; its portfolio is no longer kept")
        return self._all

    def exposures(self) -> dict[str, float]:
        """Signed notional per instrument: size x last price x (tick value / tick size)."""
        result = {}
        for symbol, ctx in self._contexts.items():
            size = ctx.positions.size
            price = ctx.data.last_price
            if size and price is not None:
                info = ctx.instrument_info
                result[symbol] = size * price * info.tick_value / info.tick_size
            else:
                result[symbol] = 0.0
        return result

    def total_exposure(self) -> float:
        """Gross notional of every open position (longs and shorts both add)."""
        return sum(abs(value) for value in self.exposures().values())

    async def returns(self, timeframe: str = "5min", count: int = 100, symbols: list[str] | None = None
                      ) -> pl.DataFrame:
        """Close-to-close returns of the newest `count` closed bars, one column per symbol, aligned on bar time:
        only bar times every instrument has are used, so a gap in one feed cannot shift another's returns."""
        if count < 3:
            raise InputError(f"count must be at least 3 bars, got {count}")
        symbols = list(self._contexts) if symbols is None else symbols
        joined: pl.DataFrame | None = None
        for symbol in symbols:
            frame = await self._contexts[symbol].data.get_data(timeframe, count + 1, include_forming=False)
            closes = frame.select("timestamp", pl.col("close").alias(symbol))
            joined = closes if joined is None else joined.join(closes, on="timestamp", how="inner")
        if joined is None:
            return pl.DataFrame()
        returns = joined.sort("timestamp").select("timestamp", pl.col(symbols).pct_change()).drop_nulls().tail(count)
        if returns.height < 3:
            raise InputError(f"only {returns.height} common {timeframe} returns; need at least 3")
        return returns

    async def correlation_matrix(self, timeframe: str = "5min", count: int = 100) -> pl.DataFrame:
        """Pearson correlation of close-to-close returns over the newest `count` bars (see `returns`).

        A DataFrame with a `symbol` column and one column per symbol.
        """
        symbols = list(self._contexts)
        if len(symbols) < 2:
            raise InputError("a correlation matrix needs at least two instruments")
        returns = await self.returns(timeframe, count, symbols)
        return _correlations(returns, symbols)

    async def calculate_portfolio_risk(self, timeframe: str = "5min", count: int = 100) -> PortfolioRisk:
        """Exposure, one-bar historical VaR at 95 % and the correlation of the positions held now.

        VaR is the loss the current positions would have made on the worst 5 % of the last `count` bars
        (positive money, 0 when flat); correlation risk is the exposure-weighted mean correlation between
        the positions' directions (+1: they move together, -1: they hedge each other; None for fewer than 2).
        """
        exposures = self.exposures()
        held = [s for s, e in exposures.items() if e]
        gross, net = sum(abs(e) for e in exposures.values()), sum(exposures.values())
        if not held:
            return PortfolioRisk(gross, net, 0.0, None, 0)
        returns = await self.returns(timeframe, count, held)
        pnl = returns.select(pl.sum_horizontal([pl.col(s) * exposures[s] for s in held]).alias("pnl"))["pnl"]
        var_95 = max(0.0, -float(pnl.quantile(0.05, interpolation="linear")))
        correlation = None
        if len(held) > 1:
            matrix = _correlations(returns, held)
            pairs = [(abs(exposures[a] * exposures[b]), (1 if exposures[a] * exposures[b] > 0 else -1) * rho)
                     for i, a in enumerate(held) for b, rho in zip(held, matrix[a].to_list(), strict=True)
                     if held.index(b) != i]
            weight = sum(w for w, _ in pairs)
            correlation = sum(w * r for w, r in pairs) / weight
        return PortfolioRisk(gross, net, var_95, correlation, returns.height)

    def get_portfolio_pnl(self) -> PortfolioPnL:
        """P&L per instrument and in total, from the live positions and trades."""
        result = {}
        for symbol, ctx in self._contexts.items():
            positions = ctx.positions
            result[symbol] = InstrumentPnL(symbol, positions.size, positions.realized_pnl,
                                           positions.unrealized_pnl(), positions.fees)
        return PortfolioPnL(result)
