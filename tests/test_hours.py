"""Globex hours in New York time from UTC inputs (Sunday open, daily break, Friday close, weekend, both DST switches,
exchange holidays); naive datetimes refused. trading_day's turning points are covered in tests/risk/test_rules.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pxkit.errors import InputError
from pxkit.hours import globex_open, holidays, sessions_between, trading_day


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("moment", "is_open"), [
    # Sunday open, EST (2026-03-01): 18:00 New York is 23:00 UTC
    (utc(2026, 3, 1, 22, 59, 59), False), (utc(2026, 3, 1, 23, 0), True),
    # Sunday open on the day DST starts (2026-03-08): 18:00 EDT is 22:00 UTC
    (utc(2026, 3, 8, 21, 59), False), (utc(2026, 3, 8, 22, 0), True),
    # Sunday open on the day DST ends (2026-11-01): 18:00 EST is 23:00 UTC again
    (utc(2026, 11, 1, 22, 59), False), (utc(2026, 11, 1, 23, 0), True),
    # the daily 17:00-18:00 break, EST (Tuesday 2026-03-03)
    (utc(2026, 3, 3, 21, 59, 59), True), (utc(2026, 3, 3, 22, 0), False),
    (utc(2026, 3, 3, 22, 59, 59), False), (utc(2026, 3, 3, 23, 0), True),
    # ... and EDT (Tuesday 2026-03-10): one hour earlier in UTC
    (utc(2026, 3, 10, 20, 59, 59), True), (utc(2026, 3, 10, 21, 0), False), (utc(2026, 3, 10, 22, 0), True),
    # ... and EST again after the fall switch (Monday 2026-11-02)
    (utc(2026, 11, 2, 21, 30), True), (utc(2026, 11, 2, 22, 30), False), (utc(2026, 11, 2, 23, 0), True),
    # midnight New York is inside the session
    (utc(2026, 3, 4, 5, 0), True),
    # Friday close, EST (2026-03-06) and EDT (2026-10-30): nothing reopens at 18:00
    (utc(2026, 3, 6, 21, 59, 59), True), (utc(2026, 3, 6, 22, 0), False), (utc(2026, 3, 6, 23, 0), False),
    (utc(2026, 10, 30, 20, 59), True), (utc(2026, 10, 30, 21, 0), False), (utc(2026, 10, 30, 22, 0), False),
    # Saturday: Friday evening New York (Saturday early UTC), Saturday noon, Saturday late
    (utc(2026, 3, 7, 3, 0), False), (utc(2026, 3, 7, 12, 0), False), (utc(2026, 3, 8, 3, 59), False),
])
def test_globex_open(moment: datetime, is_open: bool) -> None:
    assert globex_open(moment) is is_open


def test_the_same_utc_clock_is_closed_or_open_depending_on_dst() -> None:
    assert not globex_open(utc(2026, 3, 1, 22, 30))  # 17:30 EST on Sunday: not yet
    assert globex_open(utc(2026, 3, 8, 22, 30))  # 18:30 EDT a week later: open


def test_any_aware_timezone_gives_the_same_answer() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    moment = utc(2026, 3, 3, 22, 30)  # 17:30 EST, in the break
    assert globex_open(moment.astimezone(tokyo)) is globex_open(moment) is False
    assert trading_day(moment.astimezone(tokyo)) == trading_day(moment) == date(2026, 3, 3)


def test_a_week_across_the_spring_switch_has_the_expected_open_hours_and_weekday_trading_days() -> None:
    start = utc(2026, 3, 6, 22, 0)  # Friday close (17:00 EST) to the next Friday close (17:00 EDT) and beyond
    moments = [start + timedelta(minutes=15 * i) for i in range(7 * 96)]
    assert sum(globex_open(m) for m in moments) == 5 * 23 * 4  # five 23-hour sessions, in quarter hours
    days = [trading_day(m) for m in moments]
    assert all(d.weekday() < 5 for d in days)
    assert days == sorted(days)  # never goes back, even over the missing hour


@pytest.mark.parametrize(("year", "expected"), [
    (2026, ["01-01", "01-19", "02-16", "04-03", "05-25", "06-19", "07-03", "09-07", "11-26", "12-25"]),
    # New Year's Day 2028 is a Saturday: not kept on 2027-12-31; Christmas 2027 (Saturday) is kept on the 24th
    (2027, ["01-01", "01-18", "02-15", "03-26", "05-31", "06-18", "07-05", "09-06", "11-25", "12-24"]),
    (2028, ["01-17", "02-21", "04-14", "05-29", "06-19", "07-04", "09-04", "11-23", "12-25"]),
])
def test_the_exchange_holidays_of_a_year(year: int, expected: list[str]) -> None:
    assert sorted(d.isoformat()[5:] for d in holidays(year)) == expected


@pytest.mark.parametrize(("moment", "is_open"), [
    # Good Friday 2026-04-03: Thursday closes at 17:00 EDT and nothing opens until Sunday 18:00
    (utc(2026, 4, 2, 20, 59), True), (utc(2026, 4, 2, 22, 30), False), (utc(2026, 4, 3, 14, 0), False),
    (utc(2026, 4, 5, 22, 0), True),
    # Martin Luther King Jr. Day 2026-01-19 (Monday, EST): the weekend lasts until Monday 18:00
    (utc(2026, 1, 18, 23, 30), False), (utc(2026, 1, 19, 15, 0), False), (utc(2026, 1, 19, 23, 0), True),
    # Christmas 2026 is a Friday: Thursday's session is the week's last
    (utc(2026, 12, 24, 21, 59), True), (utc(2026, 12, 24, 23, 30), False), (utc(2026, 12, 27, 23, 0), True),
])
def test_a_holiday_closes_its_whole_trading_day(moment: datetime, is_open: bool) -> None:
    assert globex_open(moment) is is_open


def test_sessions_between_lists_the_open_spans_of_a_holiday_week() -> None:
    spans = sessions_between(utc(2026, 3, 29), utc(2026, 4, 6))  # the week of Good Friday
    assert [(o.isoformat(), c.isoformat()) for o, c in spans] == [
        (f"2026-03-{d - 1:02d}T18:00:00-04:00", f"2026-03-{d:02d}T17:00:00-04:00") for d in (30, 31)
    ] + [("2026-03-31T18:00:00-04:00", "2026-04-01T17:00:00-04:00"),
         ("2026-04-01T18:00:00-04:00", "2026-04-02T17:00:00-04:00"),
         ("2026-04-05T18:00:00-04:00", "2026-04-06T17:00:00-04:00")]


@pytest.mark.parametrize("check", [globex_open, trading_day])
def test_naive_datetimes_are_refused(check) -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        check(datetime(2026, 3, 3, 12, 0))
