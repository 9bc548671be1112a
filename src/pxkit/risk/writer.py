"""StoreWriter: a RiskStore's calls run in order on one thread, off the event loop, with failed writes kept."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import InputError, PxError

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreWriter:
    """One thread that runs store calls in the order they are given, so SQLite never blocks the event loop.

    `run` is awaited by whoever needs the answer (an order's intent is journaled before it is sent); `submit` is
    for a write nobody waits for: when it fails (the file is locked by another process, the disk is full) it is
    logged, kept, and tried again, in order, before the next call and every `retry_after` seconds until it lands.
    """

    def __init__(self, *, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pxkit-risk-store")
        self._kept: deque[tuple[str, Callable[[], object]]] = deque()  # failed background writes, oldest first
        self._retry: asyncio.TimerHandle | None = None

    @property
    def kept(self) -> int:
        """Background writes that failed and wait to be tried again."""
        return len(self._kept)

    async def run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `call` on the writer thread after every earlier call; its result or its error comes back here."""
        job = functools.partial(self._then, functools.partial(call, *args, **kwargs))
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def submit(self, what: str, call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Queue a write nobody awaits; `what` names it in the log if it has to be kept and retried."""
        job = functools.partial(self._write, what, functools.partial(call, *args, **kwargs))
        future = asyncio.get_running_loop().run_in_executor(self._executor, job)
        future.add_done_callback(self._schedule_retry)

    async def aclose(self, then: Callable[[], object] | None = None) -> None:
        """Try the kept writes once more, log what is still lost, run `then` (closing the store), stop the thread."""
        if self._retry is not None:
            self._retry.cancel()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._drain)
        for what, _ in self._kept:
            log.error("risk store: %s was never written", what)
        if then is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, then)
        self._executor.shutdown(wait=False)

    # ------------------------------------------------------------------ on the writer thread

    def _then(self, call: Callable[[], T]) -> T:
        self._drain()
        return call()

    def _write(self, what: str, call: Callable[[], object]) -> None:
        self._drain()
        if self._kept:  # an older write still fails: keep the order of the writes
            self._kept.append((what, call))
            return
        self._attempt(what, call)

    def _drain(self) -> None:
        while self._kept:
            what, call = self._kept[0]
            if not self._attempt(what, call, kept=True):
                return
            self._kept.popleft()

    def _attempt(self, what: str, call: Callable[[], object], *, kept: bool = False) -> bool:
        """Run one write; False (and the write kept) when the store failed, so it is tried again later."""
        try:
            call()
        except InputError as exc:  # the record itself is refused: trying again cannot help
            log.error("risk store refused %s: %s", what, exc)
        except PxError as exc:
            log.error("risk store: %s failed (%s); kept to try again", what, exc)
            if not kept:
                self._kept.append((what, call))
            return False
        return True

    # ------------------------------------------------------------------ on the loop

    def _schedule_retry(self, _done: object) -> None:
        if self._kept and self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(self.retry_after, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        if self._kept:
            future = asyncio.get_running_loop().run_in_executor(self._executor, self._drain)
            future.add_done_callback(self._schedule_retry)
