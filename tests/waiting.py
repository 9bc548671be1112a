"""Bounded waits for tests: poll a condition against a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest


async def until(cond: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    """Poll `cond` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
