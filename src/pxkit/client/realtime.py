"""ProjectXRealtimeClient: the user and market hubs on asyncio, with subscriptions that survive reconnects.

This is the kit's one thread boundary (see hublink.py). Pushes arrive decoded into messages (messages.py), in
arrival order, on one async stream per hub and through listeners by message type; each carries the time its
frame was received. After every reconnect the subscriptions are replayed and, for the user hub, a
StateReconciler reads the gateway's orders, positions, account and fills, and streams them as a Reconciled
message, in order with the pushes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import types
import typing
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ..codec import MARKET_TARGETS, USER_TARGETS, decode_push
from ..config import ProjectXConfig
from ..enums import LinkState
from ..errors import GatewayError, InputError, ProtocolError, PxError
from ..messages import (
    AccountPushed,
    ConnectionChanged,
    HubMessage,
    HubPush,
    OrderPushed,
    PositionPushed,
    Reconciled,
    UserTradePushed,
)
from .auth import TokenManager
from .hublink import HubLink, Link, LinkSettings
from .reconcile import StateReconciler, SyncedState, UserStateSource

log = logging.getLogger(__name__)

USER, MARKET = "user", "market"
_MARKET_FEEDS = {"quotes": "ContractQuotes", "trades": "ContractTrades", "depth": "ContractMarketDepth"}
_PUSH_TYPES = frozenset(typing.get_args(HubPush))
_END = object()
M = TypeVar("M")


class ProjectXRealtimeClient:
    """Both hubs behind one asyncio facade: connect, subscribe, stream, and never lose a subscription."""

    def __init__(self, config: ProjectXConfig, tokens: TokenManager, *, settings: LinkSettings | None = None,
                 rest: UserStateSource | None = None, link: Callable[..., Link] = HubLink) -> None:
        self.tokens = tokens
        self.rest = rest
        settings = settings or LinkSettings()
        self.links: dict[str, Link] = {
            hub: link(hub, url, tokens.get, on_messages=self._handler(hub), on_ready=self._ready(hub),
                      on_state=self._state_changed, on_unauthorized=tokens.renew, settings=settings)
            for hub, url in ((USER, config.user_hub_url), (MARKET, config.market_hub_url))
        }
        self._accounts: list[int] = []
        self._contracts: dict[str, dict[str, bool]] = {}
        self._reconcilers: dict[int, StateReconciler] = {}
        self._callbacks: dict[type, list[Callable[[Any], Any]]] = {}  # by push message type
        self._state_callbacks: list[Callable[[ConnectionChanged], Any]] = []
        self._queues: dict[str, list[asyncio.Queue[Any]]] = {USER: [], MARKET: []}
        self._decode_errors: dict[str, int] = {}  # by "hub.target": undecodable pushes and records
        self._ignored: Counter[str] = Counter()  # by "hub.target": pushes of targets this client does not know
        self._received: Counter[type] = Counter()  # decoded user pushes by model type
        self._tasks: set[asyncio.Task[Any]] = set()
        self.invocations = 0  # hub invocations handed over by the links, decodable or not

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

    @property
    def ignored_pushes(self) -> dict[str, int]:
        """Pushes of targets this client does not know, by `hub.target` (each logged once, none streamed)."""
        return dict(self._ignored)

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
            self._publish(USER, Reconciled(USER, account_id, await reconciler.prime()))

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
                self._publish(USER, Reconciled(USER, account_id, truth))

    # ------------------------------------------------------------------ listeners

    def on(self, kind: type[M] | types.UnionType, callback: Callable[[M], Any]) -> None:
        """Call `callback(message)` on the loop for every push of a message type of messages.py (`TradesPushed`,
        `OrderPushed`...) or of a union of them (`HubPush`: every push)."""
        for push_type in self._push_types(kind):
            self._callbacks.setdefault(push_type, []).append(callback)

    def off(self, kind: type[M] | types.UnionType, callback: Callable[[M], Any]) -> None:
        """Remove a listener registered with `on` for the same kind."""
        for push_type in self._push_types(kind):
            self._callbacks.get(push_type, []).remove(callback)

    @staticmethod
    def _push_types(kind: Any) -> tuple[type, ...]:
        kinds = typing.get_args(kind) or (kind,)
        if not all(k in _PUSH_TYPES for k in kinds):
            raise InputError(f"listen for a push message type of pxkit.messages (or a union of them), got {kind!r}")
        return kinds

    def on_state(self, callback: Callable[[ConnectionChanged], Any]) -> None:
        self._state_callbacks.append(callback)

    def stream(self, *hubs: str) -> AsyncIterator[HubMessage]:
        """Every push, state change and reconciliation of the given hubs (default both), in arrival order, from
        this call (not from the first iteration) until disconnect()."""
        hubs = hubs or (USER, MARKET)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for hub in hubs:
            self._queues[hub].append(queue)
        return self._drain(queue, hubs)

    async def _drain(self, queue: asyncio.Queue[Any], hubs: tuple[str, ...]
                     ) -> AsyncIterator[HubMessage]:
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

    def backlog(self) -> int:
        """Messages published to streams and not yet taken from them (0: every stream has caught up)."""
        queues = {id(q): q for hub in self._queues.values() for q in hub}
        return sum(q.qsize() for q in queues.values())

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            result = callback(*args)
            if asyncio.iscoroutine(result):  # async listeners run as tasks, kept until done
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:  # a listener's bug must not stop the stream
            log.exception("realtime listener %r failed", callback)

    def _publish(self, hub: str, item: HubMessage) -> None:
        for queue in self._queues[hub]:
            queue.put_nowait(item)
        callbacks = self._callbacks.get(type(item))
        if callbacks:
            for callback in list(callbacks):
                self._call(callback, item)

    def _state_changed(self, hub: str, state: LinkState) -> None:
        event = ConnectionChanged(hub, state, time.time())
        log.info("%s hub %s", hub, state.value)
        self._publish(hub, event)
        for callback in list(self._state_callbacks):
            self._call(callback, event)

    # ------------------------------------------------------------------ decoding

    def _handler(self, hub: str) -> Callable[[float, list[tuple[str, list[Any]]]], None]:
        known = USER_TARGETS if hub == USER else MARKET_TARGETS
        publish = functools.partial(self._publish, hub)
        bad_record = {target: functools.partial(self._undecodable, hub, target) for target in known}

        def handle(received: float, events: list[tuple[str, list[Any]]]) -> None:
            self.invocations += len(events)
            for target, args in events:  # one by one: a bad push never costs the others of its frame
                if target not in known:
                    self._ignore(hub, target)
                    continue
                try:
                    message = decode_push(target, args, received, bad_record[target])
                except ProtocolError as exc:
                    self._undecodable(hub, target, exc)
                    continue
                except Exception:
                    self._undecodable(hub, target, None)
                    log.exception("%s hub: decoding a %s push failed", hub, target)
                    continue
                if hub == USER:
                    self._arrived(message)
                publish(message)

        return handle

    def _undecodable(self, hub: str, target: str, error: ProtocolError | None) -> None:
        """Count one undecodable push or record (and log why, once)."""
        kind = f"{hub}.{target}"
        self._decode_errors[kind] = self._decode_errors.get(kind, 0) + 1
        if error is not None:
            log.warning("%s hub: undecodable %s (%s)", hub, target, error)

    def _ignore(self, hub: str, target: str) -> None:
        """Count a push of a target this client does not know; the first of each target is logged."""
        kind = f"{hub}.{target}"
        if not self._ignored[kind]:
            log.warning("%s hub: ignoring pushes of the unknown target %r", hub, target)
        self._ignored[kind] += 1

    def _arrived(self, message: HubPush) -> None:
        """Count a user push by its model (what `pushes_received` tells)."""
        match message:
            case (OrderPushed(order=model) | PositionPushed(position=model) | UserTradePushed(trade=model)
                  | AccountPushed(account=model)):
                self._received[type(model)] += 1
