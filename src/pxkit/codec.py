"""JSON <-> models for every REST body and hub payload; the only module that knows wire shapes.

Wire names are the camelCase of the model's attribute names (bars use `t/o/h/l/c/v`); kinds and which
fields are required come from the dataclass annotations and defaults, so a model is its own schema.
Decoding ignores unknown keys and tolerates missing optional ones; encoding emits every field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, TypeVar

from . import models
from .enums import UserAction
from .errors import ProtocolError

T = TypeVar("T")

_WIRE_OVERRIDES: dict[type, dict[str, str]] = {
    models.Bar: {"timestamp": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"},
}

# --------------------------------------------------------------------------- timestamps

TS_STYLES = ("offset", "z", "naive", "millis")


def parse_ts(value: str) -> datetime:
    """Parse any timestamp shape the gateway sends (`+00:00`, `Z`, naive, 0-7 fraction digits) as UTC."""
    if not isinstance(value, str):
        raise ProtocolError(f"timestamp must be a string, got {type(value).__name__}")
    text = value.strip()
    if "." in text:  # .NET may send 7 fractional digits; datetime takes at most 6
        head, _, frac = text.partition(".")
        digits = len(frac) - len(frac.lstrip("0123456789"))
        if digits > 6:
            text = f"{head}.{frac[:6]}{frac[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError as exc:
        raise ProtocolError(f"unparseable timestamp {value!r}") from exc
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-05:00 lies past datetime.max in UTC
        raise ProtocolError(f"timestamp {value!r} is out of range") from exc


_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(value: datetime | int) -> int:
    """Microseconds since the Unix epoch (ints pass through; naive datetimes are taken as UTC)."""
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _UNIX) // _ONE_US


def from_us(value: int) -> datetime:
    """The UTC datetime of microseconds since the Unix epoch."""
    return _UNIX + timedelta(microseconds=int(value))


def format_ts(value: datetime, style: str = "offset") -> str:
    """Format a UTC datetime: `offset` (+00:00), `z`, `naive` or `millis` (+00:00, 3 digits).

    `offset`, `z` and `naive` print 6 fractional digits, or none for whole seconds.
    """
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if style == "offset":
        return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    if style == "millis":
        return utc.isoformat(timespec="milliseconds")
    naive = utc.replace(tzinfo=None).isoformat(timespec="seconds" if not utc.microsecond else "microseconds")
    if style == "z":
        return naive + "Z"
    if style == "naive":
        return naive
    raise ValueError(f"unknown timestamp style {style!r}; expected one of {TS_STYLES}")


# --------------------------------------------------------------------------- field conversions


# Numbers the gateway cannot mean are refused, so they never reach state (bars, book, P&L) that would choke on them:
# integers beyond what JSON carries exactly (ids, sizes, enums), and other numbers (prices, volumes, balances) that
# are not finite or lie beyond any market's reach.
MAX_WIRE_INT = 2**53
MAX_WIRE_NUMBER = 1e12


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected an integer")
    if not -MAX_WIRE_INT <= value <= MAX_WIRE_INT:  # compared exactly, so a 400-digit integer cannot overflow
        raise ValueError(f"integer not finite or beyond ±2**53: {value!r:.40}")
    if isinstance(value, float) and not value.is_integer():
        raise TypeError("expected an integer")
    return int(value)


def _to_num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    if not -MAX_WIRE_NUMBER <= value <= MAX_WIRE_NUMBER:  # NaN fails both comparisons
        raise ValueError(f"number not finite or beyond ±{MAX_WIRE_NUMBER:g}: {value!r:.40}")
    return float(value)


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected a boolean")
    return value


def _enum_decoder(enum: type[IntEnum]) -> Callable[[Any], IntEnum]:
    def decode(value: Any) -> IntEnum:
        return enum(_to_int(value))

    return decode


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    wire: str
    required: bool
    decode: Callable[[Any], Any]
    encode: Callable[[Any], Any] | None  # None: the value goes out as it is


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _converters(hint: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any] | None]:
    kind = _unwrap_optional(hint)
    if isinstance(kind, type) and issubclass(kind, IntEnum):
        return _enum_decoder(kind), int
    if kind is bool:
        return _to_bool, None
    if kind is int:
        return _to_int, None
    if kind is float:
        return _to_num, None
    if kind is str:
        return _to_str, None
    if kind is datetime:
        return parse_ts, format_ts
    if dataclasses.is_dataclass(kind):
        return (lambda v: from_wire(kind, v)), to_wire
    raise TypeError(f"no wire conversion for {hint!r}")


def camel(name: str) -> str:
    """snake_case -> camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_SCHEMAS: dict[type, tuple[_Field, ...]] = {}


def _schema(cls: type) -> tuple[_Field, ...]:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        overrides = _WIRE_OVERRIDES.get(cls, {})
        fields = []
        for field in dataclasses.fields(cls):
            decode, encode = _converters(hints[field.name])
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            wire = overrides.get(field.name, camel(field.name))
            fields.append(_Field(field.name, wire, required, decode, encode))
        schema = _SCHEMAS[cls] = tuple(fields)
    return schema


def wire_fields(cls: type) -> list[str]:
    """The wire field names of a model, in order."""
    return [f.wire for f in _schema(cls)]


# --------------------------------------------------------------------------- models


def to_wire(obj: Any, *, omit_none: bool = False) -> dict[str, Any]:
    """Encode a model as its JSON object (every field, or only the non-None ones)."""
    out: dict[str, Any] = {}
    for f in _schema(type(obj)):
        value = getattr(obj, f.attr)
        if value is None:
            if not omit_none:
                out[f.wire] = None
        else:
            out[f.wire] = f.encode(value) if f.encode is not None else value
    return out


def from_wire(cls: type[T], data: Any) -> T:
    """Decode a JSON object into a model; raise ProtocolError naming the first bad or missing field."""
    if not isinstance(data, Mapping):
        raise ProtocolError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for f in _schema(cls):
        value = data.get(f.wire)
        if value is None:
            if f.required:
                raise ProtocolError(f"{cls.__name__}: missing required field {f.wire!r}")
            continue
        try:
            kwargs[f.attr] = f.decode(value)
        except (TypeError, ValueError, OverflowError, ProtocolError) as exc:
            raise ProtocolError(f"{cls.__name__}: bad value for {f.wire!r}: {exc}") from exc
    return cls(**kwargs)


def missing_fields(cls: type, data: Mapping[str, Any]) -> list[str]:
    """Required wire fields absent (or null) in a request body."""
    return [f.wire for f in _schema(cls) if f.required and data.get(f.wire) is None]


# --------------------------------------------------------------------------- REST envelopes


def envelope(**payload: Any) -> dict[str, Any]:
    """A successful response body: payload keys plus success/errorCode/errorMessage."""
    return {**payload, "success": True, "errorCode": 0, "errorMessage": None}


def failure(error_code: int, message: str | None, **payload: Any) -> dict[str, Any]:
    """A business failure body (sent with HTTP 200)."""
    return {**payload, "success": False, "errorCode": int(error_code), "errorMessage": message}


def decode_list(cls: type[T], body: Mapping[str, Any], key: str) -> list[T]:
    """Decode the list under `key` of a response body (a bare list is accepted too).

    An answer without the list (or with `null`) is a ProtocolError, never an empty list: an incomplete answer must
    not pass for "no orders" or "flat".
    """
    if not isinstance(body, list | Mapping):
        raise ProtocolError(f"{key}: expected a JSON object or list, got {type(body).__name__}")
    items = body if isinstance(body, list) else body.get(key)
    if items is None:
        raise ProtocolError(f"{key}: the answer has no {key!r} list")
    if not isinstance(items, list):
        raise ProtocolError(f"{key}: expected a list")
    return [from_wire(cls, item) for item in items if item is not None]


def decode_contract_by_id(body: Mapping[str, Any]) -> models.Contract | None:
    """Contract/searchById answered as `contract` (object or null) or `contracts` (list); neither is a ProtocolError."""
    if "contract" in body:
        return None if body["contract"] is None else from_wire(models.Contract, body["contract"])
    if "contracts" not in body:
        raise ProtocolError("contract: the answer has neither 'contract' nor 'contracts'")
    contracts = body["contracts"]
    if contracts is not None and not isinstance(contracts, list):
        raise ProtocolError("contracts: expected a list")
    if contracts:
        return from_wire(models.Contract, contracts[0])
    return None


# --------------------------------------------------------------------------- hub payloads

USER_EVENT_MODELS: dict[str, type] = {
    "GatewayUserAccount": models.Account,
    "GatewayUserOrder": models.Order,
    "GatewayUserPosition": models.Position,
    "GatewayUserTrade": models.Trade,
}


def wrap_user_event(action: UserAction, obj: Any) -> dict[str, Any]:
    """The wrapped form the gateway pushes on the user hub: {action, data}."""
    return {"action": int(action), "data": to_wire(obj)}


def unwrap_user_event(cls: type[T], payload: Any) -> tuple[UserAction, T]:
    """Decode a user-hub payload, wrapped `{action, data}` or bare (action then defaults to UPDATED)."""
    if isinstance(payload, list):
        if not payload:
            raise ProtocolError(f"{cls.__name__}: empty user event")
        payload = payload[0]
    if isinstance(payload, Mapping) and "action" in payload and isinstance(payload.get("data"), Mapping):
        try:
            action = UserAction(_to_int(payload["action"]))
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"{cls.__name__}: bad action {payload['action']!r}") from exc
        return action, from_wire(cls, payload["data"])
    return UserAction.UPDATED, from_wire(cls, payload)


def decode_records(cls: type[T], payload: Any, on_error: Callable[[ProtocolError], Any] | None = None) -> list[T]:
    """Decode a GatewayTrade/GatewayDepth payload: a list of records or one object; nulls skipped.

    Records are decoded one by one: with `on_error`, a bad record is handed to it and the others are kept;
    without, the first bad record raises.
    """
    if payload is None:
        return []
    items: Iterable[Any] = payload if isinstance(payload, list) else [payload]
    records: list[T] = []
    for index, item in enumerate(items):
        if item is None:
            continue
        try:
            records.append(from_wire(cls, item))
        except ProtocolError as exc:
            if on_error is None:
                raise
            on_error(ProtocolError(f"record {index}: {exc}"))
    return records


def market_event_args(contract_id: str, payload: Any) -> list[Any]:
    """Argument list of a market-hub push: [contractId, payload]."""
    return [contract_id, payload]


def split_market_event(args: Any) -> tuple[str | None, Any]:
    """Split market-hub arguments into (contractId, payload); a lone payload gives contractId None.

    Any other layout (a contract id that is not a string, more arguments) is a ProtocolError.
    """
    if isinstance(args, list):
        if len(args) == 2 and isinstance(args[0], str):
            return args[0], args[1]
        if len(args) == 1:
            return None, args[0]
    elif isinstance(args, Mapping):
        return None, args
    raise ProtocolError(f"market event: expected [contractId, payload], got {type(args).__name__}"
                        f"{f' of {len(args)}' if isinstance(args, list) else ''}")
