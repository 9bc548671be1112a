"""TokenManager: login with an API key, refresh through Auth/validate before expiry, re-login once on 401."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..codec import to_wire
from ..errors import AuthenticationError, GatewayError, ProtocolError, TransportError
from ..models import LoginKeyRequest
from .answers import is_whole

log = logging.getLogger(__name__)

LOGIN_PATH = "/api/Auth/loginKey"
VALIDATE_PATH = "/api/Auth/validate"
UNKNOWN_LIFETIME = 1800.0  # assumed seconds of validity when a token's `exp` cannot be read

# (path, body, token or None) -> decoded JSON body of a 200 answer
Poster = Callable[[str, dict[str, Any] | None, str | None], Awaitable[dict[str, Any]]]
TokenListener = Callable[[str], Any]


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (seconds since the epoch), or None when it cannot be read."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _token_in(path: str, body: dict[str, Any], key: str) -> str:
    """The token under `key` of a successful answer; anything but a printable ASCII word is a ProtocolError."""
    token = body.get(key)
    if not isinstance(token, str) or not token.isascii() or not token.isprintable() or not token or " " in token:
        raise ProtocolError(f"{path}: answer has no usable {key!r} (got {type(token).__name__})")
    return token


class TokenManager:
    """Owns the session token; concurrent callers share one login or refresh (single flight)."""

    def __init__(self, post: Poster, username: str, api_key: str, *, refresh_buffer: float = 7200.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._post = post
        self._username = username
        self._api_key = api_key
        self.refresh_buffer = refresh_buffer
        self._clock = clock
        self._token: str | None = None
        self.expires_at: float | None = None
        self._issued_at = 0.0
        self._lock = asyncio.Lock()
        self._listeners: list[TokenListener] = []
        self._pending_notice = False  # a replaced token listeners have not heard of yet
        self.logins = 0
        self.refreshes = 0  # tokens replaced after the first login (validate or re-login)

    def __repr__(self) -> str:
        state = "none" if self._token is None else f"expires_at={self.expires_at}"
        return f"TokenManager(username={self._username!r}, token={state})"

    def add_listener(self, listener: TokenListener) -> None:
        """Call `listener(new_token)` (sync or async) whenever the token is replaced."""
        self._listeners.append(listener)

    def remove_listener(self, listener: TokenListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def current(self) -> str | None:
        return self._token

    def _fresh(self) -> bool:
        """Usable without a refresh: before `refresh_buffer` (at most half the token's lifetime) of its expiry."""
        if self._token is None or self.expires_at is None:
            return False
        buffer = min(self.refresh_buffer, (self.expires_at - self._issued_at) / 2)
        return self._clock() < self.expires_at - buffer

    async def get(self) -> str:
        """A usable token: logs in the first time, refreshes when within `refresh_buffer` of expiry."""
        if self._fresh():
            return self._token  # type: ignore[return-value]
        async with self._lock:
            if self._fresh():
                return self._token  # type: ignore[return-value]
            if self._token is None:
                await self._login()
            else:
                await self._refresh()
        return await self._after_change()

    async def renew(self, rejected: str) -> str:
        """The server answered 401 to `rejected`: log in again, unless another caller already did."""
        async with self._lock:
            if self._token != rejected and self._token is not None:
                return self._token
            log.info("token rejected by the gateway; logging in again")
            await self._login()
        return await self._after_change()

    async def _login(self) -> None:
        body = await self._post(LOGIN_PATH, to_wire(LoginKeyRequest(self._username, self._api_key)), None)
        if body.get("success") is not True:
            code = body.get("errorCode")
            code = code if is_whole(code) else None
            message = body.get("errorMessage")
            raise AuthenticationError(f"{LOGIN_PATH}: login refused for user {self._username!r}: errorCode {code}"
                                      f" {message if isinstance(message, str) else ''}".rstrip(), code)
        self._install(_token_in(LOGIN_PATH, body, "token"), replaced=self.logins > 0)
        self.logins += 1

    async def _refresh(self) -> None:
        try:
            token = _token_in(VALIDATE_PATH, await self._post(VALIDATE_PATH, None, self._token), "newToken")
        except (AuthenticationError, GatewayError, ProtocolError, TransportError) as exc:
            log.info("token refresh through validate failed (%s); logging in again", type(exc).__name__)
            await self._login()
            return
        self._install(token, replaced=True)

    def _install(self, token: str, *, replaced: bool) -> None:
        self._token = token
        self._issued_at = self._clock()
        expiry = token_expiry(token)
        self.expires_at = expiry if expiry is not None else self._clock() + UNKNOWN_LIFETIME
        self._pending_notice = replaced
        if replaced:
            self.refreshes += 1
        log.debug("session token installed, expires in %.0f s", self.expires_at - self._clock())

    async def _after_change(self) -> str:
        token = self._token
        assert token is not None
        if self._pending_notice:
            self._pending_notice = False
            for listener in list(self._listeners):
                try:
                    result = listener(token)
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # a listener must not break the caller that triggered the refresh
                    log.exception("token listener %r failed", listener)
        return token
