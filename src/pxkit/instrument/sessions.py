"""CME Globex trading hours in New York time: the 18:00 trading day and whether the market is open."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..errors import InputError

NEW_YORK = ZoneInfo("America/New_York")
DAY_OPEN = time(18, 0)  # a trading day opens at 18:00 New York on the evening before its date
DAY_CLOSE = time(17, 0)  # and closes at 17:00 New York, followed by the daily maintenance break


def trading_day(ts: datetime) -> date:
    """The trading day a moment belongs to: 2026-03-02 17:59 New York is 2026-03-02, 18:00 is 2026-03-03.

    Friday evening and the weekend belong to the next Monday, as the gateway's daily P&L does.
    """
    local = _new_york(ts)
    day = local.date() + timedelta(days=1) if local.time() >= DAY_OPEN else local.date()
    weekday = day.weekday()
    return day + timedelta(days=7 - weekday) if weekday >= 5 else day


def globex_open(ts: datetime) -> bool:
    """True while Globex equity, energy and metal futures trade: Sunday 18:00 to Friday 17:00 New York, except
    the daily 17:00-18:00 break."""
    local = _new_york(ts)
    weekday, clock = local.weekday(), local.time()
    if weekday == 5 or (weekday == 6 and clock < DAY_OPEN) or (weekday == 4 and clock >= DAY_CLOSE):
        return False
    return not DAY_CLOSE <= clock < DAY_OPEN


def _new_york(ts: datetime) -> datetime:
    """`ts` in New York time; a naive datetime is refused (astimezone would read it as the machine's local time)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InputError(f"a timezone-aware datetime is needed, got naive {ts!r}")
    return ts.astimezone(NEW_YORK)


def always_open(ts: datetime) -> bool:
    """A market that never closes (the simulator's)."""
    return True
