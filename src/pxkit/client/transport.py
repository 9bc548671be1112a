"""One POST to the gateway through token, rate limiter, circuit breaker and retry; failures become typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..config import ProjectXConfig
from ..enums import (
    BarsError,
    ClosePositionError,
    ContractError,
    ModifyOrderError,
    PartialCloseError,
    PlaceOrderError,
    SearchError,
)
from ..errors import (
    AccountNotFoundError,
    AuthenticationError,
    ConnectionLostError,
    ContractNotFoundError,
    GatewayError,
    InsufficientFundsError,
    InvalidRequestError,
    OrderNotFoundError,
    OrderRejectedError,
    PositionNotFoundError,
    ProtocolError,
    PxError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from .auth import LOGIN_PATH, TokenManager
from .resilience import CircuitBreaker, RateLimiter, RetryPolicy

log = logging.getLogger(__name__)

HISTORY_PATH = "/api/History/retrieveBars"
_SEARCHES = {int(SearchError.ACCOUNT_NOT_FOUND): AccountNotFoundError}
_ORDER_CHANGES = {int(ModifyOrderError.ACCOUNT_NOT_FOUND): AccountNotFoundError,
                  int(ModifyOrderError.ORDER_NOT_FOUND): OrderNotFoundError,
                  int(ModifyOrderError.REJECTED): OrderRejectedError,
                  int(ModifyOrderError.CONTRACT_NOT_FOUND): ContractNotFoundError}
# endpoint -> errorCode -> exception; codes not listed raise GatewayError itself
ERROR_CLASSES: dict[str, dict[int, type[GatewayError]]] = {
    "/api/Contract/searchById": {int(ContractError.CONTRACT_NOT_FOUND): ContractNotFoundError},
    HISTORY_PATH: {int(BarsError.CONTRACT_NOT_FOUND): ContractNotFoundError},
    "/api/Order/search": _SEARCHES, "/api/Order/searchOpen": _SEARCHES,
    "/api/Position/searchOpen": _SEARCHES, "/api/Trade/search": _SEARCHES,
    "/api/Order/place": {
        int(PlaceOrderError.ACCOUNT_NOT_FOUND): AccountNotFoundError,
        int(PlaceOrderError.INSUFFICIENT_FUNDS): InsufficientFundsError,
        int(PlaceOrderError.CONTRACT_NOT_FOUND): ContractNotFoundError,
        **{int(code): OrderRejectedError for code in (
            PlaceOrderError.ORDER_REJECTED, PlaceOrderError.ACCOUNT_VIOLATION, PlaceOrderError.OUTSIDE_TRADING_HOURS,
            PlaceOrderError.CONTRACT_NOT_ACTIVE, PlaceOrderError.ACCOUNT_REJECTED)},
    },
    "/api/Order/cancel": _ORDER_CHANGES, "/api/Order/modify": _ORDER_CHANGES,
    "/api/Position/closeContract": {
        int(ClosePositionError.ACCOUNT_NOT_FOUND): AccountNotFoundError,
        int(ClosePositionError.POSITION_NOT_FOUND): PositionNotFoundError,
        int(ClosePositionError.CONTRACT_NOT_FOUND): ContractNotFoundError,
        int(ClosePositionError.ORDER_REJECTED): OrderRejectedError,
    },
    "/api/Position/partialCloseContract": {
        int(PartialCloseError.ACCOUNT_NOT_FOUND): AccountNotFoundError,
        int(PartialCloseError.POSITION_NOT_FOUND): PositionNotFoundError,
        int(PartialCloseError.CONTRACT_NOT_FOUND): ContractNotFoundError,
        int(PartialCloseError.INVALID_CLOSE_SIZE): OrderRejectedError,
        int(PartialCloseError.ORDER_REJECTED): OrderRejectedError,
    },
}


def gateway_error(path: str, body: dict[str, Any]) -> GatewayError:
    """The typed exception for a `success: false` answer."""
    code = int(body.get("errorCode") or 0)
    cls = ERROR_CLASSES.get(path, {}).get(code, GatewayError)
    return cls(path, code, body.get("errorMessage"))


def _endpoint_class(path: str) -> str:
    return "history" if path == HISTORY_PATH else "general"


class GatewayTransport:
    """Sends gateway requests; reads are retried on transient errors, mutations only when surely unprocessed."""

    def __init__(self, config: ProjectXConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        config.require_credentials()
        self.http = httpx.AsyncClient(
            base_url=config.api_url, timeout=config.timeout, transport=transport,
            http2=transport is None and config.api_url.startswith("https"),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
            headers={"Accept": "application/json"},
        )
        self.limiter = RateLimiter({"general": config.general_rate_limit, "history": config.history_rate_limit},
                                   _endpoint_class)
        self.breaker = CircuitBreaker(config.breaker_failure_threshold, config.breaker_reset_timeout, name="rest")
        self.retry = RetryPolicy(config.retry_attempts, config.retry_base_delay, config.retry_max_delay)
        self.clock_offset = 0.0  # gateway clock minus ours, in seconds
        self.tokens = TokenManager(self._post_with, config.username or "", config.api_key or "",
                                   refresh_buffer=config.token_refresh_buffer)

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, path: str, body: dict[str, Any] | None = None, *, idempotent: bool = True) -> dict[str, Any]:
        """POST with the session token; returns the body of a successful answer or raises a typed error.

        A mutation (`idempotent=False`) is retried only when the server surely did not act on it; otherwise
        the TransportError (with `maybe_processed=True`) reaches the caller, who must reconcile. The circuit
        breaker judges whole calls: one call that fails after all its retries counts as one failure.
        """
        self.breaker.before_call()  # fail fast while the circuit is open
        try:
            result = await self._with_retries(path, body, idempotent, authenticated=True)
        except TransportError:
            self.breaker.record_failure()
            raise
        except PxError:  # the gateway answered (a business error, 400, 401): it is up
            self.breaker.record_success()
            raise
        except BaseException:  # cancelled, or failed locally before an answer: no verdict
            self.breaker.abandon()
            raise
        self.breaker.record_success()
        return result

    async def _post_with(self, path: str, body: dict[str, Any] | None, token: str | None) -> dict[str, Any]:
        """The TokenManager's way in (login, validate): part of the call that needed the token."""
        return await self._with_retries(path, body, True, authenticated=False, token=token)

    async def _with_retries(self, path: str, body: dict[str, Any] | None, idempotent: bool, *,
                            authenticated: bool, token: str | None = None) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(path, body, authenticated, token)
            except TransportError as exc:
                if (exc.maybe_processed and not idempotent) or not self.retry.should_retry(attempt, exc):
                    raise
                delay = self.retry.delay(attempt, exc)
                if isinstance(exc, RateLimitError):
                    self.limiter.push_back(path, delay)
                log.info("%s failed (%s), attempt %d of %d; retrying in %.2f s", path, type(exc).__name__,
                         attempt, self.retry.attempts, delay)
                await asyncio.sleep(delay)

    async def _attempt(self, path: str, body: dict[str, Any] | None, authenticated: bool,
                       token: str | None) -> dict[str, Any]:
        if authenticated:
            token = await self.tokens.get()
        response = await self._send(path, body, token)
        if response.status_code == 401 and authenticated and token is not None:
            token = await self.tokens.renew(token)
            response = await self._send(path, body, token)
        return self._read(path, response)

    async def _send(self, path: str, body: dict[str, Any] | None, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        started = time.perf_counter()
        slot = await self.limiter.take(path)
        try:
            response = await self.http.post(path, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ConnectionLostError(f"{path}: could not connect ({type(exc).__name__})",
                                      maybe_processed=False) from None
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(f"{path}: no answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise ConnectionLostError(f"{path}: connection lost ({type(exc).__name__})") from None
        finally:
            self.limiter.settle(slot)
        log.debug("POST %s -> %d in %.1f ms", path, response.status_code, (time.perf_counter() - started) * 1000)
        self._note_server_time(response)
        return response

    def _note_server_time(self, response: httpx.Response) -> None:
        stamp = response.headers.get("Date")
        if stamp:
            with contextlib.suppress(TypeError, ValueError):
                self.clock_offset = parsedate_to_datetime(stamp).timestamp() - time.time()

    def gateway_now(self) -> datetime:
        """The gateway's clock (from the Date header of its last answer; 1 s resolution)."""
        return datetime.fromtimestamp(time.time() + self.clock_offset, UTC)

    def _read(self, path: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                raise ProtocolError(f"{path}: answer is not JSON") from None
            if not isinstance(body, dict):
                raise ProtocolError(f"{path}: answer is not a JSON object")
            if body.get("success") is False and path != LOGIN_PATH:
                raise gateway_error(path, body)
            return body
        if status == 401:
            raise AuthenticationError(f"{path}: unauthorised (HTTP 401) even with a fresh token")
        if status == 429:
            raise RateLimitError(f"{path}: rate limited (HTTP 429)", _retry_after(response))
        if status == 408 or status >= 500:
            raise ServerError(f"{path}: server error (HTTP {status})", status)
        if status == 400:
            raise InvalidRequestError(path, 400, _problem_summary(response))
        raise GatewayError(path, status, f"unexpected HTTP {status}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _problem_summary(response: httpx.Response) -> str:
    """The field names of an ASP.NET validation problem, or a short excerpt of the body."""
    try:
        errors = response.json().get("errors") or {}
        return "invalid fields: " + ", ".join(sorted(errors)) if errors else "bad request"
    except (ValueError, AttributeError):
        return "bad request"
