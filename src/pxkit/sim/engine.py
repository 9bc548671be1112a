"""The simulated gateway without I/O: clock, market, exchange, market feed and hub subscriptions."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Protocol

from ..codec import Target, market_event_args, wrap_user_event
from ..enums import UserAction
from .clock import SimClock
from .exchange import Exchange
from .feed import MarketFeed
from .market import Market

USER_TOPICS = {Target.USER_ACCOUNT: "accounts", Target.USER_ORDER: "orders",
               Target.USER_POSITION: "positions", Target.USER_TRADE: "user_trades"}
MARKET_TOPICS = ("quotes", "trades", "depth")


class Subscriber(Protocol):
    """Anything that accepts hub pushes (a hub connection)."""

    def send(self, target: str, arguments: list[Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Knobs of the simulated market."""

    seed: int = 1
    trades_per_minute: float = 60.0  # average trades per contract per minute
    depth_levels: int = 10
    max_batch: int = 50  # records per GatewayTrade / GatewayDepth push
    step_seconds: float = 0.25  # granularity of manual advances


class Simulator:
    """Everything the gateway does, driven by a SimClock; hubs subscribe, REST calls the exchange."""

    def __init__(self, config: SimConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self.market = Market(config.seed, clock.now_us, config.trades_per_minute, config.depth_levels)
        self.exchange = Exchange(self.market, clock.now_us, self._user_event)
        self.feed = MarketFeed(self.market, config.max_batch)
        # (topic, key) -> subscribers; key is an account id (user hub) or a contract id (market hub)
        self._subs: dict[tuple[str, Any], list[Subscriber]] = {}
        self._cursor: dict[str, int] = {}  # contract -> time up to which ticks were processed
        self.event_log: list[tuple[str, list[Any]]] | None = None  # set to a list to record every push

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, topic: str, key: Any, sub: Subscriber) -> None:
        subs = self._subs.setdefault((topic, key), [])
        if sub not in subs:
            subs.append(sub)
        if topic in MARKET_TOPICS:
            self._cursor.setdefault(key, self.clock.now_us())
            now = self.clock.now_us()
            if topic == "quotes":
                self._push(sub, Target.QUOTE, market_event_args(key, self.feed.quote_snapshot(key, now)))
            elif topic == "depth":
                for batch in self.feed.depth_snapshot(key, now):
                    self._push(sub, Target.DEPTH, market_event_args(key, batch))

    def unsubscribe(self, topic: str, key: Any, sub: Subscriber) -> None:
        subs = self._subs.get((topic, key))
        if subs and sub in subs:
            subs.remove(sub)

    def drop_subscriber(self, sub: Subscriber) -> None:
        for subs in self._subs.values():
            if sub in subs:
                subs.remove(sub)

    def subscribers(self, topic: str, key: Any) -> list[Subscriber]:
        """Who is subscribed to a topic (e.g. ("quotes", contract_id), ("orders", account_id))."""
        return self._subs.get((topic, key)) or []

    def _push(self, sub: Subscriber, target: str, args: list[Any]) -> None:
        if self.event_log is not None:
            self.event_log.append((target, args))
        sub.send(target, args)

    def publish(self, topic: str, key: Any, target: str, args: list[Any]) -> None:
        """Push `target(args)` to every subscriber of (topic, key), recording it in `event_log` if set."""
        subs = self.subscribers(topic, key)
        if self.event_log is not None and subs:
            self.event_log.append((target, args))
        for sub in subs:
            sub.send(target, args)

    def _user_event(self, account_id: int, target: str, action: UserAction, model: Any) -> None:
        if self.subscribers(USER_TOPICS[target], account_id):
            self.publish(USER_TOPICS[target], account_id, target, [wrap_user_event(action, model)])

    # ------------------------------------------------------------------ time

    def _active_contracts(self) -> list[str]:
        wanted = {key for (topic, key), subs in self._subs.items() if topic in MARKET_TOPICS and subs}
        wanted.update(self.exchange.working_contracts())
        return sorted(wanted)

    def step(self) -> int:
        """Process every tick up to the clock's now; returns how many ticks were processed."""
        now = self.clock.now_us()
        active = self._active_contracts()
        for contract_id in list(self._cursor):
            if contract_id not in active:
                del self._cursor[contract_id]
                self.feed.forget(contract_id)
        working = set(self.exchange.working_contracts())
        streams = []
        count = 0
        for contract_id in active:
            after = self._cursor.setdefault(contract_id, self.exchange.working_since(contract_id) or now)
            if after >= now:
                continue
            ticks = self.market.ticks_between(contract_id, after, now)
            self._cursor[contract_id] = now
            count += len(ticks)
            if not len(ticks):
                continue
            self._publish_market(contract_id, ticks)
            if contract_id in working:
                streams.append(list(zip(ticks.time.tolist(), itertools.repeat(contract_id), ticks.price.tolist(),
                                        ticks.side.tolist())))
        for t, contract_id, price, side in heapq.merge(*streams):
            self.exchange.on_tick(contract_id, t, price, side)
        return count

    def _publish_market(self, contract_id: str, ticks: Any) -> None:
        quotes = bool(self.subscribers("quotes", contract_id))
        trades = bool(self.subscribers("trades", contract_id))
        depth = bool(self.subscribers("depth", contract_id))
        if not (quotes or trades or depth):
            return
        pushes = self.feed.step(contract_id, ticks, quotes=quotes, trades=trades, depth=depth)
        for batch in pushes.trades:
            self.publish("trades", contract_id, Target.TRADE, market_event_args(contract_id, batch))
        if pushes.quote is not None:
            self.publish("quotes", contract_id, Target.QUOTE, market_event_args(contract_id, pushes.quote))
        for batch in pushes.depth:
            self.publish("depth", contract_id, Target.DEPTH, market_event_args(contract_id, batch))

    def advance(self, seconds: float) -> int:
        """Move a manual clock forward in steps, processing ticks as it goes; returns ticks processed."""
        target = self.clock.now_us() + int(seconds * 1_000_000)
        step = max(1, int(self.config.step_seconds * 1_000_000))
        count = 0
        while self.clock.now_us() < target:
            self.clock.set(min(target, self.clock.now_us() + step))
            count += self.step()
        return count
