"""Shared fixtures: a simulated gateway on a real local socket and an authenticated REST client."""

from __future__ import annotations

import httpx
import pytest

from pxkit.sim import SimConfig, SimServer
from pxkit.sim.app import HubSettings

MNQ = "CON.F.US.MNQ.H26"  # the active MNQ contract at the simulator's default start (2026-03-02)
ACCOUNT = 1001  # tradable practice account
LOCKED_ACCOUNT = 1003  # visible, cannot trade


@pytest.fixture
async def sim():
    """A manual-clock simulator (seed 1): time moves only through `await sim.advance(seconds)`.

    Its hubs ping every 0.5 s, so a client with the tests' short stale detection hears from a hub whose market is
    standing still, as it would from the real gateway's 15 s pings with the default 30 s stale detection.
    """
    async with SimServer(config=SimConfig(seed=1), hubs=HubSettings(ping_interval=0.5)) as server:
        yield server


@pytest.fixture
async def rest(sim):
    """An httpx client against the simulator, already carrying a valid bearer token."""
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10) as client:
        client.headers["Authorization"] = f"Bearer {sim.login()}"
        yield client
