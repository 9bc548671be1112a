"""The pxkit exception tree and the transient/permanent classification.

::

    PxError
    ├── ConfigError                 missing or malformed configuration / credentials
    ├── InputError (ValueError)     bad input caught before anything reaches the wire
    │   ├── InstrumentNotFoundError no contract matches a symbol
    │   └── RiskViolationError      a risk rule refused an order (carries rule, limit, value)
    ├── ProtocolError               a payload that does not match the gateway protocol
    ├── TransportError              the request may not have been processed (transient)
    │   ├── ConnectionLostError     connection refused / reset / dropped
    │   ├── RequestTimeoutError     no answer in time
    │   ├── RateLimitError          HTTP 429 (carries retry_after)
    │   └── ServerError             HTTP 408 / 5xx
    ├── CircuitOpenError            calls fail fast while the breaker is open
    ├── ClosedError                 a command on a client (or suite) after it was closed; nothing was sent
    ├── OrderEndedError             an order ended before it was completely filled (carries the order)
    ├── OrderTimeoutError (TimeoutError)  an order did not end in time (carries its id, last state, timeout)
    ├── OrderEvictedError           an order ended so long ago that its manager no longer tracks it
    ├── OrderStateUnknownError      an order may be live, but its answer and its tag look-up failed (carries the tag)
    ├── UnprotectedPositionError    a bracket entry filled without its legs; the position was flattened
    ├── RiskStateError              the risk store is corrupt, unreadable or of an unknown schema version
    ├── AuthenticationError         login refused, or 401 after a fresh login
    └── GatewayError                HTTP 200 with success:false (carries endpoint, error_code)
        ├── AccountNotFoundError
        ├── ContractNotFoundError
        ├── OrderNotFoundError
        ├── PositionNotFoundError
        ├── OrderRejectedError
        ├── InsufficientFundsError
        └── InvalidRequestError     HTTP 400 (a required field is missing)

Messages name what failed (endpoint, error code, contract) and never contain a secret.
"""

from __future__ import annotations

from typing import Any


class PxError(Exception):
    """Base class of every pxkit error."""


class ConfigError(PxError):
    """Configuration is missing or malformed (e.g. no credentials for the real gateway)."""


class InputError(PxError, ValueError):
    """Input rejected before it reached the wire (unknown symbol, size <= 0, price off the tick grid...)."""


class InstrumentNotFoundError(InputError):
    """No contract matches the symbol or contract id."""


class RiskViolationError(InputError):
    """A risk rule refused an order: which `rule`, its `limit`, the offending `value`, and all `violations`."""

    def __init__(self, message: str, *, rule: str, limit: object, value: object,
                 violations: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.rule = rule
        self.limit = limit
        self.value = value
        self.violations = violations


class ProtocolError(PxError):
    """A payload does not match the gateway protocol."""


class TransportError(PxError):
    """The request failed in transport; `maybe_processed` tells whether the server may have acted on it."""

    def __init__(self, message: str, *, maybe_processed: bool = True) -> None:
        super().__init__(message)
        self.maybe_processed = maybe_processed


class ConnectionLostError(TransportError):
    """The connection was refused, reset or dropped; `address` (host:port) when it could not be made at all."""

    def __init__(self, message: str, *, maybe_processed: bool = True, address: str | None = None) -> None:
        super().__init__(message, maybe_processed=maybe_processed)
        self.address = address


class RequestTimeoutError(TransportError):
    """No answer arrived in time."""


class RateLimitError(TransportError):
    """The server answered HTTP 429."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, maybe_processed=False)
        self.retry_after = retry_after


class ServerError(TransportError):
    """The server answered HTTP 408 or 5xx."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, maybe_processed=status != 503)  # 503: the service did not take it
        self.status = status


class CircuitOpenError(PxError):
    """The circuit breaker is open: the call was not attempted."""


class ClosedError(PxError):
    """A command after `close()`: refused before anything reached the wire; the message says what was closed."""


class OrderTimeoutError(PxError, TimeoutError):
    """An order did not end within `timeout` s; `order` is its last known state (None: never seen)."""

    def __init__(self, message: str, *, order_id: int, order: Any, timeout: float | None) -> None:
        super().__init__(message)
        self.order_id, self.order, self.timeout = order_id, order, timeout


class OrderEvictedError(PxError):
    """The order ended long ago and its manager keeps only its most recent ended orders; `search_orders` has it."""

    def __init__(self, message: str, *, order_id: int) -> None:
        super().__init__(message)
        self.order_id = order_id


class OrderEndedError(PxError):
    """An order ended (cancelled, expired, rejected) before it was completely filled; `order` is its final state."""

    def __init__(self, message: str, order: Any) -> None:
        super().__init__(message)
        self.order = order


class OrderStateUnknownError(PxError):
    """An order may be live on the gateway: its answer was lost or unusable and looking its `custom_tag` up failed.

    Never retry such an order blindly: look the tag up (`search_orders`) once the gateway answers again.
    """

    def __init__(self, message: str, *, custom_tag: str, endpoint: str = "/api/Order/place") -> None:
        super().__init__(message)
        self.custom_tag = custom_tag
        self.endpoint = endpoint


class UnprotectedPositionError(PxError):
    """A bracket entry filled but its stop/target legs did not appear, so the position was flattened."""

    def __init__(self, message: str, *, entry: Any, missing: list[str], flatten_error: PxError | None) -> None:
        super().__init__(message)
        self.entry, self.missing, self.flatten_error = entry, missing, flatten_error


class RiskStateError(PxError):
    """The risk store cannot be trusted or written: corrupt or unreadable file, unknown schema version."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class AuthenticationError(PxError):
    """Login was refused, or a request stayed unauthorised after a fresh login."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class GatewayError(PxError):
    """The gateway answered `success: false` with an errorCode."""

    def __init__(self, endpoint: str, error_code: int, message: str | None = None) -> None:
        self.endpoint = endpoint
        self.error_code = error_code
        self.gateway_message = message
        text = f"{endpoint} failed with errorCode {error_code}"
        super().__init__(f"{text}: {message}" if message else text)


class AccountNotFoundError(GatewayError):
    """The account does not exist or is not visible to this user."""


class ContractNotFoundError(GatewayError):
    """The contract or symbol is unknown."""


class OrderNotFoundError(GatewayError):
    """The order does not exist (or is no longer working)."""


class PositionNotFoundError(GatewayError):
    """There is no open position in that contract."""


class OrderRejectedError(GatewayError):
    """The gateway rejected the order."""


class InsufficientFundsError(GatewayError):
    """The account cannot afford the order."""


class InvalidRequestError(GatewayError):
    """HTTP 400: the request body lacks a required field."""


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same call later may succeed."""
    return isinstance(exc, TransportError)
