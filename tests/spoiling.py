"""The far side of a fault: an httpx transport in front of the simulator that spoils the answers of chosen endpoints.

Requests go to the real simulator over a real socket; for a spoiled endpoint the proxy (like a broken load
balancer) either forwards the request first, so the gateway acts on it, or answers without forwarding it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Spoil:
    """The answer a proxy gives instead of the gateway's; `processed`: the gateway got the request first."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    processed: bool = True

    @classmethod
    def json(cls, value: Any, status: int = 200, **options: Any) -> Spoil:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"}, **options)


class SpoilingProxy(httpx.AsyncBaseTransport):
    """Forwards every request to the simulator; answers of a spoiled path are replaced (the next `count`, or all)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self._spoils: dict[str, tuple[Spoil, int | None]] = {}
        self.sent: list[str] = []  # paths of every request the client sent, in order
        self.spoiled: list[str] = []  # paths whose answer was replaced, in order

    def spoil(self, path: str, spoil: Spoil, count: int | None = None) -> None:
        """Replace the next `count` answers of `path` (every one when None)."""
        self._spoils[path] = (spoil, count)

    def clear(self) -> None:
        self._spoils.clear()

    def _take(self, path: str) -> Spoil | None:
        spoil, count = self._spoils.get(path, (None, None))
        if spoil is None:
            return None
        if count is not None:
            if count <= 1:
                del self._spoils[path]
            else:
                self._spoils[path] = (spoil, count - 1)
        return spoil

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.url.path)
        spoil = self._take(request.url.path)
        if spoil is None:
            return await self.inner.handle_async_request(request)
        if spoil.processed:
            answer = await self.inner.handle_async_request(request)
            await answer.aread()
            await answer.aclose()
        self.spoiled.append(request.url.path)
        return httpx.Response(spoil.status, headers=spoil.headers, stream=httpx.ByteStream(spoil.body))

    async def aclose(self) -> None:
        await self.inner.aclose()
