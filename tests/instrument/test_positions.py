"""PositionManager against the simulated gateway over real sockets: position events, P&L to the cent, closing."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from conftest import ACCOUNT
from pxkit.enums import PositionType, UserAction
from pxkit.errors import InputError, OrderRejectedError, PositionNotFoundError
from pxkit.events import EventBus, EventType
from pxkit.instrument.positions import PnL, PositionManager
from pxkit.messages import PositionPushed

ES = "CON.F.US.EP.H26"
OPENED, CHANGED, CLOSED = EventType.POSITION_OPENED, EventType.POSITION_CHANGED, EventType.POSITION_CLOSED


async def round_trip(trading) -> None:
    """Buy through the best ask, add, partly close, close, with the market moving in between; wait for every fill."""
    pm, om = trading.positions, trading.orders
    size = trading.book()[1][0][1] + 1  # one more than the best ask holds: the order walks the book
    first = await om.place_market_order("buy", size)
    entry = await first.wait_filled(timeout=5)
    await trading.until(lambda: pm.size == size, "the long position")
    assert pm.average_price == pytest.approx(entry.filled_price) and len(pm.trades) == 2  # two price levels
    await trading.sim.advance(60)
    await om.place_market_order("buy", 1)
    await trading.sim.advance(60)
    await pm.partially_close_position(3)
    await trading.sim.advance(90)
    await pm.close_position()
    await trading.until(lambda: pm.position is None, "the flat position")
    gateway = await trading.px.search_trades()
    await trading.until(lambda: len(pm.trades) == len(gateway), "every fill")


async def test_a_round_trip_realises_exactly_the_account_balance_change(trading):
    pm = trading.positions
    before = await trading.balance()
    await round_trip(trading)
    after = await trading.balance()
    gateway = await trading.px.search_trades()
    assert any(t.profit_and_loss for t in gateway) and pm.realized_pnl != 0
    assert round(pm.realized_pnl - pm.fees, 2) == round(after - before, 2)
    assert pm.realized_pnl == round(sum(t.profit_and_loss or 0.0 for t in gateway), 2)
    assert pm.fees == round(sum(t.fees for t in gateway), 2) > 0
    assert pm.pnl() == PnL(pm.realized_pnl, 0.0, pm.fees, round(after - before, 2))
    assert trading.of(OPENED, CHANGED, CLOSED) == [OPENED, CHANGED, CHANGED, CLOSED]
    closed = next(e for e in trading.events if e.type is CLOSED)
    assert closed.timestamp == max(t.creation_timestamp for t in gateway) > closed.data.creation_timestamp
    assert (closed.source, closed.data.size) == ("MNQ", 0)


async def test_size_average_and_unrealised_pnl_follow_long_and_short_positions(trading):
    pm, om = trading.positions, trading.orders
    entry = await (await om.place_market_order("buy", 2)).wait_filled(timeout=5)
    await trading.until(lambda: pm.size == 2, "the long position")
    average = pm.average_price
    assert average == entry.filled_price and pm.position.type is PositionType.LONG
    assert (pm.unrealized_pnl(average + 1.0), pm.unrealized_pnl(average - 0.25)) == (4.0, -1.0)  # 2 x ticks x $0.50
    await trading.sim.advance(30)
    await trading.until(lambda: trading.last_price == trading.last(), "the quote of the last trade")
    assert pm.unrealized_pnl() == round((trading.last() - average) / 0.25 * 0.5 * 2, 2)
    pnl = pm.pnl()
    assert pnl.unrealized == pm.unrealized_pnl() and pnl.net == round(pnl.realized + pnl.unrealized - pnl.fees, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pnl.net = 0.0  # type: ignore[misc]

    await om.place_market_order("sell", 5)  # through flat to short 3
    await trading.until(lambda: pm.size == -3, "the short position")
    assert pm.position.type is PositionType.SHORT and pm.position.size == 3
    assert pm.unrealized_pnl(pm.average_price - 1.0) == 6.0 and pm.unrealized_pnl(pm.average_price + 0.5) == -3.0
    await pm.partially_close_position(1)
    await trading.until(lambda: pm.size == -2, "the smaller short")
    await pm.close_position()
    await trading.until(lambda: pm.size == 0, "the flat position")
    assert (await pm.get_position(), pm.average_price, pm.unrealized_pnl(1.0)) == (None, None, 0.0)
    assert trading.of(OPENED, CHANGED, CLOSED) == [OPENED, CHANGED, CHANGED, CLOSED]


async def test_repeated_voided_and_foreign_trades(trading):
    pm = trading.positions
    await round_trip(trading)
    closing = next(t for t in pm.trades if t.profit_and_loss)
    realized, fees, count = pm.realized_pnl, pm.fees, len(pm.trades)
    pm.apply_trade(closing)  # the same trade id again: ignored
    pm.apply_trade(dataclasses.replace(closing, id=1, contract_id=ES))
    pm.apply_trade(dataclasses.replace(closing, id=2, account_id=1002))
    pm.apply_trade(dataclasses.replace(closing, id=3, voided=True))  # arrives already voided: never booked
    assert (pm.realized_pnl, pm.fees, len(pm.trades)) == (realized, fees, count)
    voided = dataclasses.replace(closing, voided=True)
    pm.apply_trade(voided)  # voided after it was booked: taken back out
    expected = (round(realized - closing.profit_and_loss, 2), round(fees - closing.fees, 2), count - 1)
    assert (pm.realized_pnl, pm.fees, len(pm.trades)) == expected
    pm.apply_trade(voided)
    assert (pm.realized_pnl, pm.fees, len(pm.trades)) == expected
    assert closing.id not in {t.id for t in pm.trades}


async def test_closing_commands_and_their_typed_refusals(trading):
    pm = trading.positions
    with pytest.raises(PositionNotFoundError):
        await pm.close_position()
    await trading.orders.place_market_order("sell", 2)
    await trading.until(lambda: pm.size == -2, "the short position")
    assert (await pm.get_position()).size == 2
    with pytest.raises(OrderRejectedError) as info:  # more than the position holds
        await pm.partially_close_position(3)
    assert info.value.error_code == 5
    sent = len(trading.sim.requests)
    for size in (0, -1, 1.5):
        with pytest.raises(InputError):
            await pm.partially_close_position(size)  # type: ignore[arg-type]
    assert len(trading.sim.requests) == sent
    await trading.orders.close_position()
    await trading.until(lambda: pm.position is None, "the flat position")


async def test_apply_position_opens_changes_closes_and_ignores_repeats_and_foreign_updates(trading):
    await trading.orders.place_market_order("buy", 1)
    await trading.orders.place_market_order("buy", 1)
    await trading.until(lambda: trading.positions.size == 2, "the long position")
    opened, grown = (p.position for p in trading.pushes if isinstance(p, PositionPushed))
    bus = EventBus("replay")
    seen: list[tuple[EventType, int]] = []
    bus.on_any(lambda e: seen.append((e.type, e.data.size)))
    replay = PositionManager(trading.px, trading.contract, bus, account_id=ACCOUNT, symbol="MNQ",
                             last_price=lambda: None)
    replay.apply_position(dataclasses.replace(opened, contract_id=ES), UserAction.CREATED)
    replay.apply_position(dataclasses.replace(opened, account_id=1002), UserAction.CREATED)
    replay.apply_position(opened, UserAction.CREATED)
    replay.apply_position(opened, UserAction.UPDATED)  # repeated: nothing changed
    replay.apply_position(grown, UserAction.UPDATED)
    assert (replay.size, replay.unrealized_pnl()) == (2, 0.0)  # no price known yet
    replay.apply_position(dataclasses.replace(grown, size=0), UserAction.DELETED)  # how reconciliation closes one
    replay.apply_position(dataclasses.replace(grown, size=0), UserAction.UPDATED)  # already flat
    assert seen == [(OPENED, 1), (CHANGED, 2), (CLOSED, 0)] and replay.position is None


async def test_closing_from_another_threads_loop_runs_on_the_managers_loop(trading):
    await (await trading.orders.place_market_order("buy", 2)).wait_filled(timeout=10)
    await trading.until(lambda: trading.positions.size == 2, "the long position")
    closed_on: list[int] = []
    for name in ("partially_close_position", "close_position"):
        call = getattr(trading.px, name)

        async def observed(*args, call=call, **kwargs):
            closed_on.append(threading.get_ident())
            return await call(*args, **kwargs)

        setattr(trading.px, name, observed)  # observed, not replaced: the simulator still closes

    async def close():
        await trading.positions.partially_close_position(1)
        await trading.positions.close_position()

    thread = threading.Thread(target=lambda: asyncio.run(close(), debug=True))
    thread.start()
    await asyncio.to_thread(thread.join, 20)
    await trading.until(lambda: trading.positions.size == 0, "the flat position")
    assert closed_on == [threading.get_ident()] * 2
