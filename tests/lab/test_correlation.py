"""lab.correlation on the simulator, at the message level: the matrix sent is the portfolio's, refreshed on bar
closes and on the timer, a readable message instead of an exception, and closing undoes everything."""

from __future__ import annotations

import pytest

from pages import Page
from pxkit import lab
from pxkit.errors import InputError
from pxkit.lab.correlations import DATASET, heatmap_spec
from suites import open_suite
from waiting import until


def states(page: Page) -> list[dict]:
    return [content for content, _, _ in page.of_kind("state")]


def matrix(frame) -> list[list[float]]:
    """A `correlation_matrix` DataFrame as rows of floats, row i and column j for symbols i and j."""
    return [list(row[1:]) for row in frame.rows()]


async def test_the_values_sent_are_the_portfolios_correlation_matrix(sim) -> None:
    async with open_suite(sim) as suite:
        widget = lab.correlation(suite, "5min", count=50)
        page = Page(widget)
        page.say({"kind": "hello"})
        await until(lambda: len(states(page)) == 2, "the first matrix")
        state = states(page)[1]
        want = await suite.portfolio.correlation_matrix("5min", 50)
        assert state["message"] is None and state["seq"] == 1
        assert state["values"] == matrix(want)
        assert state["shown"] == [[round(v, 2) for v in row] for row in matrix(want)]
        assert widget.symbols == ["MNQ", "ES", "MGC"] and widget.timeframe == "5min"
        rows = state["spec"]["datasets"][DATASET]
        assert [(r["row"], r["col"]) for r in rows] == [(a, b) for a in widget.symbols for b in widget.symbols]
        assert [r["label"] for r in rows] == [f"{v:.2f}" for row in state["shown"] for v in row]
        assert len({r["label"] for r in rows}) > 2  # real correlations, not only the diagonal's 1.00
        widget.close()


def test_the_spec_is_a_heatmap_with_its_scale_fixed_to_minus_one_one_and_nothing_to_load() -> None:
    spec = heatmap_spec(["A", "B"], [[1.0, -0.25], [-0.25, None]])
    cells, text = spec["layer"]
    assert cells["mark"]["type"] == "rect" and text["mark"]["type"] == "text"
    scale = cells["encoding"]["color"]["scale"]
    assert scale["domain"] == [-1, 0, 1] and len(scale["range"]) == 3  # diverging around 0, whatever the data
    assert text["encoding"]["text"]["field"] == "label"
    assert [r["label"] for r in spec["datasets"][DATASET]] == ["1.00", "-0.25", "-0.25", "n/a"]
    assert "$schema" not in spec and spec["data"] == {"name": DATASET}
    assert "url" not in repr(spec)  # all data inline


async def test_a_bar_close_of_the_timeframe_refreshes_the_page(sim) -> None:
    async with open_suite(sim) as suite:
        widget = lab.correlation(suite, "1min", count=30, refresh=3600)  # the timer stays out of the way
        page = Page(widget)
        page.say({"kind": "hello"})
        await until(lambda: len(states(page)) >= 2, "the first matrix after the pending state")
        before = states(page)[-1]
        mnq = suite["MNQ"].data.bars["1min"]
        closed = len(mnq)
        await sim.advance(61)
        await until(lambda: len(mnq) > closed, "a closed 1-minute bar")
        await until(lambda: states(page)[-1]["seq"] > before["seq"], "a refresh after the bar close")
        await until(lambda: widget._task is None and widget._soon.when() > widget.loop.time() + 60, "refreshes done")
        after = states(page)[-1]
        want = await suite.portfolio.correlation_matrix("1min", 30)
        assert after["values"] == matrix(want) != before["values"]  # the new bar's return is in it
        assert len(states(page)) <= 4  # the three instruments' closes of one minute made one or two refreshes
        widget.close()


async def test_bars_of_another_timeframe_do_not_refresh_it(sim) -> None:
    async with open_suite(sim) as suite:
        widget = lab.correlation(suite, "5min", refresh=3600)
        Page(widget).say({"kind": "hello"})
        await until(lambda: widget.refreshes == 1 and widget._task is None, "the first matrix")
        into_bucket = sim.sim.clock.now_us() // 1_000_000 % 300
        assert into_bucket + 31 + 2 < 300  # the 5-minute bar does not close meanwhile (grace included)
        fifteen = suite["MNQ"].data.bars["15sec"]
        newest = fifteen.bars(1)[0].timestamp
        await sim.advance(31)
        await until(lambda: (fifteen.bars(1)[0].timestamp - newest).total_seconds() >= 30, "two 15-second bars")
        await until(lambda: widget._soon is not None, "any refresh the bars asked for scheduled")
        assert widget.refreshes == 1 and widget._soon.when() > widget.loop.time() + 3000
        widget.close()


async def test_nothing_is_computed_before_a_hello_and_only_a_changed_matrix_is_sent_again(sim) -> None:
    async with open_suite(sim, timeframes=["1min"]) as suite:
        widget = lab.correlation(suite, "1min", count=30, refresh=0.5)
        assert widget.refreshes == 0 and widget._soon is None and widget._task is None  # no view: no work
        page = Page(widget)
        page.say({"kind": "hello"})
        await until(lambda: widget.refreshes >= 4, "three timed refreshes after the first", timeout=10)
        first = states(page)[1]
        assert [s["seq"] for s in states(page)] == [0, 1]  # the pending state, then the matrix once: it stood still
        assert first["values"] == matrix(await suite.portfolio.correlation_matrix("1min", 30))
        one_minute = suite["MNQ"].data.bars["1min"]
        newest = one_minute.bars(1)[0].timestamp
        await sim.advance(61)
        await until(lambda: one_minute.bars(1)[0].timestamp > newest, "a closed 1-minute bar")
        await until(lambda: states(page)[-1]["seq"] == 2, "the changed matrix sent")
        changed = states(page)[-1]
        assert changed["values"] != first["values"] and changed["spec"] != first["spec"]
        late = Page(widget)  # a view opened now gets the newest result on its hello
        late.say({"kind": "hello"})
        assert [content for content, _, _ in late.sent] == [changed]
        widget.close()


async def test_one_instrument_is_a_message_on_the_page_not_an_exception(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        widget = lab.correlation(suite)
        page = Page(widget)
        page.say({"kind": "hello"})
        await until(lambda: len(states(page)) == 2, "the first result")
        result = states(page)[1]
        assert result["spec"] is None and result["values"] is None
        assert result["message"] == "a correlation matrix needs at least two instruments"
        widget.close()


async def test_too_few_bars_say_so_until_enough_have_closed(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"], initial_days=0.001) as suite:  # ~1 minute
        widget = lab.correlation(suite, "1min", count=10, refresh=3600)
        page = Page(widget)
        page.say({"kind": "hello"})
        await until(lambda: len(states(page)) == 2, "the first result")
        first = states(page)[1]
        assert first["spec"] is None and "need at least 3" in first["message"]
        for _ in range(5):
            await sim.advance(60)
        await until(lambda: states(page)[-1]["spec"] is not None, "a matrix once bars have closed")
        last = states(page)[-1]
        assert last["message"] is None and len(last["values"]) == 2 and last["values"][0][0] == pytest.approx(1.0)
        widget.close()


async def test_a_closed_suite_is_said_on_the_page_and_the_timer_stops(sim) -> None:
    async with open_suite(sim) as suite:
        widget = lab.correlation(suite, refresh=0.5)
        page = Page(widget)
        page.say({"kind": "hello"})
        await until(lambda: widget.refreshes >= 1, "the first matrix")
    await until(lambda: states(page)[-1]["spec"] is None, "the refresh after the suite closed")
    assert "suite is closed" in states(page)[-1]["message"]
    assert widget._soon is None and widget._task is None
    widget.close()


async def test_close_unsubscribes_and_stops_the_timer(sim) -> None:
    async with open_suite(sim) as suite:
        before = [ctx.event_bus.handler_count() for ctx in suite.values()]
        widget = lab.correlation(suite, "1min", refresh=0.5)
        page = Page(widget)
        page.say({"kind": "hello"})
        await until(lambda: widget.refreshes >= 2, "a timed refresh")
        assert [ctx.event_bus.handler_count() for ctx in suite.values()] == [n + 1 for n in before]
        widget.close()
        assert [ctx.event_bus.handler_count() for ctx in suite.values()] == before
        assert widget._soon is None
        sent, refreshes = len(page.sent), widget.refreshes
        one_minute = suite["MNQ"].data.bars["1min"]
        newest = one_minute.bars(1)[0].timestamp
        await sim.advance(61)
        await until(lambda: one_minute.bars(1)[0].timestamp > newest, "a closed 1-minute bar")
        assert widget._soon is None and widget._task is None  # no refresh pending nor running: nothing will send
        assert len(page.sent) == sent and widget.refreshes == refreshes


async def test_bad_arguments_are_refused_before_anything_is_shown(sim) -> None:
    async with open_suite(sim) as suite:
        before = [ctx.event_bus.handler_count() for ctx in suite.values()]
        with pytest.raises(InputError, match="not built"):
            lab.correlation(suite, "2min")
        with pytest.raises(InputError, match="count"):
            lab.correlation(suite, count=2)
        with pytest.raises(InputError, match="refresh"):
            lab.correlation(suite, refresh=0)
        with pytest.raises(InputError, match="suite"):
            lab.correlation(suite["MNQ"])
        assert [ctx.event_bus.handler_count() for ctx in suite.values()] == before
