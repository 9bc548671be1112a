"""What a stepped strategy run leaves: its orders and fills as the gateway reports them, equity per minute, and
summary statistics (net P&L, Sharpe, max drawdown, win rate, exposure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from ..html import table
from ..times import from_us

if TYPE_CHECKING:
    import altair as alt

    from ..models import Order, Trade
    from ..suite import TradingSuite

MINUTE_US = 60_000_000
MINUTES_PER_YEAR = 252 * 23 * 60  # trading minutes of a Globex year, to annualise the Sharpe ratio
_T = pl.Datetime("us", "UTC")
ORDER_SCHEMA = {"order_id": pl.Int64, "symbol": pl.String, "contract_id": pl.String, "created": _T, "updated": _T,
                "type": pl.String, "side": pl.String, "size": pl.Int64, "limit_price": pl.Float64,
                "stop_price": pl.Float64, "status": pl.String, "fill_volume": pl.Int64, "filled_price": pl.Float64}
TRADE_SCHEMA = {"trade_id": pl.Int64, "timestamp": _T, "symbol": pl.String, "contract_id": pl.String,
                "order_id": pl.Int64, "side": pl.String, "size": pl.Int64, "price": pl.Float64, "fees": pl.Float64,
                "pnl": pl.Float64}
EQUITY_SCHEMA = {"timestamp": _T, "realized": pl.Float64, "unrealized": pl.Float64, "fees": pl.Float64,
                 "net": pl.Float64, "equity": pl.Float64, "exposure": pl.Float64}  # gross notional held


class EquityCurve:
    """Samples a suite's P&L once per simulated minute (at the first step at or past each minute's start)."""

    def __init__(self, suite: TradingSuite, balance: float) -> None:
        self.suite = suite
        self.balance = balance
        self.rows: list[tuple[Any, ...]] = []
        self._next_us: int | None = None

    def __call__(self, t_us: int) -> None:
        if self._next_us is None:
            self._next_us = t_us - t_us % MINUTE_US
        if t_us >= self._next_us:
            self._sample(t_us - t_us % MINUTE_US)

    def final(self, t_us: int) -> None:
        """The last row: the state at the end of the run (after the strategy's on_stop)."""
        if self.rows and self.rows[-1][0] >= from_us(t_us):
            self.rows.pop()
        self._sample(t_us)

    def _sample(self, minute: int) -> None:
        pnl = self.suite.portfolio.get_portfolio_pnl()
        exposure = self.suite.portfolio.total_exposure()
        self.rows.append((from_us(minute), pnl.realized, pnl.unrealized, pnl.fees, pnl.net,
                          self.balance + pnl.net, exposure))
        self._next_us = minute + MINUTE_US

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=EQUITY_SCHEMA, orient="row")


def orders_frame(orders: list[Order], symbols: dict[str, str]) -> pl.DataFrame:
    rows = [(o.id, symbols.get(o.contract_id, o.contract_id), o.contract_id, o.creation_timestamp,
             o.update_timestamp, o.type.name, o.side.name, o.size, o.limit_price, o.stop_price, o.status.name,
             o.fill_volume, o.filled_price) for o in sorted(orders, key=lambda o: o.id)]
    return pl.DataFrame(rows, schema=ORDER_SCHEMA, orient="row")


def trades_frame(trades: list[Trade], symbols: dict[str, str]) -> pl.DataFrame:
    rows = [(t.id, t.creation_timestamp, symbols.get(t.contract_id, t.contract_id), t.contract_id, t.order_id,
             t.side.name, t.size, t.price, t.fees, t.profit_and_loss) for t in sorted(trades, key=lambda t: t.id)
            if not t.voided]
    return pl.DataFrame(rows, schema=TRADE_SCHEMA, orient="row")


def summary(trades: pl.DataFrame, equity: pl.DataFrame, balance: float) -> dict[str, float]:
    """Net P&L (money, after fees), Sharpe (annualised from minute returns), max drawdown (money and fraction of
    the peak), win rate (closing fills with a profit), exposure (share of minutes holding a position)."""
    closing = trades.filter(pl.col("pnl").is_not_null())
    curve = equity["equity"] if equity.height else pl.Series([balance], dtype=pl.Float64)
    returns = curve.pct_change().drop_nulls()
    std = returns.std() if returns.len() > 1 else None
    sharpe = (returns.mean() / std * math.sqrt(MINUTES_PER_YEAR)) if std else 0.0
    peak = curve.cum_max()
    drawdown = peak - curve
    worst = int(drawdown.arg_max() or 0)
    return {
        "net_pnl": float(equity["net"][-1]) if equity.height else 0.0,
        "fees": float(trades["fees"].sum()),
        "fills": float(trades.height),
        "round_trips": float(closing.height),
        "win_rate": float((closing["pnl"] > 0).mean()) if closing.height else math.nan,
        "sharpe": float(sharpe),
        "max_drawdown": float(drawdown.max() or 0.0),
        "max_drawdown_pct": float(drawdown[worst] / peak[worst]) if peak[worst] else 0.0,
        "exposure": float((equity["exposure"] > 0).mean()) if equity.height else 0.0,
    }


@dataclass(frozen=True)
class BacktestResult:
    """One strategy run: `orders`, `trades` (fills) and `equity` (per minute) frames, `stats`, `report()`."""

    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    start: datetime
    end: datetime
    seed: int
    balance: float
    orders: pl.DataFrame
    trades: pl.DataFrame
    equity: pl.DataFrame
    prices: pl.DataFrame  # closed 1-min bars of every instrument over the window: symbol, timestamp, OHLCV
    market_trades: int  # prints the simulated market made over the window, all instruments
    stats: dict[str, float] = field(default_factory=dict)

    def report(self) -> alt.VConcatChart:
        """Equity curve, drawdown, and the fills on each instrument's price (altair, renders offline)."""
        from .report import report

        return report(self)

    def row(self) -> dict[str, Any]:
        """Parameters and statistics as one flat row (a sweep's frame is made of these)."""
        return {**self.params, **self.stats}

    def __repr__(self) -> str:
        s = self.stats
        return (f"BacktestResult({self.strategy} on {', '.join(self.symbols)}, {self.start:%Y-%m-%d %H:%M} to "
                f"{self.end:%Y-%m-%d %H:%M} UTC, seed {self.seed}: net {s['net_pnl']:+.2f}, "
                f"{int(s['round_trips'])} round trips, Sharpe {s['sharpe']:.2f}, max DD {s['max_drawdown']:.2f})")

    def _repr_html_(self) -> str:
        s = self.stats
        win = "n/a" if math.isnan(s["win_rate"]) else f"{s['win_rate']:.0%}"
        rows = [("net P&L", f"{s['net_pnl']:+,.2f}"), ("fees", f"{s['fees']:,.2f}"),
                ("fills / round trips", f"{int(s['fills'])} / {int(s['round_trips'])}"), ("win rate", win),
                ("Sharpe (annualised)", f"{s['sharpe']:.2f}"),
                ("max drawdown", f"{s['max_drawdown']:,.2f} ({s['max_drawdown_pct']:.2%})"),
                ("exposure", f"{s['exposure']:.0%}")]
        title = (f"{self.strategy}({', '.join(f'{k}={v!r}' for k, v in self.params.items())}) on "
                 f"{', '.join(self.symbols)} · {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC")
        return f"<div><b>{title}</b>{table(rows, ('', ''), align='lr')}</div>"
