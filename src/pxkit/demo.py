"""`pxkit demo`: the kit end to end on the embedded simulator, printed as a compact live view."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import polars as pl

from .enums import OrderSide
from .events import EventType
from .instrument.context import InstrumentContext
from .suite import TradingSuite

SYMBOLS = ("MNQ", "ES", "MGC")


def _top(ctx: InstrumentContext) -> str:
    book = ctx.orderbook
    bid, ask = book.get_best_bid_ask() if book is not None else (None, None)
    return f"{bid} x {ask}" if bid is not None and ask is not None else "-"


def _view(suite: TradingSuite, built: dict[str, int]) -> str:
    cells = [f"{symbol} {ctx.data.last_price} [{_top(ctx)}] {built[symbol]} bars" for symbol, ctx in suite.items()]
    return " | ".join(cells)


async def run(seconds: float = 6.0, seed: int = 1, out: Callable[[str], None] = print) -> int:
    """Stream for `seconds`, trade a bracket on MNQ, show fill, P&L and correlations, shut down; returns 0."""
    started = time.monotonic()
    async with TradingSuite.create(list(SYMBOLS), timeframes=["5sec", "1min"], features=["orderbook"],
                                   simulated=True, seed=seed) as suite:
        contracts = ", ".join(f"{s} {c.instrument_info.id}" for s, c in suite.items())
        out(f"suite up in {time.monotonic() - started:.1f} s: {contracts} on account {suite.account.name}")
        built = dict.fromkeys(suite, 0)
        for symbol, ctx in suite.items():
            ctx.event_bus.on(EventType.NEW_BAR, lambda e, s=symbol: built.__setitem__(s, built[s] + 1)
                             if e.data.timeframe == "5sec" else None)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            out(_view(suite, built))

        mnq = suite["MNQ"]
        bracket = await mnq.orders.place_bracket_order(OrderSide.BUY, 1, stop_offset=20, target_offset=40)
        entry = await bracket.entry.wait_filled(timeout=10)
        stop, target = await bracket.wait_legs(timeout=10)
        stop_price = stop.order.stop_price if stop is not None and stop.order is not None else "-"
        target_price = target.order.limit_price if target is not None and target.order is not None else "-"
        out(f"MNQ bracket: bought {entry.fill_volume} @ {entry.filled_price}; stop {stop_price}, target {target_price}")
        await asyncio.sleep(1.0)  # let the market move a little
        position, pnl = mnq.positions.position, mnq.positions.pnl()
        size = position.size if position is not None else 0
        out(f"MNQ position {size} @ {mnq.positions.average_price}; last {mnq.data.last_price}; "
            f"unrealised {pnl.unrealized:+.2f} USD")
        flat = mnq.event_bus.wait_for(EventType.POSITION_CLOSED, timeout=10)
        await mnq.orders.close_position()  # the gateway then cancels the bracket's legs
        await flat
        out(f"MNQ closed: realised {mnq.positions.realized_pnl:+.2f} USD, fees {mnq.positions.fees:.2f} USD")

        corr = await suite.portfolio.correlation_matrix("1min", count=60)
        out("1min return correlations (last 60 bars):")
        out(_matrix(corr))
        stats = await suite.get_stats()
        out(f"health {stats['health']}/100; router handled {sum(stats['components']['router']['counters'].values())}"
            f" pushes")
    out(f"shut down cleanly after {time.monotonic() - started:.1f} s")
    return 0


def _matrix(frame: pl.DataFrame) -> str:
    symbols = frame["symbol"].to_list()
    lines = ["       " + "".join(f"{s:>8}" for s in symbols)]
    for row in frame.iter_rows(named=True):
        lines.append(f"{row['symbol']:>6} " + "".join(f"{row[s]:8.2f}" for s in symbols))
    return "\n".join(lines)
