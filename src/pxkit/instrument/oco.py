"""ClientOCO: a bracket's stop and target placed and linked by this process (`place_bracket_order(oco="client")`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from ..enums import OrderSide, OrderStatus, OrderType, PositionType
from ..errors import OrderNotFoundError, OrderRejectedError, PxError
from ..models import Contract, Order
from .brackets import LEG_TYPES, OCO_TAG, TERMINAL, BracketHandle, OrderHandle, ended_error

if TYPE_CHECKING:
    from ..client.http import ProjectX

log = logging.getLogger(__name__)

RETRY_AFTER = 1.0  # seconds before a command that failed in transport is tried again


class LegDesk(Protocol):
    """What a linker needs from the manager of its contract's orders (OrderManager)."""

    client: ProjectX
    contract: Contract
    account_id: int

    def latest(self, order_id: int) -> Order | None: ...

    async def place_order(self, side: OrderSide | str, size: int, order_type: OrderType = ..., *,
                          limit_price: float | None = None, stop_price: float | None = None,
                          trail_price: float | None = None, custom_tag: str | None = None) -> OrderHandle: ...

    async def modify_order(self, order_id: int | OrderHandle, *, size: int | None = None) -> None: ...

    async def cancel_order(self, order_id: int | OrderHandle) -> None: ...

    async def flatten_unprotected(self, bracket: BracketHandle, entry: Order, missing: list[str],
                                  cause: PxError | None = None) -> None: ...


class ClientOCO:
    """Places a bracket's legs when its entry fills and keeps them one-cancels-other, sized to what is still open.

    Native brackets stay the default: these legs exist only after the entry's fill reaches this process and are
    linked only as fast as the user hub reports fills, so a lagging feed leaves a new position unprotected (or a
    filled leg's peer working) meanwhile. Legs sit at the entry's first fill ± their ticks; a refused leg flattens
    the position; a leg ended by anyone else ends the link (its peer is cancelled, nothing more is placed).
    """

    def __init__(self, desk: LegDesk, bracket: BracketHandle) -> None:
        self._desk = desk
        self.bracket = bracket
        self._wake = asyncio.Event()
        self._wake.set()  # the entry may have filled before this existed
        self._prices: dict[str, float] = {}  # leg name -> price, fixed at the entry's first fill
        self._tags: dict[str, str] = {}  # customTag of every leg sent -> leg name
        self._mine: set[int] = set()  # every leg placed, working or ended
        self._asked: dict[int, int] = {}  # leg id -> size asked for and not yet confirmed by a push
        self._cancelling: set[int] = set()
        self._outside = 0  # contracts of the entry that other orders closed (read from the gateway's position)
        self._recheck = False  # another order traded this contract: read the position before sizing the legs
        self._dissolved = False  # a leg ended without us: link no more

    @property
    def watched(self) -> set[int]:
        """The orders this link reads: its entry and every leg it placed (their manager keeps them)."""
        return {self.bracket.entry.id, *self._mine}

    def on_order(self, previous: Order | None, order: Order) -> None:
        """Observes every update the manager keeps; wakes the linker when it matters here."""
        name = self._tags.get(order.custom_tag or "")
        if name is not None and order.id not in self._mine:  # the push came before the placement's answer
            self.bracket.leg_ids[name] = order.id
            self._mine.add(order.id)
        if self._asked.get(order.id) == order.size:
            del self._asked[order.id]
        entry = self._desk.latest(self.bracket.entry.id)
        if order.id == self.bracket.entry.id or order.id in self._mine:
            self._wake.set()
        elif entry is not None and entry.fill_volume and order.fill_volume > (previous.fill_volume if previous else 0):
            self._recheck = True
            self._wake.set()

    async def run(self) -> None:
        """Link until the entry is done and no leg works; the manager's `aclose` cancels it."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if await self._step():
                    return
        except asyncio.CancelledError:
            if any(self._working(i) for i in self._mine):
                log.warning("client OCO of bracket entry %d stopped: its working legs are no longer linked",
                            self.bracket.entry.id)
            raise
        except Exception as exc:  # a bug: say so on the handle rather than leave wait_legs() hanging
            log.exception("client OCO of bracket entry %d failed", self.bracket.entry.id)
            if not self.bracket.settled:
                self.bracket.settle(PxError(f"client OCO of bracket entry {self.bracket.entry.id} failed: {exc!r}"))

    def _working(self, order_id: int) -> bool:
        order = self._desk.latest(order_id)
        return order is None or order.status.is_working  # placed but not reported yet counts as working

    async def _step(self) -> bool:
        """Bring the legs in line with the fills seen; True once nothing is left to watch."""
        latest, bracket = self._desk.latest, self.bracket
        entry = latest(bracket.entry.id)
        if entry is None or not entry.fill_volume:
            if entry is not None and entry.status in TERMINAL:
                bracket.settle(ended_error(entry))
            return entry is not None and entry.status in TERMINAL
        if self._recheck:
            await self._read_position(entry)
        entry = latest(entry.id) or entry
        exited = self._exited()
        left = entry.fill_volume - exited - self._outside  # filled and not closed: what each leg must cover
        if not self._dissolved and any(
                o.status in TERMINAL and o.status is not OrderStatus.FILLED and i not in self._cancelling
                for i in self._mine if (o := latest(i)) is not None):
            self._dissolved = True
            log.warning("a leg of client bracket %d ended without its OCO: cancelling its peer", entry.id)
        if exited and entry.status.is_working:
            await self._cancel(entry.id)  # the trade is being exited: no more entry
        working = {name: i for name, i in bracket.leg_ids.items() if self._working(i)}
        for leg_id in working.values():
            leg = latest(leg_id)
            if left <= 0 or self._dissolved:
                await self._cancel(leg_id)
            elif leg is not None and self._asked.get(leg_id, leg.size) != leg.fill_volume + left:
                await self._resize(leg_id, leg.fill_volume + left)
        if left > 0 and not self._dissolved and not await self._place_missing(entry, working, left):
            return True
        if not bracket.settled and (bracket.protected or left <= 0 or self._dissolved):
            bracket.settle()
        return entry.status in TERMINAL and (left <= 0 or self._dissolved) and not any(
            self._working(i) for i in self._mine)

    def _exited(self) -> int:
        """Contracts the legs have filled, current and ended ones."""
        return sum(order.fill_volume for i in self._mine if (order := self._desk.latest(i)) is not None)

    async def _place_missing(self, entry: Order, working: dict[str, int], left: int) -> bool:
        """Place each leg not working for the `left` open contracts; a refusal flattens (False then)."""
        contract = self._desk.contract
        assert entry.filled_price is not None
        for name, ticks in self.bracket.ticks.items():
            price = contract.round_price((contract.to_ticks(entry.filled_price) + ticks) * contract.tick_size)
            self._prices.setdefault(name, price)
        missing = [name for name in self.bracket.ticks if name not in working]
        for name in missing:
            tag = f"{OCO_TAG}{entry.id}-{name}-{len(self._tags) + 1}"
            self._tags[tag] = name
            price_field = "stop_price" if name == "stop" else "limit_price"
            try:
                leg = await self._desk.place_order(entry.side.opposite, left, LEG_TYPES[name], custom_tag=tag,
                                                      **{price_field: self._prices[name]})
            except PxError as exc:
                await self._give_up(missing, exc)
                return False
            self.bracket.leg_ids[name] = leg.id
            self._mine.add(leg.id)
        return True

    async def _give_up(self, missing: list[str], cause: PxError) -> None:
        """A leg was refused: cancel the entry's rest and the other legs, flatten, report it on the handle."""
        log.error("client bracket %d: placing a leg failed: %s", self.bracket.entry.id, cause)
        for order_id in [self.bracket.entry.id, *self._mine]:
            if self._working(order_id):
                await self._cancel(order_id)
        entry = self._desk.latest(self.bracket.entry.id)
        assert entry is not None  # watched, so never evicted
        await self._desk.flatten_unprotected(self.bracket, entry, missing, cause)

    async def _read_position(self, entry: Order) -> None:
        """Count what other orders closed: the legs never cover more than the gateway's position."""
        desk = self._desk
        self._recheck = False
        try:
            positions = await desk.client.search_open_positions(account_id=desk.account_id)
        except PxError as exc:
            self._recheck = True
            self._failed("read the position for", entry.id, exc)
            return
        net = sum(p.size if p.type is PositionType.LONG else -p.size for p in positions
                  if p.contract_id == desk.contract.id)
        entry = desk.latest(entry.id) or entry  # pushes that came meanwhile count too
        self._outside = max(self._outside, entry.fill_volume - self._exited() - max(0, net * entry.side.sign))

    async def _resize(self, leg_id: int, size: int) -> None:
        self._asked[leg_id] = size
        try:
            await self._desk.modify_order(leg_id, size=size)
        except PxError as exc:
            self._asked.pop(leg_id, None)
            self._failed("resize", leg_id, exc)

    async def _cancel(self, order_id: int) -> None:
        if order_id in self._cancelling:
            return
        self._cancelling.add(order_id)
        try:
            await self._desk.cancel_order(order_id)
        except PxError as exc:
            if self._failed("cancel", order_id, exc):
                self._cancelling.discard(order_id)

    def _failed(self, what: str, order_id: int, exc: PxError) -> bool:
        """Log a failed command; True (and a later retry) unless the order had simply ended meanwhile."""
        if isinstance(exc, OrderRejectedError | OrderNotFoundError):
            log.debug("client bracket %d: could not %s order %d: %s", self.bracket.entry.id, what, order_id, exc)
            return False  # it ended meanwhile: its push wakes the linker
        log.warning("client bracket %d: could not %s order %d: %s; retrying", self.bracket.entry.id, what,
                    order_id, exc)
        asyncio.get_running_loop().call_later(RETRY_AFTER, self._wake.set)
        return True
