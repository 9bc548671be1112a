"""`lab.dashboard(suite)`: chart, ladder and ticket per instrument behind a selector, with the blotter, the correlation
heatmap and the health badge, in one ipywidgets layout that works the same in JupyterLab and in Voila."""

from __future__ import annotations

import logging
from typing import Any

import ipywidgets as widgets

from ..errors import InputError
from ..suite import TradingSuite, live_suites
from .blotting import Blotter, blotter
from .charting import Chart, chart
from .correlations import Correlation, correlation
from .healthbadge import Health, health
from .laddering import Ladder, ladder
from .ticketing import Ticket, ticket

log = logging.getLogger(__name__)
_shown: dict[int, Dashboard] = {}  # the open dashboard of each running suite, by id(suite)


def dashboard(suite: TradingSuite, timeframe: str = "1min", levels: int = 10, bars: int = 300,
              correlation_count: int = 100) -> Dashboard:
    """The trading dashboard of `suite`: per instrument a `timeframe` chart of `bars` bars, a ladder of `levels`
    prices each side (a click stages a limit order in the ticket) and an order ticket; below, the blotter and the
    correlation of `correlation_count` `timeframe` returns; on top, the instrument selector and the health badge.

    One dashboard per suite: building another (a cell re-run) closes the previous one and its subscriptions.
    """
    for key, shown in list(_shown.items()):  # the one this replaces, and those of suites closed since
        if shown.suite is suite or shown.suite not in live_suites():
            del _shown[key]
            shown.close()
    board = Dashboard(suite, timeframe, levels, bars, correlation_count)
    _shown[id(suite)] = board
    return board


class Dashboard(widgets.VBox):
    """The layout `lab.dashboard` returns; `close()` closes every widget in it.

    `charts`, `ladders` and `tickets` hold each instrument's widgets by symbol; `selector` picks the instrument
    shown (linked on the page, so switching needs no round trip to the kernel).
    """

    def __init__(self, suite: TradingSuite, timeframe: str, levels: int, bars: int, correlation_count: int) -> None:
        symbols = list(suite.contexts)
        if not symbols:
            raise InputError("the suite has no instruments to show")
        self.suite = suite
        self.charts: dict[str, Chart] = {}
        self.tickets: dict[str, Ticket] = {}
        self.ladders: dict[str, Ladder] = {}
        self._parts: list[widgets.Widget] = []
        try:
            pages = [self._instrument(symbol, timeframe, levels, bars) for symbol in symbols]
            self.blotter: Blotter = self._own(blotter(suite))
            self.correlation: Correlation = self._own(correlation(suite, timeframe=timeframe, count=correlation_count))
            self.health: Health = self._own(health(suite))
        except BaseException:
            self._close_parts()
            raise
        self.selector = widgets.ToggleButtons(options=symbols, value=symbols[0], description="",
                                              style={"button_width": "72px"})
        self.selector.add_class("pxkit-selector")
        stack = widgets.Stack(pages, selected_index=0, layout=_row())
        self._link = widgets.jslink((self.selector, "index"), (stack, "selected_index"))
        header = widgets.HBox([self.selector, self.health],
                              layout=_row(justify_content="space-between", align_items="center"))
        lower = widgets.HBox([self.blotter, self.correlation], layout=_row(align_items="flex-start"))
        self.blotter.layout = widgets.Layout(flex="3 1 0", min_width="0")
        self.correlation.layout = widgets.Layout(flex="2 1 0", min_width="0")
        self._parts += [self.selector, stack, header, lower, self._link]
        super().__init__([header, stack, lower], layout=_row())
        self.add_class("pxkit-dashboard")

    def _instrument(self, symbol: str, timeframe: str, levels: int, bars: int) -> widgets.Widget:
        ctx = self.suite[symbol]
        shown = self.charts[symbol] = self._own(chart(ctx, timeframe, bars=bars))
        order_ticket = self.tickets[symbol] = self._own(ticket(ctx))
        book = self.ladders[symbol] = self._own(ladder(ctx, levels, ticket=order_ticket))
        book.layout = widgets.Layout(flex="0 0 auto")  # both at their own width, the ticket under the ladder when
        order_ticket.layout = widgets.Layout(flex="0 0 auto")  # the output is too narrow for the two side by side
        trading = widgets.HBox([book, order_ticket], layout=_row(align_items="flex-start", flex_flow="row wrap"))
        page = widgets.VBox([shown, trading], layout=_row())
        self._parts += [trading, page]
        return page

    def _own(self, widget: Any) -> Any:
        self._parts.append(widget)
        return widget

    def __repr__(self) -> str:
        return f"Dashboard({', '.join(self.charts)})"

    def close(self) -> None:
        """Close every widget of the dashboard (their handlers unsubscribed), then the layout itself."""
        if _shown.get(id(self.suite)) is self:
            del _shown[id(self.suite)]
        self._close_parts()
        super().close()

    def _close_parts(self) -> None:
        parts, self._parts = self._parts, []
        for part in reversed(parts):
            try:
                part.close()
            except Exception:  # the others are closed all the same
                log.exception("closing %r failed", part)


def _row(**style: str) -> widgets.Layout:
    """A full-width box with 8 px between its children."""
    return widgets.Layout(width="100%", grid_gap="8px", **style)
