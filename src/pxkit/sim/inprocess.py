"""The simulated gateway without sockets: an httpx transport into its REST handlers and hub connections fed by calls.

A backtest drives the Simulator's manual clock itself and talks to it through these, at CPU speed: the same
routes, request binding, matching engine and pushes as over HTTP and SignalR, with no rate limits, faults or
request log.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

import httpx
from aiohttp import web

from .app import GatewayApp, bearer
from .auth import Credentials
from .binding import BindingError, read_json
from .engine import Simulator
from .hub import HubMethodError

Deliver = Callable[[str, list[Any]], None]  # (target, arguments) of one push


class InProcessConnection:
    """One hub connection of an in-process client: pushes go straight to `deliver`, on the caller's thread."""

    def __init__(self, hub: str, user: str | None, deliver: Deliver) -> None:
        self.hub = hub
        self.user = user
        self._deliver = deliver

    def send(self, target: str, arguments: list[Any]) -> None:
        self._deliver(target, arguments)


class InProcessGateway:
    """A Simulator served to one in-process client: `transport()` for ProjectX, `connect()` for the hubs."""

    def __init__(self, sim: Simulator, credentials: Credentials | None = None) -> None:
        self.sim = sim
        self.credentials = credentials or Credentials()
        self.app = GatewayApp(sim, self.credentials, secret=secrets.token_bytes(32))
        self.routes = {route.path: route for route in self.app.api.routes}

    def transport(self) -> httpx.AsyncBaseTransport:
        return _Transport(self)

    def connect(self, hub: str, token: str, deliver: Deliver) -> InProcessConnection:
        """A connection to the user or market hub; PermissionError for a token the gateway does not accept."""
        user = self.app.tokens.user_of(token)
        if user is None:
            raise PermissionError(f"{hub} hub: the token is not accepted")
        return InProcessConnection(hub, user, deliver)

    def invoke(self, connection: InProcessConnection, method: str, args: list[Any]) -> None:
        """Invoke a hub method (subscriptions); HubMethodError when the hub refuses it."""
        if connection.hub == "user":
            self.app.user_invoke(connection, method, args)
        elif connection.hub == "market":
            self.app.market_invoke(connection, method, args)
        else:
            raise HubMethodError(f"unknown hub {connection.hub!r}")

    def disconnect(self, connection: InProcessConnection) -> None:
        self.sim.drop_subscriber(connection)

    def answer(self, path: str, authorization: str | None, content_type: str | None, raw: bytes) -> httpx.Response:
        """The gateway's answer to one REST request, as HTTP would carry it."""
        route = self.routes.get(path)
        if route is None:
            return self._dated(httpx.Response(404))
        token = bearer(authorization)
        user = self.app.tokens.user_of(token)
        if route.authenticated and user is None:
            return self._dated(httpx.Response(401))
        body: Any = token
        if route.body is not None:
            try:
                document, malformed = read_json(raw), None
            except BindingError as exc:
                document, malformed = None, exc
            body = self.app.bound(route.body, content_type, document, malformed)
            if isinstance(body, web.Response):
                return self._dated(httpx.Response(body.status, content=body.body,
                                                  headers={"Content-Type": body.content_type}))
        return self._dated(httpx.Response(200, json=self.app.respond(route, user, body)))

    def _dated(self, response: httpx.Response) -> httpx.Response:
        response.headers["Date"] = format_datetime(self.sim.clock.now(), usegmt=True)  # simulated time
        return response


class _Transport(httpx.AsyncBaseTransport):
    """httpx requests answered by an InProcessGateway."""

    def __init__(self, gateway: InProcessGateway) -> None:
        self.gateway = gateway

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = await request.aread()
        return self.gateway.answer(request.url.path, request.headers.get("Authorization"),
                                   request.headers.get("Content-Type"), raw)
