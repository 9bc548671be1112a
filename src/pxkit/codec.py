"""JSON <-> models for every REST body, and hub pushes -> messages; the only module that knows wire shapes.

Wire names are the camelCase of the model's attribute names (bars use `t/o/h/l/c/v`); kinds and which
fields are required come from the dataclass annotations and defaults, so a model is its own schema.
Decoding ignores unknown keys and tolerates missing optional ones; encoding emits every field.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, TypeVar

from . import models
from .enums import DomType, TradeType, UserAction
from .errors import ProtocolError
from .messages import (
    AccountPushed,
    DepthPushed,
    HubPush,
    OrderPushed,
    PositionPushed,
    QuotePushed,
    TradesPushed,
    UserTradePushed,
)
from .times import format_ts, parse_ts

T = TypeVar("T")

_WIRE_OVERRIDES: dict[type, dict[str, str]] = {
    models.Bar: {"timestamp": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"},
}

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
    members = {int(member): member for member in enum}  # a dict look-up: calling the enum class is slow

    def decode(value: Any) -> IntEnum:
        number = _to_int(value)
        member = members.get(number)
        if member is None:
            raise ValueError(f"{number!r} is not a valid {enum.__name__}")
        return member

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


def slot_filler(cls: type[T]) -> Callable[..., T]:
    """A builder of a frozen slotted model from all its field values, in field order, that fills the slots directly.

    The model's generated __init__ goes through object.__setattr__ field by field and takes about twice as long;
    this is for the few models built on every push (a quote has 13 fields). Models here have no __post_init__.
    """
    setters = tuple(getattr(cls, field.name).__set__ for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    new = object.__new__

    def build(*values: Any) -> T:
        obj = new(cls)
        for put, value in zip(setters, values):  # noqa: B905 - callers pass every field
            put(obj, value)
        return obj

    return build


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


# --------------------------------------------------------------------------- hub pushes


class Target(StrEnum):
    """The hub methods the gateway invokes on the client, one per kind of push."""

    QUOTE = "GatewayQuote"
    TRADE = "GatewayTrade"
    DEPTH = "GatewayDepth"
    USER_ACCOUNT = "GatewayUserAccount"
    USER_ORDER = "GatewayUserOrder"
    USER_POSITION = "GatewayUserPosition"
    USER_TRADE = "GatewayUserTrade"


MARKET_TARGETS = frozenset({Target.QUOTE, Target.TRADE, Target.DEPTH})
USER_TARGETS = frozenset({Target.USER_ACCOUNT, Target.USER_ORDER, Target.USER_POSITION, Target.USER_TRADE})
USER_EVENT_MODELS: dict[str, type] = {
    Target.USER_ACCOUNT: models.Account,
    Target.USER_ORDER: models.Order,
    Target.USER_POSITION: models.Position,
    Target.USER_TRADE: models.Trade,
}
TARGET_MESSAGES: dict[str, type[HubPush]] = {
    Target.QUOTE: QuotePushed, Target.TRADE: TradesPushed, Target.DEPTH: DepthPushed,
    Target.USER_ACCOUNT: AccountPushed, Target.USER_ORDER: OrderPushed, Target.USER_POSITION: PositionPushed,
    Target.USER_TRADE: UserTradePushed,
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


# Market records are decoded inline when they have the shape the gateway sends (a JSON object, exact JSON types,
# numbers in range); any other record goes to from_wire, which decodes it or names what is wrong. So these give
# exactly what from_wire gives, only faster.

class _Irregular(Exception):
    """A record the inline decoders leave to from_wire."""


_TRADE_TYPES = {int(member): member for member in TradeType}
_DOM_TYPES = {int(member): member for member in DomType}


def _number(value: Any) -> float:
    if (type(value) is float or type(value) is int) and -MAX_WIRE_NUMBER <= value <= MAX_WIRE_NUMBER:
        return float(value)
    raise _Irregular


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _stamp(value: Any) -> datetime:
    try:
        return parse_ts(value)
    except ProtocolError:
        raise _Irregular from None


def _optional_stamp(value: Any) -> datetime | None:
    return None if value is None else _stamp(value)


def decode_trade(item: Any) -> models.MarketTrade:
    """One record of a GatewayTrade push."""
    if type(item) is dict:
        get = item.get
        symbol_id, kind = get("symbolId"), get("type")
        if type(symbol_id) is str and type(kind) is int and (side := _TRADE_TYPES.get(kind)) is not None:
            try:
                return models.MarketTrade(symbol_id, _number(get("price")), _stamp(get("timestamp")), side,
                                          _number(get("volume")))
            except _Irregular:
                pass
    return from_wire(models.MarketTrade, item)


def decode_depth_entry(item: Any) -> models.DepthEntry:
    """One record of a GatewayDepth push."""
    if type(item) is dict:
        get = item.get
        kind, current = get("type"), get("currentVolume")
        if (type(kind) is int and (dom := _DOM_TYPES.get(kind)) is not None
                and (current is None or (type(current) is int and -MAX_WIRE_INT <= current <= MAX_WIRE_INT))):
            try:
                return models.DepthEntry(_stamp(get("timestamp")), dom, _number(get("price")), _number(get("volume")),
                                         0 if current is None else current)
            except _Irregular:
                pass
    return from_wire(models.DepthEntry, item)


_new_quote = slot_filler(models.Quote)


def decode_quote(item: Any) -> models.Quote:
    """The payload of a GatewayQuote push."""
    if type(item) is dict:
        get = item.get
        symbol, name = get("symbol"), get("symbolName")
        if type(symbol) is str and (name is None or type(name) is str):
            try:
                return _new_quote(
                    symbol, name, _optional_number(get("lastPrice")), _optional_number(get("bestBid")),
                    _optional_number(get("bestAsk")), _optional_number(get("change")),
                    _optional_number(get("changePercent")), _optional_number(get("open")),
                    _optional_number(get("high")), _optional_number(get("low")), _optional_number(get("volume")),
                    _optional_stamp(get("lastUpdated")), _optional_stamp(get("timestamp")))
            except _Irregular:
                pass
    return from_wire(models.Quote, item)


_RECORD_DECODERS: dict[type, Callable[[Any], Any]] = {
    models.MarketTrade: decode_trade, models.DepthEntry: decode_depth_entry, models.Quote: decode_quote}
OnBadRecord = Callable[[ProtocolError], Any]


def decode_records(cls: type[T], payload: Any, on_error: OnBadRecord | None = None) -> list[T]:
    """Decode a GatewayTrade/GatewayDepth payload: a list of records or one object; nulls skipped.

    Records are decoded one by one: with `on_error`, a bad record is handed to it and the others are kept;
    without, the first bad record raises.
    """
    decode = _RECORD_DECODERS.get(cls) or functools.partial(from_wire, cls)
    return _records(decode, payload, on_error)


def _records(decode: Callable[[Any], T], payload: Any, on_error: OnBadRecord | None) -> list[T]:
    if payload is None:
        return []
    items: Iterable[Any] = payload if isinstance(payload, list) else [payload]
    records: list[T] = []
    for index, item in enumerate(items):
        if item is None:
            continue
        try:
            records.append(decode(item))
        except ProtocolError as exc:
            if on_error is None:
                raise
            on_error(ProtocolError(f"record {index}: {exc}"))
    return records


def _market(args: Any) -> tuple[str | None, Any]:
    if type(args) is list and len(args) == 2 and type(args[0]) is str:
        return args[0], args[1]
    return split_market_event(args)


def _trades(args: Any, received_at: float, on_error: OnBadRecord | None) -> TradesPushed:
    contract_id, payload = _market(args)
    return TradesPushed(contract_id, tuple(_records(decode_trade, payload, on_error)), received_at)


def _quote(args: Any, received_at: float, on_error: OnBadRecord | None) -> QuotePushed:
    contract_id, payload = _market(args)
    return QuotePushed(contract_id, decode_quote(payload), received_at)


def _depth(args: Any, received_at: float, on_error: OnBadRecord | None) -> DepthPushed:
    contract_id, payload = _market(args)
    return DepthPushed(contract_id, tuple(_records(decode_depth_entry, payload, on_error)), received_at)


def _user(target: str) -> Callable[[Any, float, OnBadRecord | None], HubPush]:
    model, message = USER_EVENT_MODELS[target], TARGET_MESSAGES[target]

    def decode(args: Any, received_at: float, on_error: OnBadRecord | None) -> HubPush:
        action, obj = unwrap_user_event(model, args)
        return message(obj, action, received_at)

    return decode


_PUSH_DECODERS: dict[str, Callable[[Any, float, OnBadRecord | None], HubPush]] = {
    Target.TRADE: _trades, Target.QUOTE: _quote, Target.DEPTH: _depth,
    **{target: _user(target) for target in USER_TARGETS},
}


def decode_push(target: str, args: Any, received_at: float, on_bad_record: OnBadRecord | None = None) -> HubPush:
    """Decode one hub push, its target and its arguments as signalrcore hands them, into its message.

    A trade or depth batch keeps its good records and hands each bad one to `on_bad_record` (without it, the
    first bad record raises). A push that cannot be decoded as a whole raises ProtocolError, and so does a
    target that is not in `Target`.
    """
    decode = _PUSH_DECODERS.get(target)
    if decode is None:
        raise ProtocolError(f"unknown hub target {target!r}")
    return decode(args, received_at, on_bad_record)
