"""lab.ladder on the simulator, at the message level: rows against the book, orders, re-centring, rate, picks."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from pages import Page, TimedPage
from pxkit import lab
from pxkit.enums import OrderSide
from pxkit.errors import InputError
from pxkit.lab.laddering import EDGE_ROWS, INTERVAL, centre_for
from pxkit.times import to_us
from suites import last_trade_time, open_suite
from waiting import until


class Recorder:
    """The ticket's side of the contract: `stage(price)`, recorded."""

    def __init__(self) -> None:
        self.staged: list[float] = []

    def stage(self, price: float) -> None:
        self.staged.append(price)


class Refusing:
    """A ticket that refuses every price."""

    def stage(self, price: float) -> None:
        raise InputError("the ticket has no account")


class Broken:
    """A ticket that fails."""

    def stage(self, price: float) -> None:
        raise RuntimeError("lost its form")


def views(page: Page) -> list[dict[str, Any]]:
    """The ladder as the page holds it after each state or delta, in order."""
    out: list[dict[str, Any]] = []
    view: dict[str, Any] = {}
    for content, _, _ in page.sent:
        if content["kind"] == "state":
            view = dict(content)
        elif content["kind"] == "delta":
            assert view and content["seq"] == view["seq"] + 1, "a delta the page could not apply"
            view = {**view, **content}
        else:
            continue
        out.append(view)
    return out


def shown(page: Page) -> dict[str, Any]:
    return views(page)[-1]


def row(view: dict[str, Any], price: float) -> dict[str, Any]:
    i = view["prices"].index(price)
    return {name: view[name][i] for name in ("bids", "asks", "buys", "sells")}


def settled(ladder: Any) -> bool:
    """Nothing waits to be sent, and what was sent is the ladder as it is now."""
    return not ladder._throttle.pending and ladder._shown == ladder.view()


def handlers(ctx: Any) -> tuple[int, int]:
    return ctx.event_bus.handler_count(), len(ctx.orders._observers)


def simulators_book(sim: Any, contract_id: str) -> dict[str, dict[float, int]]:
    """The depth the simulator last published: its book after the last trade, sized by that trade's minute."""
    market = sim.sim.market
    stamp = to_us(last_trade_time(sim, contract_id))
    book = market.book(contract_id, *market.last_trade(contract_id, stamp), stamp)
    return {name: {market.price(contract_id, p): s for p, s in side.levels}
            for name, side in (("bid", book.bids), ("ask", book.asks))}


def suites_book(ctx: Any) -> dict[str, dict[float, int]]:
    frame = ctx.orderbook.get_orderbook_snapshot(1000)
    return {side: {p: s for kind, p, s in frame.iter_rows() if kind == side} for side in ("bid", "ask")}


async def caught_up(sim: Any, ctx: Any) -> None:
    """Wait until the suite has the simulator's last trade and its book (the market stands still meanwhile)."""
    contract_id = ctx.instrument_info.id
    await until(lambda: ctx.data.bars.last_ts == last_trade_time(sim, contract_id)
                and suites_book(ctx) == simulators_book(sim, contract_id), "the suite to catch up with the simulator")


async def test_the_rows_are_the_books_sizes_and_the_book_is_the_simulators(sim) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        cid = mnq.instrument_info.id
        ladder = lab.ladder(mnq, levels=10)
        page = Page(ladder)
        page.say({"kind": "hello"})
        for _ in range(4):
            await sim.advance(20)
            await caught_up(sim, mnq)
            truth = simulators_book(sim, cid)
            await until(lambda: settled(ladder), "the ladder's last delta")
            view = shown(page)
            assert len(view["prices"]) == 21 and view["prices"] == sorted(view["prices"], reverse=True)
            assert all(b - a == pytest.approx(mnq.instrument_info.tick_size)
                       for a, b in zip(view["prices"][1:], view["prices"], strict=False))
            for i, price in enumerate(view["prices"]):
                assert (view["bids"][i], view["asks"][i]) == (truth["bid"].get(price, 0), truth["ask"].get(price, 0))
            best_bid, best_ask = max(truth["bid"]), min(truth["ask"])
            assert (view["best_bid"], view["best_ask"]) == (best_bid, best_ask)
            assert row(view, best_bid)["bids"] == truth["bid"][best_bid] > 0  # the inside market is on the ladder
            assert row(view, best_ask)["asks"] == truth["ask"][best_ask] > 0
            now = sim.sim.clock.now_us()
            ticks = sim.sim.market.ticks_between(cid, now - 60_000_000, now)
            assert view["last"] == sim.sim.market.price(cid, int(ticks.price[-1]))
            assert view["last_size"] == int(ticks.size[-1])
        ladder.close()


async def test_working_orders_show_at_their_price_and_go_when_cancelled(sim) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        tick = mnq.instrument_info.tick_size
        await sim.advance(10)
        await caught_up(sim, mnq)
        ladder = lab.ladder(mnq, levels=10)
        page = Page(ladder)
        page.say({"kind": "hello"})
        await until(lambda: settled(ladder) and shown(page)["best_bid"] is not None, "a ladder with a market")
        bid, ask = shown(page)["best_bid"], shown(page)["best_ask"]
        buy_at, sell_at = round(bid - 3 * tick, 2), round(ask + 2 * tick, 2)
        sent = len(page.sent)
        first = await mnq.orders.place_limit_order(OrderSide.BUY, 2, buy_at)
        second = await mnq.orders.place_limit_order(OrderSide.BUY, 1, buy_at)
        sell = await mnq.orders.place_limit_order(OrderSide.SELL, 1, sell_at)
        await until(lambda: settled(ladder) and len(shown(page)["orders"]) == 3, "three working orders shown")
        view = shown(page)
        assert row(view, buy_at) == {"bids": view["bids"][view["prices"].index(buy_at)], "asks": 0,
                                     "buys": 3, "sells": 0}
        assert row(view, sell_at)["sells"] == 1 and row(view, sell_at)["buys"] == 0
        assert sorted(view["orders"]) == sorted([[first.id, "buy", 2, buy_at], [second.id, "buy", 1, buy_at],
                                                 [sell.id, "sell", 1, sell_at]])
        assert sum(view["buys"]) == 3 and sum(view["sells"]) == 1  # nowhere else
        assert all(set(content) <= {"kind", "seq", "buys", "sells", "orders"}  # the market stood still: deltas carry
                   for content, _, _ in page.sent[sent:])  # only what the orders changed

        await mnq.orders.cancel_order(first)
        page.say({"kind": "cancel", "order_id": sell.id})  # the cancel button in the sell's orders cell
        await until(lambda: settled(ladder) and len(shown(page)["orders"]) == 1, "two orders gone")
        view = shown(page)
        assert view["orders"] == [[second.id, "buy", 1, buy_at]]
        assert row(view, buy_at)["buys"] == 1 and sum(view["sells"]) == 0
        assert mnq.orders.latest(sell.id).status.name == "CANCELLED"

        sent = len(page.sent)
        page.say({"kind": "cancel", "order_id": first.id})  # no longer working: refused, nothing reaches the wire
        page.say({"kind": "cancel", "order_id": "7"})
        assert [m[0] for m in page.sent[sent:]] == [
            {"kind": "notice", "text": f"order {first.id} is not working on the MNQ ladder"},
            {"kind": "notice", "text": "order '7' is not working on the MNQ ladder"}]
        await mnq.orders.cancel_order(second)
        await until(lambda: settled(ladder) and shown(page)["orders"] == [] and sum(shown(page)["buys"]) == 0,
                    "the last order gone")
        ladder.close()


async def test_the_average_price_is_marked_after_a_fill_and_cleared_when_flat(sim) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(10)
        await caught_up(sim, mnq)
        ladder = lab.ladder(mnq)
        page = Page(ladder)
        page.say({"kind": "hello"})
        assert page.sent[0][0]["avg"] is None
        await mnq.orders.place_market_order(OrderSide.BUY, 2)
        await until(lambda: mnq.positions.average_price is not None, "the buy filled")
        await until(lambda: settled(ladder) and shown(page)["avg"] == mnq.positions.average_price,
                    "the average price on the page")
        view = shown(page)
        tick = mnq.instrument_info.tick_size
        assert round(view["avg"] / tick) in {round(p / tick) for p in view["prices"]}  # its row is on the ladder
        await mnq.positions.close_position()
        await until(lambda: settled(ladder) and shown(page)["avg"] is None, "no average once flat")
        ladder.close()


@pytest.mark.parametrize(("centre", "last", "levels", "want"), [
    (None, 100, 10, 100),  # the first price centres the ladder
    (100, 107, 10, 100), (100, 93, 10, 100),  # three rows inside an edge: kept
    (100, 108, 10, 108), (100, 92, 10, 92),  # within two rows of an edge: re-centred on the last price
    (100, 140, 10, 140),  # off the ladder
    (100, 101, 1, 101), (100, 101, 2, 101), (100, 101, 3, 100), (100, 102, 3, 102),  # short ladders: less margin
])
def test_the_centre_moves_only_near_an_edge(centre, last, levels, want) -> None:
    assert centre_for(centre, last, levels) == want


async def test_the_ladder_recentres_with_hysteresis_as_the_market_moves(sim) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        tick = mnq.instrument_info.tick_size
        levels = 5
        reach = levels - min(EDGE_ROWS, levels // 2)  # how far the last price may move from the centre
        ladder = lab.ladder(mnq, levels=levels)
        page = Page(ladder)
        page.say({"kind": "hello"})
        for _ in range(40):  # a message after every 2 s of market: each moves the last price a tick or two
            await sim.advance(2)
            await caught_up(sim, mnq)
            await until(lambda: settled(ladder), "the ladder's last delta")
        moved = kept = 0
        previous = None
        for view in views(page):
            if not view["prices"]:
                continue
            centre, last = round(view["prices"][levels] / tick), round(view["last"] / tick)
            assert abs(last - centre) < reach  # never shown within two rows of an edge
            if previous is not None and last != previous[1]:
                if centre != previous[0]:
                    moved += 1
                    assert centre == last and abs(last - previous[0]) >= reach  # moved because it had to
                else:
                    kept += 1
            previous = centre, last
        assert moved >= 3 and kept >= 3  # it did re-centre, and not on every tick
        ladder.close()


async def test_deltas_are_coalesced_to_ten_a_second(sim) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        ladder = lab.ladder(mnq)
        page = TimedPage(ladder)
        page.say({"kind": "hello"})
        started = time.monotonic()
        trades = mnq.data.stats.counters["trades"]
        for _ in range(900):  # a quarter of an hour of market, as fast as the simulator pushes it
            await sim.advance(1)
        await caught_up(sim, mnq)
        await until(lambda: settled(ladder), "the last delta")
        trades = mnq.data.stats.counters["trades"] - trades
        elapsed = time.monotonic() - started
        deltas = page.of_kind("delta")
        assert 2 <= ladder.updates_sent == len(deltas) <= elapsed / INTERVAL + 2
        assert trades > 5 * len(deltas)  # many trades (and depth pushes) to a delta
        gaps = [b - a for a, b in zip(page.times[1:], page.times[2:], strict=False)]  # between deltas
        assert min(gaps) >= INTERVAL * 0.99
        assert all(set(d[0]) - {"kind", "seq"} for d in deltas)  # each delta changed something
        last = shown(page)
        late = Page(ladder)
        late.say({"kind": "hello"})
        [(state, _, _)] = late.sent
        assert state == {**last, "kind": "state"}  # a late view gets the same ladder, at the same seq
        ladder.close()


async def test_a_pick_stages_the_snapped_price_on_the_ticket_and_an_off_ladder_pick_is_refused(sim) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        tick = mnq.instrument_info.tick_size
        await sim.advance(10)
        await caught_up(sim, mnq)
        ladder = lab.ladder(mnq, levels=10)
        page = Page(ladder)
        page.say({"kind": "hello"})
        prices = page.sent[0][0]["prices"]
        page.say({"kind": "pick", "price": prices[3]})
        assert page.sent[-1][0] == {"kind": "notice",
                                    "text": "no ticket is linked to the MNQ ladder: ladder.link(ticket) first"}
        ticket = Recorder()
        ladder.link(ticket)
        page.say({"kind": "pick", "price": prices[3]})
        page.say({"kind": "pick", "price": prices[0] + tick * 0.3})  # between two ticks: the nearer one
        page.say({"kind": "pick", "price": prices[-1] - tick * 0.4})
        assert ticket.staged == [prices[3], prices[0], prices[-1]]
        sent = len(page.sent)
        for bad in (prices[0] + tick, prices[-1] - tick, prices[0] + 100, "20000", True, None, math.inf):
            page.say({"kind": "pick", "price": bad})
        notices = [m[0]["text"] for m in page.sent[sent:]]
        assert len(notices) == 7 and ticket.staged == [prices[3], prices[0], prices[-1]]
        assert notices[0] == f"{prices[0] + tick!r} is not on the MNQ ladder"
        assert notices[3] == "a picked price must be a finite number, got '20000'"
        assert ladder.pick(prices[10]) == prices[10] and ticket.staged[-1] == prices[10]
        with pytest.raises(InputError):
            ladder.pick(prices[0] + tick)
        with pytest.raises(InputError):
            ladder.link(object())
        ladder.link(Refusing())
        sent = len(page.sent)
        page.say({"kind": "pick", "price": prices[3]})
        ladder.link(Broken())
        page.say({"kind": "pick", "price": prices[3]})
        assert [m[0]["text"] for m in page.sent[sent:]] == [
            "the ticket has no account", f"the ticket could not stage {prices[3]!r}: lost its form"]
        other = Recorder()
        linked = lab.ladder(mnq, levels=3, ticket=other)
        assert linked.pick(linked.view()["prices"][6]) == linked.view()["prices"][6]  # no view yet: as it is now
        other.staged.clear()
        linked_page = Page(linked)
        linked_page.say({"kind": "hello"})
        linked_page.say({"kind": "pick", "price": linked_page.sent[0][0]["prices"][0]})
        assert other.staged == [linked_page.sent[0][0]["prices"][0]]
        linked.close()
        ladder.close()


async def test_closing_unsubscribes_everything_and_a_closed_ladder_sends_nothing(sim) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        before = handlers(mnq)
        ladder = lab.ladder(mnq)
        assert handlers(mnq) > before
        page = Page(ladder)
        page.say({"kind": "hello"})
        ladder.close()
        assert handlers(mnq) == before
        page.say({"kind": "hello"})
        trades = mnq.data.stats.counters["trades"]
        await sim.advance(30)
        await until(lambda: mnq.data.stats.counters["trades"] > trades, "trades after the close")
        assert [m[0]["kind"] for m in page.sent] == ["state"] and not ladder._throttle.pending


async def test_bad_arguments_are_refused_before_anything_is_subscribed(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        before = handlers(mnq)
        for kwargs in ({"levels": 0}, {"levels": 101}, {"levels": True}, {"levels": 2.5}, {"levels": "10"},
                       {"ticket": object()}, {"ticket": "ticket"}):
            with pytest.raises(InputError):
                lab.ladder(mnq, **kwargs)
        assert handlers(mnq) == before


async def test_without_the_orderbook_feature_the_ladder_shows_prices_and_the_quote_but_no_depth(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ladder = lab.ladder(mnq, levels=4)
        page = Page(ladder)
        page.say({"kind": "hello"})
        await sim.advance(20)
        await until(lambda: settled(ladder) and shown(page)["last"] == mnq.data.last_price
                    and shown(page)["best_bid"] == mnq.data.quote.best_bid, "the quote on the page")
        view = shown(page)
        assert len(view["prices"]) == 9 and set(view["bids"]) == set(view["asks"]) == {0}
        assert view["best_ask"] == mnq.data.quote.best_ask
        ladder.close()
