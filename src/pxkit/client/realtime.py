"""ProjectXRealtimeClient: the user and market hubs on asyncio, with subscriptions that survive reconnects.

This is the kit's one thread boundary (see hublink.py). Pushes arrive decoded into models, in arrival order,
on one async stream per hub and through callbacks; each carries the time its frame was received. After every
reconnect the subscriptions are replayed and, for the user hub, a StateReconciler reads the gateway's orders,
positions, account and fills, and streams them as a Reconciled item, in order with the pushes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..codec import USER_EVENT_MODELS, decode_records, from_wire, split_market_event, unwrap_user_event
from ..config import ProjectXConfig
from ..enums import UserAction
from ..errors import GatewayError, ProtocolError, PxError
from ..models import DepthEntry, MarketTrade, Quote
from .auth import TokenManager
from .hublink import HubLink, LinkSettings, LinkState
from .reconcile import AccountTruth, StateReconciler, SyncedState, UserStateSource

log = logging.getLogger(__name__)

USER, MARKET = "user", "market"
_MARKET_FEEDS = {"quotes": "ContractQuotes", "trades": "ContractTrades", "depth": "ContractMarketDepth"}
_MARKET_MODELS: dict[str, type] = {"GatewayQuote": Quote, "GatewayTrade": MarketTrade, "GatewayDepth": DepthEntry}
_END = object()


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One decoded push: a Quote, a list of MarketTrade or DepthEntry, or an Order/Position/Account/Trade."""

    hub: str
    target: str
    data: Any
    received_at: float  # time.time() when its frame arrived on the socket
    contract_id: str | None = None
    action: UserAction | None = None


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A hub's connection state changed."""

    hub: str
    state: LinkState
    at: float


@dataclass(frozen=True, slots=True)
class Reconciled:
    """An account's truth was read (at subscription, and after every reconnect of the user hub): it is in the
    user stream, in order with the pushes, for the router to compare with its cache."""

    hub: str
    account_id: int
    truth: AccountTruth


class ProjectXRealtimeClient:
    """Both hubs behind one asyncio facade: connect, subscribe, stream, and never lose a subscription."""

    def __init__(self, config: ProjectXConfig, tokens: TokenManager, *, settings: LinkSettings | None = None,
                 rest: UserStateSource | None = None) -> None:
        self.tokens = tokens
        self.rest = rest
        settings = settings or LinkSettings()
        self.links = {
            hub: HubLink(hub, url, tokens.get, on_messages=self._handler(hub), on_ready=self._ready(hub),
                         on_state=self._state_changed, on_unauthorized=tokens.renew, settings=settings)
            for hub, url in ((USER, config.user_hub_url), (MARKET, config.market_hub_url))
        }
        self._accounts: list[int] = []
        self._contracts: dict[str, dict[str, bool]] = {}
        self._reconcilers: dict[int, StateReconciler] = {}
        self._received: Counter[type] = Counter()  # decoded user pushes by model type
        self._callbacks: dict[str, list[Callable[[HubEvent], Any]]] = {}
        self._state_callbacks: list[Callable[[ConnectionEvent], Any]] = []
        self._queues: dict[str, list[asyncio.Queue[Any]]] = {USER: [], MARKET: []}
        self._decode_errors: dict[str, int] = {}  # by "hub.target": undecodable pushes and records
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Connect both hubs (waits until both are up) and reconnect them whenever the token is refreshed."""
        self.tokens.add_listener(self._token_replaced)
        await asyncio.gather(*(link.start() for link in self.links.values()))

    async def disconnect(self) -> None:
        """Close both hubs; returns within about 2 s even when the server has gone silent."""
        self.tokens.remove_listener(self._token_replaced)
        await asyncio.gather(*(link.close() for link in self.links.values()))
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(_END)

    def _token_replaced(self, token: str) -> None:
        """A refreshed token only works for new connections: reconnect both hubs with it."""
        for link in self.links.values():
            link.reconnect()

    async def __aenter__(self) -> ProjectXRealtimeClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    @property
    def decode_errors_by_kind(self) -> dict[str, int]:
        """Undecodable pushes and records by `hub.target`, plus malformed SignalR records as `hub.frame`."""
        kinds = dict(self._decode_errors)
        for hub, link in self.links.items():
            if link.bad_records:
                kinds[f"{hub}.frame"] = link.bad_records
        return kinds

    @property
    def decode_errors(self) -> int:
        """Everything that could not be decoded so far, each bad record counted once."""
        return sum(self._decode_errors.values()) + sum(link.bad_records for link in self.links.values())

    def pushes_received(self, kind: type) -> int:
        """How many user pushes of a model type (Order, Position, Account, Trade) have arrived and been decoded."""
        return self._received[kind]

    def connected(self, hub: str) -> bool:
        return self.links[hub].connected

    async def invoke(self, hub: str, method: str, *args: Any) -> Any:
        return await self.links[hub].invoke(method, *args)

    # ------------------------------------------------------------------ subscriptions

    async def subscribe_user(self, account_id: int, state: SyncedState | None = None) -> None:
        """Accounts, orders, positions and trades of an account; kept across reconnects. With the account's cached
        `state` (and a REST source), its truth is read now and after every reconnect, and streamed as Reconciled."""
        if account_id not in self._accounts:
            self._accounts.append(account_id)
        if state is not None and self.rest is not None and account_id not in self._reconcilers:
            self._reconcilers[account_id] = StateReconciler(self.rest, account_id, state,
                                                            pushes_received=self.pushes_received)
        if self.links[USER].connected:
            await self._subscribe_account(account_id, first=len(self._accounts) == 1)
        reconciler = self._reconcilers.get(account_id)
        if reconciler is not None:
            self._publish(USER, Reconciled(USER, account_id, await reconciler.prime()), None)

    async def unsubscribe_user(self, account_id: int) -> None:
        """Stop the account's feeds and its reconciliation."""
        self._reconcilers.pop(account_id, None)
        if account_id in self._accounts:
            self._accounts.remove(account_id)
            if self.links[USER].connected:
                for feed in ("Orders", "Positions", "Trades"):
                    await self.invoke(USER, f"Unsubscribe{feed}", account_id)
                if not self._accounts:
                    await self.invoke(USER, "UnsubscribeAccounts")

    async def subscribe_market(self, contract_id: str, *, quotes: bool = True, trades: bool = True,
                               depth: bool = False) -> None:
        """Market data of a contract; feeds add up over calls and are kept across reconnects."""
        feeds = self._contracts.get(contract_id) or dict.fromkeys(_MARKET_FEEDS, False)
        wanted = {"quotes": quotes, "trades": trades, "depth": depth}
        for feed in [feed for feed, on in wanted.items() if on and not feeds[feed]]:
            if self.links[MARKET].connected:  # a refusal (unknown contract) raises and is not remembered
                await self.invoke(MARKET, f"Subscribe{_MARKET_FEEDS[feed]}", contract_id)
            feeds[feed] = True
            self._contracts[contract_id] = feeds

    async def unsubscribe_market(self, contract_id: str, *, quotes: bool = True, trades: bool = True,
                                 depth: bool = True) -> None:
        feeds = self._contracts.get(contract_id)
        if feeds is None:
            return
        dropped = [feed for feed, off in (("quotes", quotes), ("trades", trades), ("depth", depth))
                   if off and feeds[feed]]
        for feed in dropped:
            feeds[feed] = False
            if self.links[MARKET].connected:
                await self.invoke(MARKET, f"Unsubscribe{_MARKET_FEEDS[feed]}", contract_id)
        if not any(feeds.values()):
            del self._contracts[contract_id]

    async def _subscribe_account(self, account_id: int, *, first: bool) -> None:
        if first:
            await self.invoke(USER, "SubscribeAccounts")
        for feed in ("Orders", "Positions", "Trades"):
            await self.invoke(USER, f"Subscribe{feed}", account_id)

    def _ready(self, hub: str) -> Callable[[bool], Any]:
        async def replay(reconnected: bool) -> None:
            """Resubscribe everything (a lost connection raises and reconnects; a refusal is logged)."""
            if hub == USER:
                for i, account_id in enumerate(list(self._accounts)):
                    await self._replay(self._subscribe_account(account_id, first=i == 0), f"account {account_id}")
                if reconnected:
                    await self._reconcile()
            else:
                for contract_id, feeds in list(self._contracts.items()):
                    for feed in [feed for feed, on in feeds.items() if on]:
                        await self._replay(self.invoke(MARKET, f"Subscribe{_MARKET_FEEDS[feed]}", contract_id),
                                           f"{feed} of {contract_id}")

        return replay

    @staticmethod
    async def _replay(subscription: Awaitable[Any], what: str) -> None:
        try:
            await subscription
        except GatewayError as exc:  # the hub refused it: retrying on every reconnect would not help
            log.error("resubscribing to %s was refused: %s", what, exc)

    async def _reconcile(self) -> None:
        for account_id, reconciler in list(self._reconcilers.items()):
            try:
                truth = await reconciler.reconcile()
            except PxError as exc:  # REST trouble must not take the hub down; the next reconnect retries
                log.error("reconciling account %d failed: %s", account_id, exc)
                continue
            if self._reconcilers.get(account_id) is reconciler:  # not unsubscribed meanwhile
                self._publish(USER, Reconciled(USER, account_id, truth), None)

    # ------------------------------------------------------------------ listeners

    def on(self, target: str, callback: Callable[[HubEvent], Any]) -> None:
        """Call `callback(event)` on the loop for every push of `target` (`"*"`: every push)."""
        self._callbacks.setdefault(target, []).append(callback)

    def off(self, target: str, callback: Callable[[HubEvent], Any]) -> None:
        self._callbacks.get(target, []).remove(callback)

    def on_state(self, callback: Callable[[ConnectionEvent], Any]) -> None:
        self._state_callbacks.append(callback)

    def stream(self, *hubs: str) -> AsyncIterator[HubEvent | ConnectionEvent | Reconciled]:
        """Every push, state change and reconciliation of the given hubs (default both), in arrival order, from
        this call (not from the first iteration) until disconnect()."""
        hubs = hubs or (USER, MARKET)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for hub in hubs:
            self._queues[hub].append(queue)
        return self._drain(queue, hubs)

    async def _drain(self, queue: asyncio.Queue[Any], hubs: tuple[str, ...]
                     ) -> AsyncIterator[HubEvent | ConnectionEvent | Reconciled]:
        open_hubs = len(hubs)
        try:
            while open_hubs:
                item = await queue.get()
                if item is _END:
                    open_hubs -= 1
                else:
                    yield item
        finally:
            for hub in hubs:
                self._queues[hub].remove(queue)

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            result = callback(*args)
            if asyncio.iscoroutine(result):  # async listeners run as tasks, kept until done
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:  # a listener's bug must not stop the stream
            log.exception("realtime listener %r failed", callback)

    def _publish(self, hub: str, item: HubEvent | ConnectionEvent, target: str | None) -> None:
        for queue in self._queues[hub]:
            queue.put_nowait(item)
        if target is not None:
            for callback in self._callbacks.get(target, []) + self._callbacks.get("*", []):
                self._call(callback, item)

    def _state_changed(self, hub: str, state: LinkState) -> None:
        event = ConnectionEvent(hub, state, time.time())
        log.info("%s hub %s", hub, state.value)
        self._publish(hub, event, None)
        for callback in list(self._state_callbacks):
            self._call(callback, event)

    # ------------------------------------------------------------------ decoding

    def _handler(self, hub: str) -> Callable[[float, list[tuple[str, list[Any]]]], None]:
        decode = self._decode_user if hub == USER else self._decode_market

        def handle(received: float, events: list[tuple[str, list[Any]]]) -> None:
            for target, args in events:  # one by one: a bad push never costs the others of its frame
                try:
                    event = decode(target, args, received)
                except ProtocolError as exc:
                    self._undecodable(hub, target, exc)
                    continue
                except Exception:
                    self._undecodable(hub, target, None)
                    log.exception("%s hub: decoding a %s push failed", hub, target)
                    continue
                self._publish(hub, event, target)

        return handle

    def _undecodable(self, hub: str, target: str, error: ProtocolError | None) -> None:
        """Count one undecodable push or record (and log why, once)."""
        kind = f"{hub}.{target}"
        self._decode_errors[kind] = self._decode_errors.get(kind, 0) + 1
        if error is not None:
            log.warning("%s hub: undecodable %s (%s)", hub, target, error)

    def _decode_user(self, target: str, args: list[Any], received: float) -> HubEvent:
        model = USER_EVENT_MODELS.get(target)
        if model is None:
            return HubEvent(USER, target, args, received)
        action, data = unwrap_user_event(model, args)
        self._received[type(data)] += 1
        return HubEvent(USER, target, data, received, getattr(data, "contract_id", None), action)

    def _decode_market(self, target: str, args: list[Any], received: float) -> HubEvent:
        """A quote, or a batch of trades or depth entries decoded record by record (bad ones counted, skipped)."""
        if target not in _MARKET_MODELS:
            return HubEvent(MARKET, target, args, received)
        contract_id, payload = split_market_event(args)
        if target == "GatewayQuote":
            data: Any = from_wire(Quote, payload)
        else:
            data = decode_records(_MARKET_MODELS[target], payload, functools.partial(self._undecodable, MARKET, target))
        return HubEvent(MARKET, target, data, received, contract_id)
