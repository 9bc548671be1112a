"""Technical indicators as polars expressions over OHLCV bar frames (columns of `client.bars.BAR_SCHEMA`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import polars as pl

from .errors import InputError

__all__ = ["add_indicators", "adx", "atr", "bollinger", "ema", "macd", "obv", "rsi", "sma", "stochastic", "vwap"]

# Conventions shared by every function below:
# - Each returns a `pl.Expr` (one output) or a list of them (several outputs), to be used in
#   `df.with_columns(...)` on a DataFrame or LazyFrame; rows must be in ascending time order.
# - Warm-up rows, where the indicator is not yet defined, are null (never 0 or NaN); the docstrings
#   say from which row (0-based) values start. Inputs are assumed null-free, as bar frames are.
# - Wilder's smoothing is avg_t = avg_{t-1} + (x_t - avg_{t-1}) / n (an EMA with alpha = 1/n),
#   seeded with the simple mean of the first n values, as in Wilder (1978).
# - Periods must be ints >= 1, otherwise `InputError`.

Col = str | pl.Expr
F = TypeVar("F", bound=pl.DataFrame | pl.LazyFrame)


def _period(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{what} must be an int >= 1, got {value!r}")
    return value


def _names(names: Iterable[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if names is None:
        return default
    out = tuple(names)
    if len(out) != len(default) or not all(isinstance(n, str) for n in out):
        raise InputError(f"names must be {len(default)} strings, like {default}, got {names!r}")
    return out


def _col(col: Col) -> pl.Expr:
    return pl.col(col) if isinstance(col, str) else col


def _ratio(num: pl.Expr, den: pl.Expr, when_zero: float) -> pl.Expr:
    """num / den, or `when_zero` where den == 0 (null stays null)."""
    return pl.when(den == 0).then(pl.lit(when_zero)).otherwise(num / den)


def _wilder(x: pl.Expr, n: int, start: int) -> pl.Expr:
    """Wilder's smoothing of x, whose first valid row is `start`: seeded at row start+n-1 with the mean of
    x[start .. start+n-1]; null before."""
    row = pl.int_range(pl.len())
    seeded = pl.when(row == start + n - 1).then(x.rolling_mean(n)).when(row >= start + n).then(x)
    return seeded.ewm_mean(alpha=1 / n, adjust=False)


def _true_range() -> pl.Expr:
    prev = pl.col("close").shift(1)
    h, lo = pl.col("high"), pl.col("low")
    tr = pl.max_horizontal(h - lo, (h - prev).abs(), (lo - prev).abs())
    return pl.when(prev.is_not_null()).then(tr)  # row 0 has no previous close


def sma(col: Col = "close", n: int = 20, *, name: str | None = None) -> pl.Expr:
    """Simple moving average: the mean of the last n values. Null for rows 0..n-2. Default name `sma_{n}`."""
    n = _period(n, "n")
    return _col(col).rolling_mean(n).alias(name or f"sma_{n}")


def ema(col: Col = "close", n: int = 20, *, name: str | None = None) -> pl.Expr:
    """Exponential moving average: ema_t = a*x_t + (1-a)*ema_{t-1}, a = 2/(n+1) (adjust=False), seeded at the
    first value (ema_0 = x_0). Rows 0..n-2 are reported as null (warm-up). Default name `ema_{n}`."""
    n = _period(n, "n")
    return _col(col).ewm_mean(alpha=2 / (n + 1), adjust=False, min_samples=n).alias(name or f"ema_{n}")


def rsi(col: Col = "close", n: int = 14, *, name: str | None = None) -> pl.Expr:
    """Relative strength index with Wilder's smoothing: RSI = 100 - 100/(1 + avg_gain/avg_loss), where gains and
    losses are the positive and negative parts of x_t - x_{t-1} and the averages are Wilder-smoothed (seeded
    with the mean of the first n changes). 100 when there are no losses, 50 when the window is flat (no gains, no
    losses). Null for rows 0..n-1. Default name `rsi_{n}`."""
    n = _period(n, "n")
    change = _col(col).diff()
    gain = _wilder(change.clip(lower_bound=0), n, 1)
    loss = _wilder((-change).clip(lower_bound=0), n, 1)
    return (100 * _ratio(gain, gain + loss, 0.5)).alias(name or f"rsi_{n}")


def macd(col: Col = "close", fast: int = 12, slow: int = 26, signal: int = 9, *,
         names: Iterable[str] | None = None) -> list[pl.Expr]:
    """MACD: macd = EMA(fast) - EMA(slow); signal = EMA(signal) of the macd line; histogram = macd - signal. The
    EMAs are those of `ema` (alpha = 2/(n+1), adjust=False, seeded at the first value; the signal EMA is seeded
    at the first macd value). macd is null for rows 0..slow-2, signal and histogram for rows 0..slow+signal-3.
    Requires fast < slow. Default names ("macd", "macd_signal", "macd_hist")."""
    fast, slow, signal = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if fast >= slow:
        raise InputError(f"fast ({fast}) must be shorter than slow ({slow})")
    m_name, s_name, h_name = _names(names, ("macd", "macd_signal", "macd_hist"))
    line = ema(col, fast) - ema(col, slow)
    sig = line.ewm_mean(alpha=2 / (signal + 1), adjust=False, min_samples=signal)
    return [line.alias(m_name), sig.alias(s_name), (line - sig).alias(h_name)]


def bollinger(col: Col = "close", n: int = 20, k: float = 2.0, *,
              names: Iterable[str] | None = None) -> list[pl.Expr]:
    """Bollinger Bands: middle = SMA(n); upper/lower = middle +/- k * std, where std is the population standard
    deviation (ddof=0) of the last n values. Null for rows 0..n-2; the bands coincide (width 0) on a flat window.
    Default names ("bb_middle", "bb_upper", "bb_lower")."""
    n = _period(n, "n")
    if isinstance(k, bool) or not isinstance(k, int | float) or not k >= 0:
        raise InputError(f"k must be a number >= 0, got {k!r}")
    mid_name, up_name, low_name = _names(names, ("bb_middle", "bb_upper", "bb_lower"))
    x = _col(col)
    mid, width = x.rolling_mean(n), k * x.rolling_std(n, ddof=0)
    return [mid.alias(mid_name), (mid + width).alias(up_name), (mid - width).alias(low_name)]


def atr(n: int = 14, *, name: str | None = None) -> pl.Expr:
    """Average true range: Wilder's smoothing of the true range TR_t = max(high_t - low_t, |high_t - close_{t-1}|,
    |low_t - close_{t-1}|), seeded with the mean of TR_1..TR_n (row 0 has no previous close). Null for rows
    0..n-1. Default name `atr_{n}`."""
    n = _period(n, "n")
    return _wilder(_true_range(), n, 1).alias(name or f"atr_{n}")


def vwap(by: pl.Expr | str | None = None, *, name: str = "vwap") -> pl.Expr:
    """Volume-weighted average price: cumsum(typical * volume) / cumsum(volume), typical = (high + low + close)/3,
    cumulative over the whole frame, or restarting for each value of `by` (e.g. a session key such as
    `pl.col("timestamp").dt.date()`). Null while the cumulative volume is 0."""
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    volume = pl.col("volume").cast(pl.Float64)
    cum_pv, cum_v = (typical * volume).cum_sum(), volume.cum_sum()
    out = pl.when(cum_v > 0).then(cum_pv / cum_v)
    return (out if by is None else out.over(by)).alias(name)


def stochastic(k: int = 14, d: int = 3, *, names: Iterable[str] | None = None) -> list[pl.Expr]:
    """Stochastic oscillator: %K = 100 * (close - LL) / (HH - LL), with LL/HH the lowest low and highest high of
    the last k bars (50 where HH == LL); %D = SMA(d) of %K. %K is null for rows 0..k-2, %D for rows 0..k+d-3.
    Default names ("stoch_k", "stoch_d")."""
    k, d = _period(k, "k"), _period(d, "d")
    k_name, d_name = _names(names, ("stoch_k", "stoch_d"))
    lowest, highest = pl.col("low").rolling_min(k), pl.col("high").rolling_max(k)
    pct_k = 100 * _ratio(pl.col("close") - lowest, highest - lowest, 0.5)
    return [pct_k.alias(k_name), pct_k.rolling_mean(d).alias(d_name)]


def adx(n: int = 14, *, names: Iterable[str] | None = None) -> list[pl.Expr]:
    """Wilder's directional movement: up = high_t - high_{t-1}, down = low_{t-1} - low_t; +DM = up if up > down and
    up > 0 else 0, -DM likewise; +DI = 100 * W(+DM) / W(TR), -DI = 100 * W(-DM) / W(TR) with W Wilder's smoothing
    from row 1 (DI = 0 where W(TR) = 0); DX = 100 * |+DI - -DI| / (+DI + -DI) (0 where both are 0); ADX = W(DX),
    seeded with the mean of the first n DX values. DIs are null for rows 0..n-1, ADX for rows 0..2n-2.
    Default names ("plus_di", "minus_di", "adx")."""
    n = _period(n, "n")
    p_name, m_name, a_name = _names(names, ("plus_di", "minus_di", "adx"))
    up, down = pl.col("high").diff(), -pl.col("low").diff()
    plus_dm = pl.when((up > down) & (up > 0)).then(up).otherwise(0.0)
    minus_dm = pl.when((down > up) & (down > 0)).then(down).otherwise(0.0)
    tr = _wilder(_true_range(), n, 1)
    plus_di = 100 * _ratio(_wilder(plus_dm, n, 1), tr, 0.0)
    minus_di = 100 * _ratio(_wilder(minus_dm, n, 1), tr, 0.0)
    dx = 100 * _ratio((plus_di - minus_di).abs(), plus_di + minus_di, 0.0)
    return [plus_di.alias(p_name), minus_di.alias(m_name), _wilder(dx, n, n).alias(a_name)]


def obv(*, name: str = "obv") -> pl.Expr:
    """On-balance volume: obv_0 = 0; obv_t = obv_{t-1} + volume_t if close rises, - volume_t if it falls, else
    unchanged. No warm-up."""
    change = pl.col("close").diff()
    signed = pl.when(change > 0).then(pl.col("volume")).when(change < 0).then(-pl.col("volume")).otherwise(0)
    return signed.cum_sum().alias(name)


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
    (as `macd()` returns), or a name with default parameters, optionally with its period: "rsi", "sma_50", "atr_10",
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
