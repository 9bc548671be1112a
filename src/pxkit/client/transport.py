"""One POST to the gateway through token, rate limiter, circuit breaker and retry; failures become typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..config import ProjectXConfig
from ..errors import (
    ClosedError,
    ConnectionLostError,
    ProtocolError,
    PxError,
    RateLimitError,
    RequestTimeoutError,
    TransportError,
)
from ..loops import on_loop
from .answers import HISTORY_PATH, read_answer
from .auth import LOGIN_PATH, TokenManager
from .resilience import CircuitBreaker, RateLimiter, RetryPolicy

log = logging.getLogger(__name__)

# commands that reduce risk: never held back by the rate limiter's pacing or a 429 embargo another call earned
URGENT_PATHS = frozenset({"/api/Position/closeContract", "/api/Position/partialCloseContract", "/api/Order/cancel"})


def _endpoint_class(path: str) -> str:
    return "history" if path == HISTORY_PATH else "general"


def _surely_unsent(exc: TransportError) -> bool:
    """Only a connection that could not be made proves a request never reached the gateway.

    A 5xx or 429 may come from a proxy in front of a gateway that already acted, so it proves nothing.
    """
    return isinstance(exc, ConnectionLostError) and not exc.maybe_processed


class GatewayTransport:
    """Sends gateway requests; reads are retried on transient errors, mutations only when surely never sent.

    The httpx client, limiter, breaker and token belong to the event loop of the first request: a call from
    another thread's loop is handed over to it, so a pooled connection is never written from a foreign loop.
    A gateway that cannot be connected to is tried again only within `RetryPolicy.connect_window` (1 s) of the
    first failure; its ConnectionLostError names the host:port and what failed.
    """

    def __init__(self, config: ProjectXConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        config.require_credentials()
        self.timeout = config.timeout
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
        url = self.http.base_url
        self.address = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"  # named by connect errors
        self.max_retry_after = config.max_retry_after
        self.clock_offset = 0.0  # gateway clock minus ours, in seconds
        self.tokens = TokenManager(self._post_with, config.username or "", config.api_key or "",
                                   refresh_buffer=config.token_refresh_buffer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed: str | None = None  # why requests are refused, once closed

    def _owner(self) -> asyncio.AbstractEventLoop:
        """The loop that owns the connections: the loop of the first request."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def close(self, reason: str = "the client is closed") -> None:
        """Close the connections; every later request raises ClosedError carrying `reason`, before the wire."""
        self.closed = reason
        await on_loop(self._loop, self.http.aclose())

    def _refuse_if_closed(self, path: str) -> None:
        if self.closed is not None:
            raise ClosedError(f"{self.closed}: {path} was not sent")

    async def token(self) -> str:
        """A usable session token (logs in the first time), obtained on the owning loop."""
        self._refuse_if_closed(LOGIN_PATH)
        return await on_loop(self._owner(), self.tokens.get())

    async def post(self, path: str, body: dict[str, Any] | None = None, *, idempotent: bool = True) -> dict[str, Any]:
        """POST with the session token; returns the body of a successful answer or raises a typed error.

        A mutation (`idempotent=False`) is retried only when its connection could not be made; any other
        TransportError reaches the caller with `maybe_processed=True`, and the caller must reconcile. The
        circuit breaker judges whole calls: one call that fails after all its retries counts as one failure.
        """
        self._refuse_if_closed(path)
        return await on_loop(self._owner(), self._post_here(path, body, idempotent))

    async def _post_here(self, path: str, body: dict[str, Any] | None, idempotent: bool) -> dict[str, Any]:
        self.breaker.before_call()  # fail fast while the circuit is open
        try:
            result = await self._with_retries(path, body, idempotent, authenticated=True)
        except TransportError:
            self.breaker.record_failure()
            raise
        except PxError:  # the gateway answered (a business error, 400, 401, a spoiled body): it is up
            self.breaker.record_success()
            raise
        except BaseException:  # cancelled, or failed locally before an answer: no verdict
            self.breaker.abandon()
            raise
        self.breaker.record_success()
        return result

    async def _post_with(self, path: str, body: dict[str, Any] | None, token: str | None) -> dict[str, Any]:
        """The TokenManager's way in (login, validate): part of the call that needed the token."""
        return await on_loop(self._owner(), self._with_retries(path, body, True, authenticated=False, token=token))

    async def _with_retries(self, path: str, body: dict[str, Any] | None, idempotent: bool, *,
                            authenticated: bool, token: str | None = None) -> dict[str, Any]:
        attempt = 0
        unreachable_since: float | None = None
        while True:
            attempt += 1
            try:
                return await self._attempt(path, body, authenticated, token)
            except TransportError as exc:
                delay = self.retry.delay(attempt, exc)
                if isinstance(exc, RateLimitError):
                    self.limiter.push_back(path, delay)
                if not idempotent and not _surely_unsent(exc):
                    exc.maybe_processed = True  # whatever the status says: the caller must look before resending
                    raise
                if not self.retry.should_retry(attempt, exc):
                    raise
                if isinstance(exc, ConnectionLostError) and exc.address is not None:
                    unreachable_since = unreachable_since or time.monotonic()
                    if not self.retry.keeps_connecting(time.monotonic() - unreachable_since, delay):
                        raise
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
        return read_answer(path, response, self.max_retry_after, refusal_returned=path == LOGIN_PATH)

    async def _send(self, path: str, body: dict[str, Any] | None, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        started = time.perf_counter()
        slot = await self.limiter.take(path, urgent=path in URGENT_PATHS)
        try:
            response = await self.http.post(path, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectionLostError(f"{path}: could not connect to {self.address}: {self._connect_failure(exc)}",
                                      maybe_processed=False, address=self.address) from None
        except httpx.PoolTimeout:
            raise ConnectionLostError(f"{path}: no free connection to {self.address} within {self.timeout} s "
                                      "(too many requests at once)", maybe_processed=False) from None
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(f"{path}: no answer in time ({type(exc).__name__})") from None
        except httpx.DecodingError:
            raise ProtocolError(f"{path}: the answer's body could not be decoded (bad content encoding)") from None
        except httpx.RequestError as exc:  # connection reset or dropped, a broken HTTP exchange
            raise ConnectionLostError(f"{path}: connection lost ({type(exc).__name__})") from None
        finally:
            self.limiter.settle(slot)
        log.debug("POST %s -> %d in %.1f ms", path, response.status_code, (time.perf_counter() - started) * 1000)
        self._note_server_time(response)
        return response

    def _connect_failure(self, exc: httpx.TransportError) -> str:
        """What made a connection fail, in words: refused, a name that does not resolve, or no answer in time."""
        if isinstance(exc, httpx.ConnectTimeout):
            return f"no connection within {self.timeout} s"
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused (is the gateway running, and on this port?)"
            if isinstance(cause, socket.gaierror):
                return f"host name not resolved ({cause.strerror or cause})"
            if isinstance(cause, TimeoutError):
                return f"no connection within {self.timeout} s"
            cause = cause.__cause__ or cause.__context__
        return str(exc) or type(exc).__name__

    def _note_server_time(self, response: httpx.Response) -> None:
        stamp = response.headers.get("Date")
        if stamp:
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                self.clock_offset = parsedate_to_datetime(stamp).timestamp() - time.time()

    def gateway_now(self) -> datetime:
        """The gateway's clock (from the Date header of its last answer; 1 s resolution)."""
        return datetime.fromtimestamp(time.time() + self.clock_offset, UTC)
