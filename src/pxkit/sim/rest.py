"""REST endpoints of the simulated gateway: one handler per route, bodies decoded by the shared codec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import models
from ..codec import envelope, failure, to_wire
from ..enums import BarsError, BarUnit, ContractError, LoginError, SearchError
from ..times import to_us
from .auth import Credentials, TokenIssuer
from .engine import Simulator
from .exchange import ExchangeError

MAX_BARS = 20_000
_BAR_UNITS = frozenset(BarUnit) - {BarUnit.UNSPECIFIED}


@dataclass(frozen=True, slots=True)
class Route:
    """One POST endpoint: its body model, whether it needs a bearer token, and its handler.

    The handler receives the decoded body; handlers of bodiless routes receive the bearer token instead.
    """

    path: str
    body: type | None
    handler: Callable[[Any], dict[str, Any] | None]  # None means an empty success envelope
    authenticated: bool = True
    payload_key: str | None = None  # sent as null when the exchange rejects the request


class GatewayApi:
    """The REST handlers, bound to a Simulator, a token issuer and the known credentials."""

    def __init__(self, sim: Simulator, tokens: TokenIssuer, credentials: Credentials) -> None:
        self.sim = sim
        self.tokens = tokens
        self.credentials = credentials
        ex = sim.exchange
        self.routes = [
            Route("/api/Auth/loginKey", models.LoginKeyRequest, self.login_key, authenticated=False),
            Route("/api/Auth/loginApp", models.LoginAppRequest, self.login_app, authenticated=False),
            Route("/api/Auth/validate", None, self.validate),
            Route("/api/Auth/logout", None, self.logout),
            Route("/api/Account/search", models.AccountSearchRequest, self.account_search),
            Route("/api/Contract/search", models.ContractSearchRequest, self.contract_search),
            Route("/api/Contract/searchById", models.ContractByIdRequest, self.contract_by_id),
            Route("/api/Contract/available", models.ContractAvailableRequest, self.contract_available),
            Route("/api/History/retrieveBars", models.BarsRequest, self.retrieve_bars),
            Route("/api/Order/place", models.PlaceOrderRequest,
                  lambda b: envelope(orderId=ex.place(b)), payload_key="orderId"),
            Route("/api/Order/search", models.WindowSearchRequest,
                  lambda b: self._listing("orders", b, ex.search_orders, b.start_timestamp, b.end_timestamp)),
            Route("/api/Order/searchOpen", models.AccountRequest,
                  lambda b: self._listing("orders", b, ex.open_orders)),
            Route("/api/Order/cancel", models.CancelOrderRequest,
                  lambda b: ex.cancel(b.account_id, b.order_id)),
            Route("/api/Order/modify", models.ModifyOrderRequest,
                  ex.modify),
            Route("/api/Position/searchOpen", models.AccountRequest, self.open_positions),
            Route("/api/Position/closeContract", models.ClosePositionRequest,
                  lambda b: ex.close_position(b.account_id, b.contract_id)),
            Route("/api/Position/partialCloseContract", models.PartialCloseRequest,
                  lambda b: ex.close_position(b.account_id, b.contract_id, b.size)),
            Route("/api/Trade/search", models.TradeSearchRequest,
                  lambda b: self._listing("trades", b, ex.search_trades, b.start_timestamp, b.end_timestamp)),
        ]

    @staticmethod
    def handle(route: Route, body: Any) -> dict[str, Any]:
        """Run a handler; business rejections become `success: false` bodies."""
        try:
            result = route.handler(body)
        except ExchangeError as exc:
            payload = {route.payload_key: None} if route.payload_key else {}
            return failure(exc.code, exc.message, **payload)
        return envelope() if result is None else result

    # ------------------------------------------------------------------ auth

    def login_key(self, body: models.LoginKeyRequest) -> dict[str, Any]:
        if (body.user_name, body.api_key) != (self.credentials.user_name, self.credentials.api_key):
            return failure(LoginError.INVALID_CREDENTIALS, "Invalid credentials", token=None)
        return envelope(token=self.tokens.issue(body.user_name))

    def login_app(self, body: models.LoginAppRequest) -> dict[str, Any]:
        return failure(LoginError.APP_NOT_FOUND, f"Application {body.app_id!r} not found", token=None)

    def logout(self, token: str) -> None:
        self.tokens.revoke(token)

    def validate(self, body: Any) -> dict[str, Any]:
        return envelope(newToken=self.tokens.issue(self.tokens.user_of(body) or ""))

    # ------------------------------------------------------------------ reference data

    def account_search(self, body: models.AccountSearchRequest) -> dict[str, Any]:
        accounts = self.sim.exchange.accounts(body.only_active_accounts)
        return envelope(accounts=[to_wire(a.model()) for a in accounts])

    def contract_search(self, body: models.ContractSearchRequest) -> dict[str, Any]:
        return envelope(contracts=[to_wire(c) for c in self.sim.market.search(body.search_text or "")])

    def contract_by_id(self, body: models.ContractByIdRequest) -> dict[str, Any]:
        contract = self.sim.market.contract(body.contract_id)
        if contract is None:
            return failure(ContractError.CONTRACT_NOT_FOUND, f"Contract {body.contract_id} not found", contract=None)
        return envelope(contract=to_wire(contract))

    def contract_available(self, body: models.ContractAvailableRequest) -> dict[str, Any]:
        return envelope(contracts=[to_wire(c) for c in self.sim.market.contracts])

    def retrieve_bars(self, body: models.BarsRequest) -> dict[str, Any]:
        market = self.sim.market
        if market.contract_with_history(body.contract_id) is None:  # an expired contract keeps its history
            return failure(BarsError.CONTRACT_NOT_FOUND, f"Contract {body.contract_id} not found", bars=None)
        if body.unit not in _BAR_UNITS:  # an integer outside BarUnit binds, and is refused here
            return failure(BarsError.UNIT_INVALID, "unit must be 1 (Second) to 6 (Month)", bars=None)
        if body.unit_number <= 0:
            return failure(BarsError.UNIT_NUMBER_INVALID, "unitNumber must be positive", bars=None)
        if not 0 < body.limit <= MAX_BARS:
            return failure(BarsError.LIMIT_INVALID, f"limit must be between 1 and {MAX_BARS}", bars=None)
        bars = market.bars(body.contract_id, to_us(body.start_time), to_us(body.end_time), self.sim.clock.now_us(),
                           body.unit, body.unit_number, body.include_partial_bar)
        newest = bars[::-1][: body.limit]
        return envelope(bars=[to_wire(b) for b in newest])

    # ------------------------------------------------------------------ account data

    def _listing(self, key: str, body: Any, query: Callable[..., list[Any]], *args: Any) -> dict[str, Any]:
        if body.account_id not in self.sim.exchange.ledger.accounts:
            return failure(SearchError.ACCOUNT_NOT_FOUND, f"Account {body.account_id} not found", **{key: None})
        return envelope(**{key: [to_wire(item) for item in query(body.account_id, *args)]})

    def open_positions(self, body: models.AccountRequest) -> dict[str, Any]:
        exchange = self.sim.exchange

        def positions(account_id: int) -> list[models.Position]:
            return [p.model(exchange.market.spec(p.contract_id).tick_size)
                    for p in exchange.ledger.open_positions(account_id)]

        return self._listing("positions", body, positions)
