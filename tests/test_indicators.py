"""pxkit's named indicators against hand-computed values and plain-Python textbook references (no polars in the
references); tests/test_indicators_talib.py checks them against TA-Lib's own calls."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pxkit import indicators as ind
from pxkit.errors import InputError

CLOSE = [44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28, 46.28,
         46.00, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78, 45.35, 44.03, 44.18, 44.22, 44.57]
HIGH = [c + 0.25 + 0.1 * (i % 4) for i, c in enumerate(CLOSE)]
LOW = [c - 0.30 - 0.05 * (i % 3) for i, c in enumerate(CLOSE)]
VOLUME = [1200, 900, 0, 1500, 800, 2200, 1300, 700, 1100, 950, 1600, 400, 1000, 1800, 600,
          1250, 1400, 500, 900, 2100, 1150, 300, 1700, 850, 1000, 1900, 2500, 650, 750, 1050]
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def bars(close=CLOSE, high=None, low=None, volume=None) -> pl.DataFrame:
    n = len(close)
    return pl.DataFrame(
        {"timestamp": [T0 + timedelta(hours=6 * i) for i in range(n)], "open": [close[0], *close[:-1]],
         "high": high or HIGH[:n], "low": low or LOW[:n], "close": close, "volume": volume or VOLUME[:n]},
        schema={"timestamp": pl.Datetime("us", "UTC"), "open": pl.Float64, "high": pl.Float64,
                "low": pl.Float64, "close": pl.Float64, "volume": pl.Int64})


def column(df: pl.DataFrame, expr) -> list:
    out = df.with_columns(expr)
    return out[expr.meta.output_name()].to_list()


def same(actual: list, expected: list) -> None:
    """Nulls in exactly the same rows (None, never NaN), values approximately equal."""
    assert len(actual) == len(expected)
    assert [a is None for a in actual] == [e is None for e in expected], (actual, expected)
    assert all(a is None or not math.isnan(a) for a in actual)
    assert [a for a in actual if a is not None] == pytest.approx([e for e in expected if e is not None], abs=1e-9)


# --- plain-Python references from the textbook definitions -------------------------------------------------

def ref_sma(xs, n):
    return [None if i < n - 1 else sum(xs[i - n + 1:i + 1]) / n for i in range(len(xs))]


def ref_ema(xs, n):
    """EMA seeded at row n-1 with the mean of the first n values, alpha 2/(n+1); None before."""
    a, out, e = 2 / (n + 1), [], None
    for i, x in enumerate(xs):
        if i == n - 1:
            e = sum(xs[:n]) / n
        elif i >= n:
            e = a * x + (1 - a) * e
        out.append(e)
    return out


def ref_wilder(xs, n, first):
    """Wilder's running average: mean of the first n values, then (prev * (n-1) + x) / n."""
    out, avg = [], None
    for i, x in enumerate(xs):
        if i == first + n - 1:
            avg = sum(xs[first:first + n]) / n
        elif i >= first + n:
            avg = (avg * (n - 1) + x) / n
        out.append(avg)
    return out


def ref_rsi(close, n):
    out = [None] * len(close)
    gains = [max(close[i] - close[i - 1], 0) for i in range(1, len(close))]
    losses = [max(close[i - 1] - close[i], 0) for i in range(1, len(close))]
    for i, (g, lo) in enumerate(zip(ref_wilder(gains, n, 0), ref_wilder(losses, n, 0), strict=True)):
        if g is not None:
            out[i + 1] = 50.0 if g + lo == 0 else 100.0 if lo == 0 else 100 - 100 / (1 + g / lo)
    return out


def ref_true_range(high, low, close):
    return [None] + [max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
                     for i in range(1, len(close))]


# --- single-output moving averages --------------------------------------------------------------------------

def test_sma_by_hand_and_reference() -> None:
    df = bars([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    same(column(df, ind.sma("close", 3)), [None, None, 2.0, 3.0, 4.0, 5.0])
    same(column(bars(), ind.sma(n=5)), ref_sma(CLOSE, 5))
    assert ind.sma().meta.output_name() == "sma_20"


def test_ema_by_hand_and_reference() -> None:
    # n=3 -> alpha 0.5, seeded at row 2 with (2 + 4 + 7) / 3 = 13/3, then 10/2 + 13/6 = 43/6, then 4/2 + 43/12
    same(column(bars([2.0, 4.0, 7.0, 10.0, 4.0]), ind.ema("close", 3)), [None, None, 13 / 3, 43 / 6, 67 / 12])
    same(column(bars(), ind.ema(n=10)), ref_ema(CLOSE, 10))
    assert ind.ema(n=12).meta.output_name() == "ema_12"


def test_ema_of_an_expression_with_a_custom_name() -> None:
    df = bars()
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    expected = ref_ema([(h + lo + c) / 3 for h, lo, c in zip(HIGH, LOW, CLOSE, strict=True)], 4)
    same(column(df, ind.ema(typical, 4, name="tp_ema")), expected)


# --- RSI ----------------------------------------------------------------------------------------------------

def test_rsi_by_hand() -> None:
    # changes +1, -1, +2, +1, -2; n=3: avg gain (1+0+2)/3 = 1, avg loss 1/3 -> RSI 75 at row 3,
    # then gain (1*2+1)/3 = 1, loss (1/3*2+0)/3 = 2/9 -> 100 - 100/(1+4.5);
    # then gain 2/3, loss (2/9*2+2)/3 = 22/27 -> 100 - 100/(1 + 18/22)
    df = bars([10.0, 11.0, 10.0, 12.0, 13.0, 11.0])
    same(column(df, ind.rsi(n=3)), [None, None, None, 75.0, 100 - 100 / 5.5, 100 - 100 / (1 + 18 / 22)])


def test_rsi_matches_the_wilder_reference() -> None:
    for n in (2, 5, 14):
        same(column(bars(), ind.rsi(n=n)), ref_rsi(CLOSE, n))
    assert ind.rsi().meta.output_name() == "rsi_14"


def test_rsi_of_monotonic_and_flat_series() -> None:
    rising, falling, flat = [float(i) for i in range(20)], [float(20 - i) for i in range(20)], [5.0] * 20
    same(column(bars(rising), ind.rsi(n=14)), [None] * 14 + [100.0] * 6)
    same(column(bars(falling), ind.rsi(n=14)), [None] * 14 + [0.0] * 6)
    same(column(bars(flat), ind.rsi(n=14)), [None] * 14 + [0.0] * 6)  # TA-Lib's value for no change at all


# --- MACD ---------------------------------------------------------------------------------------------------

def test_macd_defaults_and_names() -> None:
    df = bars()
    assert df.with_columns(ind.macd()).columns[-3:] == ["macd", "macd_signal", "macd_hist"]
    out = df.with_columns(ind.macd(names=("m", "s", "h")))
    assert out.columns[-3:] == ["m", "s", "h"]
    assert out["m"].null_count() == out["s"].null_count() == 30  # 30 rows < 26 + 9 - 2: all warm-up
    out = df.with_columns(ind.macd(fast=3, slow=6, signal=4))
    assert out["macd"].null_count() == out["macd_hist"].null_count() == 6 + 4 - 2
    with pytest.raises(InputError):
        ind.macd(fast=26, slow=12)
    with pytest.raises(InputError):
        ind.macd(names=("a", "b"))


# --- Bollinger ----------------------------------------------------------------------------------------------

def test_bollinger_matches_the_reference_with_population_std() -> None:
    n, k = 5, 2.5
    out = bars().with_columns(ind.bollinger(n=n, k=k))
    std = [None if i < n - 1 else statistics.pstdev(CLOSE[i - n + 1:i + 1]) for i in range(len(CLOSE))]
    mid = ref_sma(CLOSE, n)
    same(out["bb_middle"].to_list(), mid)
    same(out["bb_upper"].to_list(), [None if m is None else m + k * s for m, s in zip(mid, std, strict=True)])
    same(out["bb_lower"].to_list(), [None if m is None else m - k * s for m, s in zip(mid, std, strict=True)])


def test_bollinger_by_hand() -> None:
    # window [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, population std 2 (the sample std would be 2.138...)
    out = bars([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).with_columns(ind.bollinger(n=8, k=2))
    assert (out["bb_middle"][7], out["bb_upper"][7], out["bb_lower"][7]) == pytest.approx((5.0, 9.0, 1.0))
    assert out["bb_middle"][:7].null_count() == 7


def test_bollinger_flat_series_has_zero_width() -> None:
    out = bars([3.3] * 25).with_columns(ind.bollinger())
    assert out["bb_upper"].null_count() == 19
    assert out["bb_upper"].drop_nulls().to_list() == out["bb_lower"].drop_nulls().to_list()
    assert out["bb_upper"].drop_nulls().to_list() == pytest.approx([3.3] * 6, abs=1e-12)
    with pytest.raises(InputError):
        ind.bollinger(k=-1)


# --- ATR, ADX -----------------------------------------------------------------------------------------------

def test_atr_by_hand() -> None:
    # TR1 = max(3, |13-9|, |10-9|) = 4, TR2 = max(2, |12-12|, |10-12|) = 2, TR3 = max(4, |15-11|, |11-11|) = 4
    # n=2: ATR2 = (4+2)/2 = 3, ATR3 = (3*1 + 4)/2 = 3.5
    df = bars([9.0, 12.0, 11.0, 14.0], high=[10.0, 13.0, 12.0, 15.0], low=[8.0, 10.0, 10.0, 11.0])
    same(column(df, ind.atr(2)), [None, None, 3.0, 3.5])


def test_atr_matches_the_reference() -> None:
    tr = ref_true_range(HIGH, LOW, CLOSE)
    for n in (3, 14):
        same(column(bars(), ind.atr(n)), [None, *ref_wilder(tr[1:], n, 0)])
    assert ind.atr().meta.output_name() == "atr_14"


def test_adx_of_a_trend_and_of_a_flat_series() -> None:
    up = [float(i) for i in range(12)]
    out = bars(up, high=[x + 1 for x in up], low=[x - 1 for x in up]).with_columns(ind.adx(3))
    assert out["plus_di"].drop_nulls().to_list() == pytest.approx([50.0] * 9)  # +DM 1 per bar, TR 2
    assert out["minus_di"].drop_nulls().to_list() == [0.0] * 9
    assert out["adx"].drop_nulls().to_list() == pytest.approx([100.0] * 7)
    flat = bars([5.0] * 12, high=[5.0] * 12, low=[5.0] * 12).with_columns(ind.adx(3, names=("p", "m", "a")))
    assert flat["p"].drop_nulls().to_list() == flat["m"].drop_nulls().to_list() == [0.0] * 9  # TR is 0
    assert flat["a"].drop_nulls().to_list() == [0.0] * 7


# --- VWAP, stochastic, OBV ----------------------------------------------------------------------------------

def test_vwap_by_hand() -> None:
    # typical prices 10, 11, 13; volumes 0, 100, 300 -> null (no volume yet), 11, (1100 + 3900) / 400
    df = bars([10.0, 11.0, 13.0], high=[11.0, 12.0, 14.0], low=[9.0, 10.0, 12.0], volume=[0, 100, 300])
    same(column(df, ind.vwap()), [None, 11.0, 12.5])


def test_vwap_cumulative_and_per_session() -> None:
    tp = [(h + lo + c) / 3 for h, lo, c in zip(HIGH, LOW, CLOSE, strict=True)]

    def ref(rows):
        out, pv, v = [], 0.0, 0
        for i in rows:
            pv, v = pv + tp[i] * VOLUME[i], v + VOLUME[i]
            out.append(pv / v if v else None)
        return out

    df = bars()
    same(column(df, ind.vwap()), ref(range(30)))
    per_day = ind.vwap(by=pl.col("timestamp").dt.date(), name="vwap_day")  # bars 6 h apart from 14:30
    days = [(T0 + timedelta(hours=6 * i)).date() for i in range(30)]
    expected = [x for day in sorted(set(days)) for x in ref([i for i in range(30) if days[i] == day])]
    assert days[:3] == [T0.date(), T0.date(), T0.date() + timedelta(days=1)]
    same(column(df, per_day), expected)


def test_stochastic_by_hand_and_reference() -> None:
    # k=3: row 2: LL 1, HH 6, close 4 -> 60; row 3: LL 2, HH 7, close 7 -> 100; row 4: LL 2, HH 7, close 2 -> 0;
    # %K is shown from the first row with a %D, as TA-Lib aligns both
    df = bars([3.0, 5.0, 4.0, 7.0, 2.0], high=[4.0, 6.0, 5.0, 7.0, 3.0], low=[1.0, 4.0, 3.0, 6.0, 2.0])
    out = df.with_columns(ind.stochastic(3, 2))
    same(out["stoch_k"].to_list(), [None, None, None, 100.0, 0.0])
    same(out["stoch_d"].to_list(), [None, None, None, 80.0, 50.0])
    k, d = 5, 3
    pct_k = [None if i < k - 1 else
             100 * (CLOSE[i] - min(LOW[i - k + 1:i + 1])) / (max(HIGH[i - k + 1:i + 1]) - min(LOW[i - k + 1:i + 1]))
             for i in range(len(CLOSE))]
    out = bars().with_columns(ind.stochastic(k, d, names=("k", "d")))
    same(out["k"].to_list(), [None] * (k + d - 2) + pct_k[k + d - 2:])
    same(out["d"].to_list(), [None] * (k - 1) + ref_sma(pct_k[k - 1:], d))


def test_stochastic_of_a_flat_series_is_0() -> None:
    out = bars([5.0] * 6, high=[5.0] * 6, low=[5.0] * 6).with_columns(ind.stochastic(3, 2))
    same(out["stoch_k"].to_list(), [None, None, None, 0.0, 0.0, 0.0])  # TA-Lib's value where HH == LL


def test_obv_by_hand_and_reference() -> None:
    df = bars([10.0, 11.0, 11.0, 9.0, 12.0], volume=[100, 200, 300, 400, 500])
    assert column(df, ind.obv()) == [100, 300, 300, -100, 400]
    expected, total = [VOLUME[0]], VOLUME[0]
    for i in range(1, 30):
        total += VOLUME[i] if CLOSE[i] > CLOSE[i - 1] else -VOLUME[i] if CLOSE[i] < CLOSE[i - 1] else 0
        expected.append(total)
    out = bars().with_columns(ind.obv(name="on_balance"))
    assert out["on_balance"].to_list() == expected and out["on_balance"].dtype == pl.Float64


# --- validation, laziness, add_indicators -------------------------------------------------------------------

BAD_PERIODS = [0, -3, 2.5, 14.0, True, "14", None]
CALLS = [lambda p: ind.sma(n=p), lambda p: ind.ema(n=p), lambda p: ind.rsi(n=p), lambda p: ind.macd(fast=p),
         lambda p: ind.macd(slow=p), lambda p: ind.macd(signal=p), lambda p: ind.bollinger(n=p),
         lambda p: ind.atr(p), lambda p: ind.stochastic(k=p), lambda p: ind.stochastic(d=p), lambda p: ind.adx(p)]


@pytest.mark.parametrize("period", BAD_PERIODS, ids=repr)
def test_bad_periods_raise_input_error(period) -> None:
    for call in CALLS:
        with pytest.raises(InputError):
            call(period)


def test_period_one_is_valid() -> None:
    same(column(bars([1.0, 2.0, 3.0]), ind.sma(n=1)), [1.0, 2.0, 3.0])
    same(column(bars([1.0, 2.0, 3.0]), ind.ema(n=1)), [1.0, 2.0, 3.0])


def everything() -> list:
    return [ind.sma(n=5), ind.ema(n=5), ind.rsi(n=5), ind.macd(fast=3, slow=6, signal=4), ind.bollinger(n=5),
            ind.atr(5), ind.vwap(), ind.vwap(by=pl.col("timestamp").dt.date(), name="vwap_day"),
            ind.stochastic(5, 3), ind.adx(5), ind.obv()]


def test_lazy_equals_eager() -> None:
    df = bars()
    eager = ind.add_indicators(df, *everything())
    flat = [e for spec in everything() for e in ([spec] if isinstance(spec, pl.Expr) else spec)]
    lazy = df.lazy().with_columns(flat)
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(lazy.collect(), eager)
    assert_frame_equal(ind.add_indicators(df.lazy(), *everything()).collect(), eager)
    assert eager.width == 6 + 18


def test_add_indicators_by_name() -> None:
    df = bars()
    by_name = ind.add_indicators(df, "sma_5", "rsi", "macd", "bollinger_10", "atr_3", "stochastic_5", "adx_4",
                                 "vwap", "obv")
    by_expr = df.with_columns(ind.sma(n=5), ind.rsi(), ind.macd(), ind.bollinger(n=10), ind.atr(3),
                              ind.stochastic(5), *ind.adx(4), ind.vwap(), ind.obv())
    assert_frame_equal(by_name, by_expr)
    for bad in ("nope", "sma_x", "sma_0", "obv_3", "sma_"):
        with pytest.raises(InputError):
            ind.add_indicators(df, bad)


def test_per_symbol_with_over() -> None:
    one = bars()
    two = pl.concat([one.with_columns(symbol=pl.lit("A")), one.with_columns(symbol=pl.lit("B"))])
    out = two.with_columns(ind.rsi(n=5).over("symbol"), ind.ema(n=5).over("symbol"))
    for symbol in ("A", "B"):
        part = out.filter(pl.col("symbol") == symbol)
        same(part["rsi_5"].to_list(), ref_rsi(CLOSE, 5))
        same(part["ema_5"].to_list(), ref_ema(CLOSE, 5))
