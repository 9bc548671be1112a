"""Hub links to an in-process simulated gateway: pushes arrive by a function call, stamped with simulated time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..client.hublink import LinkSettings
from ..enums import LinkState
from ..errors import ConnectionLostError, GatewayError
from ..sim.hub import HubMethodError
from ..sim.inprocess import InProcessConnection, InProcessGateway


class InProcessLink:
    """The realtime client's link to one hub of an InProcessGateway: up at once, never dropped.

    Every push is handed to `on_messages` as it is made, stamped with `clock()` (simulated epoch seconds) as its
    arrival time, so a backtest sees the order of events a live client would and none of the wall clock.
    """

    def __init__(self, name: str, url: str, token: Callable[[], Awaitable[str]], *,
                 on_messages: Callable[[float, list[tuple[str, list[Any]]]], None],
                 on_ready: Callable[[bool], Awaitable[None]], on_state: Callable[[str, LinkState], None],
                 on_unauthorized: Callable[[str], Awaitable[str]] | None = None,
                 settings: LinkSettings | None = None, gateway: InProcessGateway,
                 clock: Callable[[], float]) -> None:
        self.name = name
        self.url = url
        self._token = token
        self._on_messages = on_messages
        self._on_ready = on_ready
        self._on_state = on_state
        self._gateway = gateway
        self._clock = clock
        self._connection: InProcessConnection | None = None
        self.bad_records = 0

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def start(self) -> None:
        token = await self._token()
        try:
            self._connection = self._gateway.connect(self.name, token, self._deliver)
        except PermissionError as exc:
            raise ConnectionLostError(f"{self.name} hub: could not connect ({exc})", maybe_processed=False) from None
        await self._on_ready(False)
        self._on_state(self.name, LinkState.CONNECTED)

    async def close(self) -> None:
        if self._connection is not None:
            self._gateway.disconnect(self._connection)
            self._connection = None
            self._on_state(self.name, LinkState.DISCONNECTED)

    def reconnect(self) -> None:
        """Nothing to do: a function call does not carry the token a refresh replaced."""

    async def invoke(self, method: str, *args: Any) -> Any:
        if self._connection is None:
            raise ConnectionLostError(f"{self.name} hub is not connected", maybe_processed=False)
        try:
            self._gateway.invoke(self._connection, method, list(args))
        except HubMethodError as exc:
            raise GatewayError(f"hub:{self.name}", 0, str(exc)) from None
        return None

    def _deliver(self, target: str, arguments: list[Any]) -> None:
        self._on_messages(self._clock(), [(target, arguments)])
