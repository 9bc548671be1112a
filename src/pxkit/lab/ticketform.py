"""The order ticket's form: the page's fields checked into a `Plan` (InputError before the wire), and its words."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..client.orders import build_order_request, order_side
from ..enums import OrderType
from ..errors import InputError
from ..html import fixed
from ..instrument.brackets import bracket_entry
from ..instrument.context import InstrumentContext
from .widget import side_text

TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
         "trailing_stop": OrderType.TRAILING_STOP, "join_bid": OrderType.JOIN_BID, "join_ask": OrderType.JOIN_ASK}
PRICED = ("limit", "stop", "trailing_stop")  # the types whose price the user gives
BRACKET_ENTRIES = ("market", "limit", "stop")


@dataclass(frozen=True, slots=True)
class Plan:
    """A reviewed order: what `send` places, in the ticket's terms (`price`: limit or stop level, or None)."""

    side: str
    size: int
    type: str
    price: float | None
    stop_ticks: int | None
    target_ticks: int | None
    trail_ticks: int | None = None

    @property
    def bracket(self) -> bool:
        return self.stop_ticks is not None or self.target_ticks is not None


class FormReader:
    """Reads the ticket's fields for `ctx`'s instrument into a checked `Plan`, and says a plan in a trader's words."""

    def __init__(self, ctx: InstrumentContext, decimals: int) -> None:
        self.ctx = ctx
        self.decimals = decimals

    def plan(self, content: dict[str, Any]) -> Plan:
        """The order the fields ask for, or InputError naming the first problem; nothing is sent."""
        side = side_name(content.get("side"))
        size = _whole(content.get("size"), "size", "a whole number of contracts >= 1")
        kind = content.get("type")
        if kind not in TYPES:
            raise InputError(f"type must be one of {', '.join(TYPES)}, got {kind!r}")
        stop_ticks = _whole(content.get("stop_ticks"), "the bracket stop", "a whole number of ticks >= 1 (empty: "
                            "no stop)", optional=True)
        target_ticks = _whole(content.get("target_ticks"), "the bracket target", "a whole number of ticks >= 1 "
                              "(empty: no target)", optional=True)
        contract = self.ctx.instrument_info
        price = None
        if kind in PRICED:
            price = content.get("price")
            if price is None or price == "":
                raise InputError(f"a {kind.replace('_', ' ')} order needs a price")
            price = _number(price, "price")
            if not contract.on_grid(price):
                raise InputError(f"price {price} is not on the {contract.tick_size} tick grid (nearest: "
                                 f"{self._at(contract.round_price(price))})")
            price = contract.round_price(price)
        joins = {"join_bid": "buy", "join_ask": "sell"}
        if kind in joins and side != joins[kind]:
            raise InputError(f"a {kind.replace('_', ' ')} order {joins[kind]}s: choose {joins[kind]}")
        distance = self._stop_side(side, price) if kind in ("stop", "trailing_stop") else None  # type: ignore[arg-type]
        plan = Plan(side, size, kind, price, stop_ticks, target_ticks, distance if kind == "trailing_stop" else None)
        if plan.bracket and kind not in BRACKET_ENTRIES:
            raise InputError("a bracket rides on a market, limit or stop entry")
        self._build(plan)
        return plan

    def _stop_side(self, side: str, price: float) -> int | None:
        """A buy stop must lie above the last price, a sell stop below it; returns its distance in ticks."""
        last = self.ctx.data.last_price
        if last is None:
            return None
        contract = self.ctx.instrument_info
        ticks = (contract.to_ticks(price) - contract.to_ticks(last)) * (1 if side == "buy" else -1)
        if ticks <= 0:
            where = "above" if side == "buy" else "below"
            raise InputError(f"a {side} stop must be {where} the last price {self._at(last)}")
        return ticks

    def _build(self, plan: Plan) -> None:
        """The request the order manager will build, built now: its checks (grid, legs) run before send."""
        contract, account = self.ctx.instrument_info, self.ctx.orders.account_id
        if plan.bracket:
            bracket_entry(contract, account, plan.side, plan.size, plan.type, plan.price,  # type: ignore[arg-type]
                          {"stop": (plan.stop_ticks, None), "target": (plan.target_ticks, None)}, "native")
            return
        if plan.type == "trailing_stop" and plan.trail_ticks is None:
            raise InputError("a trailing stop is measured from the last price, and there is none yet")
        build_order_request(contract, account, plan.side, plan.size, TYPES[plan.type], **self.prices(plan))

    def prices(self, plan: Plan) -> dict[str, float]:
        """The price arguments of a plain (not bracketed) order: limit, stop or trail."""
        if plan.type == "limit":
            return {"limit_price": plan.price}  # type: ignore[dict-item]
        if plan.type == "stop":
            return {"stop_price": plan.price}  # type: ignore[dict-item]
        if plan.type == "trailing_stop":
            contract = self.ctx.instrument_info
            return {"trail_price": contract.round_price((plan.trail_ticks or 0) * contract.tick_size)}
        return {}

    def risk(self, plan: Plan) -> tuple[float | None, str]:
        """The plan's risk in dollars (stop ticks x tick value x size; None without a stop) and its words."""
        if plan.stop_ticks is None:
            return None, "no stop: this ticket does not bound the loss"
        tick_value = self.ctx.instrument_info.tick_value
        risk = plan.stop_ticks * tick_value * plan.size
        return risk, f"{plan.stop_ticks} ticks \u00d7 ${fixed(tick_value)} \u00d7 {plan.size} = ${fixed(risk)}"

    def summary(self, plan: Plan) -> str:
        """What will be sent, as a trader reads it."""
        at, tick_size = self._at, self.ctx.instrument_info.tick_size
        bid, ask = self.ctx.book_top()
        head = f"{plan.side.upper()} {plan.size} {self.ctx.symbol}"
        if plan.type == "market":
            last = self.ctx.data.last_price
            text = f"{head} at market" + (f" (last {at(last)})" if last is not None else "")
        elif plan.type == "limit":
            best = ask if plan.side == "buy" else bid
            marketable = best is not None and (plan.price - best) * (1 if plan.side == "buy" else -1) >= 0
            text = f"{head} limit {at(plan.price)}" + (" (marketable: fills at once)" if marketable else "")
        elif plan.type == "stop":
            text = f"{head} stop {at(plan.price)}"
        elif plan.type == "trailing_stop":
            text = (f"{head} trailing stop from {at(plan.price)}, trailing {plan.trail_ticks} ticks "
                    f"({at((plan.trail_ticks or 0) * tick_size)}) behind the market")
        else:
            best = bid if plan.type == "join_bid" else ask
            text = f"{head} joining the best {'bid' if plan.type == 'join_bid' else 'ask'}" + (
                f" (now {at(best)})" if best is not None else "")
        legs = []
        sign = 1 if plan.side == "buy" else -1
        for name, ticks, direction in (("stop", plan.stop_ticks, -sign), ("target", plan.target_ticks, sign)):
            if ticks is not None:
                legs.append(f"{name} {ticks} ticks ({at(ticks * tick_size)}) "
                            f"{'below' if direction < 0 else 'above'} the fill")
        return text + (f"; bracket: {', '.join(legs)}" if legs else "")

    def _at(self, price: float | None) -> str:
        return fixed(price, self.decimals)


def side_name(side: object) -> str:
    """'buy' or 'sell' from any side the order manager takes, or InputError."""
    if not isinstance(side, str | int) or isinstance(side, bool):
        raise InputError(f"side must be 'buy' or 'sell', got {side!r}")
    return side_text(order_side(side))


def _number(value: object, name: str) -> float:
    """A finite number > 0 from a number or the text of one."""
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").strip())
        except ValueError:
            raise InputError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _whole(value: object, name: str, wanted: str, optional: bool = False) -> int | None:
    """A whole number >= 1 (from a number or its text); None for an empty optional field."""
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    try:
        number = _number(value, name)
    except InputError:
        number = math.nan
    if not number.is_integer():
        raise InputError(f"{name} must be {wanted}, got {value!r}")
    return int(number)
