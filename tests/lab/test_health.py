"""lab.health on the simulator, at the message level: ok on a healthy suite, degraded or down through a hub outage
or a stale feed and ok again after it, and closing stops the polling and unsubscribes."""

from __future__ import annotations

import pytest

from pages import Page
from pxkit import EventType, lab
from pxkit.errors import InputError
from pxkit.lab.healthbadge import POLL, level
from suites import open_suite
from waiting import until


def last(page: Page) -> dict:
    return page.of_kind("state")[-1][0]


def handlers(suite) -> list[int]:
    return [suite.event_bus.handler_count(), *(ctx.event_bus.handler_count() for ctx in suite.values())]


async def test_a_healthy_suite_is_ok_and_an_unchanged_one_is_not_sent_again(sim) -> None:
    async with open_suite(sim) as suite:
        badge = lab.health(suite)
        page = Page(badge)
        page.say({"kind": "hello"})
        state = last(page)
        stats = await suite.get_stats()
        assert state == {"kind": "state", "health": "ok", "score": 100, "reasons": [], "hubs": {"user": True,
                         "market": True}, "stale": [], "reconnects": 0} and stats["health"] == 100
        looks = badge.looks
        await until(lambda: badge.looks >= looks + 2, "two more looks at the stats", timeout=5 * POLL)
        assert len(page.sent) == 1
        badge.close()


async def test_a_dropped_market_hub_is_degraded_then_ok_again_with_one_reconnect(sim) -> None:
    async with open_suite(sim) as suite:
        badge = lab.health(suite)
        page = Page(badge)
        page.say({"kind": "hello"})
        down = suite.event_bus.wait_for(EventType.DISCONNECTED, timeout=10, predicate=lambda e: e.source == "market")
        sim.gateway.market_hub.refuse_for(3600)
        await down
        await until(lambda: last(page)["hubs"] == {"user": True, "market": False}, "the market hub shown down", 3)
        state = last(page)
        assert state["health"] == "degraded" and state["score"] == 60
        assert "1 of 2 hubs disconnected" in state["reasons"]
        back = suite.event_bus.wait_for(EventType.RECONNECTED, timeout=20, predicate=lambda e: e.source == "market")
        sim.gateway.market_hub.refuse_for(0)
        await back
        await until(lambda: last(page)["reconnects"] == 1, "the reconnect on the page", 3)
        assert last(page)["health"] == "ok" and last(page)["hubs"] == {"user": True, "market": True}
        badge.close()


async def test_both_hubs_refused_is_down_until_they_are_back(sim) -> None:
    async with open_suite(sim) as suite:
        badge = lab.health(suite)
        page = Page(badge)
        page.say({"kind": "hello"})
        sim.refuse_hubs(3600)
        await until(lambda: last(page)["health"] == "down", "down", 10)
        assert last(page)["hubs"] == {"user": False, "market": False}
        sim.refuse_hubs(0)
        await until(lambda: suite.router.reconnects == 2, "both hubs reconnected", 20)
        await until(lambda: last(page)["reconnects"] == 2, "the reconnects on the page", 3)
        assert last(page)["health"] == "ok" and last(page)["hubs"] == {"user": True, "market": True}
        badge.close()


async def test_a_stale_feed_is_shown_and_clears_when_the_market_speaks(sim) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], stale_after=0.3) as suite:
        badge = lab.health(suite)
        page = Page(badge)
        page.say({"kind": "hello"})
        await until(lambda: last(page)["stale"] == ["MNQ"], "the stale feed on the page")
        state = last(page)
        assert state["health"] == "down" and state["score"] == 50  # the only feed stopped: no data at all
        assert state["hubs"] == {"user": True, "market": True}
        live = suite["MNQ"].event_bus.wait_for(EventType.STALE_FEED, timeout=5, predicate=lambda e: not e.data.stale)
        await sim.advance(15)
        await live
        await until(lambda: last(page)["stale"] == [], "the feed live again on the page", 3)
        assert last(page)["health"] == "ok"
        badge.close()


async def test_close_stops_the_polling_and_unsubscribes(sim) -> None:
    async with open_suite(sim) as suite:
        before = handlers(suite)
        badge = lab.health(suite)
        assert handlers(suite) == [before[0] + 3, *(n + 1 for n in before[1:])]  # connection events, stale feeds
        page = Page(badge)
        page.say({"kind": "hello"})
        assert badge._poll is not None
        badge.close()
        assert handlers(suite) == before and badge._poll is None and badge._soon is None
        sim.gateway.market_hub.refuse_for(3600)
        looks = badge.looks
        await suite.event_bus.wait_for(EventType.DISCONNECTED, timeout=10, predicate=lambda e: e.source == "market")
        assert badge._poll is None and badge._soon is None  # the disconnect scheduled no look: nothing will send
        assert badge.looks == looks and len(page.sent) == 1


async def test_a_closed_suite_is_down_and_no_longer_polled(sim) -> None:
    async with open_suite(sim) as suite:
        badge = lab.health(suite)
        page = Page(badge)
        page.say({"kind": "hello"})
    await until(lambda: last(page)["health"] == "down", "the closed suite shown down", 3)
    assert last(page)["reasons"] == ["the suite is closed"] and badge._poll is None
    badge.close()


def test_the_levels_follow_the_suites_badge() -> None:
    assert [level(s) for s in (100, 95, 94, 60, 59, 0)] == ["ok", "ok", "degraded", "degraded", "down", "down"]


async def test_only_a_suite_is_taken(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        with pytest.raises(InputError, match="suite"):
            lab.health(suite["MNQ"])
