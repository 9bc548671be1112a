"""OrderManager against the simulated gateway over real sockets: every order type, fills, brackets, bus events."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import timedelta

import pytest

from conftest import ACCOUNT, LOCKED_ACCOUNT, MNQ
from pxkit.enums import OrderSide, OrderStatus, OrderType, UserAction
from pxkit.errors import InputError, OrderEndedError, OrderRejectedError, UnprotectedPositionError
from pxkit.events import EventBus, EventType
from pxkit.instrument.orders import OrderManager
from pxkit.messages import OrderPushed

ES = "CON.F.US.EP.H26"
PLACED, FILLED, PARTIAL = EventType.ORDER_PLACED, EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL
CANCELLED, MODIFIED = EventType.ORDER_CANCELLED, EventType.ORDER_MODIFIED
ORDER_EVENTS = (PLACED, FILLED, PARTIAL, CANCELLED, MODIFIED, EventType.ORDER_REJECTED)


async def test_market_order_fills_on_placement_and_its_handle_follows_the_hub(trading):
    handle = await trading.orders.place_market_order(OrderSide.BUY, 2)
    order = await handle.wait_filled(timeout=5)
    truth = trading.sim_order(handle.id)
    assert (order.status, order.type, order.side, order.size, order.fill_volume) == (
        OrderStatus.FILLED, OrderType.MARKET, OrderSide.BUY, 2, 2)
    assert handle.filled_price == order.filled_price == pytest.approx(truth.fill_value / 2 * 0.25)
    assert handle.done and handle.status is OrderStatus.FILLED and handle.fill_volume == 2
    assert trading.of(*ORDER_EVENTS, order_id=handle.id) == [PLACED, FILLED]
    event = next(e for e in trading.events if e.type is FILLED)
    assert (event.source, event.data, event.timestamp) == ("MNQ", order, order.update_timestamp)
    assert trading.orders.latest(handle.id) == order and trading.orders.working() == []


async def test_a_handle_made_after_the_pushes_starts_from_their_latest_state(trading):
    placed = await trading.px.place_order(MNQ, "sell", 1)  # around the manager: it only sees the hub
    await trading.seen(placed.order_id, OrderStatus.FILLED)
    handle = trading.orders.handle(placed.order_id)
    assert (await handle.wait_filled(timeout=0)).fill_volume == 1
    assert trading.of(*ORDER_EVENTS, order_id=placed.order_id) == [PLACED, FILLED]
    assert trading.orders.handle(123).order is None and not trading.orders.handle(123).done


async def test_a_resting_limit_fills_at_its_price_when_the_market_trades_through(trading):
    price = trading.last() - 0.5
    handle = await trading.orders.place_limit_order("buy", 1, price)
    order = await trading.seen(handle.id, OrderStatus.OPEN)
    assert (order.limit_price, order.fill_volume, handle.done) == (price, 0, False)
    with pytest.raises(TimeoutError):
        await handle.wait_filled(timeout=0.05)
    await trading.advance_until_ended(handle.id)
    filled = await handle.wait_filled(timeout=1)
    assert (filled.filled_price, filled.fill_volume) == (price, 1)
    assert trading.of(*ORDER_EVENTS, order_id=handle.id) == [PLACED, FILLED]


async def test_a_marketable_limit_larger_than_the_best_level_fills_partly(trading):
    _, asks = trading.book()
    (best, available), _ = asks[0], asks[1]
    handle = await trading.orders.place_limit_order("buy", available + 1, best)
    await trading.until(lambda: handle.fill_volume == available, "the partial fill")
    order = handle.order
    assert order.status is OrderStatus.OPEN and order.filled_price == best and not handle.done
    await trading.orders.cancel_order(handle)
    with pytest.raises(OrderEndedError) as info:
        await handle.wait_filled(timeout=5)
    assert (info.value.order.status, info.value.order.fill_volume) == (OrderStatus.CANCELLED, available)
    assert trading.of(*ORDER_EVENTS, order_id=handle.id) == [PLACED, PARTIAL, CANCELLED]
    await trading.until(lambda: trading.positions.size == available, "the partial position")


async def test_stop_orders_rest_beyond_the_market_and_fill_once_triggered(trading):
    stop = trading.last() + 1.0
    handle = await trading.orders.place_stop_order("buy", 1, stop)
    assert (await trading.seen(handle.id, OrderStatus.OPEN)).stop_price == stop
    await trading.advance_until_ended(handle.id)
    filled = await handle.wait_filled(timeout=1)
    assert filled.filled_price >= stop
    assert trading.of(*ORDER_EVENTS, order_id=handle.id) == [PLACED, FILLED]
    with pytest.raises(OrderRejectedError) as info:  # a buy stop below the market would trigger at once
        await trading.orders.place_stop_order("buy", 1, trading.last() - 1.0)
    assert info.value.error_code == 2


async def test_a_trailing_stop_follows_the_market_up_and_then_fills(trading):
    start = trading.last()
    handle = await trading.orders.place_trailing_stop_order("sell", 1, 1.0)
    assert (await trading.seen(handle.id, OrderStatus.OPEN)).stop_price == start - 1.0
    await trading.advance_until_ended(handle.id, step=1.0)
    stops = [e.data.stop_price for e in trading.events if e.type is MODIFIED and e.data.id == handle.id]
    assert stops and stops == sorted(stops) and all(s > start - 1.0 for s in stops)  # it trailed upwards
    filled = await handle.wait_filled(timeout=1)
    assert filled.filled_price <= (stops[-1] if stops else start - 1.0)
    await trading.until(lambda: trading.positions.size == -1, "the short position")


async def test_join_orders_rest_at_the_touch_and_cancel_all_cancels_them(trading):
    bids, asks = trading.book()
    bid = await trading.orders.place_join_bid_order(1)
    ask = await trading.orders.place_join_ask_order(2)
    joined_bid, joined_ask = await trading.seen(bid.id, OrderStatus.OPEN), await trading.seen(ask.id, OrderStatus.OPEN)
    assert (joined_bid.type, joined_bid.side, joined_bid.limit_price) == (OrderType.JOIN_BID, OrderSide.BUY, bids[0][0])
    assert (joined_ask.type, joined_ask.side, joined_ask.limit_price) == (OrderType.JOIN_ASK, OrderSide.SELL,
                                                                          asks[0][0])
    assert {o.id for o in trading.orders.working()} == {bid.id, ask.id}
    assert await trading.orders.cancel_all_orders() == 2
    assert (await bid.wait_done(timeout=5)).status is (await ask.wait_done(timeout=5)).status is OrderStatus.CANCELLED


async def test_modify_then_cancel_a_working_order(trading):
    price = trading.last() - 10.0
    handle = await trading.orders.place_limit_order("buy", 1, price)
    await trading.seen(handle.id, OrderStatus.OPEN)
    await trading.orders.modify_order(handle, limit_price=price - 0.75)
    await trading.until(lambda: handle.order.limit_price == price - 0.75, "the new price")
    await trading.orders.modify_order(handle.id, size=3)
    await trading.until(lambda: handle.order.size == 3, "the new size")
    await trading.orders.cancel_order(handle.id)
    assert (await handle.wait_done(timeout=5)).status is OrderStatus.CANCELLED
    with pytest.raises(OrderEndedError):
        await handle.wait_filled()
    assert trading.of(*ORDER_EVENTS, order_id=handle.id) == [PLACED, MODIFIED, MODIFIED, CANCELLED]
    with pytest.raises(OrderRejectedError):  # the gateway refuses to touch an order that is no longer working
        await trading.orders.modify_order(handle, limit_price=price)


async def test_cancel_all_leaves_other_contracts_alone(trading):
    last = trading.last()
    handles = [await trading.orders.place_limit_order("buy", 1, last - 5.0 - i) for i in range(3)]
    es = await trading.px.place_order(ES, "buy", 1, order_type=OrderType.LIMIT, limit_price=5000.0)
    assert await trading.orders.cancel_all_orders() == 3
    for handle in handles:
        assert (await handle.wait_done(timeout=5)).status is OrderStatus.CANCELLED
    assert trading.sim_order(es.order_id).status is OrderStatus.OPEN
    assert await trading.orders.cancel_all_orders() == 0


async def test_only_this_contracts_and_accounts_orders_reach_the_manager_and_its_bus(trading):
    await trading.rt.subscribe_user(1002)
    es = await trading.px.place_order(ES, "buy", 1)
    other_account = await trading.px.place_order(MNQ, "buy", 1, account_id=1002)
    await trading.until(lambda: {es.order_id, other_account.order_id} <= {p.order.id for p in trading.pushes
                                                                          if isinstance(p, OrderPushed)},
                        "the other orders' pushes")
    mine = await trading.orders.place_market_order("buy", 1)
    await mine.wait_filled(timeout=5)
    await trading.until(lambda: trading.positions.size == 1, "this account's MNQ position")
    assert trading.orders.latest(es.order_id) is None and trading.orders.latest(
        other_account.order_id) is None
    assert {e.data.id for e in trading.events if e.type in ORDER_EVENTS} == {mine.id}
    assert all(e.data.contract_id == MNQ and e.data.account_id == ACCOUNT and e.source == "MNQ"
               for e in trading.events)


async def test_a_market_bracket_gets_linked_legs_and_one_leg_filling_cancels_the_other(trading):
    bracket = await trading.orders.place_bracket_order(OrderSide.BUY, 1, stop_offset=8, target_offset=8)
    entry = await bracket.entry.wait_filled(timeout=0)
    stop, target = bracket.stop.order, bracket.target.order
    assert bracket.protected and (stop.type, target.type) == (OrderType.STOP, OrderType.LIMIT)
    assert (stop.side, target.side, stop.size, target.size) == (OrderSide.SELL, OrderSide.SELL, 1, 1)
    assert (stop.stop_price, target.limit_price) == (entry.filled_price - 2.0, entry.filled_price + 2.0)
    assert await bracket.wait_legs(timeout=0) == (bracket.stop, bracket.target)
    await trading.advance_until(lambda: not trading.sim_order(stop.id).status.is_working, "a leg filling")
    await trading.until(lambda: bracket.stop.done and bracket.target.done, "both legs ending")
    assert {bracket.stop.status, bracket.target.status} == {OrderStatus.FILLED, OrderStatus.CANCELLED}
    await trading.until(lambda: trading.positions.position is None, "the flat position")
    assert trading.of(*ORDER_EVENTS) == [PLACED, FILLED, PLACED, PLACED, FILLED, CANCELLED]


async def test_a_limit_bracket_given_prices_gets_its_legs_when_the_entry_fills(trading):
    entry_price = trading.last() + 0.5
    bracket = await trading.orders.place_bracket_order(
        "sell", 2, entry_type="limit", entry_price=entry_price, stop_price=entry_price + 3.0,
        target_price=entry_price - 2.5)
    assert bracket.stop is bracket.target is None and bracket.ticks == {"stop": 12, "target": -10}
    await trading.advance_until_ended(bracket.entry.id, step=1.0)
    stop, target = await bracket.wait_legs(timeout=5)
    filled = bracket.entry.filled_price
    assert (stop.order.stop_price, target.order.limit_price) == (filled + 3.0, filled - 2.5)
    assert stop.order.side is target.order.side is OrderSide.BUY
    await trading.orders.close_position()  # the gateway cancels legs that would no longer close anything
    assert (await stop.wait_done(timeout=5)).status is (await target.wait_done(timeout=5)).status is (
        OrderStatus.CANCELLED)


async def test_a_bracket_the_gateway_refuses_raises_a_typed_error(trading):
    locked = OrderManager(trading.px, trading.contract, EventBus("locked"), account_id=LOCKED_ACCOUNT, symbol="MNQ")
    with pytest.raises(OrderRejectedError) as info:
        await locked.place_bracket_order("buy", 1, stop_offset=4, target_offset=4)
    assert info.value.error_code == 10 and info.value.endpoint == "/api/Order/place"


async def test_a_partly_filled_entry_left_without_legs_is_flattened_and_reported(trading):
    trading.orders.leg_timeout = 0.5
    _, asks = trading.book()
    best, available = asks[0]
    bracket = await trading.orders.place_bracket_order("buy", available + 1, entry_type="limit", entry_price=best,
                                                       stop_offset=10, target_offset=10)
    await trading.until(lambda: bracket.entry.fill_volume == available, "the partial entry fill")
    await trading.orders.cancel_order(bracket.entry)  # the gateway attaches legs only to a complete fill
    with pytest.raises(UnprotectedPositionError) as info:
        await bracket.wait_legs(timeout=5)
    assert info.value.missing == ["stop", "target"] and info.value.flatten_error is None
    assert info.value.entry.fill_volume == available
    await trading.until(lambda: trading.positions.position is None, "the flattened position")
    assert trading.sim.sim.exchange.ledger.position(ACCOUNT, MNQ) == 0
    assert EventType.POSITION_CLOSED in trading.of()


async def test_a_bracket_entry_cancelled_unfilled_reports_it(trading):
    bracket = await trading.orders.place_bracket_order("buy", 1, entry_type="stop", entry_price=trading.last() + 5.0,
                                                       stop_offset=4)
    await trading.orders.cancel_order(bracket.entry.id)
    with pytest.raises(OrderEndedError) as info:
        await bracket.wait_legs(timeout=5)
    assert info.value.order.status is OrderStatus.CANCELLED and bracket.error is info.value


async def test_bad_input_is_refused_before_anything_is_sent(trading):
    om, last = trading.orders, trading.last()
    resting = await om.place_limit_order("buy", 1, last - 10.0)
    sent = len(trading.sim.requests)
    calls = [
        om.place_market_order("buy", 0), om.place_market_order("sell", -1), om.place_market_order("buy", True),
        om.place_market_order("hold", 1), om.place_limit_order("buy", 1, last + 0.1),
        om.place_stop_order("sell", 1, -5.0), om.place_trailing_stop_order("sell", 1, 0.3),
        om.place_bracket_order("buy", 1), om.place_bracket_order("buy", 1, stop_offset=0),
        om.place_bracket_order("buy", 1, stop_offset=-4), om.place_bracket_order("buy", 1, target_offset=2.5),
        om.place_bracket_order("buy", 1, stop_offset=4, stop_price=last - 1.0),
        om.place_bracket_order("buy", 1, stop_price=last - 1.0),
        om.place_bracket_order("buy", 1, entry_type="limit", entry_price=last, stop_price=last + 1.0),
        om.place_bracket_order("sell", 1, entry_type="limit", entry_price=last, target_price=last + 1.0),
        om.place_bracket_order("buy", 1, entry_type="limit", entry_price=last, target_price=last + 1.1),
        om.place_bracket_order("buy", 1, entry_type="limit", stop_offset=4),
        om.place_bracket_order("buy", 1, entry_type="stop_limit", entry_price=last, stop_offset=4),
        om.place_bracket_order("buy", 0, stop_offset=4),
        om.modify_order(resting, limit_price=last - 10.1), om.modify_order(resting, size=0),
        om.modify_order(resting), trading.positions.partially_close_position(0),
    ]
    for call in calls:
        with pytest.raises(InputError):
            await call
    assert len(trading.sim.requests) == sent


async def test_apply_ignores_stale_repeated_and_foreign_updates(trading):
    handle = await trading.orders.place_limit_order("buy", 1, trading.last() - 10.0)
    await trading.orders.cancel_order(handle)
    await handle.wait_done(timeout=5)
    opened, cancelled = (p.order for p in trading.pushes if isinstance(p, OrderPushed) and p.order.id == handle.id)
    assert (opened.status, cancelled.status) == (OrderStatus.OPEN, OrderStatus.CANCELLED)
    bus = EventBus("replay")
    seen: list[EventType] = []
    bus.on_any(lambda e: seen.append(e.type))
    replay = OrderManager(trading.px, trading.contract, bus, account_id=ACCOUNT, symbol="MNQ")
    replay.apply(cancelled, UserAction.UPDATED)  # the final state first (as REST truth can arrive)
    replay.apply(opened, UserAction.CREATED)  # older: ignored
    replay.apply(cancelled, UserAction.UPDATED)  # repeated: ignored
    replay.apply(dataclasses.replace(opened, id=1, contract_id=ES), UserAction.CREATED)
    replay.apply(dataclasses.replace(opened, id=2, account_id=1002), UserAction.CREATED)
    assert seen == [CANCELLED] and replay.handle(handle.id).order == cancelled
    assert replay.latest(1) is None and replay.latest(2) is None
    replay.apply(dataclasses.replace(opened, id=3), UserAction.CREATED)
    replay.apply(dataclasses.replace(opened, id=3), UserAction.DELETED)  # removed while working: cancelled
    assert seen == [CANCELLED, PLACED, CANCELLED] and replay.handle(3).status is OrderStatus.CANCELLED
    later = dataclasses.replace(opened, id=4, size=2, update_timestamp=opened.update_timestamp + timedelta(seconds=1))
    replay.apply(later, UserAction.UPDATED)
    replay.apply(dataclasses.replace(opened, id=4), UserAction.UPDATED)  # an older snapshot of a working order
    assert replay.handle(4).order == later
    replay.apply(dataclasses.replace(opened, id=5, status=OrderStatus.REJECTED), UserAction.CREATED)
    replay.apply(dataclasses.replace(opened, id=6), UserAction.CREATED)
    replay.apply(dataclasses.replace(opened, id=6, status=OrderStatus.EXPIRED), UserAction.UPDATED)
    assert seen[3:] == [PLACED, EventType.ORDER_REJECTED, PLACED, CANCELLED]


async def test_commands_and_waits_from_another_threads_loop_run_on_the_managers_loop(trading):
    """A script or widget running asyncio.run in a thread: the order and its wait happen on the owner's loop."""
    sent_on: list[int] = []
    send = trading.px.send_order

    async def observed(*args, **kwargs):
        sent_on.append(threading.get_ident())
        return await send(*args, **kwargs)

    trading.px.send_order = observed  # observed, not replaced: the simulator still takes the order

    async def trade():
        handle = await trading.orders.place_market_order(OrderSide.BUY, 1)
        resting = await trading.orders.place_limit_order(OrderSide.BUY, 1, trading.contract.round_price(
            trading.last() - 50))
        return await handle.wait_filled(timeout=10), await resting.wait_done(timeout=10)

    done: list = []
    thread = threading.Thread(target=lambda: done.append(asyncio.run(trade(), debug=True)))
    thread.start()
    await trading.until(lambda: trading.orders._waiters, "the thread waiting for the resting order")
    (waiting,) = trading.orders._waiters.values()
    assert all(future.get_loop() is asyncio.get_running_loop() for future in waiting)  # resolved here, safely
    await trading.orders.cancel_order(trading.orders.working()[0].id)  # ends it while the thread waits
    await asyncio.to_thread(thread.join, 20)
    ((filled, cancelled),) = done
    assert filled.status is OrderStatus.FILLED and trading.sim_order(filled.id).fill_volume == 1
    assert cancelled.status is OrderStatus.CANCELLED
    assert sent_on == [threading.get_ident()] * 2


async def test_bracket_distances_are_whole_ticks_above_zero_for_either_side(trading):
    sent = len(trading.sim.requests)
    calls = [trading.orders.place_bracket_order("sell", 1, stop_offset=-4),
             trading.orders.place_bracket_order("buy", 1, target_offset=0),
             trading.px.place_order(MNQ, "sell", 1, stop_loss_ticks=-4),
             trading.px.place_order(MNQ, "buy", 1, take_profit_ticks=1.5)]
    for call in calls:
        with pytest.raises(InputError, match=r"distance from the entry in whole ticks > 0 \(the side sets its"):
            await call
    assert len(trading.sim.requests) == sent
