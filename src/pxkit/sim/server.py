"""Serve the simulated gateway on a local port, in-process (`async with SimServer() as sim`) or from the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import tempfile
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import TracebackType

from aiohttp import web

from .app import GatewayApp, HubSettings, LoggedRequest
from .auth import Credentials
from .clock import SimClock
from .engine import SimConfig, Simulator
from .faults import RestFaults
from .ratelimit import Limit

log = logging.getLogger(__name__)


class SimServer:
    """A running simulated gateway: REST at `base_url`/api, hubs at `user_hub_url` and `market_hub_url`.

    With `realtime=False` (the default, for tests) simulated time stands still until `advance()` is awaited;
    with `realtime=True` it follows the wall clock (times `speed`) and a pump streams the market.
    Files that belong to this simulator's lifetime go in `state_dir`, removed by `stop()`.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, config: SimConfig | None = None, realtime: bool = False,
        start: datetime | None = None, speed: float = 1.0, credentials: Credentials | None = None,
        token_ttl: float = 86_400.0, rate_limits: dict[str, Limit] | None = None, hubs: HubSettings | None = None,
        pump_interval: float = 0.02,
    ) -> None:
        self.host = host
        self.port = port
        self.credentials = credentials or Credentials()
        self.sim = Simulator(config or SimConfig(), SimClock(start, realtime=realtime, speed=speed))
        self.gateway = GatewayApp(self.sim, self.credentials, secret=secrets.token_bytes(32), token_ttl=token_ttl,
                                  rate_limits=rate_limits, hubs=hubs or HubSettings())
        self.pump_interval = pump_interval
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._pump: asyncio.Task[None] | None = None
        self._reopen: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> SimServer:
        self._runner = web.AppRunner(self.gateway.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()
        if self.sim.clock.realtime:
            self._pump = asyncio.create_task(self._run_pump(), name="pxkit-sim-pump")
        log.info("simulated gateway listening on %s", self.base_url)
        return self

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        server = self._site._server  # the bound socket tells the real port when 0 was asked
        if self.port == 0 and server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in (self._pump, self._reopen):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.gateway.user_hub.close_all()
        await self.gateway.market_hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if "state_dir" in self.__dict__:
            shutil.rmtree(self.__dict__.pop("state_dir"), ignore_errors=True)

    @cached_property
    def state_dir(self) -> Path:
        """A fresh private temporary directory, made when first asked for and removed by `stop()`."""
        return Path(tempfile.mkdtemp(prefix="pxkit-sim-"))

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def _run_pump(self) -> None:
        while True:
            try:
                self.sim.step()
            except Exception:  # a bug in one step must not stop the market
                log.exception("simulator step failed")
            await asyncio.sleep(self.pump_interval)

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def user_hub_url(self) -> str:
        return f"{self.base_url}/hubs/user"

    @property
    def market_hub_url(self) -> str:
        return f"{self.base_url}/hubs/market"

    # ------------------------------------------------------------------ test controls

    @property
    def faults(self) -> RestFaults:
        return self.gateway.faults

    @property
    def requests(self) -> list[LoggedRequest]:
        """The REST requests received, in order (the newest 10,000 at least; older ones are dropped)."""
        return self.gateway.requests

    async def advance(self, seconds: float) -> int:
        """Move simulated time forward (manual clock), streaming what happens; returns ticks processed."""
        count = 0
        remaining = seconds
        while remaining > 0:
            chunk = min(remaining, 1.0)
            count += self.sim.advance(chunk)
            remaining -= chunk
            await asyncio.sleep(0)  # let the hub writers flush
        return count

    def login(self) -> str:
        """A valid token for the configured user, without a REST round trip."""
        return self.gateway.tokens.issue(self.credentials.user_name)

    def expire_tokens(self) -> None:
        """Every token issued so far stops working now (REST answers 401, hubs refuse new connections)."""
        self.gateway.tokens.expire_all()

    def drop_hub_connections(self) -> int:
        """Abort every hub connection (as a network cut would); returns how many."""
        return self.gateway.user_hub.drop_all() + self.gateway.market_hub.drop_all()

    def refuse_hubs(self, seconds: float) -> int:
        """A hub outage while REST stays up: drop hub connections and refuse new ones for `seconds`."""
        return self.gateway.user_hub.refuse_for(seconds) + self.gateway.market_hub.refuse_for(seconds)

    def go_silent(self) -> int:
        """Current hub connections stay open but receive nothing more (no events, no pings)."""
        return self.gateway.user_hub.go_silent() + self.gateway.market_hub.go_silent()

    async def refuse_connections(self, seconds: float) -> None:
        """Stop listening and cut every open connection (REST and hubs); listen again after `seconds`."""
        if self._reopen is not None:
            self._reopen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopen
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for connection in self._runner.server.connections:
                connection.force_close()
        self.drop_hub_connections()
        self._reopen = asyncio.create_task(self._reopen_after(seconds), name="pxkit-sim-reopen")

    async def _reopen_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._listen()
