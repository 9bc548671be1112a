"""`lab.correlation(suite)`: a heatmap of the correlation of returns between the suite's instruments (altair)."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import altair as alt
import traitlets

from ..errors import InputError, PxError
from ..events import Event, EventType
from ..instrument.bars import Timeframe
from ..payloads import BarEvent
from ..suite import TradingSuite
from .widget import STATIC, LabWidget, Message, suite_loop

INTERVAL = 0.1  # seconds: the bar closes of every instrument at one time make one refresh
MIN_REFRESH = 0.5  # seconds between two timed refreshes at least
DATASET = "matrix"  # the spec's one data set, by name: the page swaps its rows into the view it has
log = logging.getLogger(__name__)

UP, NEUTRAL, DOWN = "#26a69a", "#2b3039", "#ef5350"  # +1, 0, -1: chart.css's up and down colours around a dark grey


def correlation(suite: TradingSuite, timeframe: str = "5min", count: int = 100, refresh: float = 5.0) -> Correlation:
    """A heatmap of `suite.portfolio.correlation_matrix(timeframe, count)`: the correlation of close-to-close
    returns over the newest `count` closed bars of `timeframe` (one the suite builds), the values written in the
    cells; computed again on each closed bar of `timeframe` and every `refresh` seconds. Display the widget."""
    return Correlation(suite, timeframe, count, refresh)


class Correlation(LabWidget):
    """The widget `lab.correlation` returns.

    The matrix is computed on the suite's loop (a few ms: it reads the live bars, which only that loop may); the
    altair chart built from it (rect and text layers, a diverging colour scale fixed to [-1, 1]) is turned into a
    Vega-Lite spec on a worker thread, since validating it costs tens of ms. Nothing is computed before a view
    says hello. A result that changes what the page shows goes to it as one "state" message with the next `seq`:
    the spec with its data inline, `values` (the matrix, None where undefined), `shown` (the values as the cells
    write them, 2 decimals) and `message` (why there is no matrix, else None); an unchanged matrix is not sent
    again (nor its spec built). `refreshes` counts the matrices computed.
    """

    _esm = STATIC / "correlation.js"
    _css = STATIC / "correlation.css"
    timeframe = traitlets.Unicode().tag(sync=True)
    count = traitlets.Int().tag(sync=True)
    refresh = traitlets.Float().tag(sync=True)
    symbols = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, suite: TradingSuite, timeframe: str = "5min", count: int = 100, refresh: float = 5.0) -> None:
        if not isinstance(suite, TradingSuite):
            raise InputError(f"give the suite (lab.correlation(suite)), got {type(suite).__name__}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 3:
            raise InputError(f"count must be a whole number of bars >= 3, got {count!r}")
        if (isinstance(refresh, bool) or not isinstance(refresh, int | float) or not math.isfinite(refresh)
                or refresh < MIN_REFRESH):
            raise InputError(f"refresh must be a number of seconds >= {MIN_REFRESH}, got {refresh!r}")
        names = {ctx.data.bars[timeframe].timeframe.name for ctx in suite.contexts.values()}  # InputError if not built
        self.suite = suite
        self.refreshes = 0
        self._state: dict[str, Any] = {"kind": "state", "seq": 0, "spec": None, "values": None, "shown": None,
                                       "message": "computing\u2026"}
        self._greeted = False
        self._soon: asyncio.TimerHandle | None = None  # the coming refresh
        self._task: asyncio.Task[None] | None = None  # the refresh running
        self._again = False  # asked for while one runs
        super().__init__(suite_loop(suite), timeframe=names.pop() if names else Timeframe.parse(timeframe).name,
                         count=count, refresh=float(refresh), symbols=list(suite.contexts))
        for ctx in suite.contexts.values():
            self.listen(ctx.event_bus, EventType.NEW_BAR, self._on_bar)
        self.on_close(self._stop)

    def __repr__(self) -> str:
        return f"Correlation({', '.join(self.symbols)}; {self.count} {self.timeframe} bars, every {self.refresh:g} s)"

    def state_message(self) -> Message:
        """The newest result (or why there is none yet); the first hello starts the refreshes."""
        if not self._greeted:
            self._greeted = True
            self._schedule(0.0)
        return dict(self._state), []

    # ------------------------------------------------------------------ refreshing

    def _on_bar(self, event: Event[BarEvent]) -> None:
        if event.data.timeframe == self.timeframe:
            self._schedule(INTERVAL)

    def _schedule(self, delay: float) -> None:
        """Refresh in `delay` seconds, or sooner if one is due sooner already."""
        if self.closed:
            return
        due = self.loop.time() + delay
        if self._soon is not None:
            if self._soon.when() <= due:
                return
            self._soon.cancel()
        self._soon = self.loop.call_at(due, self._start)

    def _start(self) -> None:
        self._soon = None
        if self._task is not None:  # the one running reads the bars before this moment: one more after it
            self._again = True
            return
        self._task = self.loop.create_task(self._run(), name="pxkit-correlation")

    async def _run(self) -> None:
        try:
            await self._compute()
        finally:
            self._task = None
            if not self.closed and not self.suite._closed:  # a closed suite's matrix never changes again
                self._schedule(0.0 if self._again else self.refresh)
            self._again = False

    async def _compute(self) -> None:
        """Compute the matrix; send the page the result only when what it shows changes."""
        result = await self._result()
        self.refreshes += 1
        if self.closed or result is None or all(self._state[key] == value for key, value in result.items()):
            return
        self._state = {"kind": "state", "seq": self._state["seq"] + 1, **result}
        self.send(dict(self._state))

    async def _result(self) -> dict[str, Any] | None:
        """The spec, values, shown values and message of the matrix now; None when its values are the ones shown
        (no spec is built for them)."""
        symbols = list(self.symbols)
        try:
            matrix = await self.suite.portfolio.correlation_matrix(self.timeframe, self.count)
            values = [[_number(v) for v in row[1:]] for row in matrix.select("symbol", *symbols).rows()]
            if values == self._state["values"]:
                return None
            shown = [[None if v is None else round(v, 2) for v in row] for row in values]
            spec = await asyncio.to_thread(heatmap_spec, symbols, shown)
        except PxError as exc:  # too few instruments or bars, a closed suite: said on the page
            return {"spec": None, "values": None, "shown": None, "message": str(exc)}
        except Exception as exc:  # a bug: logged, and said on the page rather than lost in a task
            log.exception("the correlation heatmap could not be computed")
            return {"spec": None, "values": None, "shown": None, "message": f"could not compute: {exc!r}"}
        return {"spec": spec, "values": values, "shown": shown, "message": None}

    def _stop(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._task is not None:
            self._task.cancel()


def heatmap_spec(symbols: list[str], shown: list[list[float | None]]) -> dict[str, Any]:
    """The Vega-Lite spec of the heatmap, its rows inline under DATASET; no `$schema` (nothing for a page to load)."""
    rows = [{"row": a, "col": b, "rho": shown[i][j], "label": "n/a" if shown[i][j] is None else f"{shown[i][j]:.2f}"}
            for i, a in enumerate(symbols) for j, b in enumerate(symbols)]
    base = alt.Chart().encode(
        x=alt.X("col:N", sort=symbols, title=None, axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("row:N", sort=symbols, title=None))
    cells = base.mark_rect(stroke=NEUTRAL, strokeWidth=1).encode(
        color=alt.Color("rho:Q", title="\u03c1", scale=alt.Scale(domain=[-1, 0, 1], range=[DOWN, NEUTRAL, UP]),
                        legend=alt.Legend(gradientLength=40 * len(symbols))),
        tooltip=[alt.Tooltip("row:N", title="row"), alt.Tooltip("col:N", title="column"),
                 alt.Tooltip("label:N", title="\u03c1")])
    text = base.mark_text(fontSize=12, fontWeight="bold", color="#f5f5f5").encode(text="label:N")
    chart = (alt.layer(cells, text, data=alt.NamedData(name=DATASET))
             .properties(width=alt.Step(56), height=alt.Step(40), datasets={DATASET: rows}))
    spec = chart.to_dict()
    spec.pop("$schema", None)
    return spec


def _number(value: Any) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)

