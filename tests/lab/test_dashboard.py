"""lab.dashboard on the simulator: each instrument's chart, ladder and ticket behind the selector, the suite-wide
widgets, a ladder pick staging its own instrument's ticket, and closing (or re-running) undoing every subscription."""

from __future__ import annotations

import ipywidgets as widgets

from pages import Page
from pxkit import lab
from suites import open_suite
from waiting import until

SYMBOLS = ("MNQ", "ES", "MGC")


def subscriptions(suite) -> int:
    """What the widgets subscribe to: handlers on the suite's and every instrument's bus, fill listeners and order
    observers."""
    return suite.event_bus.handler_count() + sum(
        c.event_bus.handler_count() + len(c.positions._fill_listeners) + len(c.orders._observers)
        for c in suite.contexts.values())


async def test_each_instrument_gets_its_own_chart_ladder_and_ticket_behind_the_selector(sim) -> None:
    async with open_suite(sim, SYMBOLS, features=["orderbook"]) as suite:
        before = subscriptions(suite)
        board = lab.dashboard(suite, timeframe="1min")
        try:
            assert list(board.selector.options) == list(SYMBOLS)
            header, stack, lower = board.children
            assert isinstance(stack, widgets.Stack) and stack.selected_index == 0
            assert board._link.source == (board.selector, "index") and board._link.target == (stack, "selected_index")
            for symbol, page in zip(SYMBOLS, stack.children, strict=True):
                chart, (ladder, ticket) = page.children[0], page.children[1].children
                assert chart is board.charts[symbol] and chart.symbol == symbol and chart.timeframe == "1min"
                assert ladder is board.ladders[symbol] and ladder.ctx is suite[symbol]
                assert ticket is board.tickets[symbol] and ticket.ctx is suite[symbol]
                assert ladder.ticket is ticket  # a pick on this ladder stages this instrument's ticket
            assert list(lower.children) == [board.blotter, board.correlation]
            assert board.health in header.children
            assert subscriptions(suite) > before
        finally:
            board.close()
        assert subscriptions(suite) == before
        assert all(w.closed for w in [*board.charts.values(), *board.ladders.values(), *board.tickets.values(),
                                      board.blotter, board.correlation, board.health])


async def test_a_ladder_pick_stages_a_limit_order_in_that_instruments_ticket(sim) -> None:
    async with open_suite(sim, SYMBOLS, features=["orderbook"]) as suite:
        board = lab.dashboard(suite)
        try:
            ladder, ticket = board.ladders["ES"], board.tickets["ES"]
            page, ticket_page, other = Page(ladder), Page(ticket), Page(board.tickets["MNQ"])
            for view in (page, ticket_page, other):
                view.say({"kind": "hello"})
            await sim.advance(5)
            await until(lambda: page.of_kind("state"), "the ladder's state")
            price = float(page.of_kind("state")[-1][0]["prices"][-1])  # the lowest price shown
            page.say({"kind": "pick", "price": price})
            await until(lambda: ticket_page.of_kind("staged"), "the ticket staged")
            staged = ticket_page.of_kind("staged")[-1][0]
            assert (staged["form"]["type"], staged["form"]["price"]) == ("limit", price)
            assert other.of_kind("staged") == []  # the other instruments' tickets are left alone
        finally:
            board.close()


async def test_a_rerun_closes_the_dashboard_it_replaces(sim) -> None:
    async with open_suite(sim, SYMBOLS, features=["orderbook"]) as suite:
        before = subscriptions(suite)
        first = lab.dashboard(suite)
        one = subscriptions(suite)
        second = lab.dashboard(suite)
        try:
            assert all(w.closed for w in first.charts.values()) and first.blotter.closed
            assert not second.blotter.closed
            assert subscriptions(suite) == one  # the first one's handlers are gone, the second's in their place
        finally:
            second.close()
        assert subscriptions(suite) == before
