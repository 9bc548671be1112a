"""TradingSuite: several instruments on one account, fed by one router; start-up and shut-down in order."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
import weakref
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .client.http import ProjectX
from .client.hublink import LinkSettings
from .client.realtime import MARKET, USER, ProjectXRealtimeClient
from .client.resilience import CircuitState
from .config import ProjectXConfig
from .errors import ClosedError, InputError, PxError
from .events import Event, EventBus, EventType
from .hours import globex_open
from .html import Html, badge, facts, fixed, muted, panel, signed, table
from .instrument.bars import Timeframe
from .instrument.context import InstrumentContext
from .instrument.data import RealtimeDataManager, check_history
from .instrument.orderbook import OrderBook
from .instrument.orders import OrderManager
from .instrument.positions import PositionManager
from .models import Account, Contract, tick_decimals
from .portfolio import Portfolio
from .risk.manager import RiskManager
from .risk.rules import RiskConfig
from .router import Router, cancel
from .stats import ComponentStats, HealthInputs, SuiteStats, health_badge, health_score

if TYPE_CHECKING:
    from os import PathLike

    from .research.recorder import Recording
    from .sim import SimServer

log = logging.getLogger(__name__)

FEATURES = ("orderbook", "risk_manager")
EMBEDDED_TRADES_PER_MINUTE = 240.0  # a lively market for demos and notebooks
_LIVE: weakref.WeakSet[TradingSuite] = weakref.WeakSet()  # started and not yet closed; keeps none alive
_FORWARDED = {"data", "orders", "positions", "orderbook", "risk_manager", "event_bus", "instrument_info", "symbol"}


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    """How a suite builds its instruments and runs its timers."""

    timeframes: tuple[str, ...] = ("1min", "5min")
    features: tuple[str, ...] = ()
    initial_days: float | None = None  # None: up to a day, as far as max_bars allows per timeframe
    max_bars: int = 2000
    stale_after: float = 30.0  # seconds of silence, during the session, before a feed counts as stale
    risk: RiskConfig | None = None
    max_ahead: float = 60.0  # seconds a market stamp may be ahead of the exchange clock before it is quarantined
    bar_close_grace: float = 1.0  # seconds a bar stays open after its end, for trades still in flight
    timer_interval: float = 0.25
    timers: bool = True  # False: the caller closes bars and watches feeds by calling `tick()` (a virtual clock)


class TradingSuite:
    """One account, many instruments: `suite["MNQ"]` is an InstrumentContext; `suite.portfolio` spans them.

    Create it with `await TradingSuite.create(["MNQ", "ES"])` or `async with TradingSuite.create(...) as suite`.
    Without credentials in the environment it starts the embedded simulator and says so once.
    """

    def __init__(self, client: ProjectX, realtime: ProjectXRealtimeClient, router: Router,
                 options: SuiteOptions, *, clock: Callable[[], datetime], sim: SimServer | None = None) -> None:
        self.client = client
        self.realtime = realtime
        self.router = router
        self.options = options
        self.clock = clock
        self.sim = sim
        self.event_bus = router.suite_bus
        self.contexts: dict[str, InstrumentContext] = {}
        self.failures: dict[str, PxError] = {}
        self.portfolio = Portfolio(self.contexts, closed=lambda: self._closed)
        self.risk: RiskManager | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._resyncs: set[asyncio.Task[None]] = set()
        self._recordings: list[Recording] = []
        self._closed = False

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(cls, instruments: str | Sequence[str], *, timeframes: Sequence[str] = ("1min", "5min"),
               features: Sequence[str] = (), config: ProjectXConfig | None = None, initial_days: float | None = None,
               max_bars: int = 2000, stale_after: float = 30.0, clock: Callable[[], datetime] | None = None,
               link_settings: LinkSettings | None = None, risk: RiskConfig | Mapping[str, Any] | None = None,
               simulated: bool | None = None, seed: int = 1, max_ahead: float = 60.0) -> SuiteStarter:
        """Start a suite: await it, or use it as `async with`. Instruments that fail are in `suite.failures`.

        Without `config`, credentials come from the environment; with none there (or `simulated=True`) the
        embedded simulator (market `seed`) is started and the suite runs on it; `simulated=False` insists on
        the real gateway (a ConfigError without credentials). `risk` configures the `risk_manager` feature.
        Each timeframe preloads `initial_days` of history, at most `max_bars` bars (by default up to a day, as far
        as `max_bars` allows: a day of 1min bars is 1,440); asking for more than `max_bars` holds warns once.
        Market trades and quotes stamped more than `max_ahead` seconds ahead of the exchange clock are quarantined.
        """
        symbols = [instruments] if isinstance(instruments, str) else list(instruments)
        if not symbols or not all(isinstance(s, str) and s.strip() for s in symbols):
            raise InputError(f"give one or more instrument symbols, got {instruments!r}")
        unknown = sorted(set(features) - set(FEATURES))
        if unknown:
            raise InputError(f"unknown features {unknown}; available: {list(FEATURES)}")
        for tf in timeframes:
            Timeframe.parse(tf)
        if risk is not None and "risk_manager" not in features:
            raise InputError("risk= configures the risk_manager feature: add it to features")
        risk_config = risk if isinstance(risk, RiskConfig) else RiskConfig.from_dict(risk or {})
        if isinstance(max_ahead, bool) or not isinstance(max_ahead, int | float) or not max_ahead > 0:
            raise InputError(f"max_ahead must be a number of seconds > 0, got {max_ahead!r}")
        check_history(initial_days, max_bars)
        options = SuiteOptions(tuple(timeframes), tuple(features), initial_days, max_bars, stale_after, risk_config,
                               max_ahead=max_ahead)
        if simulated and config is not None:
            raise InputError("give either config= or simulated=True, not both")
        names = [s.strip().upper() for s in symbols]
        return SuiteStarter(lambda: cls._start(names, options, config, clock, link_settings, simulated, seed))

    @classmethod
    async def _start(cls, symbols: list[str], options: SuiteOptions, config: ProjectXConfig | None,
                     clock: Callable[[], datetime] | None, link_settings: LinkSettings | None,
                     simulated: bool | None, seed: int) -> TradingSuite:
        sim = None
        if config is None:
            if simulated is False or (simulated is None and ProjectXConfig.credentials_in_env()):
                config = ProjectXConfig.from_env()
            else:
                sim, options = await _start_simulator(seed, options)
                log.warning("%s: using the embedded simulator at %s (seed %d)%s",
                            "simulator asked for" if simulated else "no ProjectX credentials in the environment",
                            sim.base_url, seed, f"; risk store {options.risk.db_path}"
                            if options.risk is not None and "risk_manager" in options.features else "")
                config = ProjectXConfig.for_simulator(sim.base_url)
        client = ProjectX(config)
        try:
            realtime = ProjectXRealtimeClient(config, client.tokens, settings=link_settings, rest=client)
        except BaseException:
            await client.close()
            raise
        if clock is None:
            clock = sim.sim.clock.now if sim is not None else client.gateway_now
        return await cls.assemble(client, realtime, symbols, options, clock=clock, sim=sim)

    @classmethod
    async def assemble(cls, client: ProjectX, realtime: ProjectXRealtimeClient, symbols: Sequence[str],
                       options: SuiteOptions, *, clock: Callable[[], datetime], sim: SimServer | None = None
                       ) -> TradingSuite:
        """A suite on a client and realtime client made by the caller (which the suite then owns and closes):
        authenticate, connect, subscribe and build the instruments; `sim` is stopped with the suite."""
        suite: TradingSuite | None = None
        try:
            account = await client.authenticate()
            router = Router(account, EventBus("suite"), clock)
            _warn_if_running(client, account, symbols)
            suite = cls(client, realtime, router, options, clock=clock, sim=sim)
            await suite._open(list(symbols))
            _LIVE.add(suite)
            return suite
        except BaseException:
            if suite is not None:
                await suite.close()
            else:
                await client.close()
                if sim is not None:
                    await sim.stop()
            raise

    async def _open(self, symbols: list[str]) -> None:
        """Connect, subscribe the account, start routing, then build every instrument concurrently."""
        stream = self.realtime.stream(USER, MARKET)  # registered now: nothing pushed from here on is missed
        self._tasks.append(asyncio.create_task(self.router.run(stream), name="pxkit-router"))
        await self.realtime.connect()
        await self.realtime.subscribe_user(self.router.account.id, self.router.state)  # its truth is streamed
        if "risk_manager" in self.options.features and self.options.risk is not None:
            self.risk = RiskManager(self.options.risk, self.client, self.router.account.id, clock=self.clock)
        symbols = list(dict.fromkeys(symbols))
        found = await asyncio.gather(*(self.client.get_instrument(s) for s in symbols), return_exceptions=True)
        wanted: dict[str, Contract] = {}
        for symbol, contract in zip(symbols, found, strict=True):
            if isinstance(contract, Contract):
                same = next((s for s, c in wanted.items() if c.id == contract.id), None)
                if same is None:
                    wanted[symbol] = contract
                    continue
                contract = InputError(f"{symbol} is the same contract as {same} ({contract.id})")
            self._failed(symbol, contract)
        built = await asyncio.gather(*(self._build(s, c) for s, c in wanted.items()), return_exceptions=True)
        for symbol, context in zip(wanted, built, strict=True):
            if isinstance(context, InstrumentContext):
                self.contexts[symbol] = context
            else:
                self._failed(symbol, context)
        if not self.contexts:
            raise next(iter(self.failures.values()))
        if self.risk is not None:
            await self.risk.start(self.contexts, self.event_bus)
        self.event_bus.on(EventType.RECONNECTED, self._reconnected)
        if self.options.timers:
            self._tasks.append(asyncio.create_task(self._run_timers(), name="pxkit-timers"))

    def _failed(self, symbol: str, error: BaseException) -> None:
        if not isinstance(error, PxError):
            raise error
        self.failures[symbol] = error
        log.error("instrument %s did not start: %s", symbol, error)

    async def _build(self, symbol: str, contract: Contract) -> InstrumentContext:
        options = self.options
        bus = EventBus(symbol)
        account_id = self.router.account.id
        data = RealtimeDataManager(self.client, contract, bus, symbol=symbol, timeframes=options.timeframes,
                                   max_bars=options.max_bars, stale_after=options.stale_after,
                                   session=globex_open,
                                   clock=self.clock, max_ahead=options.max_ahead)
        context = InstrumentContext(
            symbol, contract, data,
            OrderManager(self.client, contract, bus, account_id=account_id, symbol=symbol, gate=self.risk),
            PositionManager(self.client, contract, bus, account_id=account_id, symbol=symbol,
                            last_price=lambda: data.last_price),
            bus, OrderBook(contract) if "orderbook" in options.features else None, self.risk,
        )
        self.router.add(context)
        try:
            await self.realtime.subscribe_market(contract.id, depth=context.orderbook is not None)
            await data.initialize(options.initial_days, clock=self.clock)
        except BaseException:
            self.router.remove(context)
            await self._unsubscribe(contract.id)
            raise
        await self.router.primed.wait()  # the account's truth at start-up is routed, then the hub keeps it current
        self.router.apply_state(contract.id)
        return context

    async def _unsubscribe(self, contract_id: str) -> None:
        try:
            await self.realtime.unsubscribe_market(contract_id)
        except PxError as exc:
            log.debug("unsubscribing %s failed: %s", contract_id, exc)

    def _reconnected(self, event: Event) -> None:
        """The market feed is back: trades of the gap were never pushed, so every instrument reloads its bars
        (one still starting reloads once more after its history)."""
        if event.source != MARKET or self._closed:
            return
        for context in list(self.router.contexts.values()):
            task = asyncio.create_task(self._resync(context), name=f"pxkit-resync-{context.symbol}")
            self._resyncs.add(task)
            task.add_done_callback(self._resyncs.discard)

    async def _resync(self, context: InstrumentContext) -> None:
        try:
            closed = await context.data.resync(clock=self.clock)
            if closed is None:
                log.info("%s: bars are loading; they reload once more after that, for the reconnect", context.symbol)
            else:
                log.info("%s: bars reloaded after the reconnect (%d closed during the gap)", context.symbol, closed)
        except PxError as exc:
            self.router.stats.error("resync")
            log.error("%s: reloading bars after the reconnect failed: %s", context.symbol, exc)

    # ------------------------------------------------------------------ timers

    def bar_clock(self) -> datetime:
        """The time up to which bars may close: the exchange clock, less how far the feed was behind it when its
        newest event arrived (a backlog still in flight), less a grace for trades on the wire."""
        return self.clock() - self.router.feed_lag - timedelta(seconds=self.options.bar_close_grace)

    async def _run_timers(self) -> None:
        while True:
            await asyncio.sleep(self.options.timer_interval)
            try:
                self.tick()
            except Exception:
                self.router.stats.error("timers")
                log.exception("suite timers failed")

    def tick(self) -> None:
        """Close the bars whose time is over and watch for silent feeds (run by the suite's timer)."""
        closing, now, mono = self.bar_clock(), self.clock(), time.monotonic()
        for context in self.contexts.values():
            context.data.close_due(closing)
            context.data.check_stale(now, mono)
        if self.risk is not None:
            self.risk.evaluate()  # unrealised P&L moves with prices, not only with fills

    # ------------------------------------------------------------------ container protocol

    def __getitem__(self, symbol: str) -> InstrumentContext:
        if self._closed:
            raise ClosedError(f"this suite is closed; {symbol!r} is no longer served")
        try:
            return self.contexts[symbol.upper()]
        except (KeyError, AttributeError):
            raise KeyError(f"{symbol!r} is not in this suite; it has {list(self.contexts)}") from None

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and symbol.upper() in self.contexts

    def __len__(self) -> int:
        return len(self.contexts)

    def __iter__(self) -> Iterator[str]:
        return iter(self.contexts)

    def keys(self) -> KeysView[str]:
        return self.contexts.keys()

    def values(self) -> ValuesView[InstrumentContext]:
        return self.contexts.values()

    def items(self) -> ItemsView[str, InstrumentContext]:
        return self.contexts.items()

    def __getattr__(self, name: str) -> Any:
        """`suite.data` and friends on a one-instrument suite: forwarded, with a DeprecationWarning."""
        if name in _FORWARDED and not name.startswith("_"):
            contexts = self.__dict__.get("contexts", {})
            if len(contexts) == 1:
                symbol = next(iter(contexts))
                warnings.warn(f"suite.{name} is deprecated: use suite[{symbol!r}].{name}", DeprecationWarning,
                              stacklevel=2)
                return getattr(contexts[symbol], name)
            raise AttributeError(f"suite.{name} needs exactly one instrument; use suite[symbol].{name}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def account(self) -> Account:
        """The suite's account, kept current by the user hub."""
        return self.router.account

    def _where(self) -> str:
        return "simulator" if self.sim is not None else self.client.config.api_url

    def __repr__(self) -> str:
        if self._closed:
            return f"TradingSuite(closed, {list(self.contexts)}, account={self.router.account.name!r})"
        hubs = " ".join(f"{hub} {'up' if self.realtime.connected(hub) else 'down'}" for hub in (USER, MARKET))
        return (f"TradingSuite({list(self.contexts)}, account={self.router.account.name!r}, {self._where()}, "
                f"{hubs}, health {self._stats()['health']}, failed={list(self.failures)})")

    def _repr_html_(self) -> str:
        account = self.router.account
        title = f"TradingSuite \u00b7 {account.name} ({account.id})"
        if self._closed:
            return panel(title, muted("closed: its instruments are no longer served"), note=self._where())
        stats = self._stats()
        hubs = [(f"{hub} hub", badge("up", "ok") if up else badge("down", "bad")) for hub, up in stats["hubs"].items()]
        rows = []
        for symbol, ctx in self.contexts.items():
            decimals = tick_decimals(ctx.instrument_info.tick_size)
            bid, ask = ctx.book_top()
            pnl = ctx.positions.pnl()
            rows.append((symbol, ctx.instrument_info.id, fixed(ctx.data.last_price, decimals), fixed(bid, decimals),
                         fixed(ask, decimals), f"{ctx.positions.size:+d}" if ctx.positions.size else "flat",
                         signed(pnl.unrealized), signed(pnl.net),
                         badge("stale", "warn") if ctx.data.stale else badge("live", "ok")))
        return panel(
            title,
            facts([("balance", fixed(account.balance)), ("trading", "allowed" if account.can_trade else "locked"),
                   *hubs]),
            Html(f"{health_badge(stats['health'])} {muted('; '.join(stats['reasons']))}"),
            table(rows, ("symbol", "contract", "last", "bid", "ask", "position", "open P&L", "net P&L", "feed"),
                  align="ll"),
            table(list(stats["failures"].items()), ("failed", "why"), align="ll") if self.failures else "",
            note=self._where())

    # ------------------------------------------------------------------ recording

    def record(self, path: str | PathLike[str], *, flush_interval: float = 1.0) -> Recording:
        """Record every push of this suite's hubs (its instruments' trades, quotes and depth, the account's orders,
        fills, positions and balance) to parquet under `path` from now on, flushed every `flush_interval` seconds
        (pxkit.research.recorder). `await rec.stop()`, `async with`, or closing the suite ends it."""
        from .research.recorder import Recording  # research sits above the suite: loaded only when recording

        if self._closed:
            raise ClosedError("this suite is closed; there is nothing left to record")
        recording = Recording(self.realtime, path, flush_interval=flush_interval, on_stop=self._recordings.remove)
        self._recordings.append(recording)
        return recording

    # ------------------------------------------------------------------ stats

    async def get_stats(self) -> SuiteStats:
        """Counters per component, latency percentiles, connection state, and a health score 0-100 (a dict that a
        notebook shows as a small report)."""
        return self._stats()

    def _stats(self) -> SuiteStats:
        components: list[ComponentStats] = [self.router.stats, *(c.data.stats for c in self.contexts.values())]
        messages = sum(sum(c.counters.values()) for c in components)
        errors = sum(sum(c.errors.values()) for c in components) + self.realtime.decode_errors + sum(
            sum(c.event_bus.handler_errors.values()) for c in self.contexts.values())
        hubs = {hub: self.realtime.connected(hub) for hub in (USER, MARKET)}
        stale = [s for s, c in self.contexts.items() if c.data.stale]
        score, reasons = health_score(HealthInputs(
            hubs_connected=sum(hubs.values()), hubs_total=len(hubs), stale_feeds=len(stale),
            feeds_total=len(self.contexts), breaker_open=self.client.transport.breaker.state is CircuitState.OPEN,
            messages=messages, errors=errors, reconnects=self.router.reconnects,
            failed_instruments=len(self.failures), quarantined=sum(c.data.quarantined for c in self.contexts.values())))
        return SuiteStats({
            "health": score, "reasons": reasons, "hubs": hubs, "stale_feeds": stale,
            "reconnects": self.router.reconnects, "decode_errors": self.realtime.decode_errors,
            "components": {c.name: c.snapshot() for c in components},
            "instruments": {s: {"last_price": c.data.last_price, "late_trades": c.data.bars.late,
                                "quarantined": c.data.quarantined,
                                "events": dict(c.event_bus.emitted), "handler_errors": dict(c.event_bus.handler_errors)}
                            for s, c in self.contexts.items()},
            "failures": {s: str(e) for s, e in self.failures.items()},
        })

    # ------------------------------------------------------------------ shut-down

    async def close(self) -> None:
        """Stop routing and timers, disconnect the hubs, close HTTP, flush events, stop the embedded simulator.
        Every step is bounded, so this returns even when the gateway has gone silent."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        for task in [*self._tasks, *self._resyncs]:
            await cancel(task)
        steps: list[tuple[str, Awaitable[Any]]] = [("recording", r.stop()) for r in list(self._recordings)]
        steps += [("risk", self.risk.aclose())] if self.risk is not None else []
        steps += [(f"orders {c.symbol}", c.orders.aclose()) for c in self.contexts.values()]
        steps += [(f"bars {c.symbol}", c.data.aclose()) for c in self.contexts.values()]
        steps += [("hubs", self.realtime.disconnect()), ("http", self.client.close(reason="this suite is closed"))]
        steps += [(f"events {c.symbol}", c.event_bus.aclose()) for c in self.contexts.values()]
        steps.append(("suite events", self.event_bus.aclose()))
        if self.sim is not None:
            steps.append(("simulator", self.sim.stop()))
        for what, step in steps:
            try:
                await asyncio.wait_for(step, timeout=5.0)
            except (TimeoutError, Exception) as exc:  # shut-down goes on whatever one step does
                log.warning("closing %s: %r", what, exc)

    async def __aenter__(self) -> TradingSuite:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def live_suites() -> list[TradingSuite]:
    """The suites of this process that have started and are not closed."""
    return list(_LIVE)


def _warn_if_running(client: ProjectX, account: Account, symbols: Sequence[str]) -> None:
    """Warn when this process already runs a suite on the account: a second one doubles connections and events."""
    for other in _LIVE:
        if other.router.account.id == account.id and other.client.config.api_url == client.config.api_url:
            log.warning("another suite already runs on account %s (%d) in this process, on %s; close it with "
                        "`await suite.close()` unless a second one is meant", other.router.account.name,
                        account.id, ", ".join(other.contexts))


async def _start_simulator(seed: int, options: SuiteOptions) -> tuple[SimServer, SuiteOptions]:
    """The embedded simulator, imported only now: `import pxkit` must not load aiohttp, numpy and the exchange.

    A risk store left at the default file moves into the simulator's own directory, removed when it stops, so a
    simulated account never writes into the real risk database; any other `db_path` is kept.
    """
    from dataclasses import replace

    from .risk.limits import default_db_path
    from .sim import SimConfig, SimServer
    from .sim.clock import DEFAULT_START

    config = SimConfig(seed=seed, trades_per_minute=EMBEDDED_TRADES_PER_MINUTE)
    sim = await SimServer(config=config, realtime=True, start=DEFAULT_START).start()
    if options.risk is not None and options.risk.db_path == default_db_path():
        options = replace(options, risk=replace(options.risk, db_path=sim.state_dir / "risk.sqlite3"))
    return sim, options


class SuiteStarter:
    """What `TradingSuite.create` returns: await it for the suite, or `async with` it to close it at the end.

    Nothing starts until then; used as if it were the suite, it raises a TypeError that says to await it.
    """

    def __init__(self, start: Callable[[], Coroutine[Any, Any, TradingSuite]]) -> None:
        self._start = start
        self._starting: Coroutine[Any, Any, TradingSuite] | None = None
        self._suite: TradingSuite | None = None
        self._told = False

    def _begin(self) -> Coroutine[Any, Any, TradingSuite]:
        if self._starting is None:
            self._starting = self._start()
        return self._starting

    def __await__(self) -> Generator[Any, None, TradingSuite]:
        return self._begin().__await__()

    async def __aenter__(self) -> TradingSuite:
        self._suite = await self._begin()
        return self._suite

    async def __aexit__(self, *exc_info: object) -> None:
        if self._suite is not None:
            await self._suite.close()

    def _not_awaited(self, use: str) -> TypeError:
        self._told = True
        return TypeError(f"TradingSuite.create(...) was not awaited, so there is no suite to {use} yet: write "
                         "`suite = await TradingSuite.create(...)` or `async with TradingSuite.create(...) as suite:`")

    def __getitem__(self, symbol: object) -> Any:
        raise self._not_awaited(f"index with {symbol!r}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # Python's and IPython's own probes
            raise AttributeError(name)
        raise self._not_awaited(f"read .{name} from")

    def __iter__(self) -> Iterator[str]:
        raise self._not_awaited("iterate")

    def __len__(self) -> int:
        raise self._not_awaited("count")

    def __del__(self) -> None:
        if self._starting is None and not self._told:
            warnings.warn("TradingSuite.create(...) was never awaited, so no suite was started", RuntimeWarning,
                          stacklevel=2)
