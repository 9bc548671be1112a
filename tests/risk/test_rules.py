"""Risk rules: config validation, trading day and hours in New York time (DST), pre-trade refusals at the limits,
post-trade breaches and lockout length, all from snapshots with the time passed in."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pxkit.client.orders import build_order_request
from pxkit.enums import OrderSide, OrderType, PositionType
from pxkit.errors import ConfigError, InputError, RiskViolationError
from pxkit.models import Contract, Position
from pxkit.risk import (
    Action,
    OrderIntent,
    RiskConfig,
    RiskRules,
    RiskState,
    Rule,
    TradingWindow,
    Violation,
    default_db_path,
    signed_positions,
    trading_day,
    trading_day_bounds,
)

NY = ZoneInfo("America/New_York")
MNQ, NQ, ES = "CON.F.US.MNQ.H26", "CON.F.US.ENQ.H26", "CON.F.US.EP.H26"
BUY, SELL = OrderSide.BUY, OrderSide.SELL
NOON = datetime(2026, 3, 3, 12, tzinfo=NY)  # a Tuesday, inside every window used here


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def rules(**limits: object) -> RiskRules:
    return RiskRules(RiskConfig(**limits))


def state(positions: dict[str, int] | None = None, **fields: object) -> RiskState:
    return RiskState(**{"now": NOON, "positions": positions or {}, **fields})


# ---------------------------------------------------------------------------------------------- trading day


@pytest.mark.parametrize(("moment", "day"), [
    (ny(2026, 3, 2, 17, 59), date(2026, 3, 2)),
    (ny(2026, 3, 2, 18, 0), date(2026, 3, 3)),
    (datetime(2026, 3, 2, 22, 59, 59, 999999, tzinfo=UTC), date(2026, 3, 2)),  # EST: the day turns at 23:00 UTC
    (datetime(2026, 3, 2, 23, 0, tzinfo=UTC), date(2026, 3, 3)),
    (datetime(2026, 3, 9, 21, 59, 59, tzinfo=UTC), date(2026, 3, 9)),  # EDT from 2026-03-08: at 22:00 UTC
    (datetime(2026, 3, 9, 22, 0, tzinfo=UTC), date(2026, 3, 10)),
    (datetime(2026, 11, 2, 22, 30, tzinfo=UTC), date(2026, 11, 2)),  # EST again from 2026-11-01
    (datetime(2026, 11, 2, 23, 0, tzinfo=UTC), date(2026, 11, 3)),
    (ny(2026, 3, 6, 17, 59), date(2026, 3, 6)),  # Friday before the close
    (ny(2026, 3, 6, 18, 0), date(2026, 3, 9)),  # Friday evening, the weekend and Sunday's open: Monday
    (ny(2026, 3, 7, 12, 0), date(2026, 3, 9)),
    (ny(2026, 3, 8, 17, 59), date(2026, 3, 9)),
    (ny(2026, 3, 8, 18, 0), date(2026, 3, 9)),
])
def test_trading_day_turns_at_18_new_york(moment: datetime, day: date) -> None:
    assert trading_day(moment) == day


@pytest.mark.parametrize(("day", "start", "end"), [
    (date(2026, 3, 3), datetime(2026, 3, 2, 23, tzinfo=UTC), datetime(2026, 3, 3, 23, tzinfo=UTC)),
    (date(2026, 3, 9), datetime(2026, 3, 6, 23, tzinfo=UTC), datetime(2026, 3, 9, 22, tzinfo=UTC)),  # over DST
    (date(2026, 11, 2), datetime(2026, 10, 30, 22, tzinfo=UTC), datetime(2026, 11, 2, 23, tzinfo=UTC)),
])
def test_trading_day_bounds_are_exactly_the_moments_of_that_day(day: date, start: datetime, end: datetime) -> None:
    assert trading_day_bounds(day) == (start, end)
    assert trading_day(start) == day and trading_day(end - timedelta(microseconds=1)) == day
    assert trading_day(start - timedelta(microseconds=1)) != day and trading_day(end) != day


def test_a_weekend_day_has_no_bounds() -> None:
    with pytest.raises(InputError, match="weekend"):
        trading_day_bounds(date(2026, 3, 7))


# ---------------------------------------------------------------------------------------------- trading hours


@pytest.mark.parametrize(("moment", "inside"), [
    (ny(2026, 3, 3, 9, 30), True), (ny(2026, 3, 3, 9, 29, 59), False),
    (datetime(2026, 3, 3, 15, 59, 59, 999999, tzinfo=NY), True), (ny(2026, 3, 3, 16, 0), False),
    (ny(2026, 3, 7, 12, 0), False),  # Saturday
    (datetime(2026, 3, 9, 13, 45, tzinfo=UTC), True),  # 09:45 EDT
    (datetime(2026, 3, 6, 13, 45, tzinfo=UTC), False),  # 08:45 EST: the same UTC clock a week earlier
])
def test_regular_session_window(moment: datetime, inside: bool) -> None:
    assert TradingWindow.parse("cme_rth").contains(moment) is inside


@pytest.mark.parametrize(("moment", "inside"), [
    (ny(2026, 3, 8, 17, 59), False), (ny(2026, 3, 8, 18, 0), True),  # Sunday open
    (ny(2026, 3, 4, 2, 0), True), (ny(2026, 3, 4, 16, 59), True),
    (ny(2026, 3, 4, 17, 0), False), (ny(2026, 3, 4, 17, 59), False), (ny(2026, 3, 4, 18, 0), True),  # break
    (ny(2026, 3, 6, 16, 59), True), (ny(2026, 3, 6, 17, 0), False), (ny(2026, 3, 6, 18, 0), False),  # Friday
    (ny(2026, 3, 7, 12, 0), False),
])
def test_globex_window_runs_overnight_from_sunday_to_friday(moment: datetime, inside: bool) -> None:
    window = TradingWindow.parse("sun-thu 18:00-17:00")
    assert window == TradingWindow.parse("cme_globex")
    assert window.contains(moment) is inside


def test_window_specs() -> None:
    assert TradingWindow.parse("09:30-16:00") == TradingWindow(time(9, 30), time(16))
    assert TradingWindow.parse({"start": "08:20", "end": "13:30", "days": ["mon", 2, "FRI"]}).days == {0, 2, 4}
    assert TradingWindow.parse("fri-mon 10:00-11:00").days == {4, 5, 6, 0}
    assert str(TradingWindow.parse("mon,wed 09:30-16:00")) == "mon,wed 09:30-16:00"


@pytest.mark.parametrize("spec", ["", "9-17", "mon-fri 09:30", "xyz 09:30-16:00", "mon fri 09:30-16:00",
                                  "25:00-26:00", "09:30:30-16:00", {"start": "09:30"},
                                  {"start": "09:30", "end": "10:00", "x": 1}, 930])
def test_bad_window_specs_are_config_errors(spec: object) -> None:
    with pytest.raises(ConfigError):
        RiskConfig(trading_hours=[spec])


# ---------------------------------------------------------------------------------------------- config


def test_config_from_dict_normalises_every_setting(tmp_path: Path) -> None:
    config = RiskConfig.from_dict({
        "max_daily_loss": 1000, "max_position_size": 2, "max_total_position_size": 4, "max_open_orders": 3,
        "position_limits": {"NQ": 1, "/mnq": 5, "F.US.EP": 2, "con.f.us.mnq.m26": 0},
        "trading_hours": ["cme_globex"], "lockout_minutes": 15, "db_path": str(tmp_path / "r.sqlite3"),
    })
    assert dict(config.position_limits) == {"ENQ": 1, "MNQ": 5, "EP": 2, "CON.F.US.MNQ.M26": 0}
    assert config.trading_hours == (TradingWindow.parse("cme_globex"),)
    assert config.db_path == tmp_path / "r.sqlite3"
    assert [config.position_limit(c) for c in (NQ, MNQ, ES, "CON.F.US.MNQ.M26", "CON.F.US.YM.H26")] == [1, 5, 2, 0, 2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_daily_loss = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.position_limits["ENQ"] = 9  # type: ignore[index]


def test_unknown_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="maxDailyLoss, max_loss"):
        RiskConfig.from_dict({"maxDailyLoss": 1, "max_loss": 1})


@pytest.mark.parametrize(("name", "value"), [
    ("max_daily_loss", 0), ("max_daily_loss", -5), ("max_daily_loss", True), ("max_daily_loss", "100"),
    ("max_daily_loss", float("nan")), ("max_daily_loss", float("inf")),
    ("max_position_size", -1), ("max_position_size", 1.5), ("max_position_size", True), ("max_open_orders", "3"),
    ("max_total_position_size", -2), ("lockout_minutes", -1), ("lockout_minutes", None), ("enabled", "yes"),
    ("position_limits", [("NQ", 1)]), ("position_limits", {"NQ": -1}), ("position_limits", {"": 1}),
    ("position_limits", {"NQ": 1, "ENQ": 2}), ("trading_hours", 5), ("db_path", 5),
])
def test_invalid_settings_are_refused(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        RiskConfig(**{name: value})


def test_default_db_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_db_path({"XDG_DATA_HOME": "/data"}) == Path("/data/pxkit/risk.sqlite3")
    assert default_db_path({"XDG_DATA_HOME": "relative"}) == tmp_path / ".local/share/pxkit/risk.sqlite3"
    assert default_db_path({}) == tmp_path / ".local/share/pxkit/risk.sqlite3"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert RiskConfig().db_path == tmp_path / "xdg/pxkit/risk.sqlite3"


# ---------------------------------------------------------------------------------------------- pre-trade


def refused(rules_: RiskRules, intent: OrderIntent, snapshot: RiskState) -> list[tuple[Rule, object, object]]:
    return [(v.rule, v.limit, v.value) for v in rules_.order_violations(intent, snapshot)]


def test_position_limit_allows_exactly_the_limit_and_refuses_one_more() -> None:
    engine = rules(max_position_size=2, position_limits={"NQ": 1})
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state({MNQ: 1})) == []
    assert refused(engine, OrderIntent(MNQ, BUY, 2), state({MNQ: 1})) == [(Rule.POSITION_SIZE, 2, 3)]
    assert refused(engine, OrderIntent(MNQ, SELL, 1), state({MNQ: -2})) == [(Rule.POSITION_SIZE, 2, 3)]
    assert refused(engine, OrderIntent(NQ, BUY, 1), state()) == []
    assert refused(engine, OrderIntent(NQ, SELL, 2), state()) == [(Rule.POSITION_SIZE, 1, 2)]


def test_an_order_through_flat_counts_the_new_side() -> None:
    engine = rules(max_position_size=2)
    assert refused(engine, OrderIntent(MNQ, SELL, 4), state({MNQ: 2})) == []
    assert refused(engine, OrderIntent(MNQ, SELL, 5), state({MNQ: 2})) == [(Rule.POSITION_SIZE, 2, 3)]


def test_total_position_across_instruments() -> None:
    engine = rules(max_total_position_size=3)
    assert refused(engine, OrderIntent(ES, SELL, 1), state({MNQ: 2})) == []
    assert refused(engine, OrderIntent(ES, SELL, 2), state({MNQ: 2})) == [(Rule.TOTAL_POSITION_SIZE, 3, 4)]
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state({MNQ: 2, ES: -1})) == [(Rule.TOTAL_POSITION_SIZE, 3, 4)]


def test_open_orders_limit_counts_the_new_order() -> None:
    engine = rules(max_open_orders=3)
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state(open_orders=2)) == []
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state(open_orders=3)) == [(Rule.OPEN_ORDERS, 3, 4)]


@pytest.mark.parametrize(("pnl", "blocked"), [(-999.99, False), (-1000.0, True), (-(1000 - 1e-9), True),
                                              (-1500.0, True), (250.0, False)])
def test_daily_loss_is_reached_at_the_limit(pnl: float, blocked: bool) -> None:
    found = refused(rules(max_daily_loss=1000), OrderIntent(MNQ, BUY, 1), state(daily_pnl=pnl))
    assert found == ([(Rule.DAILY_LOSS, 1000, round(-pnl, 2))] if blocked else [])


def test_lockout_blocks_new_exposure_until_the_exchange_time_passes_it() -> None:
    until = datetime(2026, 3, 3, 20, tzinfo=UTC)
    engine = rules()
    before, at = until - timedelta(microseconds=1), until
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state(now=before, lockout_until=until)) == [
        (Rule.LOCKOUT, until, before)]
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state(now=at, lockout_until=until)) == []
    assert refused(engine, OrderIntent(MNQ, SELL, 1), state({MNQ: 2}, now=before, lockout_until=until)) == []
    with pytest.raises(InputError, match="lockout_until"):
        state(lockout_until=datetime(2026, 3, 3, 20))


def test_trading_hours_refuse_new_exposure_outside_the_windows() -> None:
    engine = rules(trading_hours=["cme_rth"])
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state(now=ny(2026, 3, 3, 15, 59))) == []
    assert refused(engine, OrderIntent(MNQ, BUY, 1), state(now=ny(2026, 3, 3, 16, 0))) == [
        (Rule.TRADING_HOURS, "mon,tue,wed,thu,fri 09:30-16:00", "tue 16:00")]


def test_reducing_is_always_allowed_but_reversing_is_not() -> None:
    engine = rules(max_daily_loss=500, max_position_size=1, max_open_orders=0, trading_hours=["cme_rth"])
    late = state({MNQ: -3}, now=ny(2026, 3, 7, 3, 0), daily_pnl=-800, open_orders=5,
                 lockout_until=NOON + timedelta(days=7))
    assert engine.order_violations(OrderIntent(MNQ, BUY, 1), late) == ()
    assert engine.order_violations(OrderIntent(MNQ, BUY, 3), late) == ()
    assert {v.rule for v in engine.order_violations(OrderIntent(MNQ, BUY, 4), late)} == {
        Rule.LOCKOUT, Rule.DAILY_LOSS, Rule.TRADING_HOURS, Rule.OPEN_ORDERS}


def test_a_disabled_config_allows_everything() -> None:
    engine = rules(enabled=False, max_daily_loss=1, max_position_size=0)
    assert engine.order_violations(OrderIntent(MNQ, BUY, 9), state(daily_pnl=-99)) == ()
    assert engine.breaches(state({MNQ: 9}, daily_pnl=-99)) == ()


def test_check_order_raises_with_rule_limit_value_and_every_violation() -> None:
    engine = rules(max_position_size=2, max_open_orders=1)
    with pytest.raises(RiskViolationError) as caught:
        engine.check_order(OrderIntent(MNQ, BUY, 3), state(open_orders=1))
    error = caught.value
    assert isinstance(error, InputError)
    assert (error.rule, error.limit, error.value) == (Rule.POSITION_SIZE, 2, 3)
    assert [v.rule for v in error.violations] == [Rule.POSITION_SIZE, Rule.OPEN_ORDERS]
    assert str(error) == (f"order refused (BUY 3 {MNQ}): position of 3 contracts in {MNQ} exceeds the limit 2; "
                          "2 working orders exceed the limit 1")
    engine.check_order(OrderIntent(MNQ, BUY, 2), state())


def test_intents_and_snapshots_validate_their_input() -> None:
    contract = Contract(MNQ, "MNQH6", "Micro Nasdaq", 0.25, 0.5, True)
    request = build_order_request(contract, 7, "sell", 2, OrderType.LIMIT, limit_price=21000.25)
    assert OrderIntent.from_request(request) == OrderIntent(MNQ, SELL, 2)
    for bad in ({"size": 0}, {"size": True}, {"side": 1}, {"contract_id": ""}):
        with pytest.raises(InputError):
            OrderIntent(**{"contract_id": MNQ, "side": BUY, "size": 1, **bad})
    with pytest.raises(InputError, match="timezone-aware"):
        RiskState(now=datetime(2026, 3, 3, 12))


def test_signed_positions_from_gateway_positions() -> None:
    opened = datetime(2026, 3, 3, tzinfo=UTC)
    positions = [Position(1, 7, MNQ, opened, PositionType.LONG, 2, 21000.0),
                 Position(2, 7, ES, opened, PositionType.SHORT, 3, 6000.0),
                 Position(3, 7, NQ, opened, PositionType.LONG, 0, 0.0)]
    assert signed_positions(positions) == {MNQ: 2, ES: -3}


# ---------------------------------------------------------------------------------------------- post-trade


def test_breaches_name_the_rule_and_the_cure() -> None:
    engine = rules(max_daily_loss=1000, max_position_size=2, max_total_position_size=3, max_open_orders=2)
    assert engine.breaches(state({MNQ: 2, ES: -1}, daily_pnl=-999.99, open_orders=2)) == ()
    found = engine.breaches(state({MNQ: 3, ES: -2}, daily_pnl=-1000, open_orders=4))
    assert found == (Violation(Rule.DAILY_LOSS, 1000, 1000, Action.FLATTEN),
                     Violation(Rule.POSITION_SIZE, 2, 3, Action.REDUCE, MNQ),
                     Violation(Rule.TOTAL_POSITION_SIZE, 3, 5, Action.REDUCE),
                     Violation(Rule.OPEN_ORDERS, 2, 4, Action.CANCEL_ORDERS))
    assert [v.excess for v in found] == [0, 1, 2, 2]


def test_holding_a_position_outside_trading_hours_is_a_breach() -> None:
    engine = rules(trading_hours=["cme_globex"])
    in_break = ny(2026, 3, 4, 17, 30)
    assert engine.breaches(state(now=in_break)) == ()
    assert engine.breaches(state({MNQ: 1}, now=ny(2026, 3, 4, 16, 59))) == ()
    assert [(v.rule, v.action) for v in engine.breaches(state({MNQ: 1}, now=in_break))] == [
        (Rule.TRADING_HOURS, Action.FLATTEN)]


def test_lockout_length() -> None:
    engine = rules(max_daily_loss=1000, max_position_size=1, lockout_minutes=30)
    loss = Violation(Rule.DAILY_LOSS, 1000, 1200, Action.FLATTEN)
    size = Violation(Rule.POSITION_SIZE, 1, 2, Action.REDUCE, MNQ)
    assert engine.lockout_until(loss, ny(2026, 3, 3, 15, 0)) == datetime(2026, 3, 3, 23, tzinfo=UTC)  # day's end
    assert engine.lockout_until(loss, ny(2026, 3, 3, 17, 45)) == datetime(2026, 3, 3, 23, 15, tzinfo=UTC)
    assert engine.lockout_until(loss, ny(2026, 3, 9, 15, 0)) == datetime(2026, 3, 9, 22, tzinfo=UTC)  # EDT
    assert engine.lockout_until(size, ny(2026, 3, 3, 15, 0)) == datetime(2026, 3, 3, 20, 30, tzinfo=UTC)
    assert engine.lockout_until(dataclasses.replace(size, action=Action.REFUSE), NOON) is None
    no_cool_down = rules(lockout_minutes=0)
    assert no_cool_down.lockout_until(size, NOON) is None
    assert no_cool_down.lockout_until(loss, ny(2026, 3, 3, 15, 0)) == datetime(2026, 3, 3, 23, tzinfo=UTC)
