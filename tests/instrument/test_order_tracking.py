"""What an OrderManager keeps over a long session: bounded maps, evicted orders, typed timeouts, the observer hook."""

from __future__ import annotations

import dataclasses

import pytest

from pxkit.enums import OrderStatus, UserAction
from pxkit.errors import InputError, OrderEvictedError, OrderTimeoutError, PxError
from pxkit.events import EventType
from pxkit.instrument.orders import MAX_ENDED, OrderManager
from pxkit.models import Order

SYNTHETIC = 50_000_000  # ids far above the simulator's, for orders applied as REST truth would be


async def test_ten_thousand_ended_orders_keep_every_map_under_its_cap(trading):
    om = trading.orders
    resting = await om.place_limit_order("buy", 1, trading.last() - 50.0)
    template = await trading.seen(resting.id, OrderStatus.OPEN)
    waited = await om.place_limit_order("buy", 1, trading.last() - 60.0)
    with pytest.raises(TimeoutError):
        await waited.wait_done(timeout=0.01)
    endings = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
    ended: list[Order] = []
    for n in range(10_000):
        order = dataclasses.replace(template, id=SYNTHETIC + n, custom_tag=f"synthetic-{n}")
        om.apply(order, UserAction.CREATED)
        final = dataclasses.replace(order, status=endings[n % 4], fill_volume=1 if n % 4 == 0 else 0,
                                    filled_price=order.limit_price if n % 4 == 0 else None)
        om.apply(final, UserAction.UPDATED)
        ended.append(final)
        if n % 1000 == 0:
            assert om.tracking().ended <= MAX_ENDED
    sizes = om.tracking()
    assert (sizes.ended, sizes.evicted, sizes.waiters, sizes.brackets, sizes.links, sizes.tasks) == (
        MAX_ENDED, MAX_ENDED, 0, 0, 0, 0)
    assert sizes.orders == MAX_ENDED + 2 and sizes.claimed == 0  # the kept ended orders and the two working ones
    assert [o.id for o in om.working()] == [resting.id, waited.id]

    recent = om.handle(ended[-1].id)
    assert recent.order == ended[-1] and await recent.wait_done(timeout=1) == ended[-1]
    assert om.handle(ended[-MAX_ENDED].id).order == ended[-MAX_ENDED]  # the oldest one still kept
    gone = om.handle(ended[-MAX_ENDED - 1].id)  # the least recently ended beyond the cap
    assert gone.order is None and gone.evicted and gone.done and "no longer tracked" in repr(gone)
    with pytest.raises(OrderEvictedError, match="no longer tracked") as info:
        await gone.wait_done(timeout=1)
    assert info.value.order_id == gone.id

    filled_events = len(trading.of(EventType.ORDER_FILLED))
    om.apply(ended[-MAX_ENDED - 4], UserAction.UPDATED)  # an evicted fill read again (REST truth): not news
    assert len(trading.of(EventType.ORDER_FILLED)) == filled_events and om.tracking() == sizes

    await om.cancel_order(resting)  # the working orders kept working through it all
    assert (await resting.wait_done(timeout=5)).status is OrderStatus.CANCELLED
    assert om.tracking().ended == MAX_ENDED and om.tracking().orders == MAX_ENDED + 1
    await om.cancel_order(waited)


async def test_an_order_a_live_link_watches_is_never_evicted(trading):
    om = trading.orders
    bracket = await om.place_bracket_order("buy", 1, stop_offset=8, target_offset=8, oco="client")
    stop, target = await bracket.wait_legs(timeout=5)
    entry = bracket.entry.order
    assert entry is not None and entry.status is OrderStatus.FILLED
    for n in range(MAX_ENDED + 10):
        om.apply(dataclasses.replace(entry, id=SYNTHETIC + n, custom_tag=f"synthetic-{n}"), UserAction.UPDATED)
    assert om.tracking().ended == MAX_ENDED and om.tracking().evicted == 11
    assert bracket.entry.order == entry and not bracket.entry.evicted  # the oldest, kept: its link sizes legs by it
    await om.close_position()
    assert (await stop.wait_done(timeout=5)).status is OrderStatus.CANCELLED
    assert (await target.wait_done(timeout=5)).status is OrderStatus.CANCELLED
    await trading.until(lambda: om.tracking().links == 0, "the link ending once both legs ended")
    om.apply(dataclasses.replace(entry, id=SYNTHETIC + MAX_ENDED + 10, custom_tag="one-more"), UserAction.UPDATED)
    assert om.tracking().ended == MAX_ENDED and bracket.entry.evicted  # released: the oldest, evicted first


async def test_a_wait_that_times_out_names_the_order_its_state_fills_and_the_timeout(trading):
    handle = await trading.orders.place_limit_order("buy", 2, trading.last() - 50.0)
    await trading.seen(handle.id, OrderStatus.OPEN)
    for wait in (handle.wait_done, handle.wait_filled):
        with pytest.raises(OrderTimeoutError) as info:
            await wait(timeout=0.05)
        error = info.value
        assert isinstance(error, TimeoutError) and isinstance(error, PxError)
        assert (error.order_id, error.order.status, error.timeout) == (handle.id, OrderStatus.OPEN, 0.05)
        assert str(error) == f"order {handle.id} did not end within 0.05 s: last seen OPEN with 0/2 filled"
    assert trading.orders.tracking().waiters == 0  # a wait that gave up leaves nothing behind
    with pytest.raises(OrderTimeoutError, match="never seen"):
        await trading.orders.handle(SYNTHETIC).wait_done(timeout=0.01)
    await trading.orders.cancel_order(handle)


async def test_observers_are_told_of_every_update_kept_until_they_stop(trading):
    seen: list[tuple[OrderStatus | None, OrderStatus]] = []
    stop = trading.orders.observe(lambda previous, order: seen.append(
        (previous.status if previous else None, order.status)))
    handle = await trading.orders.place_limit_order("buy", 1, trading.last() - 50.0)
    await trading.seen(handle.id, OrderStatus.OPEN)
    trading.orders.apply(handle.order, UserAction.UPDATED)  # repeated: not kept, not told
    await trading.orders.cancel_order(handle)
    await handle.wait_done(timeout=5)
    assert seen == [(None, OrderStatus.OPEN), (OrderStatus.OPEN, OrderStatus.CANCELLED)]
    stop()
    await (await trading.orders.place_market_order("buy", 1)).wait_filled(timeout=5)
    assert len(seen) == 2
    await trading.orders.close_position()


@pytest.mark.parametrize("max_ended", [0, -1, 2.5, True])
async def test_max_ended_must_be_a_whole_number_of_orders(trading, max_ended) -> None:
    with pytest.raises(InputError, match="max_ended"):
        OrderManager(trading.px, trading.contract, trading.bus, account_id=1001, symbol="MNQ", max_ended=max_ended)
