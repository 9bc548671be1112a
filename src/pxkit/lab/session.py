"""The kernel-scoped suite: `suite = await lab.suite([...])` returns the running suite when a cell is re-run with
the same arguments, replaces it (closing the old one first) when they differ, and closes it at kernel shutdown."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ..suite import TradingSuite, live_suites

log = logging.getLogger(__name__)

CLOSE_AT_SHUTDOWN = 10.0  # seconds kernel shutdown waits for the suite to close
_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None  # a lock serves one loop
_held: tuple[tuple[str, ...], dict[str, Any], TradingSuite] | None = None  # (symbols, keywords, suite)


async def suite(instruments: str | Sequence[str], **kw: Any) -> TradingSuite:
    """The kernel's suite for these instruments and `TradingSuite.create` keywords, started on first use."""
    global _lock, _held
    key = (_symbols(instruments), _keywords(kw))
    loop = asyncio.get_running_loop()
    if _lock is None or _lock[0] is not loop:
        _lock = (loop, asyncio.Lock())
    async with _lock[1]:  # two cells awaiting at once start one suite
        held = current()
        if held is not None and _held is not None and (_held[0], _held[1]) == key:
            return held
        if held is not None:
            log.warning("closing the suite on %s to start one on %s", ", ".join(held.contexts), ", ".join(key[0]))
            await held.close()
        _held = None
        started = await TradingSuite.create(instruments, **kw)
        _held = (*key, started)
        _close_at_shutdown()
        return started


async def close() -> None:
    """Close the kernel's suite, if one runs."""
    global _held
    held, _held = current(), None
    if held is not None:
        await held.close()


def current() -> TradingSuite | None:
    """The kernel's suite while it runs; None before the first `lab.suite` and after it was closed."""
    if _held is None or _held[2] not in live_suites():
        return None
    return _held[2]


def _symbols(instruments: str | Sequence[str]) -> tuple[str, ...]:
    """Symbols as `TradingSuite.create` reads them: stripped, upper case, each once, in order."""
    names = [instruments] if isinstance(instruments, str) else list(instruments)
    return tuple(dict.fromkeys(n.strip().upper() if isinstance(n, str) else n for n in names))


def _keywords(kw: dict[str, Any]) -> dict[str, Any]:
    """Keywords compared by value; sequences as tuples, so a list and a tuple of timeframes are the same."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}


def _close_at_shutdown() -> None:
    """Make the kernel's shutdown close the suite first, while the suite's loop still runs (once per kernel)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "_pxkit_closes_suite", False):
        return
    loop = asyncio.get_running_loop()
    shutdown = kernel.do_shutdown

    async def do_shutdown(restart: bool) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        try:  # the shutdown request arrives on the control thread, the suite lives on the shell's loop
            closing = close() if running is loop else asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(close(), loop))
            await asyncio.wait_for(closing, CLOSE_AT_SHUTDOWN)
        except Exception as exc:  # shutdown goes on whatever closing did
            log.error("closing the suite at shutdown failed: %r", exc)
        reply = shutdown(restart)
        return await reply if asyncio.iscoroutine(reply) else reply

    kernel.do_shutdown = do_shutdown
    kernel._pxkit_closes_suite = True
