"""A real signalrcore client for tests: records every push in order and awaits completions on asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

from signalrcore.hub_connection_builder import HubConnectionBuilder


class HubError(Exception):
    """The hub answered an invocation with an error completion."""


class HubProbe:
    """One signalrcore connection; callbacks from its thread are handed to the test's loop."""

    def __init__(self, url: str, token: str, targets: Iterable[str], *, skip_negotiation: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.events: list[tuple[str, list[Any]]] = []
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        options = {"skip_negotiation": True} if skip_negotiation else {}
        self.connection = (HubConnectionBuilder().with_url(f"{url}?access_token={token}", options=options)
                           .configure_logging(logging.WARNING).build())
        for target in targets:
            self.connection.on(target, self._recorder(target))
        self.connection.on_open(lambda: self.loop.call_soon_threadsafe(self.opened.set))
        self.connection.on_close(lambda: self.loop.call_soon_threadsafe(self.closed.set))
        self.connection.on_error(lambda message: self._complete(message))

    def _recorder(self, target: str) -> Callable[[list[Any]], None]:
        def record(arguments: list[Any]) -> None:
            self.loop.call_soon_threadsafe(self._add, (target, arguments))

        return record

    def _add(self, event: tuple[str, list[Any]]) -> None:
        self.events.append(event)
        self._changed.set()

    def _complete(self, message: Any) -> None:
        def resolve() -> None:
            future = self._pending.pop(message.invocation_id, None)
            if future is None or future.done():
                return
            if getattr(message, "error", None):
                future.set_exception(HubError(message.error))
            else:
                future.set_result(getattr(message, "result", None))

        self.loop.call_soon_threadsafe(resolve)

    async def start(self, timeout: float = 10.0) -> HubProbe:
        await asyncio.to_thread(self.connection.start)
        async with asyncio.timeout(timeout):
            await self.opened.wait()
        return self

    async def invoke(self, method: str, arguments: list[Any], timeout: float = 10.0) -> Any:
        """Invoke a hub method and await its completion (HubError for an error completion)."""
        result = self.connection.invoke(method, arguments, on_invocation=self._complete)
        future = self._pending[result.invocation_id] = self.loop.create_future()
        async with asyncio.timeout(timeout):
            return await future

    async def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until the connection has closed, from either end."""
        async with asyncio.timeout(timeout):
            await self.closed.wait()

    async def wait_for(self, predicate: Callable[[list[tuple[str, list[Any]]]], bool],
                       timeout: float = 10.0) -> list[tuple[str, list[Any]]]:
        """Wait (bounded) until the recorded events satisfy the predicate."""
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()
        return self.events

    def of(self, target: str) -> list[list[Any]]:
        return [args for name, args in self.events if name == target]

    async def stop(self) -> None:
        """Stop the client; shut the socket down first so stop() cannot hang in recv()."""
        client = getattr(self.connection.transport, "_client", None)
        sock = getattr(client, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        await asyncio.wait_for(asyncio.to_thread(self.connection.stop), 10)
        if sock is not None:
            sock.close()
