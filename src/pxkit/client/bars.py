"""History bars: units, paging past the 20,000-bar limit, and the polars frame they are returned in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import polars as pl

from ..enums import BarUnit
from ..errors import InputError
from ..models import Bar, BarsRequest

MAX_BARS_PER_REQUEST = 20_000
BAR_SCHEMA = {"timestamp": pl.Datetime("us", "UTC"), "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
              "close": pl.Float64, "volume": pl.Int64}
# The one bar-unit vocabulary, for get_bars(unit=...) and for timeframes ("5min"): case does not matter, except
# that "M" is refused (a minute to some, a month to pandas users).
UNIT_SPELLINGS = {
    BarUnit.SECOND: ("sec", "s", "secs", "second", "seconds"),
    BarUnit.MINUTE: ("min", "m", "mins", "minute", "minutes"),
    BarUnit.HOUR: ("hr", "h", "hrs", "hour", "hours"),
    BarUnit.DAY: ("day", "d", "days"),
    BarUnit.WEEK: ("wk", "w", "week", "weeks"),
    BarUnit.MONTH: ("mo", "month", "months"),
}  # the first spelling of each is the canonical one: "5min", "4hr"
_UNIT_NAMES = {spelling: unit for unit, spellings in UNIT_SPELLINGS.items() for spelling in spellings}
_AMBIGUOUS = {"M"}
_ACCEPTED = "; ".join(f"{unit.name.lower()}: {', '.join(spellings)}" for unit, spellings in UNIT_SPELLINGS.items())

FetchPage = Callable[[BarsRequest], Awaitable[list[Bar]]]  # a retrieveBars request -> the bars of its answer


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def unit_named(name: str) -> BarUnit:
    """The BarUnit a spelling names (`"min"`, `"Hours"`, `"mo"`, ...); an InputError lists the accepted ones."""
    text = name.strip()
    if text in _AMBIGUOUS:
        raise InputError(f"bar unit {name!r} is ambiguous (minute or month?): write 'min' or 'month'")
    unit = _UNIT_NAMES.get(text.lower())
    if unit is None:
        raise InputError(f"unknown bar unit {name!r}; accepted spellings: {_ACCEPTED}")
    return unit


def bar_unit(unit: BarUnit | int | str) -> BarUnit:
    """BarUnit from an enum, its integer or a spelling of UNIT_SPELLINGS."""
    if isinstance(unit, str):
        return unit_named(unit)
    try:
        value = BarUnit(unit)
    except ValueError:
        raise InputError(f"unknown bar unit {unit!r}") from None
    if value is BarUnit.UNSPECIFIED:
        raise InputError("bar unit must be SECOND to MONTH")
    return value


def bars_frame(bars: list[Bar]) -> pl.DataFrame:
    """Bars as a polars DataFrame: UTC timestamps, ascending, exact dtypes."""
    return pl.DataFrame(
        {"timestamp": [b.timestamp for b in bars], "open": [b.open for b in bars], "high": [b.high for b in bars],
         "low": [b.low for b in bars], "close": [b.close for b in bars], "volume": [b.volume for b in bars]},
        schema=BAR_SCHEMA,
    )


async def fetch_bars(fetch_page: FetchPage, contract_id: str, start: datetime, end: datetime, unit: BarUnit,
                     unit_number: int, limit: int | None, partial: bool) -> list[Bar]:
    """Every bar of [start, end) (the newest `limit` when given), ascending, each once.

    The gateway answers newest first and at most 20,000 bars a request, so pages walk backwards by
    moving `endTime` to the oldest bar seen.
    """
    if not _whole(unit_number):
        raise InputError(f"interval must be a whole number >= 1, got {unit_number!r}")
    if limit is not None and not _whole(limit):
        raise InputError(f"limit must be a whole number >= 1, got {limit!r}")
    if start >= end:
        raise InputError(f"start {start.isoformat()} must be before end {end.isoformat()}")
    seen: dict[datetime, Bar] = {}
    cursor = end
    while True:
        want = MAX_BARS_PER_REQUEST if limit is None else min(MAX_BARS_PER_REQUEST, limit - len(seen))
        page = await fetch_page(BarsRequest(contract_id, False, start, cursor, unit, unit_number, want, partial))
        fresh = [b for b in page if b.timestamp not in seen and start <= b.timestamp < end]
        seen.update((b.timestamp, b) for b in fresh)
        oldest = min((b.timestamp for b in page), default=None)
        if len(page) < want or not fresh or oldest is None or oldest <= start:
            break
        if limit is not None and len(seen) >= limit:
            break
        cursor = oldest
    ordered = sorted(seen.values(), key=lambda b: b.timestamp)
    return ordered[-limit:] if limit is not None else ordered


def utc(value: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window(days: float | None, start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime,
                                                                                                     datetime]:
    """[start, end) from either `days` back from `end` (default now) or explicit times; naive means UTC."""
    end = utc(end) if end is not None else now
    start = utc(start) if start is not None else None
    if days is not None:
        if start is not None:
            raise InputError("give either days= or start_time=, not both")
        if days <= 0:
            raise InputError(f"days must be positive, got {days}")
        start = end - timedelta(days=days)
        return start.replace(microsecond=0), end  # gateway time is known to the second
    if start is None:
        raise InputError("give days= or start_time=")
    return start, end
