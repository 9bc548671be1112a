"""RiskManager: the account's risk rules applied live, refusing before the wire and enforcing after fills."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from ..client.http import ProjectX
from ..errors import OrderStateUnknownError, PxError, RiskStateError
from ..events import Event, EventBus, EventType
from ..hours import trading_day
from ..instrument.brackets import TERMINAL
from ..instrument.context import InstrumentContext
from ..models import Order, PlaceOrderRequest, Trade
from ..payloads import RiskBreach
from .exposure import Exposure
from .limits import RiskConfig, trading_day_bounds
from .rules import Action, OrderIntent, RiskRules, RiskState, Rule, Violation
from .store import DailyPnl, RiskStore
from .writer import StoreWriter

log = logging.getLogger(__name__)
_ORDER_EVENTS = (EventType.ORDER_PLACED, EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL,
                 EventType.ORDER_CANCELLED, EventType.ORDER_REJECTED)  # every first sight of an order emits one
_POSITION_EVENTS = (EventType.POSITION_OPENED, EventType.POSITION_CHANGED, EventType.POSITION_CLOSED)
_WATCHED = (EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL, EventType.ORDER_PLACED, *_POSITION_EVENTS)
MAX_COUNTED_FILLS = 5_000  # the day's latest fills kept to count each once (and take a voided one back out)


class RiskManager:
    """One account's risk rules over a suite's instruments, with lockouts, daily P&L and intents in a RiskStore.

    - Before the wire (`admit`): an order that breaks a rule raises RiskViolationError and nothing is sent. The
      check counts every order admitted and not yet held by its manager (Exposure), and the admitted order is
      reserved in the same step, so concurrent orders cannot pass a limit together; its intent is journaled
      under its customTag before it is sent (RiskStateError, and nothing sent, when that write fails).
    - After the answer (`settled`, which never raises): acknowledged, failed, or, when the caller was told its
      fate is unknown, re-checked by tag for `intent_grace` s and counted as exposure meanwhile; a hub push
      carrying the tag acknowledges it too. Intents a crash left open are handled the same way on start-up.
    - After fills (`evaluate`, on every fill and position change and on the suite's timer): a breach is enforced
      through the client (cancel orders, close or reduce positions), checked against the gateway over REST,
      logged, locked out for the configured time, and announced with RISK_BREACH.
    - Daily P&L is realised - fees (the gateway's trades since 18:00 New York) + unrealised at the last prices.
    - SQLite runs on one writer thread (StoreWriter), never on the event loop; lockouts and the day's P&L are
      read from memory.
    """

    def __init__(self, config: RiskConfig, client: ProjectX, account_id: int, *, clock: Callable[[], datetime],
                 store: RiskStore | None = None, verify_timeout: float = 5.0, intent_grace: float = 60.0,
                 recheck_interval: float = 2.0) -> None:
        self.config = config
        self.rules = RiskRules(config)
        self.client = client
        self.account_id = account_id
        self.clock = clock
        self.verify_timeout = verify_timeout
        self.intent_grace = intent_grace  # seconds an order of unknown fate may take to show up on the gateway
        self.recheck_interval = recheck_interval
        self.contexts: Mapping[str, InstrumentContext] = {}
        self.bus: EventBus | None = None
        self.writer = StoreWriter()
        self.exposure = Exposure()
        self._store = store
        self._counted: OrderedDict[int, Trade] = OrderedDict()  # the day's latest fills (MAX_COUNTED_FILLS)
        self._day_sums = [0.0, 0.0]  # realised and fees of the day's fills counted
        self._carried = (0.0, 0.0)  # realised and fees from the store, when the day's trades could not be read
        self._day = trading_day(clock())
        self._enforcing: asyncio.Task[None] | None = None
        self._persisted: tuple[date, float, float] | None = None  # the day's figures last written to the store
        self._lockout_until: datetime | None = None  # the end of the account's latest lockout
        self._unknown: dict[str, tuple[datetime, float]] = {}  # tag -> (journaled at, loop time to give up)
        self._rechecking: asyncio.Task[None] | None = None

    @property
    def store(self) -> RiskStore:
        """The durable store (opened by `start`); read it from tests and tools, not from the event loop."""
        if self._store is None:
            raise RiskStateError(f"the risk store {self.config.db_path} is not open: start the risk manager first")
        return self._store

    # ------------------------------------------------------------------ start-up

    async def start(self, contexts: Mapping[str, InstrumentContext], bus: EventBus) -> None:
        """Open the store, watch the instruments, load the trading day and settle intents a crash left open."""
        if self._store is None:
            self._store = await self.writer.run(RiskStore, self.config.db_path)
        self.contexts, self.bus = contexts, bus
        lockouts = await self.writer.run(self.store.lockouts, self.account_id)
        self._lockout_until = max((lockout.until for lockout in lockouts), default=None)
        stored = await self.writer.run(self.store.daily_pnl, self.account_id, self._day)
        if stored is not None:
            self._persisted = (self._day, stored.realised, stored.fees)
        self.exposure.start(contexts.values())
        for context in contexts.values():
            context.positions.on_fill(self._count)  # from now on; the day's search below has the ones before
            for kind in _ORDER_EVENTS:
                context.event_bus.on(kind, self._order_seen, priority=1000)
            for kind in _POSITION_EVENTS:
                context.event_bus.on(kind, self._position_seen, priority=1000)
            for kind in _WATCHED:
                context.event_bus.on(kind, self._changed, priority=100)
        await self._load_day(stored)
        await self._settle_intents()
        self.evaluate()

    async def _load_day(self, stored: DailyPnl | None) -> None:
        start, _ = trading_day_bounds(self._day)
        try:
            trades = await self.client.search_trades(start, account_id=self.account_id)
        except PxError as exc:  # carry what the store remembers: never start a day from zero by accident
            if stored is not None:
                self._carried = (stored.realised, stored.fees)
            log.error("loading today's trades failed (%s); the day's P&L carries on from the stored %s", exc,
                      self._carried)
            return
        for trade in trades:
            self._count(trade)
        self._persist_day()

    async def _settle_intents(self) -> None:
        """Intents journaled but never resolved: found on the gateway by their tag, or re-checked (and counted as
        exposure) until they show up or `intent_grace` s pass. Nothing is sent again, so a crash between
        journaling and the answer cannot place an order twice."""
        open_intents = await self.writer.run(self.store.unresolved_intents, self.account_id)
        for intent in open_intents:
            self.exposure.reserve(intent.tag, OrderIntent(intent.contract_id, intent.side, intent.size),
                                  answered=True)  # no answer will come: the order counts once it is held
            self._watch(intent.tag, intent.created)
        if open_intents:
            await self._recheck_once()

    # ------------------------------------------------------------------ state

    def daily_realized(self) -> tuple[float, float]:
        """Realised P&L and fees of the current trading day."""
        self._roll(trading_day(self.clock()))
        return round(self._carried[0] + self._day_sums[0], 2), round(self._carried[1] + self._day_sums[1], 2)

    def sizes(self) -> dict[str, int]:
        """How many entries the manager keeps: the day's fills counted (MAX_COUNTED_FILLS), orders of unknown
        fate, and the exposure's maps."""
        return {"counted_fills": len(self._counted), "unknown": len(self._unknown),
                **{f"exposure_{name}": n for name, n in self.exposure.sizes().items()}}

    def _roll(self, day: date) -> None:
        if day != self._day:  # 18:00 New York: a new trading day starts from zero
            self._day, self._counted, self._day_sums, self._carried = day, OrderedDict(), [0.0, 0.0], (0.0, 0.0)

    def _count(self, trade: Trade) -> None:
        """Count a fill of the day once by id; a voided one is taken back out."""
        if trade.account_id != self.account_id:
            return
        self._roll(trading_day(self.clock()))
        if trading_day(trade.creation_timestamp) != self._day:
            return
        known = self._counted.get(trade.id)
        if known is not None and known.voided == trade.voided:
            return
        for fill, sign in ((known, -1), (trade, 1)):
            if fill is not None and not fill.voided:
                self._day_sums[0] += sign * (fill.profit_and_loss or 0.0)
                self._day_sums[1] += sign * fill.fees
        self._counted[trade.id] = trade
        self._counted.move_to_end(trade.id)
        if len(self._counted) > MAX_COUNTED_FILLS:
            self._counted.popitem(last=False)

    def _persist_day(self) -> None:
        """Queue the day's realised P&L and fees for the store when they changed (the timer calls this often)."""
        realised, fees = self.daily_realized()
        if self._persisted == (self._day, realised, fees):
            return
        self.writer.submit(f"the P&L of {self._day}", self.store.set_daily_pnl, self.account_id, self._day,
                           realised, fees, at=self.clock())
        self._persisted = (self._day, realised, fees)

    async def state(self) -> RiskState:
        """The account as the pre-trade rules see it now (admitted orders not yet seen included)."""
        return self._admission_state()

    def _admission_state(self) -> RiskState:
        contexts = self.contexts.values()
        return self._state(self.exposure.positions(contexts), self.exposure.open_orders(contexts),
                           self.exposure.pending(contexts))

    def _state(self, positions: Mapping[str, int], open_orders: int,
               pending: Mapping[str, tuple[int, int]] | None = None) -> RiskState:
        now = self.clock()
        realised, fees = self.daily_realized()
        unrealised = sum(c.positions.unrealized_pnl() for c in self.contexts.values())
        return RiskState(now, positions, open_orders, realised - fees + unrealised, self._active_lockout(now),
                         pending or {})

    def _active_lockout(self, now: datetime) -> datetime | None:
        until = self._lockout_until
        return until if until is not None and until > now else None

    # ------------------------------------------------------------------ before the wire

    async def admit(self, request: PlaceOrderRequest) -> None:
        """Refuse an order that breaks a rule (RiskViolationError, nothing sent); otherwise reserve its exposure
        and journal its intent (RiskStateError, reservation released, when the store cannot write it)."""
        tag = request.custom_tag or ""
        intent = OrderIntent.from_request(request)
        self.rules.check_order(intent, self._admission_state())
        self.exposure.reserve(tag, intent)  # in the same step as the check: no other order passes in between
        try:
            await self.writer.run(self._journal, request, self.clock())
        except BaseException:
            self.exposure.release(tag)
            raise

    def _journal(self, request: PlaceOrderRequest, at: datetime) -> None:
        """On the writer thread: the intent, then that it is being sent (from here a crash leaves it open)."""
        self.store.journal_intent(request, at=at)
        self.store.mark_sent(request.custom_tag or "", at=at)

    def settled(self, request: PlaceOrderRequest, order_id: int | None, error: BaseException | None) -> None:
        """Record how an admitted order's placement ended; the journal is written in the background (kept and
        retried when the store fails), so this never raises and the caller always gets its order."""
        tag = request.custom_tag or ""
        reservation = self.exposure.reserved.get(tag)
        seen = reservation.order_id if reservation is not None and reservation.seen else None
        if order_id is not None or seen is not None:  # the gateway's word (an answer or a push) wins
            self._acknowledge(tag, order_id if order_id is not None else seen)
        elif isinstance(error, PxError) and not isinstance(error, OrderStateUnknownError) \
                and not getattr(error, "maybe_processed", False):
            self._fail(tag, str(error))
        else:  # the gateway may hold it: journaled as the caller was told, and settled later by its tag
            self.exposure.answered(tag, None)
            self.writer.submit(f"the unknown fate of order {tag}", self.store.mark_unknown, tag,
                               f"{type(error).__name__}: {error}", at=self.clock())
            self._watch(tag, self.clock())

    def _acknowledge(self, tag: str, order_id: int) -> None:
        self._unknown.pop(tag, None)
        reservation = self.exposure.answered(tag, order_id)
        if reservation is not None and reservation.acknowledged:
            return
        if reservation is not None:
            reservation.acknowledged = True
        self.writer.submit(f"the acknowledgement of order {tag} ({order_id})", self.store.mark_acknowledged, tag,
                           order_id, at=self.clock())

    def _fail(self, tag: str, reason: str) -> None:
        self._unknown.pop(tag, None)
        self.exposure.release(tag)
        self.writer.submit(f"the failure of order {tag}", self.store.mark_failed, tag, reason, at=self.clock())

    # ------------------------------------------------------------------ orders of unknown fate

    def _watch(self, tag: str, created: datetime) -> None:
        """Look the tag up every `recheck_interval` s until the order shows up or `intent_grace` s pass."""
        self._unknown[tag] = (created, asyncio.get_running_loop().time() + self.intent_grace)
        if self._rechecking is None or self._rechecking.done():
            self._rechecking = asyncio.create_task(self._recheck(), name="pxkit-risk-recheck")

    async def _recheck(self) -> None:
        while self._unknown:
            await asyncio.sleep(self.recheck_interval)
            await self._recheck_once()

    async def _recheck_once(self) -> None:
        if not self._unknown:
            return
        since = min(created for created, _ in self._unknown.values()) - timedelta(days=1)  # room for a skewed clock
        try:
            orders = {o.custom_tag: o for o in await self.client.search_orders(since, account_id=self.account_id)}
        except PxError as exc:
            log.warning("looking up %d orders of unknown fate failed: %s", len(self._unknown), exc)
            orders = {}
        now = asyncio.get_running_loop().time()
        for tag, (_, deadline) in list(self._unknown.items()):
            order = orders.get(tag)
            if order is not None:
                log.info("order %s of unknown fate is on the gateway as order %d", tag, order.id)
                self._found(tag, order)
            elif now >= deadline:
                log.warning("order %s is not on the gateway %.0f s after its fate became unknown", tag,
                            self.intent_grace)
                self._fail(tag, f"not on the gateway within {self.intent_grace:g} s")

    def _found(self, tag: str, order: Order) -> None:
        """Found by its tag over REST: counted from its manager's view when one will hold it, else released."""
        self._acknowledge(tag, order.id)
        context = next((c for c in self.contexts.values() if c.instrument_info.id == order.contract_id), None)
        if context is None or order.status in TERMINAL or context.orders.handle(order.id).order is not None:
            self.exposure.release(tag)

    # ------------------------------------------------------------------ after fills

    def _order_seen(self, event: Event) -> None:
        reservation = self.exposure.order_seen(event.data)
        if reservation is not None and (reservation.answered or reservation.tag in self._unknown):
            self._acknowledge(reservation.tag, event.data.id)

    def _position_seen(self, event: Event) -> None:
        self.exposure.position_seen(event.data.contract_id)

    def _changed(self, _event: object) -> None:
        self.evaluate()

    def evaluate(self) -> None:
        """Check the rules now; a breach starts one enforcement (later breaches wait for it to finish)."""
        if not self.config.enabled or not self.contexts:
            return
        self._persist_day()
        positions = {c.instrument_info.id: c.positions.size for c in self.contexts.values() if c.positions.size}
        state = self._state(positions, sum(len(c.orders.working()) for c in self.contexts.values()))
        breaches = [b for b in self.rules.breaches(state) if self._actionable(b, state)]
        if breaches and (self._enforcing is None or self._enforcing.done()):
            self._enforcing = asyncio.create_task(self._enforce(tuple(breaches)), name="pxkit-risk-enforce")

    @staticmethod
    def _actionable(breach: Violation, state: RiskState) -> bool:
        """A flatten breach while already flat, without orders and locked out has nothing left to do."""
        idle = not state.total_contracts and not state.open_orders
        return not (breach.action is Action.FLATTEN and idle and state.lockout_until is not None)

    async def _enforce(self, breaches: tuple[Violation, ...]) -> None:
        now = self.clock()
        log.warning("risk breach on account %d: %s", self.account_id, "; ".join(map(str, breaches)))
        actions: list[str] = []
        try:
            sizes = {c.instrument_info.id: abs(c.positions.size) for c in self.contexts.values()}
            for breach in breaches:  # `sizes` follows the cures, so a later breach is not cured twice
                actions += await self._cure(breach, sizes)
            verified = await self._verify(breaches)
        except PxError as exc:
            log.error("enforcing %s failed: %s", breaches[0].rule, exc)
            actions.append(f"failed: {exc}")
            verified = False
        lockouts = [until for b in breaches if (until := self.rules.lockout_until(b, now)) is not None]
        until = max(lockouts, default=None)
        if until is not None:
            self._lockout_until = max(until, self._lockout_until or until)
            await self._write(f"the lockout until {until}", self.store.add_lockout, self.account_id, until,
                              breaches[0].rule, "; ".join(map(str, breaches)), at=now)
        for breach in breaches:
            await self._write(f"the enforcement of {breach.rule}", self.store.log_enforcement, self.account_id,
                              breach.rule, breach.action, str(breach),
                              "verified" if verified else "unverified: " + "; ".join(actions), at=now)
        payload = RiskBreach(breaches, tuple(actions), verified, until)
        for bus in [self.bus, *(c.event_bus for c in self.contexts.values())]:
            if bus is not None:
                bus.emit_nowait(EventType.RISK_BREACH, payload, source="risk", timestamp=now)

    async def _cure(self, breach: Violation, sizes: dict[str, int]) -> list[str]:
        contexts = list(self.contexts.values())
        if breach.action is Action.CANCEL_ORDERS:
            cancelled = sum([await c.orders.cancel_all_orders() for c in contexts])
            return [f"cancelled {cancelled} orders"]
        if breach.action is Action.REDUCE:  # one contract's excess, or the total's, largest positions first
            if breach.contract_id is not None:
                excess = sizes.get(breach.contract_id, 0) - int(breach.limit)
            else:
                excess = sum(sizes.values()) - int(breach.limit)
            held = [c for c in contexts if sizes.get(c.instrument_info.id)
                    and breach.contract_id in (None, c.instrument_info.id)]
            done = []
            for context in sorted(held, key=lambda c: -sizes[c.instrument_info.id]):
                if excess <= 0:
                    break
                size = sizes[context.instrument_info.id]
                cut = min(excess, size)
                if cut == size:
                    await context.positions.close_position()
                else:
                    await context.positions.partially_close_position(cut)
                sizes[context.instrument_info.id] = size - cut
                done.append(f"reduced {context.symbol} by {cut}")
                excess -= cut
            return done
        done = [f"cancelled {sum([await c.orders.cancel_all_orders() for c in contexts])} orders"]
        for context in contexts:
            if sizes.get(context.instrument_info.id):
                await context.positions.close_position()
                sizes[context.instrument_info.id] = 0
                done.append(f"closed {context.symbol}")
        return done

    async def _verify(self, breaches: tuple[Violation, ...]) -> bool:
        """Ask the gateway (REST, not the hub's view) until every breach shows cured, within verify_timeout."""
        ours = {c.instrument_info.id for c in self.contexts.values()}
        deadline = asyncio.get_running_loop().time() + self.verify_timeout
        while True:
            positions = {p.contract_id: p.size for p in await self.client.search_open_positions(
                account_id=self.account_id) if p.contract_id in ours}
            orders = [o for o in await self.client.search_open_orders(account_id=self.account_id)
                      if o.contract_id in ours]
            if all(_cured(b, positions, len(orders)) for b in breaches):
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ shut-down

    async def _write(self, what: str, call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Write durably before going on; a write the store refuses now is kept and retried in the background."""
        try:
            await self.writer.run(call, *args, **kwargs)
        except PxError as exc:
            log.error("risk store: %s failed (%s); kept to try again", what, exc)
            self.writer.submit(what, call, *args, **kwargs)

    # ------------------------------------------------------------------ shut-down

    async def aclose(self) -> None:
        """Let a running enforcement finish (bounded), stop re-checking, write what is queued, close the store."""
        if self._enforcing is not None and not self._enforcing.done():
            await asyncio.wait({self._enforcing}, timeout=self.verify_timeout + 5)
        if self._rechecking is not None:
            self._rechecking.cancel()
            await asyncio.gather(self._rechecking, return_exceptions=True)
        await self.writer.aclose(then=self._store.close if self._store is not None else None)

    def lockout(self) -> datetime | None:
        """End of the account's active lockout, if any."""
        return self._active_lockout(self.clock())


def _cured(breach: Violation, positions: Mapping[str, int], open_orders: int) -> bool:
    """Whether the gateway's positions (contract -> size) and working orders no longer show the breach."""
    if breach.action is Action.FLATTEN:
        return not positions and not open_orders
    if breach.rule is Rule.POSITION_SIZE:
        return positions.get(breach.contract_id or "", 0) <= int(breach.limit)
    if breach.rule is Rule.TOTAL_POSITION_SIZE:
        return sum(positions.values()) <= int(breach.limit)
    if breach.rule is Rule.OPEN_ORDERS:
        return open_orders <= int(breach.limit)
    return True
