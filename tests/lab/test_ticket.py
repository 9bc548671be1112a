"""lab.ticket on the simulator, at the message level: review, confirm, send, the order's fate, what closing undoes."""

from __future__ import annotations

import time

import pytest

from pages import Page
from pxkit import ProjectXConfig, lab
from pxkit.enums import OrderStatus, OrderType
from pxkit.errors import InputError
from pxkit.lab import ticketing
from pxkit.lab.ticketing import INTERVAL
from suites import open_suite
from waiting import until

PLACE = "/api/Order/place"


def places(sim) -> int:
    """Order/place requests the simulator received."""
    return sum(1 for r in sim.requests if r.path == PLACE)


def opened(ticket) -> Page:
    page = Page(ticket)
    page.say({"kind": "hello"})
    return page


def review(page: Page, **fields) -> dict:
    """Say "review" with the fields as the page types them; the answer (confirm or error)."""
    form = {"side": "buy", "size": "1", "type": "market", "price": None, "stop_ticks": "", "target_ticks": ""}
    before = len(page.sent)
    page.say({"kind": "review", **form, **fields})
    [(answer, _, _)] = page.sent[before:]
    return answer


async def settled(page: Page, ticket, stage: str) -> dict:
    """The last status message once the ticket reached `stage`."""
    await until(lambda: ticket.step == stage and page.of_kind("status")
                and page.of_kind("status")[-1][0]["stage"] == stage, f"the ticket at {stage}")
    return page.of_kind("status")[-1][0]


async def test_bad_input_is_refused_in_the_ticket_and_never_reaches_the_wire(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        last = mnq.data.last_price
        sent, orders = places(sim), len(sim.sim.exchange.orders)
        bad = {
            "size 0": ({"size": "0"}, "size"),
            "size 1.5": ({"size": 1.5}, "whole"),
            "size text": ({"size": "two"}, "size"),
            "no side": ({"side": "up"}, "side"),
            "no type": ({"type": "iceberg"}, "type"),
            "limit without price": ({"type": "limit", "price": ""}, "needs a price"),
            "stop without price": ({"type": "stop", "price": None}, "needs a price"),
            "off the grid": ({"type": "limit", "price": str(last + 0.1)}, "tick grid"),
            "negative price": ({"type": "limit", "price": "-5"}, "positive"),
            "stop 0 ticks": ({"stop_ticks": "0"}, "bracket stop"),
            "target 2.5 ticks": ({"target_ticks": "2.5"}, "bracket target"),
            "buy stop under the market": ({"type": "stop", "price": str(last - 5)}, "above the last price"),
            "sell stop over the market": ({"side": "sell", "type": "stop", "price": str(last + 5)}, "below"),
            "join bid selling": ({"side": "sell", "type": "join_bid"}, "choose buy"),
            "bracket on a join": ({"type": "join_ask", "side": "sell", "stop_ticks": "4"}, "bracket"),
        }
        for name, (fields, words) in bad.items():
            answer = review(page, **fields)
            assert answer["kind"] == "error" and answer["stage"] == "edit", name
            assert words in answer["message"], (name, answer["message"])
            assert ticket.step == "edit" and ticket.message == answer["message"]
        page.say({"kind": "send", "token": None})  # nothing was confirmed: nothing to send
        page.say({"kind": "send", "token": "made-up"})
        assert places(sim) == sent and len(sim.sim.exchange.orders) == orders
        assert ticket.step == "edit" and ticket.status is None
        ticket.close()


async def test_a_market_order_is_confirmed_then_sent_and_its_fill_shown(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        [(state, _, _)] = page.sent
        assert (state["kind"], state["stage"], state["symbol"], state["tick_size"], state["decimals"]) == (
            "state", "edit", "MNQ", 0.25, 2)
        assert state["form"]["type"] == "market" and state["price"]["last"] == mnq.data.last_price
        sent = places(sim)
        confirm = review(page, size="2")
        assert confirm["kind"] == "confirm" and ticket.step == "confirm" and places(sim) == sent
        assert confirm["summary"].startswith("BUY 2 MNQ at market")
        assert confirm["risk_usd"] is None and "no stop" in confirm["risk_text"]
        page.say({"kind": "send", "token": confirm["token"]})
        assert page.of_kind("status")[0][0]["stage"] == "sending"
        status = await settled(page, ticket, "done")
        [row] = status["orders"]
        truth = sim.sim.exchange.orders[status["order_id"]]
        assert truth.status is OrderStatus.FILLED and truth.type is OrderType.MARKET and truth.size == 2
        assert (row["role"], row["status"], row["filled"], row["side"]) == ("order", "filled", 2, "buy")
        assert row["fill_price"] == pytest.approx(truth.fill_value / 2 * 0.25)
        assert ticket.order_id == status["order_id"] and places(sim) == sent + 1
        late = opened(ticket)  # a reload shows where the ticket is and the last order's status
        [(again, _, _)] = late.sent
        assert again["stage"] == "done" and again["status"]["order_id"] == status["order_id"]
        assert again["form"]["size"] == "2" and again["confirm"] is None
        ticket.close()


async def test_a_bracket_shows_its_risk_then_its_entry_and_both_legs(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        confirm = review(page, side="sell", size="3", stop_ticks="8", target_ticks="16")
        assert confirm["kind"] == "confirm"
        assert confirm["risk_usd"] == 8 * mnq.instrument_info.tick_value * 3 == 12.0
        assert confirm["risk_text"] == "8 ticks \u00d7 $0.50 \u00d7 3 = $12.00"
        assert "stop 8 ticks (2.00) above the fill" in confirm["summary"]
        assert "target 16 ticks (4.00) below the fill" in confirm["summary"]
        page.say({"kind": "send", "token": confirm["token"]})
        status = await settled(page, ticket, "working")  # filled, its legs live
        await until(lambda: len(ticket.status["orders"]) == 3 and all(r["id"] for r in ticket.status["orders"]),
                    "the legs on the page")
        status = ticket.status
        entry, stop, target = status["orders"]
        assert [r["role"] for r in status["orders"]] == ["entry", "stop", "target"]
        assert entry["status"] == "filled" and stop["status"] == target["status"] == "working"
        legs = {o.id: o for o in sim.sim.exchange.orders.values() if o.parent == entry["id"]}
        assert set(legs) == {stop["id"], target["id"]}
        assert stop["price"] == pytest.approx(entry["fill_price"] + 2.0, abs=0.25)
        assert target["price"] == pytest.approx(entry["fill_price"] - 4.0, abs=0.25)
        assert (stop["type"], target["type"], stop["side"], stop["size"]) == ("stop", "limit", "buy", 3)
        await mnq.orders.close_position()  # the gateway cancels the legs: nothing is live, the ticket is done
        status = await settled(page, ticket, "done")
        assert [r["status"] for r in status["orders"]] == ["filled", "cancelled", "cancelled"]
        ticket.close()


async def test_a_resting_bracket_waits_for_its_fill_and_a_cancelled_entry_places_no_legs(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        low = mnq.instrument_info.round_price(mnq.data.last_price - 25)
        confirm = review(page, type="limit", price=f"{low:.2f}", stop_ticks="6")
        assert confirm["risk_usd"] == 3.0 and confirm["summary"].endswith("bracket: stop 6 ticks (1.50) below the fill")
        page.say({"kind": "send", "token": confirm["token"]})
        await until(lambda: ticket.status and ticket.status["orders"] and ticket.status["orders"][0]["status"]
                    == "working", "the resting entry")
        entry, stop = ticket.status["orders"]
        assert ticket.step == "working" and (stop["role"], stop["status"], stop["id"]) == ("stop", "pending", None)
        assert sim.sim.exchange.orders[entry["id"]].brackets[0].ticks == -6  # the leg rides on the entry
        await mnq.orders.cancel_order(entry["id"])
        status = await settled(page, ticket, "done")
        assert [r["status"] for r in status["orders"]] == ["cancelled", "unplaced"]
        assert status["message"] == "" and "the entry ended unfilled" in status["text"]
        ticket.close()


async def test_an_order_the_gateway_rejects_shows_its_reason(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        ticket = lab.ticket(suite["MNQ"])
        page = opened(ticket)
        confirm = review(page, size="400")  # the client lets it through; the account's margin cannot carry it
        orders = len(sim.sim.exchange.orders)
        page.say({"kind": "send", "token": confirm["token"]})
        status = await settled(page, ticket, "error")
        assert status["message"].startswith("rejected by the gateway: needs $")
        assert "margin, balance is $" in status["message"] and "(error code" in status["message"]
        assert ticket.message == status["message"] and "fail" not in status["message"]
        assert len(sim.sim.exchange.orders) == orders
        page.say({"kind": "back"})
        assert ticket.step == "edit" and review(page)["kind"] == "confirm"  # the next order can be made
        ticket.close()


async def test_an_order_the_risk_rules_refuse_shows_the_rule_and_is_not_sent(sim, tmp_path) -> None:
    risk = {"max_position_size": 2, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], features=["risk_manager"], risk=risk) as suite:
        ticket = lab.ticket(suite["MNQ"])
        page = opened(ticket)
        sent = places(sim)
        confirm = review(page, size="3", stop_ticks="4")
        page.say({"kind": "send", "token": confirm["token"]})
        status = await settled(page, ticket, "error")
        assert status["message"].startswith("refused by the risk rules, nothing was sent: order refused (BUY 3")
        assert status["message"].endswith("position of 3 contracts in CON.F.US.MNQ.H26 exceeds the limit 2")
        assert status["order_id"] is None and status["orders"] == []
        assert places(sim) == sent
        ticket.close()


async def test_stops_trailing_stops_and_joins_reach_the_simulator_as_reviewed(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        contract = mnq.instrument_info
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        last = contract.to_ticks(mnq.data.last_price)
        high, low = (last + 40) * 0.25, (last - 12) * 0.25
        cases = [({"type": "stop", "price": f"{high:.2f}"}, OrderType.STOP, "stop", last + 40),
                 ({"type": "trailing_stop", "side": "sell", "price": f"{low:.2f}"}, OrderType.TRAILING_STOP,
                  "trail", 12),
                 ({"type": "join_bid"}, OrderType.JOIN_BID, "limit", None),
                 ({"type": "join_ask", "side": "sell"}, OrderType.JOIN_ASK, "limit", None)]
        for fields, kind, where, ticks in cases:
            confirm = review(page, **fields)
            assert confirm["kind"] == "confirm", confirm
            page.say({"kind": "send", "token": confirm["token"]})
            status = await settled(page, ticket, "working")
            order = sim.sim.exchange.orders[status["order_id"]]
            assert order.type is kind and order.status.is_working, fields
            if ticks is not None:
                assert getattr(order, where) == ticks, fields
            else:
                assert order.limit is not None
            page.say({"kind": "back"})
        assert "trailing 12 ticks (3.00) behind the market" in page.of_kind("confirm")[1][0]["summary"]
        assert page.of_kind("confirm")[2][0]["summary"].startswith("BUY 1 MNQ joining the best bid")
        await mnq.orders.cancel_all_orders()
        ticket.close()


async def test_a_double_click_sends_one_order(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        low = mnq.instrument_info.round_price(mnq.data.last_price - 25)
        confirm = review(page, type="limit", price=str(low))
        assert confirm["summary"] == f"BUY 1 MNQ limit {low:,.2f}"
        before = set(sim.sim.exchange.orders)
        page.say({"kind": "send", "token": confirm["token"]})
        page.say({"kind": "send", "token": confirm["token"]})  # the second click, before any answer
        status = await settled(page, ticket, "working")
        page.say({"kind": "send", "token": confirm["token"]})  # and once the order is working
        await until(lambda: ticket.status["orders"][0]["status"] == "working", "the resting order")
        new = [o for i, o in sim.sim.exchange.orders.items() if i not in before]
        assert [(o.id, o.limit) for o in new] == [(status["order_id"], mnq.instrument_info.to_ticks(low))]
        assert len(page.of_kind("status")) >= 1 and ticket.step == "working"
        await mnq.orders.cancel_order(status["order_id"])
        status = await settled(page, ticket, "done")
        assert status["orders"][0]["status"] == "cancelled"
        ticket.close()


async def test_stage_puts_a_limit_on_the_tick_grid_and_expires_the_confirm(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        confirm = review(page, size="2")
        price = mnq.instrument_info.round_price(mnq.data.last_price - 30)
        ticket.stage(price + 0.1)  # the ladder's click, off the grid
        [(staged, _, _)] = page.of_kind("staged")
        assert staged["stage"] == "edit" and ticket.step == "edit"
        assert staged["form"]["type"] == "limit" and staged["form"]["price"] == price
        assert staged["form"]["size"] == "2"  # the rest of the form is kept
        sent = places(sim)
        page.say({"kind": "send", "token": confirm["token"]})  # the confirm made before the edit
        assert places(sim) == sent and ticket.step == "edit" and not page.of_kind("status")
        ticket.stage(price, side="sell")
        assert page.of_kind("staged")[-1][0]["form"]["side"] == "sell"
        page = opened(ticket)  # a second view (the comm's far end from now on) shows the staged order
        assert page.sent[0][0]["form"]["price"] == price and page.sent[0][0]["stage"] == "edit"
        with pytest.raises(InputError):
            ticket.stage(-1.0)
        ticket.review(side="sell", size=1, type="limit", price=price + 60)  # Python's path is the page's
        [(confirm, _, _)] = page.sent[1:]
        assert confirm["summary"] == f"SELL 1 MNQ limit {price + 60:,.2f}" and ticket.step == "confirm"
        ticket.submit(confirm["token"])
        status = await settled(page, ticket, "working")
        order = sim.sim.exchange.orders[status["order_id"]]
        assert (order.type, order.limit, order.size) == (OrderType.LIMIT, mnq.instrument_info.to_ticks(price + 60), 1)
        await mnq.orders.cancel_order(order.id)
        await settled(page, ticket, "done")
        ticket.close()


async def test_a_slow_answer_says_the_order_may_be_live_then_shows_it(sim, monkeypatch) -> None:
    monkeypatch.setattr(ticketing, "SLOW_ANSWER", 0.2)
    async with open_suite(sim, ["MNQ"]) as suite:
        ticket = lab.ticket(suite["MNQ"])
        page = opened(ticket)
        confirm = review(page)
        sim.faults.add_latency(1.0)
        page.say({"kind": "send", "token": confirm["token"]})
        await until(lambda: "no answer" in ticket.status["text"], "the slow answer noted")
        assert ticket.step == "sending" and ticket.status["outcome"] == "sending"
        assert "the order may be live; do not send it again" in ticket.status["text"]
        page.say({"kind": "back"})  # the user moves on while the answer is awaited
        refused = review(page)
        assert refused["kind"] == "error" and "still being sent" in refused["message"]
        page.say({"kind": "back"})
        sim.faults.add_latency(0)
        await until(lambda: ticket.status["outcome"] == "done", "the fill")
        assert ticket.step == "edit" and ticket.status["orders"][0]["status"] == "filled"  # shown, stage kept
        assert page.of_kind("status")[-1][0]["stage"] == "edit"
        ticket.close()


async def test_a_send_whose_answer_is_lost_says_the_fate_is_unknown_then_follows_the_order(sim) -> None:
    """The gateway places the order, its answer is lost and the tag look-up fails: the ticket never says failed,
    and as the user hub has shown the order with that tag, the ticket follows it."""
    config = ProjectXConfig.for_simulator(sim.base_url, retry_attempts=2, retry_base_delay=0.01,
                                          retry_max_delay=0.02, breaker_failure_threshold=100)
    async with open_suite(sim, ["MNQ"], config=config) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        low = mnq.instrument_info.round_price(mnq.data.last_price - 25)
        confirm = review(page, type="limit", price=str(low))
        exchange = sim.sim.exchange
        place = exchange.place

        def placed_then_lost(request):  # the far side: the order is placed, then the gateway stops answering
            order_id = place(request)
            sim.faults.lose_next_responses(1, PLACE)
            sim.faults.reject_next(100, 503)  # every look-up of its tag
            return order_id

        exchange.place = placed_then_lost
        page.say({"kind": "send", "token": confirm["token"]})
        status = await settled(page, ticket, "working")  # it showed up on the user hub: followed
        exchange.place = place
        sim.faults.clear()
        [unknown] = [m for m, _, _ in page.of_kind("status") if m["stage"] == "unknown"]
        assert unknown["message"].startswith("fate unknown: the order may be live (tag pxkit-")
        assert "OrderStateUnknownError" in unknown["message"] and "failed" not in unknown["message"].split("(")[0]
        [order] = [o for o in exchange.orders.values() if o.limit == mnq.instrument_info.to_ticks(low)]
        assert unknown["message"].startswith(f"fate unknown: the order may be live (tag {order.custom_tag})")
        assert status["order_id"] == order.id == ticket.order_id and status["orders"][0]["status"] == "working"
        await mnq.orders.cancel_order(order.id)
        status = await settled(page, ticket, "done")
        assert status["orders"][0]["status"] == "cancelled"
        ticket.close()


async def test_the_live_price_reaches_the_page_at_ten_a_second_at_most(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        ticket = lab.ticket(mnq)
        page = opened(ticket)
        started = time.monotonic()
        for _ in range(60):
            await sim.advance(1)
        await until(lambda: page.of_kind("price") and page.of_kind("price")[-1][0]["last"] == mnq.data.last_price
                    and not ticket._throttle.pending, "the last price on the page")
        elapsed = time.monotonic() - started
        assert 2 <= ticket.prices_sent == len(page.of_kind("price")) <= elapsed / INTERVAL + 2
        bid, ask = mnq.book_top()
        assert page.of_kind("price")[-1][0] == {"kind": "price", "last": mnq.data.last_price, "bid": bid, "ask": ask}
        ticket.close()


async def test_closing_unsubscribes_everything_and_nothing_is_sent_after(sim) -> None:
    async with open_suite(sim, ["MNQ"]) as suite:
        mnq = suite["MNQ"]
        before = mnq.event_bus.handler_count()
        ticket = lab.ticket(mnq)
        assert mnq.event_bus.handler_count() > before
        page = opened(ticket)
        low = mnq.instrument_info.round_price(mnq.data.last_price - 25)
        confirm = review(page, type="limit", price=str(low))
        page.say({"kind": "send", "token": confirm["token"]})
        await settled(page, ticket, "working")
        ticket.close()
        assert mnq.event_bus.handler_count() == before
        count = len(page.sent)
        await mnq.orders.cancel_all_orders()
        await sim.advance(5)
        await until(lambda: not mnq.orders.working(), "the cancel")
        assert len(page.sent) == count and not ticket._throttle.pending
        assert isinstance(ticket, lab.Ticket) and repr(ticket).startswith("Ticket(MNQ")
