"""Faults a test can inject into the simulated gateway's REST side (hub faults live on the server)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestFaults:
    """Pending REST faults, consumed request by request."""

    reject_remaining: int = 0
    reject_status: int = 503
    reject_retry_after: float | None = None
    latency: float = 0.0
    lose_remaining: int = 0
    lose_path: str | None = None

    def reject_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        """The next `count` requests are answered with `status` (5xx or 429) without being processed."""
        self.reject_remaining, self.reject_status, self.reject_retry_after = count, status, retry_after

    def add_latency(self, seconds: float) -> None:
        """Delay every answer by `seconds` (0 turns it off)."""
        self.latency = seconds

    def lose_next_responses(self, count: int, path: str | None = None) -> None:
        """Process the next `count` requests (to `path`, if given) but drop the connection instead of answering."""
        self.lose_remaining, self.lose_path = count, path

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
