"""A handler registered in a cell prints and raises into that cell (its request), in a real kernel."""

from __future__ import annotations

from kernels import Kernel

CREATE = "from pxkit import lab, EventType\nsuite = await lab.suite('MNQ', simulated=True, timeframes=['1min'])"
REGISTER = """
def shout(event):
    print('HANDLER-PRINT', event.type.value)
bus = suite['MNQ'].event_bus
bus.once(EventType.TICK, shout)
@bus.once(EventType.TICK)
def boom(event):
    raise ValueError('HANDLER-BOOM')
"""
WAIT = "await bus.wait_for(EventType.TICK, timeout=30)\nawait asyncio.sleep(0.2)\nprint(bus.handler_errors['tick'])"


def test_print_and_traceback_land_in_the_registering_cell(kernel: Kernel) -> None:
    created = kernel.run(CREATE)
    create_id = kernel.last_id
    registered = kernel.run(REGISTER)
    register_id = kernel.last_id
    waited = kernel.run("import asyncio\n" + WAIT)
    late = "".join(kernel.late.get(register_id, []))
    assert "HANDLER-PRINT tick" in registered + late
    assert "ValueError: HANDLER-BOOM" in registered + late
    assert waited.split()[-1] == "1"  # the bus still counts it
    for other in (created, "".join(kernel.late.get(create_id, [])), waited):
        assert "HANDLER-PRINT" not in other and "HANDLER-BOOM" not in other
    kernel.run("await lab.close()")


async def test_outside_a_kernel_handlers_are_called_directly() -> None:
    from pxkit.events import EventBus, EventType

    bus = EventBus()
    seen = []
    handler = bus.on(EventType.TICK, seen.append)
    assert bus._handlers[EventType.TICK][0].call is handler
    await bus.emit(EventType.TICK, 1)
    assert [e.data for e in seen] == [1]
