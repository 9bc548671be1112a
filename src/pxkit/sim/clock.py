"""Virtual time for the simulator: manual (advanced by hand) or real-time (follows the wall clock)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..times import from_us, to_us

# The one default start: manual clocks, the embedded suite and `pxkit sim` (unless `--start now`) begin here; only a
# real-time SimClock given no start follows the wall clock. Monday 2 March 2026, 14:30 UTC = 09:30 New York, the US
# cash open, when the March 2026 contracts (H26, names like MNQH6) are the active ones.
DEFAULT_START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


class SimClock:
    """Simulated time in microseconds; manual clocks move only through `set`, real-time ones by themselves."""

    def __init__(self, start: datetime | None = None, *, realtime: bool = False, speed: float = 1.0) -> None:
        if start is None:
            start = datetime.now(UTC) if realtime else DEFAULT_START
        self.realtime = realtime
        self.speed = speed
        self._origin_us = to_us(start)
        self._origin_mono = time.monotonic()

    def now_us(self) -> int:
        if not self.realtime:
            return self._origin_us
        return self._origin_us + int((time.monotonic() - self._origin_mono) * self.speed * 1_000_000)

    def now(self) -> datetime:
        return from_us(self.now_us())

    def set(self, t_us: int) -> None:
        """Move a manual clock to t_us (never backwards)."""
        if self.realtime:
            raise RuntimeError("a real-time clock cannot be set by hand")
        if t_us < self._origin_us:
            raise ValueError("the simulated clock cannot move backwards")
        self._origin_us = t_us
