"""A closed client refuses every command before the wire; a gateway that cannot be reached is named, and fast."""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pxkit.client.http import ProjectX
from pxkit.client.resilience import RetryPolicy
from pxkit.config import ProjectXConfig
from pxkit.enums import OrderSide, OrderType
from pxkit.errors import ClosedError, ConnectionLostError, PxError
from pxkit.models import PlaceOrderRequest
from pxkit.sim import SimServer

COMMANDS: dict[str, Callable[[ProjectX], Awaitable[Any]]] = {
    "place": lambda px: px.place_order("MNQ", "buy", 1),
    "send": lambda px: px.send_order(PlaceOrderRequest(1001, "CON.F.US.MNQ.H26", OrderType.MARKET, OrderSide.BUY, 1,
                                                       custom_tag="after-close")),
    "modify": lambda px: px.modify_order(7_000_001, size=2),
    "cancel": lambda px: px.cancel_order(7_000_001),
    "close": lambda px: px.close_position("MNQ"),
    "partial": lambda px: px.partially_close_position("MNQ", 1),
    "orders": lambda px: px.search_orders(),
    "accounts": lambda px: px.list_accounts(),
    "bars": lambda px: px.get_bars("MNQ", days=1),
    "new-symbol": lambda px: px.get_instrument("ES"),
    "login": lambda px: px.authenticate(),
}


@pytest.mark.parametrize("reason", [None, "this suite is closed"])
@pytest.mark.parametrize("command", list(COMMANDS))
async def test_every_command_after_close_is_refused_before_the_wire(sim: SimServer, command: str,
                                                                    reason: str | None) -> None:
    px = ProjectX(ProjectXConfig.for_simulator(sim.base_url))
    async with px:
        await px.get_instrument("MNQ")
    if reason is not None:
        await px.close(reason=reason)
    before = len(sim.requests)
    with pytest.raises(ClosedError) as info:
        await COMMANDS[command](px)
    assert str(info.value).startswith(reason or "the client is closed")
    assert isinstance(info.value, PxError) and len(sim.requests) == before


def _refused_address() -> tuple[str, int]:
    """A local port nothing listens on: bound to learn a free number, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()


@pytest.mark.parametrize(("url", "what"), [
    ("refused", "connection refused"),
    ("http://gateway.invalid:8400", "host name not resolved"),
], ids=["refused", "dns"])
async def test_an_unreachable_gateway_is_named_with_what_failed_within_a_second(url: str, what: str) -> None:
    if url == "refused":
        host, port = _refused_address()
        url = f"http://{host}:{port}"
    config = ProjectXConfig.for_simulator(url)  # the default retry policy: 5 attempts, backoff from 0.5 s
    started = time.monotonic()
    with pytest.raises(ConnectionLostError) as info:
        async with ProjectX(config):
            pass
    elapsed = time.monotonic() - started
    address = url.removeprefix("http://")
    assert f"could not connect to {address}: {what}" in str(info.value)
    assert info.value.address == address and info.value.maybe_processed is False
    assert elapsed < 3.0, f"an unreachable gateway took {elapsed:.1f} s to report"  # 7-8 s of backoff before


def test_connecting_is_retried_only_within_the_connect_window() -> None:
    policy = RetryPolicy(connect_window=1.0)
    assert policy.keeps_connecting(0.0, 0.5) and policy.keeps_connecting(0.5, 0.5)
    assert not policy.keeps_connecting(0.6, 0.5) and not policy.keeps_connecting(0.0, 1.5)
