"""The widget base: page messages arriving on a foreign thread (a kernel subshell) are answered from the loop."""

from __future__ import annotations

import threading

from pages import Page
from pxkit import lab
from suites import open_suite
from waiting import until


def on_thread(work) -> str:
    """Run `work` on a fresh thread, as a comm callback on a subshell is; the thread's name."""
    thread = threading.Thread(target=work, name="subshell")
    thread.start()
    thread.join(5)
    return thread.name


async def test_a_hello_from_another_thread_is_answered_from_the_suites_loop(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        chart = lab.chart(suite["MNQ"], "1min")
        page = Page(chart)
        on_thread(lambda: page.say({"kind": "hello"}))
        assert page.sent == []  # nothing was done on the foreign thread itself
        await until(lambda: page.sent, "the state")
        [(content, _, sender)] = page.sent
        assert content["kind"] == "state"
        assert sender == threading.current_thread().name != "subshell"
        await sim.advance(30)
        await until(lambda: page.of_kind("delta"), "a delta")
        assert {sender for _, _, sender in page.sent} == {threading.current_thread().name}
        chart.close()


async def test_closing_from_another_thread_unsubscribes_on_the_loop(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        bus = suite["MNQ"].event_bus
        before = bus.handler_count()
        chart = lab.chart(suite["MNQ"], "1min")
        Page(chart).say({"kind": "hello"})
        assert bus.handler_count() > before
        on_thread(chart.close)
        await until(lambda: bus.handler_count() == before, "the chart's handlers removed")
        assert chart.closed


async def test_a_message_after_the_loop_closed_is_dropped_quietly(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        chart = lab.chart(suite["MNQ"], "1min")
        page = Page(chart)
    loop = chart.loop
    chart.loop = type(loop)()  # a loop that is not running, then closed, as after a kernel's loop ended
    chart.loop.close()
    on_thread(lambda: page.say({"kind": "hello"}))
    assert page.sent == []
    chart.loop = loop
    chart.close()
