"""Orders and risk-reducing commands against the real simulator when answers are spoiled, lost or delayed.

A live order is never reported as failed: the caller gets the live result (its tag looked up) or
OrderStateUnknownError carrying the tag. A cancel or close whose answer was lost is looked up, not blindly resent,
and nothing the rate limiter holds back for a read delays a command that reduces risk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conftest import ACCOUNT, MNQ
from pxkit.client.http import ProjectX
from pxkit.config import ProjectXConfig
from pxkit.enums import OrderStatus, OrderType
from pxkit.errors import OrderStateUnknownError
from pxkit.sim import SimServer
from spoiling import Spoil, SpoilingProxy
from waiting import until

PLACE, SEARCH, OPEN_ORDERS = "/api/Order/place", "/api/Order/search", "/api/Order/searchOpen"
CANCEL, CLOSE, ACCOUNTS = "/api/Order/cancel", "/api/Position/closeContract", "/api/Account/search"
FAR_BID = 15000.0  # MNQ trades near 20,200: a buy limit here rests
FAST = {"retry_attempts": 3, "retry_base_delay": 0.01, "retry_max_delay": 0.05, "breaker_failure_threshold": 100}


@asynccontextmanager
async def spoiled(sim: SimServer, **overrides: Any) -> AsyncIterator[tuple[ProjectX, SpoilingProxy]]:
    """A client whose requests pass through a spoiling proxy in front of the simulator; MNQ already resolved."""
    proxy = SpoilingProxy()
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url, **{**FAST, **overrides}), transport=proxy) as px:
        await px.get_instrument("MNQ")
        yield px, proxy


def processed(sim: SimServer, path: str) -> int:
    """Requests to `path` the simulator acted on (it answered 200)."""
    return sum(1 for r in sim.requests if r.path == path and r.status == 200)


def tagged(sim: SimServer, tag: str) -> list[int]:
    """Ids of the simulator's orders carrying `tag`."""
    return [o.id for o in sim.sim.exchange.orders.values() if o.custom_tag == tag]


# ---------------------------------------------------------------------------------------------- Order/place
@pytest.mark.parametrize(("status", "count"), [(503, 1), (503, None), (500, None), (502, 1), (429, 1)],
                         ids=["503-once", "503-always", "500-always", "502-once", "429-once"])
async def test_a_proxy_error_after_the_gateway_placed_the_order_returns_the_live_order(
        sim: SimServer, status: int, count: int | None) -> None:
    """A 5xx (or 429) from a proxy proves nothing: the tag is looked up before any resend, so one order is live,
    it is the result, and no duplicate-tag rejection reaches the caller."""
    async with spoiled(sim) as (px, proxy):
        proxy.spoil(PLACE, Spoil(status, headers={"Retry-After": "0"}), count)
        placed = await px.place_order("MNQ", "buy", 1, custom_tag="after-a-proxy-error")
        assert tagged(sim, "after-a-proxy-error") == [placed.order_id]
        assert processed(sim, PLACE) == 1  # never sent again once the look-up found it
        assert sim.sim.exchange.orders[placed.order_id].status is OrderStatus.FILLED


UNUSABLE = {
    "empty-object": b"{}", "success-only": b'{"success":true}', "null": b"null", "string": b'"12"',
    "order-id-1e999": b'{"success":true,"orderId":1e999}', "order-id-1.5": b'{"success":true,"orderId":1.5}',
    "order-id-true": b'{"success":true,"orderId":true}', "order-id-string": b'{"success":true,"orderId":"7"}',
    "order-id-NaN": b'{"success":true,"orderId":NaN}', "not-json": b"<html>502 Bad Gateway</html>",
    "truncated": b'{"success":true,"orderId":',
}


@pytest.mark.parametrize("body", UNUSABLE.values(), ids=UNUSABLE.keys())
async def test_an_unusable_answer_to_a_placed_order_is_resolved_by_its_tag(sim: SimServer, body: bytes) -> None:
    async with spoiled(sim) as (px, proxy):
        proxy.spoil(PLACE, Spoil(200, body))
        placed = await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID)
        assert tagged(sim, placed.custom_tag) == [placed.order_id]  # the real id, never a parsed 1 or 7
        assert placed.order_id != 1 and processed(sim, PLACE) == 1


@pytest.mark.parametrize("body", [UNUSABLE["success-only"], UNUSABLE["order-id-1.5"], UNUSABLE["not-json"]],
                         ids=["success-only", "order-id-1.5", "not-json"])
async def test_an_unusable_answer_whose_tag_is_not_found_is_state_unknown(sim: SimServer, body: bytes) -> None:
    """The proxy answered without forwarding: the look-up finds nothing, yet the answer proves nothing either."""
    async with spoiled(sim) as (px, proxy):
        proxy.spoil(PLACE, Spoil(200, body, processed=False))
        with pytest.raises(OrderStateUnknownError) as caught:
            await px.place_order("MNQ", "buy", 1, custom_tag="unreadable")
        assert caught.value.custom_tag == "unreadable" and caught.value.endpoint == PLACE
        assert tagged(sim, "unreadable") == [] and processed(sim, SEARCH) == 1


@pytest.mark.parametrize("search_spoil", [Spoil(500), Spoil(200, b"<html>"), Spoil(200, b'{"success":true}')],
                         ids=["search-500", "search-html", "search-without-orders"])
async def test_a_failed_tag_look_up_is_state_unknown_with_the_tag(sim: SimServer, search_spoil: Spoil) -> None:
    async with spoiled(sim) as (px, proxy):
        proxy.spoil(PLACE, Spoil(503))
        proxy.spoil(SEARCH, search_spoil)
        with pytest.raises(OrderStateUnknownError) as caught:
            await px.place_order("MNQ", "buy", 1, custom_tag="lookup-failed")
        assert caught.value.custom_tag == "lookup-failed"
        assert "lookup-failed" in str(caught.value) and SEARCH in str(caught.value)
        assert len(tagged(sim, "lookup-failed")) == 1 and processed(sim, PLACE) == 1  # live, and sent once


async def test_an_order_placed_from_another_threads_loop_is_placed_once_and_returned_there(sim: SimServer) -> None:
    """`asyncio.run(px.place_order(...))` in a thread: the request is handed to the loop that owns the connections."""
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
        await px.get_instrument("MNQ")
        outcome: dict[str, Any] = {}

        def trade() -> None:
            try:
                outcome["placed"] = asyncio.run(px.place_order("MNQ", "buy", 1, custom_tag="from-a-thread"))
            except BaseException as exc:  # reported to the test below
                outcome["error"] = exc

        thread = threading.Thread(target=trade, name="other-loop")
        thread.start()
        await until(lambda: not thread.is_alive(), "the thread's place_order to return")
        assert "error" not in outcome, repr(outcome.get("error"))
        assert tagged(sim, "from-a-thread") == [outcome["placed"].order_id]
        assert processed(sim, PLACE) == 1
        assert [p.size for p in await px.search_open_positions()] == [1]  # and the client still works here


# ---------------------------------------------------------------------------------------------- cancel and close
async def resting_order(px: ProjectX) -> int:
    return (await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID)).order_id


@pytest.mark.parametrize("was_processed", [True, False], ids=["cancelled-then-500", "500-before-the-gateway"])
async def test_a_cancel_answered_500_is_looked_up_and_sent_again_only_while_working(
        sim: SimServer, was_processed: bool) -> None:
    async with spoiled(sim) as (px, proxy):
        order_id = await resting_order(px)
        proxy.spoil(CANCEL, Spoil(500, processed=was_processed), count=1)
        assert await px.cancel_order(order_id) is None
        assert sim.sim.exchange.orders[order_id].status is OrderStatus.CANCELLED
        assert processed(sim, OPEN_ORDERS) == 1  # looked up once
        assert processed(sim, CANCEL) == 1 and proxy.sent.count(CANCEL) == (1 if was_processed else 2)


async def test_a_second_cancel_of_an_order_that_ended_meanwhile_is_done(sim: SimServer, rest: Any) -> None:
    """The look-up still shows the order (a stale answer), the second cancel finds it gone: done, no error."""
    async with spoiled(sim) as (px, proxy):
        order_id = await resting_order(px)
        stale = (await rest.post(OPEN_ORDERS, json={"accountId": ACCOUNT})).content
        proxy.spoil(CANCEL, Spoil(500), count=1)
        proxy.spoil(OPEN_ORDERS, Spoil(200, stale), count=1)
        assert await px.cancel_order(order_id) is None
        assert sim.sim.exchange.orders[order_id].status is OrderStatus.CANCELLED
        assert [r.status for r in sim.requests if r.path == CANCEL] == [200, 200]  # the second: success false


@pytest.mark.parametrize("was_processed", [True, False], ids=["closed-then-502", "502-before-the-gateway"])
async def test_a_close_answered_502_is_looked_up_and_sent_again_only_while_open(
        sim: SimServer, was_processed: bool) -> None:
    async with spoiled(sim) as (px, proxy):
        await px.place_order("MNQ", "buy", 2)
        proxy.spoil(CLOSE, Spoil(502, processed=was_processed), count=1)
        assert await px.close_position("MNQ") is None
        assert sim.sim.exchange.ledger.position(ACCOUNT, MNQ) == 0
        assert processed(sim, CLOSE) == 1 and proxy.sent.count(CLOSE) == (1 if was_processed else 2)


# ---------------------------------------------------------------------------------------------- Retry-After
@pytest.mark.parametrize("retry_after", ["1e309", "3600", "inf", "nan", "-5", "1e300"])
async def test_an_absurd_retry_after_waits_at_most_the_configured_cap(sim: SimServer, retry_after: str) -> None:
    async with spoiled(sim, max_retry_after=0.05) as (px, proxy):
        proxy.spoil(ACCOUNTS, Spoil(429, headers={"Retry-After": retry_after}), count=1)
        accounts = await asyncio.wait_for(px.list_accounts(), 5)
        assert [a.id for a in accounts][:1] == [ACCOUNT] and proxy.spoiled == [ACCOUNTS]


async def test_a_reads_back_off_never_holds_back_a_close_or_a_cancel(sim: SimServer) -> None:
    """A read was told to wait 20 s (within the 30 s cap): the close and the cancel still go out at once."""
    async with spoiled(sim, retry_attempts=2) as (px, proxy):
        await px.place_order("MNQ", "buy", 1)
        order_id = await resting_order(px)
        proxy.spoil(ACCOUNTS, Spoil(429, headers={"Retry-After": "20"}))
        waiting_read = asyncio.create_task(px.list_accounts())
        await until(lambda: proxy.spoiled == [ACCOUNTS], "the read's 429")
        await asyncio.wait_for(px.cancel_order(order_id), 5)
        await asyncio.wait_for(px.close_position("MNQ"), 5)
        assert sim.sim.exchange.ledger.position(ACCOUNT, MNQ) == 0
        assert sim.sim.exchange.orders[order_id].status is OrderStatus.CANCELLED
        assert not waiting_read.done()  # the read itself still honours its Retry-After
        waiting_read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting_read
