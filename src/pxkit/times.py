"""UTC time on the wire and in state: gateway timestamp text, datetimes and integer microseconds since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import ProtocolError

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TS_STYLES = ("offset", "z", "naive", "millis")
_ONE_US = timedelta(microseconds=1)
_fromisoformat = datetime.fromisoformat


def parse_ts(value: str) -> datetime:
    """Parse any timestamp shape the gateway sends (`+00:00`, `Z`, naive, 0-7 fraction digits) as UTC.

    The shapes the gateway sends most (`+00:00` or `Z`, at most 7 fraction digits) are parsed in one call;
    anything else (surrounding blanks, other offsets) goes the long way, with the same result.
    """
    try:
        parsed = _fromisoformat(value)
    except (TypeError, ValueError, OverflowError):
        return _parse_slowly(value)
    if parsed.tzinfo is UTC:
        return parsed
    return _as_utc(parsed, value)


def _parse_slowly(value: object) -> datetime:
    if not isinstance(value, str):
        raise ProtocolError(f"timestamp must be a string, got {type(value).__name__}")
    text = value.strip()
    if "." in text:  # .NET may send 7 fractional digits; datetime takes at most 6
        head, _, frac = text.partition(".")
        digits = len(frac) - len(frac.lstrip("0123456789"))
        if digits > 6:
            text = f"{head}.{frac[:6]}{frac[digits:]}"
    try:
        parsed = _fromisoformat(text)
    except ValueError as exc:
        raise ProtocolError(f"unparseable timestamp {value!r}") from exc
    except OverflowError as exc:
        raise ProtocolError(f"timestamp {value!r} is out of range") from exc
    return _as_utc(parsed, value)


def _as_utc(parsed: datetime, value: str) -> datetime:
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-05:00 lies past datetime.max in UTC
        raise ProtocolError(f"timestamp {value!r} is out of range") from exc


def to_us(value: datetime | int) -> int:
    """Microseconds since the Unix epoch (ints pass through; naive datetimes are taken as UTC)."""
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - UNIX_EPOCH) // _ONE_US


def from_us(value: int) -> datetime:
    """The UTC datetime of microseconds since the Unix epoch."""
    return UNIX_EPOCH + timedelta(microseconds=int(value))


def format_us(value: int) -> str:
    """Microseconds since the Unix epoch in the gateway's shape (`format_ts`'s `offset`), without a timezone step."""
    return (UNIX_EPOCH + timedelta(microseconds=value)).isoformat(timespec="microseconds")


def format_ts(value: datetime, style: str = "offset") -> str:
    """Format a UTC datetime: `offset` (+00:00), `z`, `naive` or `millis` (+00:00, 3 digits).

    `offset`, the gateway's shape, always prints 6 fractional digits, whole seconds included; `z` and `naive`
    print 6 digits, or none for whole seconds.
    """
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if style == "offset":
        return utc.isoformat(timespec="microseconds")
    if style == "millis":
        return utc.isoformat(timespec="milliseconds")
    naive = utc.replace(tzinfo=None).isoformat(timespec="seconds" if not utc.microsecond else "microseconds")
    if style == "z":
        return naive + "Z"
    if style == "naive":
        return naive
    raise ValueError(f"unknown timestamp style {style!r}; expected one of {TS_STYLES}")
