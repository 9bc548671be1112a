"""A handler registered in a cell prints and raises into that cell (its request), in a real kernel."""

from __future__ import annotations

from kernels import Kernel

CREATE = ("import asyncio\nfrom pxkit import lab, EventType\n"
          "suite = await lab.suite('MNQ', simulated=True, timeframes=['1min'])")
REGISTER = """
def shout(event):
    print('HANDLER-PRINT', event.type.value)
bus = suite['MNQ'].event_bus
bus.once(EventType.TICK, shout)
@bus.once(EventType.TICK)
def boom(event):
    raise ValueError('HANDLER-BOOM')
async def later(event):
    await asyncio.sleep(0)
    print('HANDLER-ASYNC')
bus.once(EventType.TICK, later)
"""
WAIT = "await bus.wait_for(EventType.TICK, timeout=30)\nawait bus.aclose()\nprint(bus.handler_errors['tick'])"


def test_print_and_traceback_land_in_the_registering_cell(kernel: Kernel) -> None:
    created = kernel.run(CREATE)
    create_id = kernel.last_id
    registered = kernel.run(REGISTER)
    register_id = kernel.last_id
    waited = kernel.run(WAIT)
    late = "".join(kernel.late.get(register_id, []))
    assert "HANDLER-PRINT tick" in registered + late
    assert "ValueError: HANDLER-BOOM" in registered + late
    assert "HANDLER-ASYNC" in registered + late  # an async handler's body runs in the cell too
    assert kernel.stdout.split()[-1] == "1"  # the bus still counts it
    for other in (created, "".join(kernel.late.get(create_id, [])), waited):
        assert not any(word in other for word in ("HANDLER-PRINT", "HANDLER-BOOM", "HANDLER-ASYNC"))
    kernel.run("await lab.close()")


async def test_outside_a_kernel_handlers_are_called_directly() -> None:
    from pxkit.events import EventBus, EventType

    bus = EventBus()
    seen = []
    handler = bus.on(EventType.TICK, seen.append)
    assert bus._handlers[EventType.TICK][0].call is handler
    await bus.emit(EventType.TICK, 1)
    assert [e.data for e in seen] == [1]
