"""A progress bar for history loads: shown only once a load has run about a second, through `tqdm.auto` (a widget
in a Jupyter kernel, text on a terminal), and not at all when stderr is no terminal outside a kernel."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..events import in_kernel

T = TypeVar("T")
SHOW_AFTER = 1.0  # seconds a load runs before its bar appears


class LoadProgress:
    """Counts the parts of one load done; opens a bar `after` seconds in if there is somewhere to show it."""

    def __init__(self, label: str, total: int, after: float = SHOW_AFTER) -> None:
        self.label, self.total = label, total
        self.done = 0
        self.bar: Any = None
        self._timer = asyncio.get_running_loop().call_later(after, self._show)

    async def track(self, part: Awaitable[T]) -> T:
        """Await one part of the load and count it as done."""
        result = await part
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        return result

    def close(self) -> None:
        """End the load: no bar opens after this; an open one is closed."""
        self._timer.cancel()
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _show(self) -> None:
        stream = sys.stderr
        if not in_kernel() and not (stream is not None and stream.isatty()):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.done, desc=self.label, unit="series", file=stream,
                        leave=False)
