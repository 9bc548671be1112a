"""Request binding as ASP.NET Core's web defaults (System.Text.Json) do it, for the simulated gateway's REST bodies.

Property names match case-insensitively (the last of several spellings wins); numbers may come as JSON strings
(`"1001"`, `"2.5"`), booleans, strings and enums may not; an integer outside an enum's range binds as a plain int,
for the endpoint's own check to refuse; a value of the wrong JSON kind, malformed JSON or a missing required field
is a BindingError whose problem-details errors are keyed the way ASP.NET keys them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
import typing
from collections.abc import Callable
from datetime import datetime
from enum import IntEnum
from typing import Any, TypeVar

from ..codec import MAX_WIRE_INT, MAX_WIRE_NUMBER, camel
from ..errors import ProtocolError
from ..times import parse_ts

T = TypeVar("T")

_INT_TEXT = re.compile(r"-?\d+")
_NUMBER_TEXT = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_ENUM_RANGE = range(-(2**31), 2**31)  # a .NET enum's underlying Int32
_DOTNET_NAMES = {int: "System.Int32", float: "System.Decimal", bool: "System.Boolean", str: "System.String",
                 datetime: "System.DateTime"}


class BindingError(Exception):
    """A body that does not bind: HTTP 400, with `errors` as ASP.NET's problem details carry them."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class _Mismatch(Exception):
    """A JSON value of the wrong kind, or out of range, for its property."""


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON the way ASP.NET's JSON input formatter reads it."""
    mime = (content_type or "").partition(";")[0].strip().lower()
    return mime in ("application/json", "text/json") or (mime.startswith("application/") and mime.endswith("+json"))


def read_json(raw: bytes) -> Any:
    """The JSON document of a body (None when empty); malformed JSON, NaN or Infinity is a BindingError."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BindingError({"$": [f"The JSON body is malformed: {exc}"]}) from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not valid JSON")


def bind(cls: type[T], document: Any) -> T:
    """Bind a parsed JSON body to a request model, or raise BindingError."""
    if document is None:
        raise BindingError({"$": ["A non-empty request body is required."]})
    missing: list[str] = []
    bound = _bind(cls, document, "$", missing)
    if missing:
        raise BindingError({name: [f"The {name} field is required."] for name in missing})
    return typing.cast(T, bound)


def _bind(cls: type, document: Any, path: str, missing: list[str]) -> Any:
    if not isinstance(document, dict):
        raise BindingError({path: [_cannot_convert(cls.__name__, path)]})
    slots = _slots(cls)
    values: dict[str, Any] = {}
    for key, value in document.items():  # document order: the first bad value is the one reported
        slot = slots.get(key.lower())
        if slot is None or value is None:
            continue
        wire, attr, _, convert = slot
        where = f"{path}.{wire}"
        try:
            values[attr] = convert(value, where, missing)
        except _Mismatch as exc:
            raise BindingError({where: [str(exc)]}) from None
    for wire, attr, required, _ in slots.values():
        if required and attr not in values:
            missing.append(f"{path}.{wire}".removeprefix("$."))
    return cls(**values) if not missing else None


@functools.cache
def _slots(cls: type) -> dict[str, tuple[str, str, bool, Callable[[Any, str, list[str]], Any]]]:
    """lower-cased wire name -> (wire name, attribute, required, converter) of a request model."""
    hints = typing.get_type_hints(cls)
    slots = {}
    for field in dataclasses.fields(cls):
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        wire = camel(field.name)
        slots[wire.lower()] = (wire, field.name, required, _converter(hints[field.name]))
    return slots


def _converter(hint: Any) -> Callable[[Any, str, list[str]], Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if dataclasses.is_dataclass(hint):
        return lambda value, path, missing: _bind(typing.cast(type, hint), value, path, missing)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return _enum_converter(hint)
    simple = {int: _to_int, float: _to_number, bool: _exactly(bool), str: _exactly(str), datetime: _to_datetime}
    convert = simple[hint]
    return lambda value, path, missing: convert(value, path)


def _cannot_convert(type_name: str, path: str) -> str:
    return f"The JSON value could not be converted to {type_name}. Path: {path}."


def _to_int(value: Any, path: str) -> int:
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -MAX_WIRE_INT <= value <= MAX_WIRE_INT:
        raise _Mismatch(_cannot_convert(_DOTNET_NAMES[int], path))
    return value


def _to_number(value: Any, path: str) -> float:
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= MAX_WIRE_NUMBER:
        raise _Mismatch(_cannot_convert(_DOTNET_NAMES[float], path))
    return float(value)


def _exactly(kind: type) -> Callable[[Any, str], Any]:
    def convert(value: Any, path: str) -> Any:
        if type(value) is not kind:
            raise _Mismatch(_cannot_convert(_DOTNET_NAMES[kind], path))
        return value

    return convert


def _to_datetime(value: Any, path: str) -> datetime:
    try:
        return parse_ts(value)
    except ProtocolError:
        raise _Mismatch(_cannot_convert(_DOTNET_NAMES[datetime], path)) from None


def _enum_converter(enum: type[IntEnum]) -> Callable[[Any, str, list[str]], Any]:
    members = {int(member): member for member in enum}

    def convert(value: Any, path: str, missing: list[str]) -> IntEnum | int:
        """A JSON integer; one outside the enum binds as itself (enums are not read from strings)."""
        if isinstance(value, bool) or not isinstance(value, int) or value not in _ENUM_RANGE:
            raise _Mismatch(_cannot_convert(enum.__name__, path))
        return members.get(value, value)

    return convert
