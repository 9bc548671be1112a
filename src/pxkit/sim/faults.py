"""Faults a test can inject into the simulated gateway's REST side (hub faults live on the server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..times import format_ts, parse_ts

# the shapes a response cycles through under the fault: naive values mixed with aware ones in one response
_TS_MIX = ("offset", "offset", "z", "offset", "naive", "offset", "millis")
_TS_KEYS = frozenset({"t", "creationTimestamp", "updateTimestamp"})  # the timestamps of REST entities


@dataclass
class RestFaults:
    """Pending REST faults, consumed request by request."""

    reject_remaining: int = 0
    reject_status: int = 503
    reject_retry_after: float | None = None
    latency: float = 0.0
    lose_remaining: int = 0
    lose_path: str | None = None
    timestamp_shapes: bool = False

    def reject_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        """The next `count` requests are answered with `status` (5xx or 429) without being processed."""
        self.reject_remaining, self.reject_status, self.reject_retry_after = count, status, retry_after

    def add_latency(self, seconds: float) -> None:
        """Delay every answer by `seconds` (0 turns it off)."""
        self.latency = seconds

    def lose_next_responses(self, count: int, path: str | None = None) -> None:
        """Process the next `count` requests (to `path`, if given) but drop the connection instead of answering."""
        self.lose_remaining, self.lose_path = count, path

    def mix_timestamps(self, on: bool = True) -> None:
        """Send REST timestamps in shapes that vary within each response (`Z`, 3 digits, naive among `+00:00`)."""
        self.timestamp_shapes = on

    def take_rejection(self) -> bool:
        if self.reject_remaining <= 0:
            return False
        self.reject_remaining -= 1
        return True

    def take_loss(self, path: str) -> bool:
        if self.lose_remaining <= 0 or (self.lose_path is not None and self.lose_path != path):
            return False
        self.lose_remaining -= 1
        return True

    def clear(self) -> None:
        self.reject_remaining = self.lose_remaining = 0
        self.latency = 0.0
        self.timestamp_shapes = False


def mix_timestamp_shapes(body: dict[str, Any]) -> dict[str, Any]:
    """A response body whose entity timestamps cycle deterministically through `_TS_MIX`, in order of appearance."""
    seen = 0

    def reshape(item: Any) -> Any:
        nonlocal seen
        if not isinstance(item, dict):
            return item
        out = dict(item)
        for key, value in item.items():  # in field order, so the shapes do not depend on set order
            if key in _TS_KEYS and isinstance(value, str):
                out[key] = format_ts(parse_ts(value), _TS_MIX[seen % len(_TS_MIX)])
                seen += 1
        return out

    return {key: [reshape(item) for item in value] if isinstance(value, list) else value
            for key, value in body.items()}
