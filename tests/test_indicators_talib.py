"""pxkit's indicators and `talib(...)` against TA-Lib's own calls on the simulator's seeded history bars."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
import talib as ta
from polars.testing import assert_frame_equal
from talib import abstract

from conftest import MNQ
from pxkit import indicators as ind
from pxkit.client.bars import BAR_SCHEMA
from pxkit.enums import BarUnit
from pxkit.errors import InputError
from pxkit.hours import trading_day
from pxkit.sim.clock import DEFAULT_START
from pxkit.sim.market import Market
from pxkit.times import to_us

REL = 1e-9


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    """Four trading days of the simulator's one-minute MNQ bars (seed 1), with their trading day."""
    end = DEFAULT_START - timedelta(hours=1)
    rows = Market(1, DEFAULT_START).bars(MNQ, to_us(end - timedelta(days=5)), to_us(end), to_us(end),
                                         BarUnit.MINUTE, 1, include_partial=False)
    frame = pl.DataFrame([(b.timestamp, b.open, b.high, b.low, b.close, b.volume) for b in rows],
                         schema=BAR_SCHEMA, orient="row")
    return frame.with_columns(pl.Series("day", [trading_day(t) for t in frame["timestamp"]]))


def arrays(frame: pl.DataFrame, *names: str) -> list[np.ndarray]:
    return [frame[n].cast(pl.Float64).to_numpy() for n in names]


def agrees(got: pl.Series, want: np.ndarray, lookback: int) -> None:
    """`got` is TA-Lib's `want` to 1e-9 relative: null exactly over the lookback and where TA-Lib says NaN."""
    want = want.astype(np.float64)
    assert got.len() == len(want)
    assert got.is_null().to_list() == [i < lookback or bool(np.isnan(w)) for i, w in enumerate(want)], got.name
    assert got.is_nan().not_().all()
    assert got.drop_nulls().to_list() == pytest.approx(want[~got.is_null().to_numpy()].tolist(), rel=REL, abs=1e-12)


def test_the_bars_are_days_of_a_real_looking_market(bars) -> None:
    assert bars.height > 3000 and bars["day"].n_unique() >= 3
    assert (bars["high"] >= bars["close"]).all() and (bars["low"] <= bars["open"]).all()
    assert bars["close"].n_unique() > 100


# --- pxkit's named indicators are TA-Lib's functions ----------------------------------------------------------

def test_each_named_indicator_is_talibs_function(bars) -> None:
    h, lo, c, v = arrays(bars, "high", "low", "close", "volume")
    for n in (2, 14, 50):
        out = bars.with_columns(ind.sma(n=n), ind.ema(n=n), ind.rsi(n=n), ind.atr(n), *ind.adx(n))
        agrees(out[f"sma_{n}"], ta.SMA(c, n), n - 1)
        agrees(out[f"ema_{n}"], ta.EMA(c, n), n - 1)
        agrees(out[f"rsi_{n}"], ta.RSI(c, n), n)
        agrees(out[f"atr_{n}"], ta.ATR(h, lo, c, n), n)
        agrees(out["plus_di"], ta.PLUS_DI(h, lo, c, n), n)
        agrees(out["minus_di"], ta.MINUS_DI(h, lo, c, n), n)
        agrees(out["adx"], ta.ADX(h, lo, c, n), 2 * n - 1)
    out = bars.with_columns(ind.macd(fast=5, slow=13, signal=4), ind.bollinger(n=10, k=1.5), ind.stochastic(9, 4),
                            ind.obv())
    for name, want in zip(("macd", "macd_signal", "macd_hist"), ta.MACD(c, 5, 13, 4), strict=True):
        agrees(out[name], want, 13 + 4 - 2)
    for name, want in zip(("bb_upper", "bb_middle", "bb_lower"), ta.BBANDS(c, 10, 1.5, 1.5, 0), strict=True):
        agrees(out[name], want, 9)
    for name, want in zip(("stoch_k", "stoch_d"), ta.STOCHF(h, lo, c, 9, 4, 0), strict=True):
        agrees(out[name], want, 9 + 4 - 2)
    agrees(out["obv"], ta.OBV(c, v), 0)


def test_the_session_vwap_is_talibs_vwap_of_each_trading_day(bars) -> None:
    out = bars.with_columns(ind.vwap(), ind.vwap(by="day", name="session"))
    agrees(out["vwap"], ta.VWAP(*arrays(bars, "high", "low", "close", "volume")), 0)
    for (day,), part in out.partition_by("day", as_dict=True, maintain_order=True).items():
        agrees(part["session"], ta.VWAP(*arrays(part, "high", "low", "close", "volume")), 0)
        assert part["session"][0] == pytest.approx((part["high"][0] + part["low"][0] + part["close"][0]) / 3), day


def test_vwap_is_null_until_there_is_volume_where_talib_says_0() -> None:
    frame = pl.DataFrame({"high": [11.0, 12.0, 14.0], "low": [9.0, 10.0, 12.0], "close": [10.0, 11.0, 13.0],
                          "volume": [0, 100, 300]})
    assert ta.VWAP(*arrays(frame, "high", "low", "close", "volume"))[0] == 0
    assert frame.with_columns(ind.vwap())["vwap"].to_list() == [None, 11.0, 12.5]


# --- the TA-Lib set through talib(...) ------------------------------------------------------------------------

SAMPLE = {  # function -> (parameters, TA-Lib's call on the bar arrays)
    # overlap studies
    "SMA": ({"timeperiod": 30}, lambda o, h, lo, c, v: ta.SMA(c, 30)),
    "EMA": ({"timeperiod": 10}, lambda o, h, lo, c, v: ta.EMA(c, 10)),
    "WMA": ({}, lambda o, h, lo, c, v: ta.WMA(c)),
    "DEMA": ({"timeperiod": 12}, lambda o, h, lo, c, v: ta.DEMA(c, 12)),
    "TEMA": ({}, lambda o, h, lo, c, v: ta.TEMA(c)),
    "KAMA": ({}, lambda o, h, lo, c, v: ta.KAMA(c)),
    "BBANDS": ({"timeperiod": 15, "nbdevup": 2.5, "matype": 1}, lambda o, h, lo, c, v: ta.BBANDS(c, 15, 2.5, 2, 1)),
    "SAR": ({"acceleration": 0.03}, lambda o, h, lo, c, v: ta.SAR(h, lo, 0.03)),
    "MA": ({"timeperiod": 9, "matype": 2}, lambda o, h, lo, c, v: ta.MA(c, 9, 2)),
    # momentum indicators
    "RSI": ({"timeperiod": 7}, lambda o, h, lo, c, v: ta.RSI(c, 7)),
    "MACD": ({}, lambda o, h, lo, c, v: ta.MACD(c)),
    "STOCH": ({"fastk_period": 8}, lambda o, h, lo, c, v: ta.STOCH(h, lo, c, 8)),
    "CCI": ({}, lambda o, h, lo, c, v: ta.CCI(h, lo, c)),
    "WILLR": ({}, lambda o, h, lo, c, v: ta.WILLR(h, lo, c)),
    "MOM": ({"timeperiod": 5}, lambda o, h, lo, c, v: ta.MOM(c, 5)),
    "ROC": ({}, lambda o, h, lo, c, v: ta.ROC(c)),
    "AROON": ({}, lambda o, h, lo, c, v: ta.AROON(h, lo)),
    "MFI": ({}, lambda o, h, lo, c, v: ta.MFI(h, lo, c, v)),
    "ULTOSC": ({}, lambda o, h, lo, c, v: ta.ULTOSC(h, lo, c)),
    # volume indicators
    "OBV": ({}, lambda o, h, lo, c, v: ta.OBV(c, v)),
    "AD": ({}, lambda o, h, lo, c, v: ta.AD(h, lo, c, v)),
    "ADOSC": ({"fastperiod": 2}, lambda o, h, lo, c, v: ta.ADOSC(h, lo, c, v, 2)),
    # volatility indicators
    "ATR": ({}, lambda o, h, lo, c, v: ta.ATR(h, lo, c)),
    "NATR": ({"timeperiod": 20}, lambda o, h, lo, c, v: ta.NATR(h, lo, c, 20)),
    "TRANGE": ({}, lambda o, h, lo, c, v: ta.TRANGE(h, lo, c)),
    # pattern recognition
    "CDLDOJI": ({}, lambda o, h, lo, c, v: ta.CDLDOJI(o, h, lo, c)),
    "CDLENGULFING": ({}, lambda o, h, lo, c, v: ta.CDLENGULFING(o, h, lo, c)),
    "CDLHAMMER": ({}, lambda o, h, lo, c, v: ta.CDLHAMMER(o, h, lo, c)),
    "CDLMORNINGSTAR": ({"penetration": 0.2}, lambda o, h, lo, c, v: ta.CDLMORNINGSTAR(o, h, lo, c, 0.2)),
    "CDL3WHITESOLDIERS": ({}, lambda o, h, lo, c, v: ta.CDL3WHITESOLDIERS(o, h, lo, c)),
}


def test_a_sample_over_the_groups_is_reachable_and_aligned_with_the_bars(bars) -> None:
    listed = ind.functions()
    groups = dict(zip(listed["name"], listed["group"], strict=True))
    assert {groups[name] for name in SAMPLE} == {"Overlap Studies", "Momentum Indicators", "Volume Indicators",
                                                 "Volatility Indicators", "Pattern Recognition"}
    ohlcv = arrays(bars, "open", "high", "low", "close", "volume")
    patterns = 0
    for name, (params, call) in SAMPLE.items():
        expr = ind.talib(name, **params)
        out = bars.with_columns(expr).drop(bars.columns)
        want = call(*ohlcv)
        want = want if isinstance(want, tuple) else (want,)
        assert out.columns == listed.filter(pl.col("name") == name)["outputs"][0].to_list(), name
        lookback = abstract.Function(name, **params).lookback
        assert 0 <= lookback < bars.height
        for column, values in zip(out.columns, want, strict=True):
            if values.dtype.kind == "i":  # candlestick patterns: -100, 0, 100 per bar, null over the lookback
                assert out[column].dtype == pl.Int32
                assert out[column].null_count() == lookback
                assert out[column].drop_nulls().to_list() == values[lookback:].tolist()
                patterns += int((values != 0).any())
            else:
                agrees(out[column], values, lookback)
    assert patterns >= 3  # the patterns tested do occur on these bars


def test_functions_lists_every_talib_function_with_its_group_inputs_parameters_and_outputs() -> None:
    listed = ind.functions()
    assert listed.height == len(ta.get_functions()) > 150
    assert set(listed["group"]) == set(ta.get_function_groups())
    rows = {r["name"]: r for r in listed.iter_rows(named=True)}
    assert rows["RSI"]["inputs"] == ["close"] and rows["RSI"]["parameters"] == ["timeperiod=14"]
    assert rows["RSI"]["outputs"] == ["rsi"]
    assert rows["MACD"]["outputs"] == ["macd_macd", "macd_macdsignal", "macd_macdhist"]
    assert rows["CDLENGULFING"]["inputs"] == ["open", "high", "low", "close"]
    assert rows["MFI"]["inputs"] == ["high", "low", "close", "volume"]
    assert rows["BBANDS"]["group"] == "Overlap Studies" and "nbdevup=2.0" in rows["BBANDS"]["parameters"]


def test_on_price_scale_tells_averages_and_bands_from_oscillators() -> None:
    assert [ind.on_price_scale(c) for c in ("kama", "bbands_upperband", "sar", "vwap")] == [True] * 4
    assert [ind.on_price_scale(c) for c in ("cci", "macd_macd", "obv", "cdldoji", "aroon_aroonup")] == [False] * 5
    assert ind.on_price_scale("sma_50") is None  # pxkit's names are not TA-Lib's default ones


def test_other_inputs_names_case_laziness_and_groups(bars) -> None:
    c, v, o = arrays(bars, "close", "volume", "open")
    out = bars.with_columns(ind.talib("sma", "volume", timeperiod=5, names="volume_sma"),
                            ind.talib("BETA", "close", pl.col("open") * 2, timeperiod=10),
                            ind.talib("BBANDS", names=("up", "mid", "lower")))
    agrees(out["volume_sma"], ta.SMA(v, 5), 4)
    agrees(out["beta"], ta.BETA(c, o * 2, 10), 10)
    assert out.columns[-3:] == ["up", "mid", "lower"]
    specs = [ind.talib("MACD", fastperiod=3), ind.talib("CDLDOJI"), ind.rsi(), ind.bollinger()]
    assert_frame_equal(bars.lazy().with_columns(specs).collect(), bars.with_columns(specs))
    per_day = bars.with_columns(ind.talib("EMA", timeperiod=20).over("day"), ind.macd().over("day"))
    for (_day,), part in per_day.partition_by("day", as_dict=True, maintain_order=True).items():
        agrees(part["ema"], ta.EMA(part["close"].to_numpy(), 20), 19)
        agrees(part["macd_signal"], ta.MACD(part["close"].to_numpy())[1], 33)  # several outputs, per group too


def test_rows_before_every_input_is_present_count_as_warm_up() -> None:
    close = [None, None, 1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0] + [3.0 + i % 2 for i in range(12)]
    frame = pl.DataFrame({"open": close, "high": close, "low": close, "close": close})
    out = frame.with_columns(ind.talib("SMA", timeperiod=3), ind.talib("CDLDOJI"))
    assert out["sma"].to_list()[:9] == [None, None, None, None, 2.0, 3.0, 4.0, 13 / 3, 4.0]
    assert out["cdldoji"].null_count() == 2 + abstract.Function("CDLDOJI").lookback  # never a made-up 0


BAD = [
    (("NOPE",), {}), ((14,), {}), (("",), {}),
    (("RSI",), {"period": 14}),  # not a parameter of RSI
    (("RSI",), {"timeperiod": 0}), (("RSI",), {"timeperiod": 100_001}), (("RSI",), {"timeperiod": 2.5}),
    (("RSI",), {"timeperiod": True}), (("RSI",), {"timeperiod": "14"}), (("MA",), {"matype": 99}),
    (("BBANDS",), {"nbdevup": float("nan")}), (("BBANDS",), {"names": ("a", "b")}), (("RSI",), {"names": 3}),
    (("MACD",), {"names": ("a", "a", "b")}), (("SMA", "close", "open"), {}), (("SMA", 3), {}),
    (("RSI",), {"timeperiod": 2**31}),  # beyond C's int
]


@pytest.mark.parametrize(("args", "kwargs"), BAD, ids=repr)
def test_unknown_functions_and_bad_parameters_raise_input_error_when_the_expression_is_built(args, kwargs) -> None:
    with pytest.raises(InputError):
        ind.talib(*args, **kwargs)


@pytest.mark.parametrize("call", [lambda: ind.sma(n=0), lambda: ind.rsi(n=1), lambda: ind.macd(fast=26, slow=12),
                                  lambda: ind.bollinger(k=-1), lambda: ind.adx(0), lambda: ind.stochastic(d=2.0),
                                  lambda: ind.add_indicators(pl.DataFrame(), "rsi_1")])
def test_the_named_indicators_check_their_periods_the_same_way(call) -> None:
    with pytest.raises(InputError):
        call()


def test_talib_is_imported_on_first_use_only() -> None:
    script = ("import sys, pxkit, pxkit.indicators, pxkit.lab.charting\n"
              "assert 'talib' not in sys.modules\n"
              "pxkit.indicators.rsi()\n"
              "assert 'talib' in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=60)
