"""HubLink: one SignalR hub through signalrcore, supervised on asyncio (keepalive, stale detection, reconnect).

signalrcore is used only as the wire layer: its own reconnect is not configured (it hangs on outages
longer than a moment). Frames arrive on signalrcore's receive thread and are read record by record
(hubframes.py: a malformed record is counted in `bad_records` and logged, the rest of its frame goes on);
every message of a frame goes into one deque and the loop is woken once per frame (`call_soon_threadsafe`),
so events, completions and pings reach asyncio in arrival order. Sends (invocations, pings) happen on the
loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from signalrcore.messages.message_type import MessageType
from signalrcore.messages.ping_message import PingMessage

from ..enums import LinkState
from ..errors import ConnectionLostError, GatewayError, PxError, RequestTimeoutError
from .hubframes import BadRecord, RecordByRecordJsonProtocol

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = (0.0, 2.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Supervision knobs of a hub link."""

    skip_negotiation: bool = True  # the gateway's documented way; False negotiates first (v1, with a timeout)
    keepalive_interval: float = 10.0  # our SignalR ping (signalrcore sends none by itself)
    stale_after: float = 30.0  # no message for this long: the link is dead
    connect_timeout: float = 10.0
    invoke_timeout: float = 10.0
    backoff: Sequence[float] = DEFAULT_BACKOFF  # delays between attempts; the last one repeats
    max_attempts: int | None = None  # None: retry for ever
    stop_timeout: float = 0.8  # budget for each of the two waits of a teardown (start in flight, stop)


class Link(Protocol):
    """What the realtime client needs of a hub link: HubLink over SignalR, or a link to an in-process gateway.

    It is built as `HubLink` is (name, url, token getter and the on_* callbacks) and reports what it receives
    through `on_messages(received_at, [(target, arguments), ...])` on the loop's thread.
    """

    bad_records: int

    @property
    def connected(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def reconnect(self) -> None: ...

    async def invoke(self, method: str, *args: Any) -> Any: ...


class HubLink:
    """One hub connection that stays up: reconnects with backoff and a fresh token, then calls `on_ready`."""

    def __init__(self, name: str, url: str, token: Callable[[], Awaitable[str]], *,
                 on_messages: Callable[[float, list[tuple[str, list[Any]]]], None],
                 on_ready: Callable[[bool], Awaitable[None]],
                 on_state: Callable[[str, LinkState], None],
                 on_unauthorized: Callable[[str], Awaitable[str]] | None = None,
                 settings: LinkSettings = LinkSettings()) -> None:
        self.name = name
        self.url = url
        self._token = token
        self._on_messages = on_messages
        self._on_ready = on_ready
        self._on_state = on_state
        self._on_unauthorized = on_unauthorized
        self.settings = settings
        self._connection: Any = None
        self._inbox: deque[tuple[str, Any]] = deque()
        self._scheduled = False
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._down = asyncio.Event()
        self._up = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_received = 0.0
        self.connects = 0
        self.last_error: str | None = None
        self.bad_records = 0  # malformed SignalR records skipped (each counted and logged once)

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect (waiting for the first connection) and keep the link up until `close()`."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._supervise(), name=f"pxkit-hub-{self.name}")
        waiter = asyncio.ensure_future(self._up.wait())
        done, _ = await asyncio.wait({waiter, self._task}, timeout=self.settings.connect_timeout * 3,
                                     return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._task in done:
                self._task.result()  # re-raise why supervision ended
            await self.close()  # no supervisor keeps retrying behind a failed start
            raise ConnectionLostError(f"{self.name} hub: could not connect ({self.last_error})", maybe_processed=False)

    async def close(self) -> None:
        """Stop for good; returns quickly even when the server is silent."""
        self._closing = True
        self._down.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._teardown()
        self._fail_pending("the link was closed")

    def reconnect(self) -> None:
        """Drop the current connection; supervision builds a new one at once (used after a token refresh)."""
        self._down.set()

    # ------------------------------------------------------------------ supervision

    async def _supervise(self) -> None:
        attempt = 0
        ever_connected = False
        while not self._closing:
            try:
                await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, 401, timeout, handshake error: all retried
                # only our own messages are kept: a library's may quote the URL, and with it the token
                self.last_error = f"{type(exc).__name__}: {exc}" if isinstance(exc, PxError) else type(exc).__name__
                await self._teardown()
                if self.settings.max_attempts is not None and attempt + 1 >= self.settings.max_attempts:
                    raise ConnectionLostError(f"{self.name} hub: gave up after {attempt + 1} attempts "
                                              f"({self.last_error})", maybe_processed=False) from None
                delay = self.settings.backoff[min(attempt, len(self.settings.backoff) - 1)]
                attempt += 1
                log.info("%s hub: connect failed (%s); attempt %d in %.1f s", self.name, self.last_error,
                         attempt + 1, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._up.set()
            try:
                await self._keeping_alive(self._on_ready(ever_connected))  # subscriptions back, state reconciled...
            except Exception:
                log.exception("%s hub: restoring subscriptions failed; reconnecting", self.name)
                self._down.set()
            # ...so a listener hearing RECONNECTED can rely on them
            self._on_state(self.name, LinkState.RECONNECTED if ever_connected else LinkState.CONNECTED)
            ever_connected = True
            await self._watch()
            self._up.clear()
            await self._teardown()
            self._fail_pending("the connection was lost")
            self._on_state(self.name, LinkState.DISCONNECTED)
            if not self._closing:
                self._on_state(self.name, LinkState.RECONNECTING)

    async def _negotiate(self, token: str) -> str:
        """POST {hub}/negotiate ourselves (signalrcore's has no timeout); returns the WebSocket URL to open."""
        # the token goes in a header: URLs end up in logs
        async with httpx.AsyncClient(timeout=self.settings.connect_timeout) as http:
            response = await http.post(f"{self.url}/negotiate", params={"negotiateVersion": 1},
                                       headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401:
            if self._on_unauthorized is not None:
                await self._on_unauthorized(token)  # the next attempt takes the renewed token
            raise ConnectionLostError("unauthorized", maybe_processed=False)
        if response.status_code != 200:
            raise ConnectionLostError(f"negotiate answered HTTP {response.status_code}", maybe_processed=False)
        body = response.json()
        connection = body.get("connectionToken") or body.get("connectionId")
        if not connection:
            raise ConnectionLostError("negotiate gave no connection id", maybe_processed=False)
        return f"{self.url}?access_token={token}&id={connection}"

    async def _open(self) -> None:
        self._down.clear()
        token = await self._token()
        url = f"{self.url}?access_token={token}"
        if not self.settings.skip_negotiation:
            url = await self._negotiate(token)
        connection = ((await _connection_builder())()
                      .with_url(url, options={"skip_negotiation": True})
                      .with_hub_protocol(RecordByRecordJsonProtocol())
                      .configure_logging(logging.CRITICAL).build())
        opened = asyncio.Event()
        loop = self._loop
        assert loop is not None
        connection.on_open(lambda: loop.call_soon_threadsafe(opened.set))
        connection.on_close(lambda: loop.call_soon_threadsafe(self._closed, connection))
        connection.on_message = self._receive  # all messages of a frame come here, on signalrcore's thread
        self._connection = connection
        self._starting = asyncio.ensure_future(asyncio.to_thread(self._start_blocking, connection))
        self._starting.add_done_callback(_retrieve)  # an abandoned attempt's failure is not worth a warning
        try:
            await asyncio.wait_for(asyncio.shield(self._starting), self.settings.connect_timeout)
        except TimeoutError:
            _shut(connection)  # a hung upgrade: unblock the worker thread's recv()
            raise RequestTimeoutError("the hub did not accept the connection in time", maybe_processed=False) from None
        except Exception as exc:  # SocketHandshakeError from the upgrade, OSError, timeout
            unauthorized = " 401 " in str(exc)
            if unauthorized and self._on_unauthorized is not None:
                await self._on_unauthorized(token)  # the next attempt takes the renewed token
            raise ConnectionLostError(f"{'unauthorized' if unauthorized else type(exc).__name__}",
                                      maybe_processed=False) from None
        try:
            await asyncio.wait_for(opened.wait(), self.settings.connect_timeout)
        except TimeoutError:
            raise RequestTimeoutError("no handshake from the hub", maybe_processed=False) from None
        self.last_received = time.monotonic()
        self.connects += 1

    def _closed(self, connection: Any) -> None:
        if connection is self._connection:  # a late close of an abandoned attempt is not this link's
            self._down.set()

    def _start_blocking(self, connection: Any) -> None:
        """signalrcore's start (negotiate, connect, handshake request), on a worker thread. A connection
        abandoned meanwhile (closed, or timed out) is stopped here, so its receive thread never lingers."""
        connection.start()
        if self._closing or connection is not self._connection:
            _shut(connection)
            connection.stop()

    def _ping(self) -> bool:
        """Send a SignalR ping; False when the socket is gone."""
        try:
            self._connection.transport.send(PingMessage())
        except Exception as exc:
            log.info("%s hub: keepalive failed (%s)", self.name, type(exc).__name__)
            return False
        return True

    async def _keeping_alive(self, work: Awaitable[None]) -> None:
        """Await `work` (resubscribing, reconciling over REST with retries) while pinging, so that however long
        it takes the server never sees a silent client."""
        async def ping() -> None:
            while True:
                await asyncio.sleep(self.settings.keepalive_interval)
                if self._down.is_set() or not self._ping():
                    return

        pinger = asyncio.create_task(ping(), name=f"pxkit-hub-{self.name}-keepalive")
        try:
            await work
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)

    async def _watch(self) -> None:
        """Ping, and wait until the link is down, goes stale, or a reconnect is asked for."""
        settings = self.settings
        next_ping = time.monotonic() + settings.keepalive_interval
        while not self._down.is_set():
            now = time.monotonic()
            if now - self.last_received > settings.stale_after:
                log.warning("%s hub: nothing received for %.1f s; reconnecting", self.name, now - self.last_received)
                return
            if now >= next_ping:
                if not self._ping():
                    return
                next_ping = now + settings.keepalive_interval
            wake = min(next_ping, self.last_received + settings.stale_after) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._down.wait(), max(wake, 0.01))

    async def _teardown(self) -> None:
        """Close the current connection without ever hanging: shut the socket first so recv() returns."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        starting = self._starting
        if starting is not None and not starting.done():  # let a start in flight finish (it stops itself)
            await asyncio.wait({starting}, timeout=self.settings.stop_timeout)
        sock = _shut(connection)
        try:
            await asyncio.wait_for(asyncio.to_thread(connection.stop), self.settings.stop_timeout)
        except Exception as exc:  # stop() of a half-dead transport may raise or stall; the socket is shut
            log.debug("%s hub: stop ended with %s", self.name, type(exc).__name__)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------ invocations

    async def invoke(self, method: str, *args: Any) -> Any:
        """Invoke a hub method and await its completion (GatewayError for an error completion)."""
        if not self._up.is_set() or self._connection is None:
            raise ConnectionLostError(f"{self.name} hub is not connected", maybe_processed=False)
        assert self._loop is not None
        invocation_id = str(next(self._ids))
        future = self._pending[invocation_id] = self._loop.create_future()
        try:
            self._connection.invoke(method, list(args), invocation_id=invocation_id)
        except Exception as exc:
            self._pending.pop(invocation_id, None)
            self._down.set()
            raise ConnectionLostError(f"{self.name} hub: sending {method} failed ({type(exc).__name__})",
                                      maybe_processed=False) from None
        try:
            return await asyncio.wait_for(future, self.settings.invoke_timeout)
        except TimeoutError:
            raise RequestTimeoutError(f"{self.name} hub: no completion for {method}") from None
        finally:
            self._pending.pop(invocation_id, None)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLostError(f"{self.name} hub: {reason}"))
        self._pending.clear()

    # ------------------------------------------------------------------ receiving (signalrcore's thread)

    def _receive(self, messages: list[Any]) -> None:
        received = time.time()
        inbox = self._inbox
        for message in messages:
            if isinstance(message, BadRecord):
                inbox.append(("bad", message))
                continue
            kind = message.type
            if kind is MessageType.invocation:
                inbox.append(("event", (received, message.target, message.arguments)))
            elif kind is MessageType.completion:
                inbox.append(("completion", (message.invocation_id, message.error, getattr(message, "result", None))))
            elif kind is MessageType.close:
                inbox.append(("close", getattr(message, "error", None)))
            else:
                inbox.append(("alive", None))
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

    def _deliver(self, stamp: float, events: list[tuple[str, list[Any]]]) -> None:
        try:
            self._on_messages(stamp, events)
        except Exception:  # never lose the rest of the inbox to one bad handler
            log.exception("%s hub: event handler failed", self.name)

    def _drain(self) -> None:
        """On the loop: hand everything received so far over, in order (one wake-up per batch)."""
        self._scheduled = False
        self.last_received = time.monotonic()
        inbox = self._inbox
        events: list[tuple[str, list[Any]]] = []
        stamp = 0.0
        while inbox:
            kind, item = inbox.popleft()
            if kind == "event":
                if events and item[0] != stamp:
                    self._deliver(stamp, events)
                    events = []
                stamp = item[0]
                events.append((item[1], item[2]))
                continue
            if events:
                self._deliver(stamp, events)
                events = []
            if kind == "completion":
                self._complete(*item)
            elif kind == "close":
                log.info("%s hub: server closed the connection (%s)", self.name, item)
                self._down.set()
            elif kind == "bad":
                self.bad_records += 1
                log.warning("%s hub: skipped a malformed record (%s): %r", self.name, item.reason, item.excerpt)
        if events:
            self._deliver(stamp, events)

    def _complete(self, invocation_id: str, error: str | None, result: Any) -> None:
        future = self._pending.get(invocation_id)
        if future is None or future.done():
            return
        if error:
            future.set_exception(GatewayError(f"hub:{self.name}", 0, error))
        else:
            future.set_result(result)


async def _connection_builder() -> Any:
    """signalrcore's HubConnectionBuilder, imported on a worker thread at the first connect: importing it builds
    three TLS contexts (about 0.15 s), too slow for `import pxkit` and for the event loop."""
    module = await asyncio.to_thread(importlib.import_module, "signalrcore.hub_connection_builder")
    return module.HubConnectionBuilder


def _shut(connection: Any) -> socket.socket | None:
    """Shut a signalrcore connection's socket down so a recv() blocked on it returns; returns the socket."""
    sock = getattr(getattr(connection.transport, "_client", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    return sock


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
