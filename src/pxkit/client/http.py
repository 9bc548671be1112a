"""ProjectX: the async REST client, one method per gateway endpoint, returning models."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import httpx
import polars as pl

from ..codec import decode_contract_by_id, decode_list, to_wire
from ..config import ProjectXConfig
from ..enums import BarUnit, OrderSide, OrderType
from ..errors import (
    ConfigError,
    ContractNotFoundError,
    GatewayError,
    InputError,
    InstrumentNotFoundError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateUnknownError,
    ProtocolError,
    PxError,
    TransportError,
)
from ..models import (
    Account,
    AccountRequest,
    AccountSearchRequest,
    Bar,
    BarsRequest,
    CancelOrderRequest,
    ClosePositionRequest,
    Contract,
    ContractAvailableRequest,
    ContractByIdRequest,
    ContractSearchRequest,
    ModifyOrderRequest,
    Order,
    PartialCloseRequest,
    PlaceOrderRequest,
    Position,
    Trade,
    WindowSearchRequest,
)
from .answers import HISTORY_PATH, order_id_in
from .auth import TokenManager
from .bars import bar_unit, bars_frame, fetch_bars, utc, window
from .instruments import is_contract_id, normalise, pick_contract
from .orders import PlacedOrder, build_modify_request, build_order_request, check_size
from .transport import GatewayTransport

log = logging.getLogger(__name__)
T = TypeVar("T")

TAG_LOOKBACK = timedelta(days=1)  # how far back a lost order is looked for by its tag
PLACE_PATH, MODIFY_PATH, CANCEL_PATH = "/api/Order/place", "/api/Order/modify", "/api/Order/cancel"
CLOSE_PATH, PARTIAL_CLOSE_PATH = "/api/Position/closeContract", "/api/Position/partialCloseContract"


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

    async def close(self, reason: str = "the client is closed") -> None:
        """Close the connections; every later command raises ClosedError saying `reason`, before anything is sent."""
        await self.transport.close(reason)

    @property
    def tokens(self) -> TokenManager:
        """The session's TokenManager (listeners, refresh counts)."""
        return self.transport.tokens

    def gateway_now(self) -> datetime:
        return self.transport.gateway_now()

    async def _post(self, path: str, request: object, *, idempotent: bool = True) -> dict[str, Any]:
        """POST a request model, encoded by the codec (None fields left out, as the gateway leaves them unchanged)."""
        return await self.transport.post(path, to_wire(request, omit_none=True), idempotent=idempotent)

    async def _read(self, path: str, request: object, decode: Callable[[dict[str, Any]], T]) -> T:
        """POST a read and decode its answer; an answer that does not decode is a ProtocolError naming `path`."""
        answer = await self._post(path, request)
        try:
            return decode(answer)
        except ProtocolError as exc:
            raise ProtocolError(f"{path}: {exc}") from exc

    # ------------------------------------------------------------------ session and accounts

    async def authenticate(self) -> Account:
        """Log in and select the configured account (or the first one that can trade)."""
        await self.transport.token()
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
        return await self._read("/api/Account/search", AccountSearchRequest(only_active),
                                lambda answer: decode_list(Account, answer, "accounts"))

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
        """Contracts matching a text, as Contract/search lists them: each product's active contract."""
        return await self._read("/api/Contract/search", ContractSearchRequest(live=live, search_text=text),
                                lambda answer: decode_list(Contract, answer, "contracts"))

    async def available_instruments(self, live: bool = False) -> list[Contract]:
        """Every contract the data subscription covers (Contract/available), inactive ones included."""
        return await self._read("/api/Contract/available", ContractAvailableRequest(live),
                                lambda answer: decode_list(Contract, answer, "contracts"))

    async def get_instrument(self, symbol: str) -> Contract:
        """The contract for a ticker (`MNQ`, `NQ`, `ES`...), a contract name (`MNQH6`, or `MNQM6` for the next
        quarter) or a contract id (cached). A ticker resolves to its active contract."""
        if not isinstance(symbol, str) or not symbol.strip():
            raise InputError(f"symbol must be a non-empty string, got {symbol!r}")
        key = normalise(symbol)
        cached = self._instruments.get(key)
        if cached is not None:
            return cached
        if is_contract_id(symbol):
            try:
                contract = await self._read("/api/Contract/searchById", ContractByIdRequest(symbol.strip()),
                                            decode_contract_by_id)
            except ContractNotFoundError:
                contract = None
        else:
            contract = pick_contract(symbol, await self.search_instruments(key.removeprefix("/")))
            if contract is None:  # a listed contract that is not the active one (the next quarter) by its name
                contract = next((c for c in await self.available_instruments() if c.name.upper() == key), None)
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

        async def page(request: BarsRequest) -> list[Bar]:
            return await self._read(HISTORY_PATH, request, lambda answer: decode_list(Bar, answer, "bars"))

        bars = await fetch_bars(page, contract.id, start, end, bar_kind, interval, limit, partial)
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
        """Place an order; never places it twice. InputError before the wire for anything the gateway would refuse.

        Bracket distances (`stop_loss_ticks`, `take_profit_ticks`, and the suite's `stop_offset`,
        `target_offset`) are whole ticks > 0 from the entry's fill, whatever the side: a buy's stop goes below
        and its target above, a sell's the other way round. The gateway attaches the legs when the entry fills.
        """
        request = build_order_request(
            await self.get_instrument(symbol), self._account_id(account_id), side, size, order_type,
            limit_price=limit_price, stop_price=stop_price, trail_price=trail_price, stop_loss_ticks=stop_loss_ticks,
            take_profit_ticks=take_profit_ticks, stop_loss_type=stop_loss_type, take_profit_type=take_profit_type,
            custom_tag=custom_tag, round_to_tick=round_to_tick)
        return await self.send_order(request, verify=verify)

    async def send_order(self, request: PlaceOrderRequest, *, verify: bool | None = None) -> PlacedOrder:
        """Send a request built by `client.orders.build_order_request` (as `place_order` and OrderManager do) under
        its customTag, once: see `place_order`.

        With `verify` (default: `config.verify_orders`) the placed order is looked up before this returns.
        """
        if not request.custom_tag:
            raise InputError("an order is sent under its custom_tag, and this request has none")
        order_id = await self._place_once(request)
        placed = PlacedOrder(order_id, request.custom_tag, request.contract_id)
        if self.config.verify_orders if verify is None else verify:
            order = await self._find_order(request.account_id, lambda o: o.id == order_id)
            if order is None:
                raise OrderNotFoundError(PLACE_PATH, 0, f"placed order {order_id} was not found")
            placed = PlacedOrder(order_id, request.custom_tag, request.contract_id, order)
        return placed

    async def _place_once(self, request: PlaceOrderRequest) -> int:
        """Send Order/place; whenever the order may exist, look its tag up before anything else.

        A send is repeated (same tag) only after the look-up found nothing and the failure was a lost answer;
        when the order may exist and nothing tells, OrderStateUnknownError carries the tag.
        """
        tag = request.custom_tag or ""
        attempt = 0
        while True:
            attempt += 1
            try:
                return order_id_in(PLACE_PATH, await self._post(PLACE_PATH, request, idempotent=False))
            except TransportError as exc:
                if not exc.maybe_processed:  # its connection was never made, even after the transport's retries
                    raise
                failure: PxError = exc
            except ProtocolError as exc:  # the gateway answered, but unreadably: the order may exist
                failure = exc
            except OrderRejectedError as exc:
                if attempt == 1:  # sent once (the transport resends a mutation only when it never connected),
                    raise         # so a refused tag here was reused by the caller
                failure = exc  # how a reused customTag is refused: an earlier send did arrive
            except GatewayError as exc:
                if type(exc) is not GatewayError:  # a refusal this client knows: nothing was placed
                    raise
                failure = exc  # an errorCode (or HTTP status) this client does not know: the order may exist
            log.warning("placing order %s: %s; looking the tag up before anything else", tag, type(failure).__name__)
            found = await self._look_up_tag(request, failure)
            if found is not None:
                log.info("order %s reached the gateway as id %d; not sending it again", tag, found.id)
                return found.id
            if isinstance(failure, GatewayError):
                raise failure
            if isinstance(failure, ProtocolError) or not self.transport.retry.should_retry(attempt, failure):
                raise OrderStateUnknownError(f"order {tag} may be live: {failure}; its tag was not found (yet)",
                                             custom_tag=tag) from failure
            await asyncio.sleep(self.transport.retry.delay(attempt, failure))

    async def _look_up_tag(self, request: PlaceOrderRequest, failure: PxError) -> Order | None:
        """The order carrying the request's tag (same contract and side), or None; OrderStateUnknownError
        when the look-up itself fails."""
        tag = request.custom_tag or ""
        try:
            return await self._find_order(request.account_id, lambda o: (
                o.custom_tag == tag and o.contract_id == request.contract_id and o.side is request.side))
        except PxError as exc:
            raise OrderStateUnknownError(f"order {tag} may be live: {failure}; looking its tag up failed too: {exc}",
                                         custom_tag=tag) from exc

    async def _find_order(self, account_id: int, match: Callable[[Order], bool]) -> Order | None:
        start = self.gateway_now() - TAG_LOOKBACK
        return next((o for o in await self.search_orders(start, account_id=account_id) if match(o)), None)

    async def modify_order(self, order_id: int, *, size: int | None = None, limit_price: float | None = None,
                           stop_price: float | None = None, trail_price: float | None = None,
                           account_id: int | None = None) -> None:
        """Change a working order; InputError before the wire for a bad size or price."""
        await self.send_modify(build_modify_request(
            self._account_id(account_id), order_id, size=size, limit_price=limit_price, stop_price=stop_price,
            trail_price=trail_price))

    async def send_modify(self, request: ModifyOrderRequest) -> None:
        """Send a request built by `client.orders.build_modify_request`; modifying to the same values twice is
        harmless, so it is retried like a read."""
        await self._post(MODIFY_PATH, request)

    async def cancel_order(self, order_id: int, *, account_id: int | None = None) -> None:
        """Cancel a working order; after an answer that may have been lost, the open orders decide: the order
        is gone (done) or still working (cancelled again). An order that ended meanwhile counts as done."""
        account = self._account_id(account_id)

        async def working() -> bool:
            return any(o.id == order_id for o in await self.search_open_orders(account_id=account))

        await self._until_done(CANCEL_PATH, CancelOrderRequest(account, order_id), working)

    async def search_orders(self, start: datetime | None = None, end: datetime | None = None, *,
                            account_id: int | None = None) -> list[Order]:
        """Orders created in [start, end] (default: the last day of gateway time)."""
        return await self._read("/api/Order/search", self._window(start, end, account_id),
                                lambda answer: decode_list(Order, answer, "orders"))

    async def search_open_orders(self, *, account_id: int | None = None) -> list[Order]:
        return await self._read("/api/Order/searchOpen", AccountRequest(self._account_id(account_id)),
                                lambda answer: decode_list(Order, answer, "orders"))

    # ------------------------------------------------------------------ positions and trades

    async def search_open_positions(self, *, account_id: int | None = None) -> list[Position]:
        return await self._read("/api/Position/searchOpen", AccountRequest(self._account_id(account_id)),
                                lambda answer: decode_list(Position, answer, "positions"))

    async def close_position(self, symbol: str, *, account_id: int | None = None) -> None:
        """Flatten the position in a contract with a market order; after an answer that may have been lost, the
        open positions decide: flat (done) or still open (closed again, which cannot overshoot flat)."""
        contract = await self.get_instrument(symbol)
        account = self._account_id(account_id)

        async def still_open() -> bool:
            return any(p.contract_id == contract.id and p.size for p in
                       await self.search_open_positions(account_id=account))

        await self._until_done(CLOSE_PATH, ClosePositionRequest(account, contract.id), still_open)

    async def partially_close_position(self, symbol: str, size: int, *, account_id: int | None = None) -> None:
        """Reduce a position by `size`. Never repeated, since a second partial close would reduce it twice: after
        a lost or unreadable answer the TransportError (`maybe_processed=True`) or ProtocolError reaches the caller."""
        check_size(size)
        contract = await self.get_instrument(symbol)
        await self._post(PARTIAL_CLOSE_PATH, PartialCloseRequest(self._account_id(account_id), contract.id, size),
                         idempotent=False)

    async def search_trades(self, start: datetime | None = None, end: datetime | None = None, *,
                            account_id: int | None = None) -> list[Trade]:
        """The account's fills in [start, end] (default: the last day of gateway time)."""
        return await self._read("/api/Trade/search", self._window(start, end, account_id),
                                lambda answer: decode_list(Trade, answer, "trades"))

    async def _until_done(self, path: str, request: object, pending: Callable[[], Awaitable[bool]]) -> None:
        """Send a command that is harmless to repeat; after an answer that may have been lost, unreadable or an
        unknown errorCode, send it again only while `pending()` says the gateway still needs it. A refused
        repeat is fine once nothing is pending (an earlier send did it, or the order ended meanwhile)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._post(path, request, idempotent=False)
                return
            except TransportError as exc:
                if not exc.maybe_processed:
                    raise
                failure: PxError = exc
            except ProtocolError as exc:
                failure = exc
            except GatewayError as exc:
                if attempt == 1 and type(exc) is not GatewayError:  # a refusal this client knows
                    raise
                failure = exc  # an unknown errorCode, or a refused repeat: the gateway decides
            try:
                needed = await pending()
            except PxError as exc:
                raise failure from exc
            if not needed:
                log.info("%s: an answer was lost or refused, but nothing is left to do", path)
                return
            if isinstance(failure, GatewayError) or attempt >= self.transport.retry.attempts:
                raise failure
            log.warning("%s: the answer was lost and it is still needed; sending it again", path)
            await asyncio.sleep(self.transport.retry.delay(attempt, failure))

    def _window(self, start: datetime | None, end: datetime | None, account_id: int | None) -> WindowSearchRequest:
        """Body of Order/search and Trade/search; the window starts a day back in gateway time by default."""
        since = utc(start) if start else self.gateway_now() - TAG_LOOKBACK
        return WindowSearchRequest(self._account_id(account_id), since, utc(end) if end is not None else None)
