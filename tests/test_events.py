"""EventBus: ordering, once/off/on_any, sync+async handlers, error isolation, wait_for, seq, isolation, throttle."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from datetime import UTC, datetime

import pytest

from pxkit.enums import OrderSide
from pxkit.errors import InputError
from pxkit.events import PAYLOADS, Event, EventBus, EventType
from suites import open_suite
from waiting import until

T = EventType.TICK


def recorder(seen: list, tag: object):
    """A sync handler appending `tag` (and nothing else) to `seen`."""

    def handler(event: Event) -> None:
        seen.append(tag)

    handler.__qualname__ = f"record_{tag}"
    return handler


async def test_priority_first_then_registration_order() -> None:
    bus, seen = EventBus("t"), []
    bus.on(T, recorder(seen, "a0"))
    bus.on(T, recorder(seen, "b10"), priority=10)
    bus.on(T, recorder(seen, "c0"))
    bus.on(T, recorder(seen, "d-5"), priority=-5)
    bus.on(T, recorder(seen, "e10"), priority=10)
    await bus.emit(T)
    assert seen == ["b10", "e10", "a0", "c0", "d-5"]


async def test_on_works_as_decorator_and_accepts_names() -> None:
    bus, seen = EventBus("t"), []

    @bus.on("new_bar", priority=1)
    def handler(event: Event) -> None:
        seen.append(event.type)

    assert callable(handler)  # the decorator returns the function itself
    await bus.emit(EventType.NEW_BAR)
    assert seen == [EventType.NEW_BAR]
    with pytest.raises(ValueError):
        bus.on("no_such_event", handler)
    with pytest.raises(InputError):
        bus.on(T, "not callable")  # type: ignore[arg-type]


async def test_once_runs_exactly_once() -> None:
    bus, seen = EventBus("t"), []
    bus.once(T, recorder(seen, "once"))
    bus.on(T, recorder(seen, "always"))
    for _ in range(3):
        await bus.emit(T)
    assert seen == ["once", "always", "always", "always"]
    assert bus.handler_count(T) == 1


async def test_off_removes_also_during_emit() -> None:
    bus, seen = EventBus("t"), []
    later = recorder(seen, "later")

    def remover(event: Event) -> None:
        seen.append("remover")
        bus.off(T, later)  # `later` is in this emit's snapshot, yet must not run
        bus.off(T, remover)

    bus.on(T, remover, priority=5)
    bus.on(T, later)
    await bus.emit(T)
    await bus.emit(T)
    assert seen == ["remover"]
    assert bus.handler_count() == 0
    assert bus.off(T, later) is False


async def test_off_matches_bound_methods() -> None:
    class Widget:
        def __init__(self) -> None:
            self.calls = 0

        def refresh(self, event: Event) -> None:
            self.calls += 1

    bus, widget = EventBus("t"), Widget()
    bus.on(T, widget.refresh)
    await bus.emit(T)
    assert bus.off(T, widget.refresh) is True  # a fresh bound-method object still matches
    await bus.emit(T)
    assert widget.calls == 1


async def test_clear_during_emit_stops_the_rest() -> None:
    bus, seen = EventBus("t"), []
    bus.on(T, lambda e: bus.clear(), priority=1)
    bus.on(T, recorder(seen, "after"))
    bus.on_any(recorder(seen, "any"))
    await bus.emit(T)
    assert seen == []
    assert bus.handler_count() == 0


async def test_on_any_merges_by_priority_and_off_any() -> None:
    bus, seen = EventBus("t"), []
    bus.on(T, recorder(seen, "tick"))
    wildcard = bus.on_any(recorder(seen, "any"), priority=1)
    await bus.emit(T)
    await bus.emit(EventType.NEW_BAR)
    assert seen == ["any", "tick", "any"]
    assert bus.off_any(wildcard) is True
    await bus.emit(EventType.NEW_BAR)
    assert seen == ["any", "tick", "any"]


async def test_emit_runs_sync_inline_and_awaits_async_in_order() -> None:
    bus, seen = EventBus("t"), []
    gate = asyncio.Event()

    async def slow(event: Event) -> None:
        asyncio.get_running_loop().call_soon(gate.set)
        await gate.wait()  # really suspends: the next handler must still wait for it
        seen.append("async")

    bus.on(T, recorder(seen, "first"), priority=2)
    bus.on(T, slow, priority=1)
    bus.on(T, recorder(seen, "last"))
    event = await bus.emit(T, {"price": 1.25}, source="MNQ", timestamp=datetime(2026, 3, 2, 14, 30, tzinfo=UTC))
    assert seen == ["first", "async", "last"]
    assert (event.type, event.data, event.source) == (T, {"price": 1.25}, "MNQ")
    assert event.timestamp == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


async def test_event_is_frozen_and_has_no_wall_clock_default() -> None:
    event = await EventBus("t").emit(T, 1)
    assert event.timestamp is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = 2  # type: ignore[misc]


async def test_raising_handlers_are_logged_counted_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus, seen = EventBus("mnq"), []

    def broken_sync(event: Event) -> None:
        raise RuntimeError("sync boom")

    async def broken_async(event: Event) -> None:
        raise RuntimeError("async boom")

    bus.on(T, broken_sync, priority=2)
    bus.on(T, broken_async, priority=1)
    bus.on(T, recorder(seen, "ok"))
    caplog.set_level(logging.ERROR, logger="pxkit.events")
    await bus.emit(T)
    bus.emit_nowait(T)
    await bus.aclose()  # the async failure of emit_nowait surfaces in its task
    assert seen == ["ok", "ok"]
    assert bus.handler_errors == {T: 4}
    messages = [r.getMessage() for r in caplog.records if r.name == "pxkit.events"]
    assert len(messages) == 4
    assert sum("broken_sync" in m and "tick" in m for m in messages) == 2
    assert sum("broken_async" in m and "tick" in m for m in messages) == 2
    assert all(r.exc_info for r in caplog.records if r.name == "pxkit.events")


async def test_emit_nowait_schedules_async_and_aclose_awaits_them() -> None:
    bus, seen = EventBus("t"), []
    gate = asyncio.Event()

    async def gated(event: Event) -> None:
        await gate.wait()
        seen.append(("async", event.data))

    bus.on(T, gated, priority=1)
    bus.on(T, lambda e: seen.append(("sync", e.data)))
    bus.emit_nowait(T, 7)
    assert seen == [("sync", 7)]  # sync inline; the async one is a pending task
    asyncio.get_running_loop().call_soon(gate.set)
    await bus.aclose()
    assert seen == [("sync", 7), ("async", 7)]
    assert bus.handler_count() == 0


def test_emit_nowait_needs_the_running_loop() -> None:
    bus, seen = EventBus("t"), []
    bus.on(T, recorder(seen, "x"))
    with pytest.raises(RuntimeError):
        bus.emit_nowait(T)
    assert seen == []
    assert bus.emitted[T] == 0


async def test_wait_for_with_predicate_then_no_handler_left() -> None:
    bus = EventBus("t")
    waiter = bus.wait_for(T, timeout=5, predicate=lambda e: e.data > 2)
    for price in (1, 2, 3, 4):
        bus.emit_nowait(T, price)  # emitted before the waiter task ever runs: still caught
    event = await waiter
    assert event.data == 3
    assert bus.handler_count() == 0


async def test_wait_for_raising_predicate_is_a_counted_handler_error() -> None:
    bus = EventBus("t")
    waiter = bus.wait_for(T, timeout=5, predicate=lambda e: 10 / e.data > 1)
    await bus.emit(T, 0)  # ZeroDivisionError: logged and counted, the waiter keeps waiting
    await bus.emit(T, 5)
    assert (await waiter).data == 5
    assert bus.handler_errors[T] == 1


async def test_wait_for_timeout() -> None:
    bus = EventBus("t")
    waiter = bus.wait_for(T, timeout=0.01)
    await bus.emit(EventType.NEW_BAR)  # another type does not count
    with pytest.raises(TimeoutError):
        await waiter
    assert bus.handler_count() == 0


async def test_wait_for_cancellation_cleans_up() -> None:
    bus = EventBus("t")
    started = asyncio.Event()

    async def consumer() -> Event:
        pending = bus.wait_for(T, timeout=30)
        started.set()
        return await pending

    task = asyncio.create_task(consumer())
    await started.wait()
    assert bus.handler_count(T) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.handler_count() == 0

    direct = bus.wait_for(T)  # no timeout, cancelled directly
    direct.cancel()
    with pytest.raises(asyncio.CancelledError):
        await direct
    assert bus.handler_count() == 0


async def test_seq_is_monotonic_and_counted_per_type() -> None:
    bus = EventBus("t")
    events = [await bus.emit(T), bus.emit_nowait(EventType.NEW_BAR), await bus.emit(T), bus.emit_nowait(T)]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert bus.emitted == {T: 3, EventType.NEW_BAR: 1}
    with pytest.raises(ValueError):
        await bus.emit("bogus")
    assert (await bus.emit(T)).seq == 5  # a rejected emit takes no number


async def test_two_buses_are_isolated() -> None:
    mnq, es = EventBus("MNQ"), EventBus("ES")
    seen_mnq, seen_es = [], []
    mnq.on(T, lambda e: seen_mnq.append(e.data))
    mnq.on_any(lambda e: seen_mnq.append(("any", e.data)))
    es.on(T, lambda e: seen_es.append(e.data))
    mnq_waiter = mnq.wait_for(T, timeout=0.01)
    await es.emit(T, "es-tick", source="ES")
    assert seen_mnq == []
    assert seen_es == ["es-tick"]
    with pytest.raises(TimeoutError):
        await mnq_waiter
    assert (await mnq.emit(T, "mnq-tick")).seq == 1  # sequence numbers are per bus
    assert seen_mnq == ["mnq-tick", ("any", "mnq-tick")]
    assert seen_es == ["es-tick"]
    assert not es.handler_errors and not mnq.handler_errors


async def test_throttle_coalesces_a_burst_to_first_and_last() -> None:
    bus, seen = EventBus("t"), []
    done = asyncio.Event()

    def draw(event: Event) -> None:
        seen.append(event.data)
        if event.data == 50:
            done.set()

    bus.on(T, bus.throttle(draw, 0.02))
    for value in range(1, 51):
        bus.emit_nowait(T, value)
    assert seen == [1]  # leading edge at once, the rest coalesced
    await asyncio.wait_for(done.wait(), 2)
    assert seen == [1, 50]


async def test_throttle_stream_at_most_once_per_interval_and_last_delivered() -> None:
    bus, loop = EventBus("t"), asyncio.get_running_loop()
    interval, calls = 0.02, []
    done = asyncio.Event()

    def draw(event: Event) -> None:  # records the delivery time itself (an async handler would add task latency)
        calls.append((loop.time(), event.data))
        if event.data == 39:
            done.set()

    bus.on(T, bus.throttle(draw, interval))
    for value in range(40):
        bus.emit_nowait(T, value)
        await asyncio.sleep(0.002)  # pacing the producer, not synchronising
    await asyncio.wait_for(done.wait(), 2)
    times, values = zip(*calls, strict=True)
    assert values[-1] == 39
    assert list(values) == sorted(set(values))
    assert 2 <= len(calls) < 40
    assert min(b - a for a, b in itertools.pairwise(times)) >= interval - 0.002


async def test_aclose_flushes_a_pending_throttled_event() -> None:
    bus, seen = EventBus("t"), []

    async def draw(event: Event) -> None:  # an async handler: each delivery is a task aclose() awaits
        seen.append(event.data)

    bus.on(T, bus.throttle(draw, 60))
    bus.emit_nowait(T, "first")
    bus.emit_nowait(T, "middle")
    bus.emit_nowait(T, "final")
    await bus.aclose()  # does not wait 60 s, and does not drop the final state
    assert seen == ["first", "final"]


async def test_throttle_rejects_bad_interval() -> None:
    with pytest.raises(InputError):
        EventBus("t").throttle(lambda e: None, 0)


# ---------------------------------------------------------------------------------------------- payload types


def test_every_event_type_has_one_payload_type() -> None:
    assert set(PAYLOADS) == set(EventType)
    assert all(isinstance(kind, type) for kind in PAYLOADS.values())


async def test_every_event_a_suite_emits_carries_its_payload_type(sim, tmp_path) -> None:
    """A real suite on the simulator: market data, an order that breaks the daily loss limit (fills, positions, the
    account, the breach and its flattening), a dropped hub and a silent feed. Every event of the suite's bus and
    the instrument's carries the data type the table gives for its type."""
    risk = {"max_daily_loss": 5.0, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], timeframes=["15sec"], features=["orderbook", "risk_manager"], risk=risk,
                          stale_after=0.5) as suite:
        mnq = suite["MNQ"]
        events: list[Event] = []
        suite.event_bus.on_any(events.append)
        mnq.event_bus.on_any(events.append)
        await sim.advance(40)  # trades, quotes and depth; two 15 s bars close
        await until(lambda: {EventType.NEW_BAR, EventType.DEPTH_UPDATE} <= {e.type for e in events}, "market events")
        breached = suite.event_bus.wait_for(EventType.RISK_BREACH, timeout=10)
        await mnq.orders.place_market_order(OrderSide.BUY, 20)  # the fees alone (20 x 0.37) pass 5 USD
        await breached
        reconnected = suite.event_bus.wait_for(EventType.RECONNECTED, timeout=10)
        sim.drop_hub_connections()
        await reconnected
        await mnq.event_bus.wait_for(EventType.STALE_FEED, timeout=5)  # the simulated market stands still
    seen = {e.type for e in events}
    assert seen >= set(EventType) - {EventType.CONNECTED, EventType.ORDER_PARTIAL_FILL, EventType.ORDER_CANCELLED,
                                     EventType.ORDER_REJECTED, EventType.ORDER_MODIFIED,
                                     EventType.POSITION_CHANGED}, set(EventType) - seen
    wrong = [(e.type, type(e.data).__name__) for e in events if not isinstance(e.data, PAYLOADS[e.type])]
    assert wrong == []
