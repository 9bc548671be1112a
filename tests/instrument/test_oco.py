"""Client-side OCO brackets (`oco="client"`) against the simulated gateway, which links nothing for them."""

from __future__ import annotations

import asyncio

import pytest

from conftest import ACCOUNT
from pxkit.enums import OrderSide, OrderStatus, OrderType
from pxkit.errors import InputError, OrderEndedError, OrderRejectedError, PxError, UnprotectedPositionError
from pxkit.events import EventType


def working_at_sim(trading) -> list[int]:
    """Ids of the account's orders the simulator still works (its truth, not the manager's view)."""
    return [o.id for o in trading.sim.sim.exchange.open_orders(ACCOUNT)]


def sim_position(trading) -> int:
    return trading.sim.sim.exchange.ledger.position(ACCOUNT, trading.contract.id)


async def legs_seen(trading, bracket) -> tuple:
    """The bracket's (stop, target) handles once the hub has reported both legs."""
    stop, target = await bracket.wait_legs(timeout=5)
    await trading.until(lambda: stop.order is not None and target.order is not None, "the legs' pushes")
    return stop, target


async def test_legs_are_placed_at_the_fill_price_and_a_filled_leg_cancels_its_peer(trading):
    bracket = await trading.orders.place_bracket_order(OrderSide.BUY, 1, stop_offset=8, target_offset=8, oco="client")
    entry = await bracket.entry.wait_filled(timeout=0)
    assert bracket.mode == "client" and bracket.protected
    assert trading.sim_order(entry.id).brackets is None  # the entry went alone: nothing for the gateway to attach
    stop, target = await legs_seen(trading, bracket)
    assert (stop.order.type, target.order.type) == (OrderType.STOP, OrderType.LIMIT)
    assert (stop.order.side, target.order.side, stop.order.size, target.order.size) == (
        OrderSide.SELL, OrderSide.SELL, 1, 1)
    assert (stop.order.stop_price, target.order.limit_price) == (entry.filled_price - 2.0, entry.filled_price + 2.0)
    legs = {stop.id, target.id}
    await trading.advance_until(lambda: not all(trading.sim_order(i).status.is_working for i in legs),
                                "a leg filling", step=1.0)
    await trading.until(lambda: stop.done and target.done, "the peer being cancelled")
    assert {stop.status, target.status} == {OrderStatus.FILLED, OrderStatus.CANCELLED}
    assert sim_position(trading) == 0 and working_at_sim(trading) == []
    await trading.until(lambda: trading.positions.position is None, "the flat position")


async def test_an_entry_filling_in_parts_gets_legs_for_what_filled_then_grows_them(trading):
    _, asks = trading.book()
    best, available = asks[0]
    bracket = await trading.orders.place_bracket_order("buy", available + 1, entry_type="limit", entry_price=best,
                                                       stop_offset=40, target_offset=40, oco="client")
    stop, target = await legs_seen(trading, bracket)
    assert bracket.entry.fill_volume == available and not bracket.entry.done  # legs came on the first part
    assert (stop.order.size, target.order.size) == (available, available)
    assert (stop.order.stop_price, target.order.limit_price) == (best - 10.0, best + 10.0)
    await trading.advance_until_ended(bracket.entry.id, step=1.0)
    assert bracket.entry.status is OrderStatus.FILLED
    await trading.until(lambda: stop.order.size == target.order.size == available + 1, "the legs growing")
    assert (bracket.stop, bracket.target) == (stop, target)  # modified in place, not replaced
    assert trading.sim_order(stop.id).size == trading.sim_order(target.id).size == sim_position(trading)
    assert stop.order.stop_price == best - 10.0 and stop.status is target.status is OrderStatus.OPEN


async def test_a_partly_filled_leg_shrinks_its_peer_and_its_complete_fill_cancels_it(trading):
    bids, _ = trading.book()
    bid, bid_size = bids[0]
    size = bid_size + 1  # the target will find only `bid_size` at the bid
    bracket = await trading.orders.place_bracket_order("buy", size, stop_offset=8, target_offset=8, oco="client")
    entry = bracket.entry.order
    stop, target = await legs_seen(trading, bracket)
    anchor = trading.contract.round_price(entry.filled_price)  # the fill may average across levels
    assert (stop.order.stop_price, target.order.limit_price, stop.order.size) == (anchor - 2.0, anchor + 2.0, size)
    await trading.orders.modify_order(target, limit_price=bid)  # take profit at the bid: only its size is there
    await trading.until(lambda: target.fill_volume == bid_size, "the target's partial fill")
    await trading.until(lambda: stop.order.size == 1, "the stop shrinking to what is still open")
    assert trading.sim_order(stop.id).size == sim_position(trading) == 1 and not stop.done
    assert trading.of(EventType.ORDER_MODIFIED, order_id=stop.id) == [EventType.ORDER_MODIFIED]
    await trading.orders.modify_order(target, limit_price=bid)  # the last contract
    assert (await target.wait_done(timeout=5)).status is OrderStatus.FILLED
    assert (await stop.wait_done(timeout=5)).status is OrderStatus.CANCELLED
    assert sim_position(trading) == 0 and working_at_sim(trading) == []


async def test_a_leg_the_gateway_refuses_gets_the_position_flattened_and_reported(trading):
    entry_price = trading.last() - 1.0
    bracket = await trading.orders.place_bracket_order("buy", 1, entry_type="limit", entry_price=entry_price,
                                                       stop_offset=1, target_offset=8, oco="client")
    await trading.advance_until(lambda: not trading.sim_order(bracket.entry.id).status.is_working, "the entry fill")
    assert trading.last() <= entry_price - 0.25  # the market is already through the stop: a sell stop is refused
    with pytest.raises(UnprotectedPositionError) as info:
        await bracket.wait_legs(timeout=5)
    assert isinstance(info.value.__cause__, OrderRejectedError) and info.value.flatten_error is None
    assert info.value.missing == ["stop", "target"] and info.value.entry.fill_volume == 1
    assert bracket.error is info.value and bracket.stop is bracket.target is None and not bracket.protected
    assert sim_position(trading) == 0 and working_at_sim(trading) == []
    await trading.until(lambda: trading.positions.position is None, "the flattened position")


async def test_closing_the_position_elsewhere_shrinks_then_cancels_both_legs(trading):
    bracket = await trading.orders.place_bracket_order("sell", 3, stop_offset=8, target_offset=8, oco="client")
    stop, target = await legs_seen(trading, bracket)
    await trading.positions.partially_close_position(1)
    await trading.until(lambda: stop.order.size == target.order.size == 2, "the legs shrinking to the position")
    assert sim_position(trading) == -2 and stop.order.side is OrderSide.BUY
    await trading.orders.close_position()
    assert (await stop.wait_done(timeout=5)).status is (await target.wait_done(timeout=5)).status is (
        OrderStatus.CANCELLED)
    assert sim_position(trading) == 0 and working_at_sim(trading) == []


async def test_a_leg_cancelled_by_the_user_takes_its_peer_with_it(trading):
    bracket = await trading.orders.place_bracket_order("buy", 1, stop_offset=8, target_offset=8, oco="client")
    stop, target = await legs_seen(trading, bracket)
    await trading.orders.cancel_order(stop)
    assert (await target.wait_done(timeout=5)).status is OrderStatus.CANCELLED
    assert stop.status is OrderStatus.CANCELLED and working_at_sim(trading) == []
    assert sim_position(trading) == 1  # the position is the user's to manage now


async def test_an_entry_ending_unfilled_is_reported_and_ends_the_link(trading):
    bracket = await trading.orders.place_bracket_order("buy", 1, entry_type="limit", entry_price=trading.last() - 5.0,
                                                       stop_offset=4, oco="client")
    await trading.orders.cancel_order(bracket.entry)
    with pytest.raises(OrderEndedError) as info:
        await bracket.wait_legs(timeout=5)
    assert info.value.order.status is OrderStatus.CANCELLED and bracket.stop is None
    await trading.until(lambda: not trading.orders.tracking().tasks, "the link's task ending by itself")
    assert trading.orders.tracking().links == 0 and working_at_sim(trading) == []


async def test_aclose_cancels_every_link_task(trading):
    resting = await trading.orders.place_bracket_order("buy", 1, entry_type="limit", entry_price=trading.last() - 5.0,
                                                       stop_offset=4, target_offset=4, oco="client")
    filled = await trading.orders.place_bracket_order("buy", 1, stop_offset=8, target_offset=8, oco="client")
    assert filled.protected and not resting.entry.done
    links = [t for t in asyncio.all_tasks() if t.get_name().startswith("pxkit-oco-")]
    assert len(links) == 2 and (trading.orders.tracking().tasks, trading.orders.tracking().links) == (2, 2)
    await trading.orders.aclose()
    assert all(t.cancelled() for t in links)
    assert (trading.orders.tracking().tasks, trading.orders.tracking().links) == (0, 0)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("pxkit-oco-")]
    with pytest.raises(PxError, match="closed"):
        await resting.wait_legs()  # released, not left waiting forever


async def test_an_unknown_oco_mode_is_refused_before_the_wire(trading):
    sent = len(trading.sim.requests)
    with pytest.raises(InputError):
        await trading.orders.place_bracket_order("buy", 1, stop_offset=4, oco="gateway")
    assert len(trading.sim.requests) == sent
