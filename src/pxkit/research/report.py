"""Altair charts of research results: a backtest's report (equity, drawdown, fills on the price) and a sweep's
heatmap. Vega-Lite specs with their data inline: JupyterLab and the notebook render them with no network."""

from __future__ import annotations

from typing import Protocol

import altair as alt
import polars as pl

from ..errors import InputError


class Reported(Protocol):
    """What a report draws (a BacktestResult)."""

    strategy: str
    symbols: tuple[str, ...]
    equity: pl.DataFrame
    prices: pl.DataFrame
    trades: pl.DataFrame

UP, DOWN, LINE, MUTED = "#26a69a", "#ef5350", "#4f8fd6", "#8a93a3"  # the chart widget's colours
WIDTH = 640


def _values(frame: pl.DataFrame) -> alt.Data:
    """Rows as inline values (times as ISO strings): no row limit, nothing fetched."""
    times = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    shown = frame.with_columns(pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ") for c in times)
    return alt.Data(values=shown.to_dicts())


def report(result: Reported) -> alt.VConcatChart:
    """Equity curve, drawdown under it, then each instrument's 1-min closes with its buys and sells marked."""
    equity = result.equity.with_columns(drawdown=pl.col("equity") - pl.col("equity").cum_max())
    x = alt.X("timestamp:T", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%m-%d %H:%M", title="UTC"))
    curve = alt.Chart(_values(equity), height=180, width=WIDTH, title=f"{result.strategy} equity").mark_line(
        color=LINE).encode(x, alt.Y("equity:Q", title="equity", scale=alt.Scale(zero=False)),
                           tooltip=["timestamp:T", alt.Tooltip("net:Q", format="+,.2f"), "fees:Q"])
    drawdown = alt.Chart(_values(equity), height=80, width=WIDTH).mark_area(color=DOWN, opacity=0.5).encode(
        x, alt.Y("drawdown:Q", title="drawdown"))
    rows: list[alt.TopLevelMixin] = [curve, drawdown]
    for symbol in result.symbols:
        prices = result.prices.filter(pl.col("symbol") == symbol).select("timestamp", "close")
        fills = result.trades.filter(pl.col("symbol") == symbol).select("timestamp", "side", "size", "price", "pnl")
        line = alt.Chart(_values(prices)).mark_line(color=MUTED).encode(
            x, alt.Y("close:Q", title=symbol, scale=alt.Scale(zero=False)))
        marks = alt.Chart(_values(fills)).mark_point(filled=True, size=40).encode(
            x, alt.Y("price:Q"),
            color=alt.Color("side:N", scale=alt.Scale(domain=["BUY", "SELL"], range=[UP, DOWN]), title="fill"),
            shape=alt.Shape("side:N", scale=alt.Scale(domain=["BUY", "SELL"], range=["triangle-up",
                                                                                   "triangle-down"])),
            tooltip=[alt.Tooltip("timestamp:T", format="%H:%M:%S.%L"), "side:N", "size:Q", "price:Q",
                     alt.Tooltip("pnl:Q", format="+,.2f")])
        rows.append(alt.layer(line, marks, height=160, width=WIDTH))
    return alt.vconcat(*rows).resolve_scale(color="shared", shape="shared")


def heatmap(frame: pl.DataFrame, x: str, y: str, metric: str = "net_pnl", *, agg: str = "sum") -> alt.LayerChart:
    """A heatmap of `metric` over two parameters of a sweep's frame, its rows (days) combined with `agg`
    (sum, mean, min, max, median), each cell labelled with its value."""
    for name in (x, y, metric):
        if name not in frame.columns:
            raise InputError(f"the frame has no column {name!r}; it has {frame.columns}")
    if agg not in ("sum", "mean", "min", "max", "median"):
        raise InputError(f"agg must be sum, mean, min, max or median, got {agg!r}")
    cells = frame.group_by(x, y).agg(getattr(pl.col(metric), agg)()).sort(x, y)
    top = float(cells[metric].abs().max() or 1.0)
    base = alt.Chart(_values(cells), title=f"{metric} ({agg} over days)").encode(
        alt.X(f"{x}:O", title=x, axis=alt.Axis(labelAngle=0)), alt.Y(f"{y}:O", title=y, sort="descending"))
    rect = base.mark_rect().encode(color=alt.Color(f"{metric}:Q", title=metric, scale=alt.Scale(
        domain=[-top, 0, top], range=[DOWN, "#2b3039", UP])), tooltip=[f"{x}:O", f"{y}:O", f"{metric}:Q"])
    text = base.mark_text(color="white", fontSize=11).encode(text=alt.Text(f"{metric}:Q", format=",.0f"))
    return alt.layer(rect, text, width=48 * cells[x].n_unique(), height=32 * cells[y].n_unique())
