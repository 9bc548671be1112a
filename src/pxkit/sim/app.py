"""The simulated gateway's aiohttp application: REST routes, both SignalR hubs, REST faults, request log."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, Protocol

from aiohttp import web

from ..codec import envelope, failure
from .auth import Credentials, TokenIssuer
from .binding import BindingError, bind, is_json, read_json
from .engine import Simulator, Subscriber
from .faults import RestFaults, mix_timestamp_shapes
from .hub import MAX_BACKLOG, Hub, HubMethodError
from .ratelimit import Limit, SlidingWindows
from .rest import GatewayApi, Route

ACCOUNT_SEARCH = "/api/Account/search"
PING = "/api/Status/ping"
ACCOUNT_NOT_FOUND = 1  # the errorCode every account-bearing endpoint answers for an account it does not know
_LISTINGS = {"/api/Order/search": "orders", "/api/Order/searchOpen": "orders", "/api/Position/searchOpen": "positions",
             "/api/Trade/search": "trades"}  # sent as null, like the payload key of a failed Order/place
REQUEST_LOG_SIZE = 10_000  # the request log keeps at least this many newest entries and at most twice as many

# hub method -> (subscribe?, topic, takes an argument)
_USER_METHODS = {
    "SubscribeAccounts": (True, "accounts", False), "UnsubscribeAccounts": (False, "accounts", False),
    "SubscribeOrders": (True, "orders", True), "UnsubscribeOrders": (False, "orders", True),
    "SubscribePositions": (True, "positions", True), "UnsubscribePositions": (False, "positions", True),
    "SubscribeTrades": (True, "user_trades", True), "UnsubscribeTrades": (False, "user_trades", True),
}
_MARKET_METHODS = {
    "SubscribeContractQuotes": (True, "quotes", True), "UnsubscribeContractQuotes": (False, "quotes", True),
    "SubscribeContractTrades": (True, "trades", True), "UnsubscribeContractTrades": (False, "trades", True),
    "SubscribeContractMarketDepth": (True, "depth", True),
    "UnsubscribeContractMarketDepth": (False, "depth", True),
}


class HubCaller(Subscriber, Protocol):
    """Who invokes a hub method: a connection that receives pushes, acting for `user` (None: nobody)."""

    user: str | None


@dataclass(slots=True)
class LoggedRequest:
    """One REST request as the simulator received it; `status` is what it answered (0 = connection dropped)."""

    path: str
    body: Any
    status: int = 0


@dataclass(frozen=True, slots=True)
class HubSettings:
    """SignalR timing of both hubs."""

    ping_interval: float = 15.0
    client_timeout: float = 30.0
    coalesce: bool = True
    max_backlog: int = MAX_BACKLOG  # characters queued for one client before it is dropped as too slow


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header ("" for none)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _problem(errors: dict[str, list[str]]) -> web.Response:
    """An ASP.NET-style validation problem (HTTP 400)."""
    body = {"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.", "status": 400, "errors": errors}
    return web.json_response(body, status=400, content_type="application/problem+json")


def _unsupported_media_type() -> web.Response:
    """ASP.NET's answer to a body it has no input formatter for (HTTP 415)."""
    body = {"type": "https://tools.ietf.org/html/rfc9110#section-15.5.16", "title": "Unsupported Media Type",
            "status": 415}
    return web.json_response(body, status=415, content_type="application/problem+json")


class GatewayApp:
    """Wires a Simulator to HTTP: every REST endpoint of the protocol plus /hubs/user and /hubs/market.

    Every account belongs to the configured user: a token of any other user sees no account and acts on none.
    """

    def __init__(self, sim: Simulator, credentials: Credentials, *, secret: bytes, token_ttl: float = 86_400.0,
                 rate_limits: dict[str, Limit] | None = None, hubs: HubSettings = HubSettings()) -> None:
        self.sim = sim
        self.owner = credentials.user_name
        self.tokens = TokenIssuer(secret, token_ttl)
        self.api = GatewayApi(sim, self.tokens, credentials)
        self.limits = SlidingWindows(rate_limits)
        self.faults = RestFaults()
        self.requests: list[LoggedRequest] = []
        timing = {"ping_interval": hubs.ping_interval, "client_timeout": hubs.client_timeout,
                  "coalesce": hubs.coalesce, "max_backlog": hubs.max_backlog}
        self.user_hub = Hub("user", invoke=self.user_invoke, authorize=self.tokens.user_of,
                            on_disconnect=sim.drop_subscriber, **timing)
        self.market_hub = Hub("market", invoke=self.market_invoke, authorize=self.tokens.user_of,
                              on_disconnect=sim.drop_subscriber, **timing)
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        for route in self.api.routes:
            self.app.router.add_post(route.path, self._endpoint(route))
        self.app.router.add_get(PING, self._ping)
        self.user_hub.add_routes(self.app, "/hubs/user")
        self.market_hub.add_routes(self.app, "/hubs/market")

    # ------------------------------------------------------------------ REST

    async def _ping(self, request: web.Request) -> web.Response:
        """`pong`, without a token, a rate limit or an entry in the request log: a cheap health check."""
        response = web.Response(text="pong")
        response.headers["Date"] = format_datetime(self.sim.clock.now(), usegmt=True)
        return response

    def _endpoint(self, route: Route) -> Any:
        async def serve(request: web.Request) -> web.StreamResponse:
            entry = LoggedRequest(route.path, None)
            self.requests.append(entry)
            if len(self.requests) >= 2 * REQUEST_LOG_SIZE:
                del self.requests[:REQUEST_LOG_SIZE]
            response = await self._serve(route, request, entry)
            response.headers["Date"] = format_datetime(self.sim.clock.now(), usegmt=True)  # simulated time
            entry.status = response.status
            if response.status == 200 and self.faults.take_loss(route.path):
                entry.status = 0
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # the answer never leaves the server
            return response

        return serve

    async def _serve(self, route: Route, request: web.Request, entry: LoggedRequest) -> web.StreamResponse:
        raw = await request.read()
        try:
            document, malformed = read_json(raw), None
        except BindingError as exc:
            document, malformed = raw.decode(errors="replace"), exc
        entry.body = document
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        if self.faults.take_rejection():
            headers = {}
            if self.faults.reject_retry_after is not None:
                headers["Retry-After"] = str(math.ceil(self.faults.reject_retry_after))
            return web.Response(status=self.faults.reject_status, headers=headers)
        token = bearer(request.headers.get("Authorization"))
        user = self.tokens.user_of(token)
        if route.authenticated:
            if user is None:
                return web.Response(status=401)
            wait = self.limits.admit(request.remote or "local", route.path)
            if wait:
                return web.Response(status=429, headers={"Retry-After": str(math.ceil(wait))})
        body: Any = token
        if route.body is not None:
            body = self.bound(route.body, request.headers.get("Content-Type"), document, malformed)
            if isinstance(body, web.Response):
                return body
        return web.json_response(self.respond(route, user, body))

    def respond(self, route: Route, user: str | None, body: Any) -> dict[str, Any]:
        """The JSON answer to a request admitted and bound for `route`, made by `user` (None: no valid token)."""
        if route.authenticated and user != self.owner:
            refusal = self._not_theirs(route, body)
            if refusal is not None:
                return refusal
        if self.sim.clock.realtime:
            self.sim.step()  # bring the market up to now before acting on it
        answer = self.api.handle(route, body)
        if self.faults.timestamp_shapes:
            answer = mix_timestamp_shapes(answer)
        return answer

    @staticmethod
    def bound(model: type, content_type: str | None, document: Any, malformed: BindingError | None) -> Any:
        """The request model a body (`document`, or why it is `malformed`) binds to, or the 415 / 400 answer."""
        if not is_json(content_type):
            return _unsupported_media_type()
        error = malformed
        if error is None:
            try:
                return bind(model, document)
            except BindingError as exc:
                error = exc
        return _problem(error.errors)

    @staticmethod
    def _not_theirs(route: Route, body: Any) -> dict[str, Any] | None:
        """The answer to a user who owns no account: none found, none to act on (None: nothing account-bound)."""
        if route.path == ACCOUNT_SEARCH:
            return envelope(accounts=[])
        account_id = getattr(body, "account_id", None)
        if account_id is None:
            return None
        key = route.payload_key or _LISTINGS.get(route.path)
        payload = {key: None} if key else {}
        return failure(ACCOUNT_NOT_FOUND, f"Account {account_id} not found", **payload)

    # ------------------------------------------------------------------ hubs

    def user_invoke(self, conn: HubCaller, target: str, args: list[Any]) -> None:
        subscribe, topic, takes_arg = self._method(_USER_METHODS, target, args)
        accounts = self.sim.exchange.ledger.accounts if conn.user == self.owner else {}
        if takes_arg:
            account_id = args[0]
            if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id not in accounts:
                raise HubMethodError(f"Account {account_id!r} not found")
            keys = [account_id]
        else:
            keys = list(accounts)
        self._apply(subscribe, topic, keys, conn)

    def market_invoke(self, conn: HubCaller, target: str, args: list[Any]) -> None:
        subscribe, topic, _ = self._method(_MARKET_METHODS, target, args)
        contract_id = args[0]
        if not isinstance(contract_id, str) or self.sim.market.contract(contract_id) is None:
            raise HubMethodError(f"Contract {contract_id!r} not found")
        self._apply(subscribe, topic, [contract_id], conn)

    @staticmethod
    def _method(table: dict[str, tuple[bool, str, bool]], target: str, args: list[Any]) -> tuple[bool, str, bool]:
        if target not in table:
            raise HubMethodError(f"Unknown hub method '{target}'")
        spec = table[target]
        expected = 1 if spec[2] else 0
        if len(args) != expected:
            raise HubMethodError(f"Failed to invoke '{target}': invocation provides {len(args)} argument(s) "
                                 f"but target expects {expected}.")
        return spec

    def _apply(self, subscribe: bool, topic: str, keys: list[Any], conn: HubCaller) -> None:
        if self.sim.clock.realtime:
            self.sim.step()
        for key in keys:
            if subscribe:
                self.sim.subscribe(topic, key, conn)
            else:
                self.sim.unsubscribe(topic, key, conn)
