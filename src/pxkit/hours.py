"""CME Globex trading hours in New York time: the 18:00 trading day, the daily halt, weekends and US holidays.

One calendar for the equity index, metal and energy futures the kit trades, used by the client (stale-feed
watchdog, bar timers, daily P&L) and by the simulated gateway (when its market prints). A trading day is named by
the date it closes on: it opens at 18:00 New York on the evening before and closes at 17:00, followed by the daily
maintenance halt; Monday's opens on Sunday evening. The US exchange holidays close their whole trading day, a
simplification of CME's early halts on some of them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .errors import InputError

NEW_YORK = ZoneInfo("America/New_York")
DAY_OPEN = time(18, 0)  # a trading day opens at 18:00 New York on the evening before its date
DAY_CLOSE = time(17, 0)  # and closes at 17:00 New York, followed by the daily maintenance break


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` (Monday 0) of a month; n = -1 is the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the Meeus/Jones/Butcher algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday) // 451
    month, day = divmod(h + weekday - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _observed(day: date) -> date:
    """A fixed-date holiday on a Saturday is kept on the Friday before, on a Sunday on the Monday after."""
    return day + timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0))


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """The US exchange holidays of a year, as the weekdays they are kept on.

    New Year's Day (not moved back into the old year when it falls on a Saturday), Martin Luther King Jr. Day,
    Washington's Birthday, Good Friday, Memorial Day, Juneteenth, Independence Day, Labor Day, Thanksgiving and
    Christmas.
    """
    days = {
        _nth_weekday(year, 1, 0, 3), _nth_weekday(year, 2, 0, 3), _easter(year) - timedelta(days=2),
        _nth_weekday(year, 5, 0, -1), _observed(date(year, 6, 19)), _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1), _nth_weekday(year, 11, 3, 4), _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:
        days.add(_observed(new_year))
    return frozenset(days)


def is_trading_day(day: date) -> bool:
    """True for a weekday that is not an exchange holiday."""
    return day.weekday() < 5 and day not in holidays(day.year)


def session_bounds(day: date) -> tuple[datetime, datetime]:
    """Open and close of a trading day's session: 18:00 New York the evening before, 17:00 on the day itself."""
    return (datetime.combine(day - timedelta(days=1), DAY_OPEN, NEW_YORK),
            datetime.combine(day, DAY_CLOSE, NEW_YORK))


def sessions_between(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The sessions that overlap [start, end), oldest first."""
    first, last = _new_york(start).date(), _new_york(end).date() + timedelta(days=1)
    out = []
    day = first
    while day <= last:
        if is_trading_day(day):
            opens, closes = session_bounds(day)
            if opens < end and closes > start:
                out.append((opens, closes))
        day += timedelta(days=1)
    return out


def trading_day(ts: datetime) -> date:
    """The trading day a moment belongs to: 2026-03-02 17:59 New York is 2026-03-02, 18:00 is 2026-03-03.

    Friday evening and the weekend belong to the next Monday, as the gateway's daily P&L does.
    """
    local = _new_york(ts)
    day = local.date() + timedelta(days=1) if local.time() >= DAY_OPEN else local.date()
    weekday = day.weekday()
    return day + timedelta(days=7 - weekday) if weekday >= 5 else day


def globex_open(ts: datetime) -> bool:
    """True while Globex equity, energy and metal futures trade: inside the session of a trading day (Sunday
    18:00 to Friday 17:00 New York, less the daily 17:00-18:00 halt and the holidays)."""
    local = _new_york(ts)
    if DAY_CLOSE <= local.time() < DAY_OPEN:
        return False
    day = local.date() + timedelta(days=1) if local.time() >= DAY_OPEN else local.date()
    return is_trading_day(day)


def _new_york(ts: datetime) -> datetime:
    """`ts` in New York time; a naive datetime is refused (astimezone would read it as the machine's local time)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InputError(f"a timezone-aware datetime is needed, got naive {ts!r}")
    return ts.astimezone(NEW_YORK)
