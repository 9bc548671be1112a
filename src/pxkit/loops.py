"""Running a coroutine on the event loop that owns the state it touches, from whichever loop or thread calls."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None outside one (an object made there records its owner)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def on_loop(loop: asyncio.AbstractEventLoop | None, work: Coroutine[Any, Any, T]) -> T:
    """Await `work` on `loop`: directly when already there (or `loop` is None), else handed over thread-safely.

    A caller on another thread's loop (`asyncio.run(...)` in a thread, a widget callback) then never touches the
    owner's connections, locks or state itself; cancelling the caller cancels the work on the owner's loop.
    """
    if loop is None or loop is asyncio.get_running_loop():
        return await work
    if loop.is_closed() or not loop.is_running():
        work.close()
        raise RuntimeError("the event loop that owns this object is no longer running")
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))
