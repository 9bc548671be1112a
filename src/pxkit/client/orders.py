"""Order requests built and validated before they reach the wire, and the result of placing one."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from ..enums import OrderSide, OrderType
from ..errors import InputError
from ..models import BracketSpec, Contract, ModifyOrderRequest, Order, PlaceOrderRequest

PLACEABLE = (OrderType.LIMIT, OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP, OrderType.JOIN_BID,
             OrderType.JOIN_ASK)
BRACKET_LEG_TYPES = (OrderType.LIMIT, OrderType.STOP, OrderType.TRAILING_STOP)
_PRICE_FOR = {OrderType.LIMIT: "limit_price", OrderType.STOP: "stop_price", OrderType.TRAILING_STOP: "trail_price"}


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """What place_order returns: the gateway's order id, the tag it carries, and the order when verified."""

    order_id: int
    custom_tag: str
    contract_id: str
    order: Order | None = None


def new_tag() -> str:
    """A unique customTag for an order the caller did not tag."""
    return f"pxkit-{uuid.uuid4().hex}"


def order_side(side: OrderSide | str | int) -> OrderSide:
    if isinstance(side, str):
        names = {"buy": OrderSide.BUY, "bid": OrderSide.BUY, "long": OrderSide.BUY,
                 "sell": OrderSide.SELL, "ask": OrderSide.SELL, "short": OrderSide.SELL}
        if side.strip().lower() not in names:
            raise InputError(f"unknown side {side!r}; use 'buy' or 'sell'")
        return names[side.strip().lower()]
    if isinstance(side, bool) or side not in (0, 1):
        raise InputError(f"unknown side {side!r}")
    return OrderSide(side)


def is_positive_number(value: object) -> bool:
    """A finite number > 0 (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _price(contract: Contract, name: str, value: float, round_to_tick: bool) -> float:
    if not is_positive_number(value):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    if contract.on_grid(value):
        return contract.round_price(value)
    if round_to_tick:
        return contract.round_price(value)
    raise InputError(f"{name} {value} is not on the {contract.tick_size} tick grid of {contract.id} "
                     f"(nearest: {contract.round_price(value)}); pass round_to_tick=True to round it")


def _bracket(name: str, ticks: int | None, leg_type: OrderType, direction: int) -> BracketSpec | None:
    """A native leg `ticks` away from the entry; `direction` turns the distance into the wire's signed ticks."""
    if ticks is None:
        return None
    if isinstance(ticks, bool) or not isinstance(ticks, int) or ticks <= 0:
        raise InputError(f"{name} is a distance from the entry in whole ticks > 0 (the side sets its direction), "
                         f"got {ticks!r}")
    if leg_type not in BRACKET_LEG_TYPES:
        raise InputError(f"{name} order type must be LIMIT, STOP or TRAILING_STOP, got {leg_type!r}")
    return BracketSpec(direction * ticks, OrderType(leg_type))


def check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InputError(f"size must be a whole number of contracts > 0, got {size!r}")


def build_order_request(
    contract: Contract, account_id: int, side: OrderSide | str | int, size: int, order_type: OrderType | int, *,
    limit_price: float | None = None, stop_price: float | None = None, trail_price: float | None = None,
    stop_loss_ticks: int | None = None, take_profit_ticks: int | None = None,
    stop_loss_type: OrderType = OrderType.STOP, take_profit_type: OrderType = OrderType.LIMIT,
    custom_tag: str | None = None, round_to_tick: bool = False,
) -> PlaceOrderRequest:
    """A PlaceOrderRequest, or InputError naming the first problem; nothing is sent.

    Bracket distances are whole ticks > 0 from the entry's fill: the stop goes against the side, the target
    with it (the wire's signed ticks are computed here).
    """
    side = order_side(side)
    check_size(size)
    if order_type not in PLACEABLE:
        raise InputError(f"order type {order_type!r} cannot be placed")
    order_type = OrderType(order_type)
    given = {"limit_price": limit_price, "stop_price": stop_price, "trail_price": trail_price}
    needed = _PRICE_FOR.get(order_type)
    for name, value in given.items():
        if name == needed and value is None:
            raise InputError(f"{name} is required for a {order_type.name} order")
        if name != needed and value is not None:
            raise InputError(f"{name} does not apply to a {order_type.name} order")
    prices = {name: _price(contract, name, value, round_to_tick) for name, value in given.items() if value is not None}
    if custom_tag is not None and (not isinstance(custom_tag, str) or not custom_tag.strip()):
        raise InputError(f"custom_tag must be a non-empty string, got {custom_tag!r}")
    return PlaceOrderRequest(
        account_id=account_id, contract_id=contract.id, type=order_type, side=side, size=size,
        custom_tag=custom_tag or new_tag(),
        stop_loss_bracket=_bracket("stop_loss_ticks", stop_loss_ticks, stop_loss_type, -side.sign),
        take_profit_bracket=_bracket("take_profit_ticks", take_profit_ticks, take_profit_type, side.sign),
        **prices,
    )


def build_modify_request(
    account_id: int, order_id: int, *, size: int | None = None, limit_price: float | None = None,
    stop_price: float | None = None, trail_price: float | None = None, contract: Contract | None = None,
) -> ModifyOrderRequest:
    """A ModifyOrderRequest, or InputError; with `contract`, prices must also lie on its tick grid."""
    prices = {"limit_price": limit_price, "stop_price": stop_price, "trail_price": trail_price}
    if size is None and all(v is None for v in prices.values()):
        raise InputError("modify_order needs at least one of size, limit_price, stop_price, trail_price")
    if size is not None:
        check_size(size)
    for name, value in prices.items():
        if value is None:
            continue
        if not is_positive_number(value):
            raise InputError(f"{name} must be a positive number, got {value!r}")
        if contract is not None and not contract.on_grid(value):
            raise InputError(f"{name} {value!r} is not a price on the {contract.tick_size} tick grid of "
                             f"{contract.id}")
    return ModifyOrderRequest(account_id, order_id, size, limit_price, stop_price, trail_price)
