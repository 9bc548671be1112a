"""An ASP.NET-Core-compatible SignalR JSON hub server (negotiate + WebSockets) on aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

logger = logging.getLogger(__name__)

_RS = "\x1e"
_encode = json.JSONEncoder(separators=(",", ":")).encode
_HANDSHAKE_OK = "{}" + _RS
_PING = _encode({"type": 6}) + _RS
_TIMEOUT_ERROR = "Server timeout elapsed without receiving a message from the client."
_TRANSPORTS = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
_FRAME_LIMIT = 64 * 1024  # a coalesced frame stops growing past this many characters
_CLOSE_TIMEOUT = 1.0  # budget for flushing the queue and the WebSocket close handshake
_NEGOTIATE_TTL = 30.0  # a negotiated id must be used within this many seconds
_MAX_MESSAGE = 1024 * 1024
MAX_BACKLOG = 16 * 1024 * 1024  # characters queued for one client before it is cut off as too slow


def _close_record(error: str | None) -> str:
    message: dict[str, Any] = {"type": 7}
    if error is not None:
        message["error"] = error
    message["allowReconnect"] = True
    return _encode(message) + _RS


def _token(request: web.Request) -> str | None:
    token = request.query.get("access_token")
    if token is None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
    return token


def _notify(callback: Callable[[HubConnection], None] | None, conn: HubConnection) -> None:
    if callback is None:
        return
    try:
        callback(conn)
    except Exception:
        logger.exception("hub %s: callback %r failed for %s", conn.hub_name, callback, conn.connection_id)


class HubMethodError(Exception):
    """Raised by an invoke handler to answer with an error completion (message = str(exc))."""


class HubConnection:
    """One connected client of a hub."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None,
                 connection_id: str, user: Any) -> None:
        self.connection_id = connection_id
        self.user = user  # whom the connection's token acts for (what the hub's `authorize` answered)
        self.hub_name = hub.name
        self.state: dict[str, Any] = {}
        self._hub = hub
        self._ws = ws
        self._transport = transport
        self._queue: deque[str] = deque()
        self.backlog = 0  # characters queued and not yet written
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._done = asyncio.Event()
        self._invocations: asyncio.Queue[tuple[str, list[Any], Any]] = asyncio.Queue()
        self._last_received = asyncio.get_running_loop().time()
        self._connected = False  # handshake completed
        self._closed = False
        self._silent = False
        self._aborted = False

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, target: str, arguments: list[Any]) -> None:
        """Queue an invocation of `target` on the client (call on the loop); a no-op once closed or silent."""
        if not (self._closed or self._silent):
            self._enqueue(_encode({"type": 1, "target": target, "arguments": arguments}) + _RS)

    def _enqueue(self, record: str) -> None:
        self._queue.append(record)
        self.backlog += len(record)
        self._wakeup.set()
        if self.backlog > self._hub.max_backlog:
            logger.warning("hub %s: client %s is %d characters behind; dropping it as too slow",
                           self.hub_name, self.connection_id, self.backlog)
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once, without a SignalR close message."""
        self._aborted = True
        self._stop(None)
        self._abort_transport()

    async def close(self, error: str | None = None) -> None:
        """Send a close message (with `error`, if given), close the WebSocket and wait until done."""
        self._stop(_close_record(error))
        await self._done.wait()

    def _push(self, record: str) -> None:
        if not (self._closed or self._silent):
            self._enqueue(record)

    def _stop(self, record: str | None) -> None:
        if self._closed:
            return
        if record is not None and not self._silent:
            self._queue.append(record)
            self.backlog += len(record)
        self._closed = True
        self._stopping.set()
        self._wakeup.set()

    def _go_silent(self) -> None:
        self._silent = True
        self._queue.clear()
        self.backlog = 0

    def _abort_transport(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        writer = asyncio.create_task(self._write_loop())
        tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._invoke_loop()), writer]
        try:
            await self._watch(loop)
            await self._finish(writer)
        finally:
            self._closed = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._done.set()

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send pings and enforce the client timeout until the connection is asked to stop."""
        hub = self._hub
        next_ping = loop.time() + hub.ping_interval
        while not self._closed:
            if self._silent:
                await self._stopping.wait()
                return
            now = loop.time()
            deadline = self._last_received + hub.client_timeout
            if now >= deadline:
                logger.info("hub %s: client %s timed out", hub.name, self.connection_id)
                self._stop(_close_record(_TIMEOUT_ERROR) if self._connected else None)
                return
            if now >= next_ping:
                if self._connected:
                    self._push(_PING)
                next_ping = now + hub.ping_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(min(deadline, next_ping)):
                    await self._stopping.wait()

    async def _finish(self, writer: asyncio.Task[None]) -> None:
        """Flush what is queued (e.g. the close message), then close the WebSocket; abort if stuck."""
        if self._aborted or self._silent:
            self._abort_transport()
            return
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await asyncio.wait({writer})
                await self._ws.close()
        except TimeoutError:
            self._abort_transport()

    async def _write_loop(self) -> None:
        queue, ws = self._queue, self._ws
        try:
            while True:
                while queue and not self._silent:
                    frame = self._take_frame() if self._hub.coalesce else queue.popleft()
                    self.backlog -= len(frame)
                    await ws.send_str(frame)
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
        except ConnectionError as exc:
            logger.debug("hub %s: write to %s failed: %s", self.hub_name, self.connection_id, exc)
            self._stop(None)

    def _take_frame(self) -> str:
        queue = self._queue
        if len(queue) == 1:
            return queue.popleft()
        parts: list[str] = []
        size = 0
        while queue and size < _FRAME_LIMIT:
            record = queue.popleft()
            parts.append(record)
            size += len(record)
        return "".join(parts)

    async def _read_loop(self) -> None:
        ws, loop = self._ws, asyncio.get_running_loop()
        buffer = ""
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.TEXT:
                    data = msg.data
                elif msg.type is WSMsgType.BINARY:
                    data = msg.data.decode("utf-8", errors="replace")
                elif msg.type is WSMsgType.PING:
                    if not self._silent:
                        await ws.pong(msg.data)
                    continue
                elif msg.type is WSMsgType.PONG:
                    continue
                else:
                    return
                self._last_received = loop.time()
                if self._closed or self._silent:
                    continue
                *records, buffer = (buffer + data).split(_RS)
                for raw in records:
                    if raw and not self._closed:
                        self._on_record(raw)
        finally:
            self._stop(None)

    def _on_record(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._fail("The message is not a JSON object.")
        elif not self._connected:
            self._on_handshake(message)
        elif message.get("type") == 1:
            target, arguments = message.get("target"), message.get("arguments", [])
            if not isinstance(target, str) or not isinstance(arguments, list):
                self._fail("Invalid invocation message.")
            else:
                self._invocations.put_nowait((target, arguments, message.get("invocationId")))
        elif message.get("type") == 7:
            self._stop(None)

    def _on_handshake(self, message: dict[str, Any]) -> None:
        protocol, version = message.get("protocol"), message.get("version")
        if protocol != "json":
            error = f"The protocol '{protocol}' is not supported."
        elif not isinstance(version, int) or version > 1:
            error = f"The server does not support version {version} of the 'json' protocol."
        else:
            self._connected = True
            self._push(_HANDSHAKE_OK)
            logger.debug("hub %s: client %s connected", self.hub_name, self.connection_id)
            _notify(self._hub._on_connect, self)
            return
        logger.info("hub %s: handshake of %s refused: %s", self.hub_name, self.connection_id, error)
        self._stop(_encode({"error": error}) + _RS)

    def _fail(self, reason: str) -> None:
        logger.warning("hub %s: protocol error from %s: %s", self.hub_name, self.connection_id, reason)
        if self._connected:
            self._stop(_close_record(f"Connection closed with an error. {reason}"))
        else:
            self._stop(_encode({"error": reason}) + _RS)

    async def _invoke_loop(self) -> None:
        while True:
            target, arguments, invocation_id = await self._invocations.get()
            completion: dict[str, Any] = {"type": 3, "invocationId": invocation_id}
            try:
                result = self._hub._invoke(self, target, arguments)
                if inspect.isawaitable(result):
                    result = await result
                record = _encode(completion if result is None else {**completion, "result": result})
            except HubMethodError as exc:
                record = _encode({**completion, "error": str(exc)})
            except Exception:
                logger.exception("hub %s: invoking %r failed", self.hub_name, target)
                error = f"An unexpected error occurred invoking '{target}' on the server."
                record = _encode({**completion, "error": error})
            if invocation_id is not None:
                self._push(record + _RS)


class Hub:
    """A SignalR hub endpoint: negotiate + WebSocket, handshake, invocations, pings, client timeout.

    `authorize(token)` answers whom a token acts for (kept as the connection's `user`), or a falsy value to refuse.
    """

    def __init__(self, name: str, *,
                 invoke: Callable[[HubConnection, str, list[Any]], Any],
                 authorize: Callable[[str | None], Any],
                 on_connect: Callable[[HubConnection], None] | None = None,
                 on_disconnect: Callable[[HubConnection], None] | None = None,
                 ping_interval: float = 15.0, client_timeout: float = 30.0, coalesce: bool = True,
                 max_backlog: int = MAX_BACKLOG) -> None:
        self.name = name
        self.max_backlog = max_backlog
        self.ping_interval = ping_interval
        self.client_timeout = client_timeout
        self.coalesce = coalesce
        self._refuse_until = 0.0
        self._invoke = invoke
        self._authorize = authorize
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._conns: dict[HubConnection, None] = {}  # every live WebSocket, in connection order
        self._pending: dict[str, tuple[str, float]] = {}  # negotiated id -> (connectionId, expiry)

    def add_routes(self, app: web.Application, path: str) -> None:
        """Serve `POST {path}/negotiate` and the WebSocket at `GET {path}`; close all on app shutdown."""
        path = path.rstrip("/")
        app.router.add_post(f"{path}/negotiate", self._negotiate)
        app.router.add_get(path, self._websocket)
        app.on_shutdown.append(self._on_shutdown)

    @property
    def connections(self) -> list[HubConnection]:
        return [conn for conn in self._conns if conn._connected and not conn.closed]

    def drop_all(self) -> int:
        """Abort every open connection; return how many."""
        conns = [conn for conn in self._conns if not conn.closed]
        for conn in conns:
            conn.abort()
        return len(conns)

    def go_silent(self) -> int:
        """Make every current connection silent (sends nothing, ignores input, keeps TCP); return how many."""
        conns = [conn for conn in self._conns if not conn.closed]
        for conn in conns:
            conn._go_silent()
        return len(conns)

    async def close_all(self) -> None:
        """Close every connection gracefully (silent ones are aborted) and wait until they are gone."""
        await asyncio.gather(*(conn.close() for conn in list(self._conns)))

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close_all()

    def refuse_for(self, seconds: float) -> int:
        """Drop every connection and answer HTTP 503 to new ones for `seconds`; returns how many were dropped."""
        self._refuse_until = asyncio.get_running_loop().time() + seconds
        return self.drop_all()

    def _check_open(self) -> None:
        if asyncio.get_running_loop().time() < self._refuse_until:
            raise web.HTTPServiceUnavailable()

    async def _negotiate(self, request: web.Request) -> web.Response:
        self._check_open()
        if not self._authorize(_token(request)):
            raise web.HTTPUnauthorized()
        try:
            version = min(max(int(request.query.get("negotiateVersion", "0")), 0), 1)
        except ValueError:
            version = 0
        now = asyncio.get_running_loop().time()
        self._pending = {key: entry for key, entry in self._pending.items() if entry[1] > now}
        connection_id = secrets.token_urlsafe(16)
        body: dict[str, Any] = {"negotiateVersion": version, "connectionId": connection_id}
        key = connection_id
        if version >= 1:
            key = body["connectionToken"] = secrets.token_urlsafe(16)
        body["availableTransports"] = _TRANSPORTS
        self._pending[key] = (connection_id, now + _NEGOTIATE_TTL)
        return web.json_response(body)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self._check_open()
        user = self._authorize(_token(request))
        if not user:
            raise web.HTTPUnauthorized()
        key = request.query.get("id")
        if key is None:
            connection_id = secrets.token_urlsafe(16)
        else:
            entry = self._pending.pop(key, None)
            if entry is None or entry[1] <= asyncio.get_running_loop().time():
                raise web.HTTPNotFound()
            connection_id = entry[0]
        ws = web.WebSocketResponse(heartbeat=None, autoping=False, compress=False, timeout=_CLOSE_TIMEOUT,
                                   max_msg_size=_MAX_MESSAGE)
        await ws.prepare(request)
        conn = HubConnection(self, ws, request.transport, connection_id, user)
        self._conns[conn] = None
        try:
            await conn._run()
        finally:
            del self._conns[conn]
            if conn._connected:
                logger.debug("hub %s: client %s disconnected", self.name, connection_id)
                _notify(self._on_disconnect, conn)
        return ws
