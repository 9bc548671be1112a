"""Reading the gateway's HTTP answers strictly: JSON, the success flag, error codes and Retry-After, all typed."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx

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
    ContractNotFoundError,
    GatewayError,
    InsufficientFundsError,
    InvalidRequestError,
    OrderNotFoundError,
    OrderRejectedError,
    PositionNotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
)

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


def is_whole(value: object) -> bool:
    """A JSON integer (not a bool, not a float such as 1.5 or 1e999)."""
    return isinstance(value, int) and not isinstance(value, bool)


def error_code(path: str, body: dict[str, Any]) -> int:
    """The `errorCode` of an answer (absent or null counts as 0); any other type is a ProtocolError."""
    code = body.get("errorCode")
    if code is None:
        return 0
    if not is_whole(code):
        raise ProtocolError(f"{path}: errorCode is not an integer (got {type(code).__name__})")
    return code


def gateway_error(path: str, body: dict[str, Any]) -> GatewayError:
    """The typed exception for a `success: false` answer."""
    code = error_code(path, body)
    message = body.get("errorMessage")
    cls = ERROR_CLASSES.get(path, {}).get(code, GatewayError)
    return cls(path, code, message if isinstance(message, str) else None)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body(path: str, response: httpx.Response) -> Any:
    """The decoded JSON of an answer; not JSON, NaN/Infinity literals or absurd nesting are a ProtocolError."""
    try:
        return json.loads(response.content, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ProtocolError(f"{path}: answer is not valid JSON (HTTP {response.status_code}, "
                            f"{type(exc).__name__})") from None


def read_answer(path: str, response: httpx.Response, max_retry_after: float, *,
                refusal_returned: bool = False) -> dict[str, Any]:
    """The body of a successful answer, or the typed error the answer stands for.

    Only `success: true` is success; `success: false` is the endpoint's GatewayError (or, with
    `refusal_returned`, the body itself, for a login its caller judges); anything else is a ProtocolError.
    """
    status = response.status_code
    if status == 200:
        body = json_body(path, response)
        if not isinstance(body, dict):
            raise ProtocolError(f"{path}: answer is not a JSON object (got {type(body).__name__})")
        success = body.get("success")
        if success is True or (success is False and refusal_returned):
            return body
        if success is False:
            raise gateway_error(path, body)
        raise ProtocolError(f"{path}: answer has no boolean 'success' (got {type(success).__name__})")
    if status == 401:
        raise AuthenticationError(f"{path}: unauthorised (HTTP 401) even with a fresh token")
    if status == 429:
        raise RateLimitError(f"{path}: rate limited (HTTP 429)", retry_after(response, max_retry_after))
    if status == 408 or status >= 500:
        raise ServerError(f"{path}: server error (HTTP {status})", status)
    if status == 400:
        raise InvalidRequestError(path, 400, problem_summary(path, response))
    raise GatewayError(path, status, f"unexpected HTTP {status}")


def retry_after(response: httpx.Response, cap: float) -> float | None:
    """Seconds the server asked to wait, within [0, cap]; None when absent or not a number (NaN included)."""
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    if math.isnan(seconds):
        return None
    return min(cap, max(0.0, seconds))


def problem_summary(path: str, response: httpx.Response) -> str:
    """The field names of an ASP.NET validation problem, or "bad request" when the body says nothing usable."""
    try:
        errors = json_body(path, response).get("errors")
    except (ProtocolError, AttributeError):
        return "bad request"
    if not isinstance(errors, dict) or not errors:
        return "bad request"
    return "invalid fields: " + ", ".join(sorted(str(name)[:80] for name in errors))


def order_id_in(path: str, body: dict[str, Any]) -> int:
    """The `orderId` of a successful Order/place answer: a positive JSON integer, or a ProtocolError."""
    order_id = body.get("orderId")
    if not is_whole(order_id) or order_id <= 0:
        raise ProtocolError(f"{path}: answer has no usable orderId (got {type(order_id).__name__})")
    return order_id
