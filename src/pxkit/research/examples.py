"""Two small strategies to start from: one trades gateway-held brackets, one works resting limit orders."""

from __future__ import annotations

from typing import Any

from ..instrument.context import InstrumentContext
from ..models import Bar
from .strategy import Strategy


class BarMomentum(Strategy):
    """When flat, enter in the direction of the last closed bar with a native bracket of `stop` and `target`
    ticks; the gateway's OCO legs take it out."""

    timeframe: str = "1min"
    stop: int = 8
    target: int = 8
    size: int = 1

    async def on_bar(self, ctx: InstrumentContext, bar: Bar) -> Any:
        if ctx.positions.size or ctx.orders.working() or bar.close == bar.open:
            return
        side = "buy" if bar.close > bar.open else "sell"
        await ctx.orders.place_bracket_order(side, self.size, stop_offset=self.stop, target_offset=self.target)


class RangeFade(Strategy):
    """Rests one limit order per bar: when flat, a buy `offset` ticks under the last bar's low; when long, a sell
    `offset` ticks over its high; when short, a buy under its low. Unfilled orders are replaced each bar."""

    timeframe: str = "1min"
    offset: int = 2
    size: int = 1

    async def on_bar(self, ctx: InstrumentContext, bar: Bar) -> Any:
        await ctx.orders.cancel_all_orders()
        tick = ctx.instrument_info.tick_size
        held = ctx.positions.size
        if held > 0:
            await ctx.orders.place_limit_order("sell", held, round(bar.high / tick + self.offset) * tick)
        elif held < 0:
            await ctx.orders.place_limit_order("buy", -held, round(bar.low / tick - self.offset) * tick)
        else:
            await ctx.orders.place_limit_order("buy", self.size, round(bar.low / tick - self.offset) * tick)
