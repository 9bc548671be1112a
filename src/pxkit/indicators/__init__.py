"""pxkit's named indicators (`sma`, `rsi`, `macd`, ...) and `add_indicators`, computed by TA-Lib; every TA-Lib
function through `talib(name, ...)` and `functions()` (see `binding`). All are polars expressions over OHLCV bar
frames (columns of `client.bars.BAR_SCHEMA`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import polars as pl

from ..errors import InputError
from .binding import functions, on_price_scale, talib

__all__ = ["add_indicators", "adx", "atr", "bollinger", "ema", "functions", "macd", "obv", "on_price_scale", "rsi",
           "sma", "stochastic", "talib", "vwap"]

# Conventions shared by every function below:
# - Each returns a `pl.Expr` (one that expands into several columns where there are several outputs, or for
#   `adx` a list of them), to be used in `df.with_columns(...)` on a DataFrame or LazyFrame; rows must be in
#   ascending time order.
# - Values are those of TA-Lib's function of the same name (the docstrings say which, with which parameters):
#   its definitions, seeds and lookbacks; `vwap` is written here, for sessions. Rows over the lookback are null
#   (never 0 or NaN). Inputs are assumed null-free, as bar frames are.
# - Periods must be ints in TA-Lib's ranges (>= 1; >= 2 for RSI, MACD, Bollinger and ADX), otherwise
#   `InputError`, raised when the expression is built.

Col = str | pl.Expr
F = TypeVar("F", bound=pl.DataFrame | pl.LazyFrame)


def _names(names: Iterable[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if names is None:
        return default
    out = tuple(names)
    if len(out) != len(default) or not all(isinstance(n, str) for n in out):
        raise InputError(f"names must be {len(default)} strings, like {default}, got {names!r}")
    return out


def sma(col: Col = "close", n: int = 20, *, name: str | None = None) -> pl.Expr:
    """Simple moving average of the last n values (TA-Lib SMA). Null for rows 0..n-2. Default name `sma_{n}`."""
    return talib("SMA", col, timeperiod=n, names=name or f"sma_{n}")


def ema(col: Col = "close", n: int = 20, *, name: str | None = None) -> pl.Expr:
    """Exponential moving average (TA-Lib EMA): ema_t = a*x_t + (1-a)*ema_{t-1}, a = 2/(n+1), seeded at row n-1
    with the mean of the first n values. Null for rows 0..n-2. Default name `ema_{n}`."""
    return talib("EMA", col, timeperiod=n, names=name or f"ema_{n}")


def rsi(col: Col = "close", n: int = 14, *, name: str | None = None) -> pl.Expr:
    """Relative strength index with Wilder's smoothing (TA-Lib RSI): 100 * avg_gain / (avg_gain + avg_loss), the
    averages seeded with the mean of the first n changes; 0 when the window is flat. Null for rows 0..n-1.
    Default name `rsi_{n}`."""
    return talib("RSI", col, timeperiod=n, names=name or f"rsi_{n}")


def macd(col: Col = "close", fast: int = 12, slow: int = 26, signal: int = 9, *,
         names: Iterable[str] | None = None) -> pl.Expr:
    """MACD (TA-Lib MACD): macd = EMA(fast) - EMA(slow); signal = EMA(signal) of the macd line; histogram = macd -
    signal. All three are null for rows 0..slow+signal-3. Requires fast < slow. Default names ("macd",
    "macd_signal", "macd_hist")."""
    if isinstance(fast, int) and isinstance(slow, int) and fast >= slow:
        raise InputError(f"fast ({fast}) must be shorter than slow ({slow})")
    out = _names(names, ("macd", "macd_signal", "macd_hist"))
    return talib("MACD", col, fastperiod=fast, slowperiod=slow, signalperiod=signal, names=out)


def bollinger(col: Col = "close", n: int = 20, k: float = 2.0, *,
              names: Iterable[str] | None = None) -> pl.Expr:
    """Bollinger Bands (TA-Lib BBANDS, simple average): middle = SMA(n); upper/lower = middle +/- k * std, the
    population standard deviation of the last n values. Null for rows 0..n-2. Default names ("bb_middle",
    "bb_upper", "bb_lower")."""
    if isinstance(k, bool) or not isinstance(k, int | float) or not k >= 0:
        raise InputError(f"k must be a number >= 0, got {k!r}")
    mid, up, low = _names(names, ("bb_middle", "bb_upper", "bb_lower"))
    return talib("BBANDS", col, timeperiod=n, nbdevup=k, nbdevdn=k, matype=0, names=(up, mid, low))


def atr(n: int = 14, *, name: str | None = None) -> pl.Expr:
    """Average true range (TA-Lib ATR): Wilder's smoothing of the true range, seeded with the mean of TR_1..TR_n.
    Null for rows 0..n-1. Default name `atr_{n}`."""
    return talib("ATR", timeperiod=n, names=name or f"atr_{n}")


def vwap(by: pl.Expr | str | None = None, *, name: str = "vwap") -> pl.Expr:
    """Volume-weighted average price: cumsum(typical * volume) / cumsum(volume), typical = (high + low + close)/3,
    cumulative over the whole frame (TA-Lib VWAP), or restarting for each value of `by` (e.g. a session key such
    as `pl.col("timestamp").dt.date()`). Null while the cumulative volume is 0, where TA-Lib says 0. Written here
    in polars: a session VWAP through TA-Lib would be one call per session, 5 times slower on a month of bars."""
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    volume = pl.col("volume").cast(pl.Float64)
    cum_pv, cum_v = (typical * volume).cum_sum(), volume.cum_sum()
    out = pl.when(cum_v > 0).then(cum_pv / cum_v)
    return (out if by is None else out.over(by)).alias(name)


def stochastic(k: int = 14, d: int = 3, *, names: Iterable[str] | None = None) -> pl.Expr:
    """Fast stochastic oscillator (TA-Lib STOCHF): %K = 100 * (close - LL) / (HH - LL), with LL/HH the lowest low
    and highest high of the last k bars (0 where HH == LL); %D = SMA(d) of %K. Both are null for rows 0..k+d-3.
    Default names ("stoch_k", "stoch_d")."""
    out = _names(names, ("stoch_k", "stoch_d"))
    return talib("STOCHF", fastk_period=k, fastd_period=d, fastd_matype=0, names=out)


def adx(n: int = 14, *, names: Iterable[str] | None = None) -> list[pl.Expr]:
    """Wilder's directional movement (TA-Lib PLUS_DI, MINUS_DI, ADX): +DI and -DI from Wilder-smoothed +DM, -DM and
    true range, DX = 100 * |+DI - -DI| / (+DI + -DI), ADX = Wilder-smoothed DX. DIs are null for rows 0..n-1, ADX
    for rows 0..2n-2. Default names ("plus_di", "minus_di", "adx")."""
    plus, minus, average = _names(names, ("plus_di", "minus_di", "adx"))
    return [talib("PLUS_DI", timeperiod=n, names=plus), talib("MINUS_DI", timeperiod=n, names=minus),
            talib("ADX", timeperiod=n, names=average)]


def obv(*, name: str = "obv") -> pl.Expr:
    """On-balance volume (TA-Lib OBV): obv_0 = volume_0; obv_t = obv_{t-1} + volume_t if close rises, - volume_t if
    it falls, else unchanged. No warm-up."""
    return talib("OBV", names=name)


_BY_NAME = {"sma": (sma, "n"), "ema": (ema, "n"), "rsi": (rsi, "n"), "macd": (macd, "fast"),
            "bollinger": (bollinger, "n"), "atr": (atr, "n"), "vwap": (vwap, None), "stochastic": (stochastic, "k"),
            "adx": (adx, "n"), "obv": (obv, None)}


def _from_name(spec: str) -> pl.Expr | list[pl.Expr]:
    base, sep, period = spec.partition("_")
    if base not in _BY_NAME:
        raise InputError(f"unknown indicator {spec!r}; use one of {sorted(_BY_NAME)}, optionally as name_<period>")
    fn, param = _BY_NAME[base]
    if not sep:
        return fn()
    if param is None or not period.isdigit():
        raise InputError(f"bad indicator spec {spec!r}")
    return fn(**{param: int(period)})


def add_indicators(df: F, *specs: str | pl.Expr | Iterable[pl.Expr]) -> F:
    """`df.with_columns` of the given indicators (DataFrame or LazyFrame). A spec is an expression, a list of them
    (as `adx()` returns), or a name with default parameters, optionally with its period: "rsi", "sma_50", "atr_10",
    "macd", "bollinger_20", "stochastic_5", "adx", "vwap", "obv"."""
    exprs: list[pl.Expr] = []
    for spec in specs:
        if isinstance(spec, str):
            spec = _from_name(spec)
        if isinstance(spec, pl.Expr):
            exprs.append(spec)
        else:
            exprs.extend(spec)
    return df.with_columns(exprs)
