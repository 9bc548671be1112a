"""Session tokens of the simulated gateway: HS256 JWTs with a wall-clock `exp`, revocable in bulk."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Credentials:
    """The one user the simulator knows."""

    user_name: str = "demo"
    api_key: str = "demo"

    def __repr__(self) -> str:
        return f"Credentials(user_name={self.user_name!r}, api_key=***)"


_NAME_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"


class TokenIssuer:
    """Issues tokens bound to a user and tells whose a token is; `expire_all` invalidates every token so far."""

    def __init__(self, secret: bytes, ttl_seconds: float = 86_400.0) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._serial = 0
        self._valid_from_serial = 0
        self._revoked: set[str] = set()

    def issue(self, user_name: str, ttl_seconds: float | None = None) -> str:
        """A token acting for `user_name`, valid for `ttl_seconds` (the issuer's default when None)."""
        self._serial += 1
        now = time.time()
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            _NAME_CLAIM: user_name,
            "jti": str(self._serial),
            "iat": int(now),
            "exp": int(now + (self.ttl_seconds if ttl_seconds is None else ttl_seconds)),
        }
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{_b64(signature)}"

    def user_of(self, token: str | None) -> str | None:
        """The user a well-signed, unexpired, unrevoked token acts for; None for any other token."""
        if not token:
            return None
        try:
            head, body, signature = token.split(".")
            expected = hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                return None
            claims = json.loads(_unb64(body))
            serial = str(claims.get("jti", ""))
            valid = (claims.get("exp", 0) > time.time() and serial not in self._revoked
                     and int(serial or 0) > self._valid_from_serial)
        except (ValueError, AttributeError, TypeError):
            return None
        user = claims.get(_NAME_CLAIM)
        return user if valid and isinstance(user, str) and user else None

    def revoke(self, token: str) -> None:
        """This one token stops working (logout)."""
        with contextlib.suppress(ValueError, IndexError, AttributeError):
            self._revoked.add(str(json.loads(_unb64(token.split(".")[1])).get("jti", "")))

    def expire_all(self) -> None:
        """Every token issued up to now stops working (as if it had expired)."""
        self._valid_from_serial = self._serial
