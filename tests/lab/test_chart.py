"""lab.chart on the simulator, at the message level: what the page is sent and when, and what closing undoes."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import talib

from pages import Page, columns
from pxkit import lab
from pxkit.enums import OrderSide
from pxkit.errors import InputError
from pxkit.hours import trading_day
from pxkit.indicators import add_indicators, vwap
from pxkit.indicators import talib as talib_expr
from pxkit.lab.charting import _with_day
from suites import open_suite
from waiting import until


def expected(ctx, timeframe: str = "1min", bars: int = 500) -> pl.DataFrame:
    """What a chart with the default indicators should show, computed here from the suite's own bars."""
    frame = ctx.data.bars.frame(timeframe, include_forming=True)
    frame = frame.with_columns(pl.Series("day", [trading_day(t) for t in frame["timestamp"]]))
    return (add_indicators(frame, "sma_50", "ema_20", "bollinger", vwap(by="day")).tail(bars)
            .with_columns(pl.col("timestamp").dt.epoch("s").alias("time")).drop("timestamp", "day"))


def same(got: list[float], want: list[float | None], exact: bool = False) -> bool:
    """The page's values are exactly `want`'s rounded to float32 (`exact`: as they are, for times); None is NaN."""
    if exact:
        return got == want
    return len(got) == len(want) and all(
        (w is None and math.isnan(g)) or (w is not None and g == float(np.float32(w)))  # values go as float32
        for g, w in zip(got, want, strict=True))


def replay(page: Page) -> dict[float, dict[str, float]]:
    """The chart as a page holds it after the state and every delta sent so far (the newest `limit` bars), rows by
    bar time."""
    rows: dict[float, dict[str, float]] = {}
    limit = 0
    for content, buffers, _ in page.sent:
        if content["kind"] == "state":
            rows.clear()
            limit = content["limit"]
        cols = columns(content, buffers)
        for i, t in enumerate(cols.get("time", [])):
            rows[t] = {name: values[i] for name, values in cols.items()}
    return {t: rows[t] for t in sorted(rows)[-limit:]}


def handlers(ctx) -> tuple[int, int]:
    return ctx.event_bus.handler_count(), len(ctx.positions._fill_listeners)


async def test_the_state_is_the_suites_bars_with_volume_and_indicators(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(30 * 60)
        await until(lambda: len(mnq.data.bars["1min"]) >= 29, "half an hour of 1-minute bars")
        chart = lab.chart(mnq, "1min", bars=25)
        page = Page(chart)
        page.say({"kind": "hello"})
        [(state, buffers, _)] = page.sent
        want = expected(mnq, bars=25)
        cols = columns(state, buffers)
        assert state["rows"] == 25 and state["limit"] == 25 and state["seq"] == 0
        assert [s["name"] for s in state["series"]] == ["sma_50", "ema_20", "bb_upper", "bb_middle", "bb_lower", "vwap"]
        for name in want.columns:
            assert same(cols[name], want[name].to_list(), exact=name == "time"), name
        assert not math.isnan(cols["sma_50"][0])  # indicators are computed on all the bars, not the 25 shown
        assert state["markers"] == [] and state["avg_price"] is None
        assert chart.time_zone == "America/New_York"  # the page reads bar times in the trading day's zone
        chart.close()


async def test_the_forming_bar_carries_talibs_values_over_the_closed_bars_and_itself(sim) -> None:
    """The open bar is updated in place: each time it changes, its indicator values (named ones and a TA-Lib
    expression) are TA-Lib's over every bar kept and the forming one, to 1e-9."""
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(30 * 60 + 15)
        await until(lambda: mnq.data.bars["1min"].forming is not None, "a forming bar")
        chart = lab.chart(mnq, "1min", indicators=["sma_50", "ema_20", "bollinger", "rsi", "macd", "atr_5",
                                                   "stochastic", "adx", "obv", talib_expr("kama", timeperiod=30)],
                          bars=25)
        seen = set()
        for _ in range(4):
            await sim.advance(10)
            await until(lambda: mnq.data.bars["1min"].forming is not None, "a forming bar")
            forming = mnq.data.bars["1min"].forming
            bars = mnq.data.bars.frame("1min", include_forming=True)
            h, lo, c, v = (bars[n].cast(pl.Float64).to_numpy() for n in ("high", "low", "close", "volume"))
            want = {"kama": talib.KAMA(c, 30), "sma_50": talib.SMA(c, 50), "ema_20": talib.EMA(c, 20),
                    "rsi_14": talib.RSI(c, 14),
                    "atr_5": talib.ATR(h, lo, c, 5), "adx": talib.ADX(h, lo, c, 14), "obv": talib.OBV(c, v),
                    "plus_di": talib.PLUS_DI(h, lo, c, 14), "minus_di": talib.MINUS_DI(h, lo, c, 14),
                    **dict(zip(("bb_upper", "bb_middle", "bb_lower"), talib.BBANDS(c, 20, 2.0, 2.0), strict=True)),
                    **dict(zip(("macd", "macd_signal", "macd_hist"), talib.MACD(c), strict=True)),
                    **dict(zip(("stoch_k", "stoch_d"), talib.STOCHF(h, lo, c, 14, 3), strict=True))}
            last = chart.frame().row(-1, named=True)
            assert (last["timestamp"], last["close"], last["volume"]) == (forming.timestamp, forming.close,
                                                                         forming.volume)
            assert set(want) == set(chart.lines)
            for name, values in want.items():
                assert last[name] == pytest.approx(values[-1], rel=1e-9), name
            seen.add((forming.timestamp, forming.close))
        assert len(seen) >= 3  # the open bar did change between the checks
        chart.close()


async def test_talib_lines_on_the_prices_scale_go_over_the_candles_and_oscillators_below(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        chart = lab.chart(suite["MNQ"], "1min", indicators=[
            "sma_20", "rsi", talib_expr("kama"), talib_expr("cci"), talib_expr("cdlengulfing"), talib_expr("bbands")])
        page = Page(chart)
        page.say({"kind": "hello"})
        [(state, _, _)] = page.sent
        assert {s["name"]: s["pane"] for s in state["series"]} == {
            "sma_20": 0, "rsi_14": 1, "kama": 0, "cci": 1, "cdlengulfing": 1,
            "bbands_upperband": 0, "bbands_middleband": 0, "bbands_lowerband": 0}
        chart.close()


async def test_deltas_are_coalesced_to_ten_a_second_and_the_last_carries_the_final_state(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(5 * 60)
        chart = lab.chart(mnq, "1min")
        page = Page(chart)
        page.say({"kind": "hello"})
        started = time.monotonic()
        for _ in range(120):  # two minutes of market, as fast as the simulator pushes it
            await sim.advance(1)
        await until(lambda: mnq.data.bars["1min"].forming is not None and
                    replay(page).get(mnq.data.bars["1min"].forming.timestamp.timestamp(), {}).get("close")
                    == mnq.data.bars["1min"].forming.close, "the forming bar's close on the page")
        await until(lambda: not chart._throttle.pending, "the last delta")
        elapsed = time.monotonic() - started
        deltas = page.of_kind("delta")
        assert 2 <= chart.updates_sent == len(deltas) <= elapsed / 0.1 + 2
        assert [d[0]["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
        assert all(d[0]["rows"] <= 3 for d in deltas)  # only the bars that changed: the forming one, one just closed
        shown = replay(page)
        want = expected(mnq)
        assert sorted(shown) == want["time"].to_list()
        for name in want.columns:
            assert same([shown[t][name] for t in sorted(shown)], want[name].to_list(), exact=name == "time"), name
        chart.close()


async def test_nothing_is_sent_before_a_view_says_hello_and_a_late_view_gets_everything(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        chart = lab.chart(mnq, "15sec")
        first = Page(chart)
        await sim.advance(90)
        await until(lambda: len(mnq.data.bars["15sec"]) >= 5, "closed 15-second bars")
        assert first.sent == [] and chart.updates_sent == 0
        first.say({"kind": "hello"})
        await sim.advance(60)
        await until(lambda: chart.updates_sent >= 2 and not chart._throttle.pending, "deltas to the first view")
        late = Page(chart)
        late.say({"kind": "hello"})
        [(state, buffers, _)] = late.sent
        assert state["seq"] == chart.updates_sent  # the late view knows which deltas it already has
        want = expected(mnq, "15sec")
        cols = columns(state, buffers)
        assert cols["time"] == want["time"].to_list() and same(cols["close"], want["close"].to_list())
        chart.close()


async def test_two_charts_keep_their_own_state_and_closing_one_leaves_the_other_live(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        mnq_chart, es_chart = lab.chart(suite["MNQ"], "1min", ["sma_5"]), lab.chart(suite["ES"], "1min", ["ema_9"])
        mnq_page, es_page = Page(mnq_chart), Page(es_chart)
        mnq_page.say({"kind": "hello"})
        es_page.say({"kind": "hello"})
        assert mnq_chart._uid != es_chart._uid
        assert mnq_page.sent[0][0]["columns"][6:] == ["sma_5"] and es_page.sent[0][0]["columns"][6:] == ["ema_9"]
        mnq_chart.close()
        await sim.advance(60)
        await until(lambda: es_chart.updates_sent >= 1 and not es_chart._throttle.pending, "deltas to the ES chart")
        assert len(mnq_page.sent) == 1 and mnq_chart.updates_sent == 0
        es_rows = replay(es_page)
        assert es_rows[max(es_rows)]["close"] == suite["ES"].data.bars["1min"].bars(1, include_forming=True)[-1].close
        es_chart.close()


async def test_a_hundred_charts_opened_and_closed_leave_no_handler_behind(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        before = handlers(mnq)
        for _ in range(100):
            chart = lab.chart(mnq, "1min")
            Page(chart).say({"kind": "hello"})
            assert handlers(mnq) > before
            chart.close()
        assert handlers(mnq) == before
        await sim.advance(30)  # bars keep coming; nothing closed reacts
        assert chart.updates_sent == 0 and not chart._throttle.pending


async def test_a_fill_is_marked_and_the_average_price_line_follows_the_position(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(120)
        chart = lab.chart(mnq, "1min")
        page = Page(chart)
        page.say({"kind": "hello"})
        await mnq.orders.place_market_order(OrderSide.BUY, 2)
        await until(lambda: mnq.positions.average_price is not None and mnq.positions.trades, "the buy filled")
        fill = mnq.positions.trades[-1]
        await until(lambda: any(m.get("id") == fill.id for d in page.of_kind("delta") for m in d[0]["markers"]),
                    "the fill's marker on the page")
        marker = next(m for d in page.of_kind("delta") for m in d[0]["markers"] if m.get("id") == fill.id)
        bar_start = mnq.data.bars["1min"].bucket(int(fill.creation_timestamp.timestamp() * 1e6))[0] // 1_000_000
        assert marker == {"id": fill.id, "time": bar_start, "side": "buy", "size": 2, "price": fill.price}
        assert page.of_kind("delta")[-1][0]["avg_price"] == mnq.positions.average_price
        await mnq.positions.close_position()
        await until(lambda: page.of_kind("delta")[-1][0]["avg_price"] is None, "the average line removed when flat")
        late = Page(chart)
        late.say({"kind": "hello"})
        assert {m["side"] for m in late.sent[0][0]["markers"]} == {"buy", "sell"}
        chart.close()


async def test_bad_arguments_are_refused_before_anything_is_shown(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        before = handlers(mnq)
        for kwargs in ({"bars": 0}, {"bars": True}, {"timeframe": "7min"}, {"indicators": ["nonsense"]},
                       {"time_zone": "Mars/Olympus"}, {"time_zone": ""}, {"time_zone": None}):
            with pytest.raises(InputError):
                lab.chart(mnq, **kwargs)
        assert handlers(mnq) == before


async def test_a_closed_chart_answers_nothing_and_sends_nothing(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        chart = lab.chart(suite["MNQ"], "1min")
        page = Page(chart)
        page.say({"kind": "hello"})
        chart.close()
        page.say({"kind": "hello"})
        await sim.advance(90)
        await until(lambda: suite["MNQ"].data.bars["1min"].forming is not None, "trades after the close")
        assert [m[0]["kind"] for m in page.sent] == ["state"]


def test_the_vwap_day_is_the_trading_day() -> None:
    stamps = [datetime(2026, 3, 6, tzinfo=UTC) + timedelta(minutes=17 * i) for i in range(1500)]  # DST on 03-08
    days = _with_day(pl.DataFrame({"timestamp": stamps}))["day"].to_list()
    assert days == [trading_day(t) for t in stamps]
