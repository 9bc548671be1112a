"""ProjectX: the async REST client, one method per gateway endpoint, returning models."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import httpx
import polars as pl

from ..codec import decode_contract_by_id, decode_list, format_ts, to_wire
from ..config import ProjectXConfig
from ..enums import BarUnit, OrderSide, OrderType
from ..errors import (
    ConfigError,
    ContractNotFoundError,
    InputError,
    InstrumentNotFoundError,
    OrderNotFoundError,
    OrderRejectedError,
    TransportError,
)
from ..models import Account, Contract, Order, Position, Trade
from .auth import TokenManager
from .bars import bar_unit, bars_frame, fetch_bars, utc, window
from .instruments import is_contract_id, normalise, pick_contract
from .orders import PlacedOrder, build_order_request, is_positive_number
from .transport import HISTORY_PATH, GatewayTransport

log = logging.getLogger(__name__)

TAG_LOOKBACK = timedelta(days=1)  # how far back a lost order is looked for by its tag


class ProjectX:
    """Async client of the ProjectX Gateway REST API: `async with ProjectX(config) as px: ...`.

    Entering logs in and selects an account (`config.account_name`, else the first that can trade).
    Reads are retried on transient failures; orders carry a customTag so a lost answer is reconciled by
    looking the tag up instead of placing the order twice.
    """

    def __init__(self, config: ProjectXConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.transport = GatewayTransport(config, transport=transport)
        self.account: Account | None = None
        self._instruments: dict[str, Contract] = {}

    def __repr__(self) -> str:
        account = self.account.name if self.account else None
        return f"ProjectX(api_url={self.config.api_url!r}, username={self.config.username!r}, account={account!r})"

    async def __aenter__(self) -> ProjectX:
        try:
            await self.authenticate()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.transport.close()

    @property
    def tokens(self) -> TokenManager:
        """The session's TokenManager (listeners, refresh counts)."""
        return self.transport.tokens

    def gateway_now(self) -> datetime:
        return self.transport.gateway_now()

    async def _post(self, path: str, body: dict[str, Any] | None = None, *, idempotent: bool = True) -> dict[str, Any]:
        return await self.transport.post(path, body, idempotent=idempotent)

    # ------------------------------------------------------------------ session and accounts

    async def authenticate(self) -> Account:
        """Log in and select the configured account (or the first one that can trade)."""
        await self.transport.tokens.get()
        accounts = await self.list_accounts()
        if self.config.account_name:
            return await self.select_account(self.config.account_name)
        if not accounts:
            raise ConfigError(f"user {self.config.username!r} has no active account")
        tradable = [a for a in accounts if a.can_trade]
        if not tradable:
            log.warning("no account of user %r can trade; selected %s for data only", self.config.username,
                        accounts[0].name)
        self.account = (tradable or accounts)[0]
        return self.account

    async def list_accounts(self, only_active: bool = True) -> list[Account]:
        body = await self._post("/api/Account/search", {"onlyActiveAccounts": only_active})
        return decode_list(Account, body, "accounts")

    async def select_account(self, name_or_id: str | int, *, accounts: list[Account] | None = None) -> Account:
        """Use this account by default: an exact id, or a case-insensitive name."""
        accounts = accounts if accounts is not None else await self.list_accounts(only_active=False)
        wanted = str(name_or_id).strip().lower()
        for account in accounts:
            if wanted in (str(account.id), account.name.lower()):
                self.account = account
                return account
        raise ConfigError(f"no account {name_or_id!r}; available: {', '.join(a.name for a in accounts)}")

    def _account_id(self, account_id: int | None) -> int:
        if account_id is not None:
            return account_id
        if self.account is None:
            raise ConfigError("no account selected: call authenticate() or select_account() first")
        return self.account.id

    # ------------------------------------------------------------------ instruments and history

    async def search_instruments(self, text: str, live: bool = False) -> list[Contract]:
        body = await self._post("/api/Contract/search", {"searchText": text, "live": live})
        return decode_list(Contract, body, "contracts")

    async def get_instrument(self, symbol: str) -> Contract:
        """The contract for a ticker (`MNQ`, `NQ`, `ES`...), a contract name (`MNQH6`) or a contract id (cached)."""
        if not isinstance(symbol, str) or not symbol.strip():
            raise InputError(f"symbol must be a non-empty string, got {symbol!r}")
        key = normalise(symbol)
        cached = self._instruments.get(key)
        if cached is not None:
            return cached
        if is_contract_id(symbol):
            try:
                contract = decode_contract_by_id(await self._post("/api/Contract/searchById",
                                                                  {"contractId": symbol.strip()}))
            except ContractNotFoundError:
                contract = None
        else:
            contract = pick_contract(symbol, await self.search_instruments(key.removeprefix("/")))
        if contract is None:
            raise InstrumentNotFoundError(f"no contract found for symbol {symbol!r}")
        self._instruments[key] = self._instruments[normalise(contract.id)] = contract
        return contract

    async def get_bars(
        self, symbol: str, *, days: float | None = None, start_time: datetime | None = None,
        end_time: datetime | None = None, interval: int = 1, unit: BarUnit | int | str = BarUnit.MINUTE,
        limit: int | None = None, partial: bool = False,
    ) -> pl.DataFrame:
        """OHLCV bars as a polars DataFrame (UTC, ascending); pages past the 20,000-bar limit by itself.

        The window is `days` back from `end_time` (default: the gateway's now), or [start_time, end_time).
        """
        bar_kind = bar_unit(unit)
        start, end = window(days, start_time, end_time, self.gateway_now())
        contract = await self.get_instrument(symbol)

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            return await self._post(HISTORY_PATH, body)

        bars = await fetch_bars(post, contract.id, start, end, bar_kind, interval, limit, partial)
        return bars_frame(bars)

    # ------------------------------------------------------------------ orders

    async def place_order(
        self, symbol: str, side: OrderSide | str, size: int, *, order_type: OrderType | int = OrderType.MARKET,
        limit_price: float | None = None, stop_price: float | None = None, trail_price: float | None = None,
        stop_loss_ticks: int | None = None, take_profit_ticks: int | None = None,
        stop_loss_type: OrderType = OrderType.STOP, take_profit_type: OrderType = OrderType.LIMIT,
        custom_tag: str | None = None, round_to_tick: bool = False, verify: bool | None = None,
        account_id: int | None = None,
    ) -> PlacedOrder:
        """Place an order (native brackets in signed ticks from the entry); never places it twice."""
        contract = await self.get_instrument(symbol)
        request = build_order_request(
            contract, self._account_id(account_id), side, size, order_type, limit_price=limit_price,
            stop_price=stop_price, trail_price=trail_price, stop_loss_ticks=stop_loss_ticks,
            take_profit_ticks=take_profit_ticks, stop_loss_type=stop_loss_type,
            take_profit_type=take_profit_type, custom_tag=custom_tag, round_to_tick=round_to_tick)
        tag = request.custom_tag or ""
        order_id = await self._place_once(to_wire(request, omit_none=True), request.account_id, tag)
        placed = PlacedOrder(order_id, tag, contract.id)
        if self.config.verify_orders if verify is None else verify:
            order = await self._find_order(request.account_id, lambda o: o.id == order_id)
            if order is None:
                raise OrderNotFoundError("/api/Order/place", 0, f"placed order {order_id} was not found")
            placed = PlacedOrder(order_id, tag, contract.id, order)
        return placed

    async def _place_once(self, body: dict[str, Any], account_id: int, tag: str) -> int:
        """Send Order/place; after an answer that may have been lost, look the tag up before sending again."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return int((await self._post("/api/Order/place", body, idempotent=False))["orderId"])
            except TransportError as exc:
                if not exc.maybe_processed:  # surely never arrived, and already retried by the transport
                    raise
                log.warning("placing order %s: %s; looking the tag up before any retry", tag, type(exc).__name__)
                failure: Exception = exc
            except OrderRejectedError as exc:  # a duplicate tag means an earlier attempt did arrive
                if attempt == 1:
                    raise
                failure = exc
            found = await self._find_order(account_id, lambda o: o.custom_tag == tag)
            if found is not None:
                log.info("order %s reached the gateway as id %d; not sending it again", tag, found.id)
                return found.id
            if isinstance(failure, OrderRejectedError) or not self.transport.retry.should_retry(attempt, failure):
                raise failure
            await asyncio.sleep(self.transport.retry.delay(attempt, failure))

    async def _find_order(self, account_id: int, match: Callable[[Order], bool]) -> Order | None:
        start = self.gateway_now() - TAG_LOOKBACK
        return next((o for o in await self.search_orders(start, account_id=account_id) if match(o)), None)

    async def modify_order(self, order_id: int, *, size: int | None = None, limit_price: float | None = None,
                           stop_price: float | None = None, trail_price: float | None = None,
                           account_id: int | None = None) -> None:
        """Change a working order; modifying to the same values twice is harmless, so it is retried like a read."""
        changes = {"size": size, "limitPrice": limit_price, "stopPrice": stop_price, "trailPrice": trail_price}
        if all(v is None for v in changes.values()):
            raise InputError("modify_order needs at least one of size, limit_price, stop_price, trail_price")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise InputError(f"size must be a whole number of contracts > 0, got {size!r}")
        for name, value in (("limit_price", limit_price), ("stop_price", stop_price), ("trail_price", trail_price)):
            if value is not None and not is_positive_number(value):
                raise InputError(f"{name} must be a positive number, got {value!r}")
        body = {"accountId": self._account_id(account_id), "orderId": order_id,
                **{k: v for k, v in changes.items() if v is not None}}
        await self._post("/api/Order/modify", body)

    async def cancel_order(self, order_id: int, *, account_id: int | None = None) -> None:
        await self._post("/api/Order/cancel", {"accountId": self._account_id(account_id), "orderId": order_id},
                         idempotent=False)

    async def search_orders(self, start: datetime | None = None, end: datetime | None = None, *,
                            account_id: int | None = None) -> list[Order]:
        """Orders created in [start, end] (default: the last day of gateway time)."""
        body = self._window(start, end, account_id)
        return decode_list(Order, await self._post("/api/Order/search", body), "orders")

    async def search_open_orders(self, *, account_id: int | None = None) -> list[Order]:
        body = await self._post("/api/Order/searchOpen", {"accountId": self._account_id(account_id)})
        return decode_list(Order, body, "orders")

    # ------------------------------------------------------------------ positions and trades

    async def search_open_positions(self, *, account_id: int | None = None) -> list[Position]:
        body = await self._post("/api/Position/searchOpen", {"accountId": self._account_id(account_id)})
        return decode_list(Position, body, "positions")

    async def close_position(self, symbol: str, *, account_id: int | None = None) -> None:
        """Flatten the position in a contract with a market order."""
        contract = await self.get_instrument(symbol)
        await self._post("/api/Position/closeContract",
                         {"accountId": self._account_id(account_id), "contractId": contract.id}, idempotent=False)

    async def partially_close_position(self, symbol: str, size: int, *, account_id: int | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise InputError(f"size must be a whole number of contracts > 0, got {size!r}")
        contract = await self.get_instrument(symbol)
        await self._post("/api/Position/partialCloseContract",
                         {"accountId": self._account_id(account_id), "contractId": contract.id, "size": size},
                         idempotent=False)

    async def search_trades(self, start: datetime | None = None, end: datetime | None = None, *,
                            account_id: int | None = None) -> list[Trade]:
        """The account's fills in [start, end] (default: the last day of gateway time)."""
        body = self._window(start, end, account_id)
        return decode_list(Trade, await self._post("/api/Trade/search", body), "trades")

    def _window(self, start: datetime | None, end: datetime | None, account_id: int | None) -> dict[str, Any]:
        """Body of Order/search and Trade/search; the window starts a day back in gateway time by default."""
        body: dict[str, Any] = {"accountId": self._account_id(account_id),
                                "startTimestamp": format_ts(utc(start) if start else self.gateway_now() - TAG_LOOKBACK)}
        if end is not None:
            body["endTimestamp"] = format_ts(utc(end))
        return body
