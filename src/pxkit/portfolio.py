"""Across the suite's instruments: exposure, the correlation of returns, and P&L."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from .errors import InputError
from .instrument.context import InstrumentContext


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


@dataclass(frozen=True, slots=True)
class PortfolioPnL:
    """P&L of every instrument and the totals."""

    instruments: dict[str, InstrumentPnL]

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


class Portfolio:
    """Read-only views over a suite's instruments (`suite.portfolio`)."""

    def __init__(self, contexts: Mapping[str, InstrumentContext]) -> None:
        self._contexts = contexts

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

    async def correlation_matrix(self, timeframe: str = "5min", count: int = 100) -> pl.DataFrame:
        """Pearson correlation of close-to-close returns over the newest `count` bars, aligned on bar time.

        A DataFrame with a `symbol` column and one column per symbol; only bar times every instrument has are
        used, so a gap in one feed cannot shift another's returns.
        """
        if count < 3:
            raise InputError(f"count must be at least 3 bars, got {count}")
        symbols = list(self._contexts)
        if len(symbols) < 2:
            raise InputError("a correlation matrix needs at least two instruments")
        joined: pl.DataFrame | None = None
        for symbol in symbols:
            frame = await self._contexts[symbol].data.get_data(timeframe, count + 1, include_forming=False)
            closes = frame.select("timestamp", pl.col("close").alias(symbol))
            joined = closes if joined is None else joined.join(closes, on="timestamp", how="inner")
        assert joined is not None
        returns = joined.sort("timestamp").select(pl.col(symbols).pct_change()).drop_nulls().tail(count)
        if returns.height < 3:
            raise InputError(f"only {returns.height} common {timeframe} returns; need at least 3")
        rows = {a: [returns.select(pl.corr(a, b)).item() for b in symbols] for a in symbols}
        return pl.DataFrame({"symbol": symbols, **{b: [rows[a][i] for a in symbols] for i, b in enumerate(symbols)}})

    def get_portfolio_pnl(self) -> PortfolioPnL:
        """P&L per instrument and in total, from the live positions and trades."""
        result = {}
        for symbol, ctx in self._contexts.items():
            positions = ctx.positions
            result[symbol] = InstrumentPnL(symbol, positions.size, positions.realized_pnl,
                                           positions.unrealized_pnl(), positions.fees)
        return PortfolioPnL(result)
