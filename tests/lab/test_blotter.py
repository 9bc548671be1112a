"""lab.blotter on the simulator, at the message level: rows against the exchange's own books, cancel and flatten
from the page (also from another thread), the day's realised P&L, lockouts, and what closing undoes."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCOUNT
from pages import Page, TimedPage
from pxkit import lab
from pxkit.client.orders import build_order_request
from pxkit.enums import ClosePositionError, ModifyOrderError, OrderSide, OrderType
from pxkit.errors import InputError
from pxkit.lab.blotting import INTERVAL, MAX_FILLS
from pxkit.sim import SimServer
from pxkit.sim.exchange import ExchangeError
from suites import open_suite
from waiting import until

CLOSE_PATH = "/api/Position/closeContract"


def exchange_books(sim: SimServer, suite) -> tuple[dict[str, int], dict[int, str]]:
    """What the simulator's exchange holds for the account: signed positions by symbol, working orders' symbols by
    id."""
    exchange = sim.sim.exchange
    symbol = {c.instrument_info.id: s for s, c in suite.contexts.items()}
    positions = {symbol[p.contract_id]: p.size for p in exchange.ledger.open_positions(ACCOUNT)}
    return positions, {o.id: symbol[o.contract_id] for o in exchange.open_orders(ACCOUNT)}


def shown(page: Page) -> dict[str, Any]:
    """The blotter as the page shows it now: the newest whole-blotter message."""
    return [m for m, _, _ in page.sent if m["kind"] in ("state", "update")][-1]


def told(page: Page, level: str, words: str) -> bool:
    """Whether the page shows a message of `level` that says `words`."""
    message = shown(page)["message"]
    return message is not None and message["level"] == level and words in message["text"]


def caught_up(suite, sim: SimServer) -> bool:
    """The suite's managers and account hold what the exchange holds (the hub pushes have arrived)."""
    positions, orders = exchange_books(sim, suite)
    return ({s: c.positions.size for s, c in suite.items() if c.positions.size} == positions
            and {o.id for c in suite.values() for o in c.orders.working()} == set(orders)
            and suite.account.balance == sim.sim.exchange.ledger.accounts[ACCOUNT].model().balance)


def handlers(suite) -> tuple[int, ...]:
    return (suite.event_bus.handler_count(), *(c.event_bus.handler_count() for c in suite.values()),
            *(len(c.positions._fill_listeners) for c in suite.values()))


def off_market(ctx, side: OrderSide, ticks: int = 80) -> float:
    """A limit price `ticks` away from the last trade, on the side that keeps the order resting."""
    tick = ctx.instrument_info.tick_size
    return ctx.data.last_price + (-ticks if side is OrderSide.BUY else ticks) * tick


async def open_book(suite, sim: SimServer) -> None:
    """MNQ long 1 through a native bracket (its stop and target legs working) plus a resting limit buy; ES short 2
    plus a resting limit sell; all seen by the suite."""
    mnq, es = suite["MNQ"], suite["ES"]
    await sim.advance(60)
    await until(lambda: mnq.data.last_price is not None and es.data.last_price is not None, "prices")
    await mnq.orders.place_bracket_order(OrderSide.BUY, 1, stop_offset=40, target_offset=60)
    await mnq.orders.place_limit_order(OrderSide.BUY, 1, off_market(mnq, OrderSide.BUY))
    await es.orders.place_market_order(OrderSide.SELL, 2)
    await es.orders.place_limit_order(OrderSide.SELL, 1, off_market(es, OrderSide.SELL))
    await until(lambda: caught_up(suite, sim) and len(exchange_books(sim, suite)[1]) == 4, "the book at the suite")


async def test_rows_are_the_exchanges_positions_orders_and_fills(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        await open_book(suite, sim)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        [(state, _, _)] = page.sent
        positions, orders = exchange_books(sim, suite)
        assert positions == {"MNQ": 1, "ES": -2}
        assert {p["symbol"]: p["size"] for p in state["positions"]} == positions
        ledger = sim.sim.exchange.ledger
        for row in state["positions"]:
            ctx = suite[row["symbol"]]
            held = ledger.positions[(ACCOUNT, ctx.instrument_info.id)]
            assert row["avg_price"] == pytest.approx(held.average_ticks * ctx.instrument_info.tick_size)
            assert row["pnl"] == ctx.positions.unrealized_pnl() and row["last"] == ctx.data.last_price
        assert {o["id"]: o["symbol"] for o in state["orders"]} == orders
        exchange_orders = sim.sim.exchange.orders
        legs = {o["id"]: o["leg"] for o in state["orders"]}
        assert sorted(legs.values()) == ["", "", "stop", "target"]
        for row in state["orders"]:
            at_exchange = exchange_orders[row["id"]]
            assert (row["side"], row["size"]) == (at_exchange.side.name.lower(), at_exchange.size)
            assert (row["leg"] != "") == (at_exchange.parent is not None)  # the exchange's own bracket link
            assert row["leg"] != "stop" or (row["type"] == "stop" and row["stop"] is not None)
            assert row["leg"] != "target" or (row["type"] == "limit" and row["price"] is not None)
        assert [f["id"] for f in state["fills"]] == [t.id for t in reversed(ledger.trades)]
        assert state["account"]["balance"] == ledger.accounts[ACCOUNT].model().balance == suite.account.balance
        assert state["realized"]["scope"] == "session" and state["lockouts"] == [] and state["busy"] is False
        assert state["message"] is None
        blotter.close()


async def test_updates_follow_the_events_at_ten_a_second_at_most(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(30)
        blotter = lab.blotter(suite)
        page = TimedPage(blotter)
        await mnq.orders.place_market_order(OrderSide.BUY, 1)
        await until(lambda: mnq.positions.size == 1, "the buy filled")
        assert page.sent == [] and blotter.updates_sent == 0  # nothing before a view says hello
        page.say({"kind": "hello"})
        started = time.monotonic()
        price = off_market(mnq, OrderSide.BUY)
        for step in range(10):  # a burst of orders, each pushed as it changes
            await mnq.orders.place_limit_order(OrderSide.BUY, 1, price - step * mnq.instrument_info.tick_size)
        await until(lambda: len(shown(page)["orders"]) == 10, "ten working orders on the page")
        await sim.advance(5)  # prices move: the open P&L follows
        await until(lambda: shown(page)["positions"][0]["pnl"] == mnq.positions.unrealized_pnl()
                    and not blotter._throttle.pending, "the open P&L at the last price")
        elapsed = time.monotonic() - started
        updates = page.of_kind("update")
        assert 2 <= blotter.updates_sent == len(updates) <= elapsed / INTERVAL + 2
        gaps = [later - earlier for earlier, later in itertools.pairwise(page.times[1:])]  # between updates
        assert min(gaps) >= INTERVAL * 0.99  # loop time: a timer may fire a clock tick early
        assert [u[0]["seq"] for u in updates] == list(range(1, len(updates) + 1))
        assert all(a[0] != b[0] for a, b in itertools.pairwise(updates))  # each says something new
        blotter.close()


async def test_open_pnl_follows_prices_at_two_a_second_at_most(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(30)
        await mnq.orders.place_market_order(OrderSide.SELL, 2)
        await until(lambda: caught_up(suite, sim) and mnq.positions.size == -2, "the sell filled")
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        started = time.monotonic()

        async def market() -> None:  # only prices move: no order, position, fill or account event
            while True:
                await sim.advance(0.25)

        moving = asyncio.create_task(market())
        await until(lambda: blotter.updates_sent >= 4, "open P&L updates as prices move")
        moving.cancel()
        elapsed = time.monotonic() - started
        assert blotter.updates_sent <= elapsed / 0.5 + 1
        updates = [m for m, _, _ in page.of_kind("update")]
        state = page.of_kind("state")[0][0]
        for update in updates:  # only the position's last price and P&L moved
            assert {k: v for k, v in update.items() if k not in ("kind", "seq", "positions")} == \
                {k: v for k, v in state.items() if k not in ("kind", "seq", "positions")}
            [row] = update["positions"]
            assert row["size"] == -2 and row["pnl"] == round((row["avg_price"] - row["last"]) / 0.25 * 0.5 * 2, 2)
        assert len({u["positions"][0]["pnl"] for u in updates}) > 1
        blotter.close()


async def test_a_cancel_from_the_page_cancels_at_the_exchange(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        await open_book(suite, sim)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        target = next(o for o in shown(page)["orders"] if o["symbol"] == "ES")
        page.say({"kind": "cancel", "order_id": target["id"]})
        await until(lambda: target["id"] not in exchange_books(sim, suite)[1], "the order cancelled at the exchange")
        await until(lambda: (shown(page)["message"] or {}).get("level") == "ok"
                    and all(o["id"] != target["id"] for o in shown(page)["orders"]), "the page told")
        assert str(target["id"]) in shown(page)["message"]["text"]
        assert shown(page)["message"]["order_id"] == target["id"]  # the page re-enables only that order's button
        assert len(exchange_books(sim, suite)[1]) == 3  # only that one
        blotter.close()


async def test_bad_cancels_are_refused_with_a_message_and_never_reach_the_gateway(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        before = len(sim.requests)
        for order_id in ("7000001", True, None, 1.5, 424242):
            page.say({"kind": "cancel", "order_id": order_id})
            words = repr(order_id)
            await until(lambda words=words: told(page, "error", words), f"the refusal of {words}")
        page.say({"kind": "nonsense"})
        await until(lambda: told(page, "error", "'nonsense'"), "the unknown request refused")
        assert [r.path for r in sim.requests[before:] if "Order" in r.path or "Position" in r.path] == []
        blotter.close()


async def test_flatten_all_leaves_the_exchange_flat_on_every_instrument_and_runs_once(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        await open_book(suite, sim)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        before = len(sim.requests)
        page.say({"kind": "flatten"})
        assert blotter.busy
        page.say({"kind": "flatten"})  # a second click while it runs starts nothing
        await until(lambda: exchange_books(sim, suite) == ({}, {}), "no position and no working order left")
        await until(lambda: not blotter.busy and shown(page)["message"]["level"] == "ok", "the outcome on the page")
        assert [r.path for r in sim.requests[before:]].count(CLOSE_PATH) == 2  # one flatten: one close each
        text = shown(page)["message"]["text"]
        assert text.startswith("flat:") and "MNQ" in text and "ES" in text
        assert any(m["busy"] for m, _, _ in page.of_kind("update"))  # the page saw it running
        await until(lambda: caught_up(suite, sim) and shown(page)["positions"] == [] == shown(page)["orders"]
                    and not blotter._throttle.pending, "the page flat too")
        assert shown(page)["busy"] is False
        late = Page(blotter)  # a reloaded page: everything, the outcome included, in its one state message
        late.say({"kind": "hello"})
        [(state, _, _)] = late.sent
        assert {**state, "kind": "update"} == shown(page) and state["message"]["text"] == text
        blotter.close()


async def test_flatten_said_from_another_thread_is_done_by_the_loop_while_a_cell_awaits(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        await open_book(suite, sim)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        done_on: list[str] = []

        def subshell() -> None:  # a comm callback on a kernel subshell: hand over, never block
            page.say({"kind": "flatten"})
            done_on.append(threading.current_thread().name)

        thread = threading.Thread(target=subshell, name="subshell")
        thread.start()
        thread.join(5)
        assert done_on == ["subshell"] and not blotter.busy  # delivered; nothing was done on that thread
        # the kernel's main thread is in a cell awaiting something else; the loop flattens meanwhile
        await until(lambda: exchange_books(sim, suite) == ({}, {}), "flat at the exchange")
        await until(lambda: shown(page)["message"] is not None and not shown(page)["busy"], "the outcome")
        assert shown(page)["message"]["level"] == "ok"
        assert {sender for _, _, sender in page.sent} == {threading.current_thread().name}
        blotter.close()


async def test_a_failed_instrument_is_named_with_its_reason_and_the_others_are_still_flattened(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        await open_book(suite, sim)
        es_id = suite["ES"].instrument_info.id
        exchange = sim.sim.exchange
        close = exchange.close_position

        def refuse_es(account_id: int, contract_id: str, size: int | None = None) -> None:  # the injected fault
            if contract_id == es_id:
                raise ExchangeError(ClosePositionError.CONTRACT_NOT_ACTIVE, "ES is halted")
            close(account_id, contract_id, size)

        exchange.close_position = refuse_es
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        page.say({"kind": "flatten"})
        await until(lambda: not blotter.busy and shown(page)["message"] is not None, "the outcome")
        message = shown(page)["message"]
        assert message["level"] == "error" and message["text"].startswith("flatten failed on ES:")
        assert "halted" in message["text"] and "MNQ done" in message["text"]
        assert exchange_books(sim, suite) == ({"ES": -2}, {})  # what the message says: ES is still held
        blotter.close()


async def test_a_failed_cancel_still_closes_that_instruments_position_and_is_named(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        await open_book(suite, sim)
        mnq_id = suite["MNQ"].instrument_info.id
        exchange = sim.sim.exchange
        cancel = exchange.cancel

        def refuse_mnq(account_id: int, order_id: int) -> None:  # the injected fault
            if exchange.orders[order_id].contract_id == mnq_id:
                raise ExchangeError(ModifyOrderError.UNKNOWN_ERROR, "MNQ cancels are down")
            cancel(account_id, order_id)

        exchange.cancel = refuse_mnq
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        page.say({"kind": "flatten"})
        await until(lambda: not blotter.busy and shown(page)["message"] is not None, "the outcome")
        positions, orders = exchange_books(sim, suite)
        assert positions == {}  # the close was tried although the cancel failed: MNQ is flat too
        assert orders and set(orders.values()) == {"MNQ"}  # what the message says: MNQ's orders still work
        message = shown(page)["message"]
        assert message["level"] == "error" and message["text"].startswith("flatten failed on MNQ: the cancel raised")
        assert "cancels are down" in message["text"] and "ES done" in message["text"]
        assert "closed MNQ, ES" in message["text"] and "the close raised" not in message["text"]
        blotter.close()


async def test_the_days_realised_pnl_and_balance_after_a_round_trip_are_the_suites(sim, tmp_path: Path) -> None:
    risk = {"db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], features=["risk_manager"], risk=risk) as suite:
        mnq = suite["MNQ"]
        await sim.advance(30)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        await mnq.orders.place_market_order(OrderSide.BUY, 3)
        await until(lambda: mnq.positions.size == 3, "the buy filled")
        await sim.advance(120)
        await mnq.positions.close_position()
        ledger = sim.sim.exchange.ledger
        await until(lambda: len(shown(page)["fills"]) == 2 and shown(page)["positions"] == []
                    and shown(page)["account"]["balance"] == ledger.accounts[ACCOUNT].model().balance,
                    "the round trip shown")
        realized = shown(page)["realized"]
        at_exchange = sum(t.profit_and_loss or 0.0 for t in ledger.trades)
        assert realized["scope"] == "day"
        assert (realized["value"], realized["fees"]) == suite.risk.daily_realized()
        assert realized["value"] == pytest.approx(at_exchange) == suite.portfolio.get_portfolio_pnl().realized
        assert realized["value"] != 0
        assert shown(page)["account"]["balance"] == pytest.approx(50_000 + at_exchange - realized["fees"])
        blotter.close()


async def test_a_risk_lockout_is_shown_with_its_reason(sim, tmp_path: Path) -> None:
    risk = {"max_position_size": 1, "lockout_minutes": 30, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], features=["risk_manager"], risk=risk) as suite:
        mnq = suite["MNQ"]
        await sim.advance(30)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        assert shown(page)["lockouts"] == []
        # another client on the account buys past the limit (the risk manager only sees it arrive)
        sim.sim.exchange.place(build_order_request(mnq.instrument_info, ACCOUNT, OrderSide.BUY, 3, OrderType.MARKET))
        await until(lambda: shown(page)["lockouts"], "the lockout on the page", timeout=15)
        [lockout] = shown(page)["lockouts"]
        assert lockout["until"] == int(suite.risk.lockout().timestamp() * 1000)
        assert lockout["reason"] == f"position of 3 contracts in {mnq.instrument_info.id} exceeds the limit 1"
        await until(lambda: [p["size"] for p in shown(page)["positions"]] == [1]
                    == list(exchange_books(sim, suite)[0].values()), "the position cut to the limit by risk")
        blotter.close()


async def test_fills_are_the_newest_fifty_newest_first(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        await sim.advance(30)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        for i in range(MAX_FILLS // 2 + 3):  # 56 fills
            await mnq.orders.place_market_order(OrderSide.BUY if i % 2 == 0 else OrderSide.SELL, 1)
            await mnq.orders.place_market_order(OrderSide.SELL if i % 2 == 0 else OrderSide.BUY, 1)
        trades = sim.sim.exchange.ledger.trades
        await until(lambda: shown(page)["fills"] and shown(page)["fills"][0]["id"] == trades[-1].id, "the last fill")
        assert [f["id"] for f in shown(page)["fills"]] == [t.id for t in reversed(trades)][:MAX_FILLS]
        blotter.close()


async def test_close_unsubscribes_everything_and_sends_nothing_more(sim) -> None:
    async with open_suite(sim, ["MNQ", "ES"]) as suite:
        before = handlers(suite)
        blotter = lab.blotter(suite)
        page = Page(blotter)
        page.say({"kind": "hello"})
        assert all(after > was for after, was in zip(handlers(suite), before, strict=True))
        blotter.close()
        assert handlers(suite) == before
        assert blotter._ticker is None and not blotter._throttle.pending
        sent = len(page.sent)
        await suite["MNQ"].orders.place_market_order(OrderSide.BUY, 1)
        await until(lambda: suite["MNQ"].positions.size == 1, "a fill after the close")
        page.say({"kind": "flatten"})
        await sim.advance(2)
        assert len(page.sent) == sent and blotter.updates_sent == 0 and not blotter.busy


async def test_bad_arguments_are_refused(sim) -> None:
    with pytest.raises(InputError):
        lab.blotter("MNQ")
    async with open_suite(sim, ["MNQ"]) as suite:
        pass
    with pytest.raises(InputError, match="closed"):
        lab.blotter(suite)
