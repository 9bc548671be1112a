"""Exposure: what the account holds and may still come to hold, counting orders admitted but not yet seen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..enums import OrderSide
from ..errors import InputError
from ..instrument.brackets import TERMINAL
from ..instrument.context import InstrumentContext
from ..models import Order
from .rules import OrderIntent


@dataclass(slots=True)
class Reservation:
    """An admitted order, counted as if working until the managers hold it and its placement has answered."""

    tag: str
    intent: OrderIntent
    order_id: int | None = None
    answered: bool = False  # the placement returned, or no answer will ever come (an intent from before a restart)
    seen: bool = False  # its contract's order manager holds it: from here its own state counts
    acknowledged: bool = False  # the journal was told which order it became


class Exposure:
    """The pre-trade view of one account, so that every limit holds on the gateway at every instant.

    - An admitted order is reserved (atomically with its check) until its order manager holds it, then its own
      state counts: a working order by its unfilled size on its side, a fill by its size until the position push
      that includes it (the gateway pushes an order's fill before the position it makes).
    - Native bracket legs only ever close the position, so they count as working orders, not as exposure.
    The owner feeds it every order update (`order_seen`) and position update (`position_seen`) on its loop.
    Its maps hold only what is still open: orders admitted and not yet held, orders with fills no position push
    has brought, and the fill volume already brought of orders still working.
    """

    def __init__(self) -> None:
        self.reserved: dict[str, Reservation] = {}  # by customTag
        self._fills: dict[int, Order] = {}  # orders whose latest fills no position push has included yet
        self._positioned: dict[int, int] = {}  # order id -> fill volume the latest position push included

    def start(self, contexts: Iterable[InstrumentContext]) -> None:
        """Fills of the orders held at start-up are in the positions read with them."""
        for context in contexts:
            for order in context.orders.working():
                if order.fill_volume:
                    self._positioned[order.id] = order.fill_volume

    def sizes(self) -> dict[str, int]:
        """How many entries each map holds: admitted orders, orders with unpositioned fills, positioned volumes."""
        return {"reserved": len(self.reserved), "fills": len(self._fills), "positioned": len(self._positioned)}

    # ------------------------------------------------------------------ reservations

    def reserve(self, tag: str, intent: OrderIntent, *, answered: bool = False) -> Reservation:
        """Count an admitted order from now on (InputError when its tag is already in flight)."""
        if tag in self.reserved:
            raise InputError(f"an order tagged {tag!r} is already in flight")
        reservation = self.reserved[tag] = Reservation(tag, intent, answered=answered)
        return reservation

    def answered(self, tag: str, order_id: int | None) -> Reservation | None:
        """The placement returned (with the order's id, or without knowing it); released once the order is held."""
        reservation = self.reserved.get(tag)
        if reservation is not None:
            reservation.answered = True
            reservation.order_id = order_id if order_id is not None else reservation.order_id
            if reservation.seen:
                del self.reserved[tag]
        return reservation

    def release(self, tag: str) -> Reservation | None:
        """Stop counting an order that is known not to exist (refused, failed, never appeared)."""
        return self.reserved.pop(tag, None)

    # ------------------------------------------------------------------ the managers' view

    def order_seen(self, order: Order) -> Reservation | None:
        """An order update reached its manager; returns the reservation the order first shows up for, if any."""
        if order.fill_volume > self._positioned.get(order.id, 0):
            self._fills[order.id] = order
        elif order.status in TERMINAL:  # ended with every fill in a position: nothing of it is left to count
            self._positioned.pop(order.id, None)
        reservation = self.reserved.get(order.custom_tag or "")
        if reservation is None or reservation.seen:
            return None
        reservation.seen, reservation.order_id = True, order.id
        if reservation.answered:
            del self.reserved[reservation.tag]
        return reservation

    def position_seen(self, contract_id: str) -> None:
        """A position update of the contract arrived: it includes every fill pushed before it."""
        for order in [o for o in self._fills.values() if o.contract_id == contract_id]:
            del self._fills[order.id]
            if order.status in TERMINAL:
                self._positioned.pop(order.id, None)
            else:
                self._positioned[order.id] = order.fill_volume

    # ------------------------------------------------------------------ what the rules count

    def positions(self, contexts: Iterable[InstrumentContext]) -> dict[str, int]:
        """Signed positions per contract, with the fills their position push has not brought yet."""
        held = {c.instrument_info.id: c.positions.size for c in contexts}
        for order in self._fills.values():
            unpositioned = order.fill_volume - self._positioned.get(order.id, 0)
            held[order.contract_id] = held.get(order.contract_id, 0) + order.side.sign * unpositioned
        return {contract: size for contract, size in held.items() if size}

    def pending(self, contexts: Iterable[InstrumentContext]) -> dict[str, tuple[int, int]]:
        """(buy, sell) contracts per contract that working orders and unseen admitted orders may still add."""
        sides: dict[str, list[int]] = {}
        for context in contexts:
            for order in context.orders.working():
                if not context.orders.is_bracket_leg(order.id):
                    _add(sides, order.contract_id, order.side, order.size - order.fill_volume)
        for reservation in self.reserved.values():
            if not reservation.seen:
                intent = reservation.intent
                _add(sides, intent.contract_id, intent.side, intent.size)
        return {contract: (buys, sells) for contract, (buys, sells) in sides.items()}

    def open_orders(self, contexts: Iterable[InstrumentContext]) -> int:
        """Working orders, the legs native brackets may still attach, and the admitted orders not yet held."""
        held = sum(len(c.orders.working()) + c.orders.pending_legs() for c in contexts)
        reserved = sum(r.intent.orders - (1 if r.seen else 0) for r in self.reserved.values())
        return held + reserved


def _add(sides: dict[str, list[int]], contract_id: str, side: OrderSide, size: int) -> None:
    entry = sides.setdefault(contract_id, [0, 0])
    entry[0 if side is OrderSide.BUY else 1] += size
