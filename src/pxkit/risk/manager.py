"""RiskManager: the account's risk rules applied live, refusing before the wire and enforcing after fills."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..client.http import ProjectX
from ..errors import PxError
from ..events import EventBus, EventType
from ..instrument.context import InstrumentContext
from ..instrument.sessions import trading_day
from ..models import PlaceOrderRequest, Trade
from .rules import Action, OrderIntent, RiskConfig, RiskRules, RiskState, Rule, Violation, trading_day_bounds
from .store import RiskStore

log = logging.getLogger(__name__)
_WATCHED = (EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL, EventType.ORDER_PLACED,
            EventType.POSITION_OPENED, EventType.POSITION_CHANGED, EventType.POSITION_CLOSED)


@dataclass(frozen=True, slots=True)
class RiskBreach:
    """Payload of RISK_BREACH: what was broken, what was done, whether the gateway confirmed it, the lockout."""

    violations: tuple[Violation, ...]
    actions: tuple[str, ...]
    verified: bool
    lockout_until: datetime | None


class RiskManager:
    """One account's risk rules over a suite's instruments, with lockouts, daily P&L and intents in a RiskStore.

    - Before the wire (`admit`): an order that breaks a rule raises RiskViolationError and nothing is sent;
      an admitted order's intent is journaled under its customTag before it is sent.
    - After fills (`evaluate`, on every fill and position change and on the suite's timer): a breach is enforced
      through the client (cancel orders, close or reduce positions), checked against the gateway over REST,
      logged, locked out for the configured time, and announced with RISK_BREACH.
    - Daily P&L is realised - fees (the gateway's trades since 18:00 New York) + unrealised at the last prices.
    """

    def __init__(self, config: RiskConfig, client: ProjectX, account_id: int, *, clock: Callable[[], datetime],
                 store: RiskStore | None = None, verify_timeout: float = 5.0) -> None:
        self.config = config
        self.rules = RiskRules(config)
        self.client = client
        self.account_id = account_id
        self.clock = clock
        self.store = store if store is not None else RiskStore(config.db_path)
        self.verify_timeout = verify_timeout
        self.contexts: Mapping[str, InstrumentContext] = {}
        self.bus: EventBus | None = None
        self._trades: dict[int, Trade] = {}  # the account's trades of the current trading day, by id
        self._carried = (0.0, 0.0)  # realised and fees from the store, when the day's trades could not be read
        self._day = trading_day(clock())
        self._enforcing: asyncio.Task[None] | None = None
        self._persisted: tuple[date, float, float] | None = None  # the day's figures last written to the store

    # ------------------------------------------------------------------ start-up

    async def start(self, contexts: Mapping[str, InstrumentContext], bus: EventBus) -> None:
        """Watch the instruments, load the trading day's trades and settle intents a crash left open."""
        self.contexts, self.bus = contexts, bus
        await self._load_day()
        await self._settle_intents()
        for context in contexts.values():
            for kind in _WATCHED:
                context.event_bus.on(kind, self._changed, priority=100)
        self.evaluate()

    async def _load_day(self) -> None:
        start, _ = trading_day_bounds(self._day)
        try:
            trades = await self.client.search_trades(start, account_id=self.account_id)
        except PxError as exc:  # carry what the store remembers: never start a day from zero by accident
            stored = self.store.daily_pnl(self.account_id, self._day)
            if stored is not None:
                self._carried = (stored.realised, stored.fees)
            log.error("loading today's trades failed (%s); the day's P&L carries on from the stored %s", exc,
                      self._carried)
            return
        self._trades = {t.id: t for t in trades}
        self._persist_day()

    async def _settle_intents(self) -> None:
        """Intents journaled but never acknowledged: found on the gateway by their tag, or marked failed.
        Nothing is sent again, so a crash between journaling and the answer cannot place an order twice."""
        open_intents = self.store.unresolved_intents(self.account_id)
        if not open_intents:
            return
        since = min(i.created for i in open_intents) - timedelta(days=1)  # room for a skewed clock
        orders = {o.custom_tag: o for o in await self.client.search_orders(since, account_id=self.account_id)}
        for intent in open_intents:
            order = orders.get(intent.tag)
            if order is not None:
                self.store.mark_acknowledged(intent.tag, order.id)
                log.info("intent %s reached the gateway before the restart as order %d", intent.tag, order.id)
            else:
                self.store.mark_failed(intent.tag, "not on the gateway after a restart")

    # ------------------------------------------------------------------ state

    def daily_realized(self) -> tuple[float, float]:
        """Realised P&L and fees of the current trading day."""
        self._collect()
        realised = self._carried[0] + sum(t.profit_and_loss or 0.0 for t in self._trades.values() if not t.voided)
        fees = self._carried[1] + sum(t.fees for t in self._trades.values() if not t.voided)
        return round(realised, 2), round(fees, 2)

    def _collect(self) -> None:
        day = trading_day(self.clock())
        if day != self._day:  # 18:00 New York: a new trading day starts from zero
            self._day, self._trades, self._carried = day, {}, (0.0, 0.0)
        for context in self.contexts.values():
            for trade in context.positions.trades:
                if trading_day(trade.creation_timestamp) == self._day:
                    self._trades[trade.id] = trade

    def _persist_day(self) -> None:
        """Write the day's realised P&L and fees when they changed (the timer calls this four times a second)."""
        realised, fees = self.daily_realized()
        if self._persisted == (self._day, realised, fees):
            return
        stored = self.store.daily_pnl(self.account_id, self._day)
        if stored is None or (stored.realised, stored.fees) != (realised, fees):
            self.store.set_daily_pnl(self.account_id, self._day, realised, fees, at=self.clock())
        self._persisted = (self._day, realised, fees)

    async def state(self) -> RiskState:
        """The account as the rules see it now."""
        return self._state(sum([len(await c.orders.get_open_orders()) for c in self.contexts.values()]))

    def _state(self, open_orders: int) -> RiskState:
        now = self.clock()
        realised, fees = self.daily_realized()
        unrealised = sum(c.positions.unrealized_pnl() for c in self.contexts.values())
        lockout = self.store.active_lockout(self.account_id, now)
        positions = {c.instrument_info.id: c.positions.size for c in self.contexts.values() if c.positions.size}
        return RiskState(now, positions, open_orders, realised - fees + unrealised,
                         lockout.until if lockout is not None else None)

    # ------------------------------------------------------------------ before the wire

    async def admit(self, request: PlaceOrderRequest) -> None:
        """Refuse an order that breaks a rule (RiskViolationError, nothing sent); otherwise journal its intent."""
        self.rules.check_order(OrderIntent.from_request(request), await self.state())
        self.store.journal_intent(request, at=self.clock())
        self.store.mark_sent(request.custom_tag or "", at=self.clock())

    def settled(self, request: PlaceOrderRequest, order_id: int | None, error: BaseException | None) -> None:
        """Record how an admitted order's placement ended."""
        tag = request.custom_tag or ""
        if order_id is not None:
            self.store.mark_acknowledged(tag, order_id, at=self.clock())
        elif isinstance(error, PxError) and not getattr(error, "maybe_processed", False):
            self.store.mark_failed(tag, str(error), at=self.clock())
        # else the gateway may have it: the intent stays open and is settled by its tag on the next start

    # ------------------------------------------------------------------ after fills

    def _changed(self, _event: object) -> None:
        self.evaluate()

    def evaluate(self) -> None:
        """Check the rules now; a breach starts one enforcement (later breaches wait for it to finish)."""
        if not self.config.enabled or not self.contexts:
            return
        self._persist_day()
        state = self._state(sum(len(c.orders.working()) for c in self.contexts.values()))
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
            self.store.add_lockout(self.account_id, until, breaches[0].rule, "; ".join(map(str, breaches)), at=now)
        for breach in breaches:
            self.store.log_enforcement(self.account_id, breach.rule, breach.action, str(breach),
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

    async def aclose(self) -> None:
        """Let a running enforcement finish (bounded), then close the store."""
        if self._enforcing is not None and not self._enforcing.done():
            await asyncio.wait({self._enforcing}, timeout=self.verify_timeout + 5)
        self.store.close()

    def lockout(self) -> datetime | None:
        """End of the account's active lockout, if any."""
        found = self.store.active_lockout(self.account_id, self.clock())
        return found.until if found is not None else None


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
