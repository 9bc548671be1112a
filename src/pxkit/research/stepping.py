"""Drive a suite and a stepped strategy on a simulator's manual clock: the one loop of backtests and parity runs.

Each step moves simulated time by `step` seconds and lets the simulator make what happened meanwhile (prints,
quotes, depth, fills of resting orders); then everything it pushed is delivered and routed (`settle`, which knows
the transport), the strategy's hooks for it run, the suite closes the bars that are due, and the hooks of those
run, until nothing is left. Closed hours are jumped over, so a week costs what its sessions cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from ..client.realtime import ProjectXRealtimeClient
from ..errors import InputError
from ..hours import sessions_between
from ..sim.engine import Simulator
from ..suite import TradingSuite
from ..times import from_us, to_us
from .strategy import StrategyRunner

Settle = Callable[[], Awaitable[None]]
_TAIL = timedelta(seconds=2)  # after a session's close: time for its last bars to close (bar_close_grace is 1 s)


def check_step(step: object) -> float:
    """The step in seconds, or an InputError."""
    if isinstance(step, bool) or not isinstance(step, int | float) or not 0.01 <= step <= 60:
        raise InputError(f"step must be a number of seconds from 0.01 to 60, got {step!r}")
    return float(step)


async def routed(realtime: ProjectXRealtimeClient) -> None:
    """Settle for an in-process gateway: pushes are already handed over; wait until the router has taken them."""
    while realtime.backlog():
        await asyncio.sleep(0)


def over_sockets(sim: Simulator, realtime: ProjectXRealtimeClient, *, timeout: float = 10.0) -> Settle:
    """Settle for a simulator served over sockets (its `event_log` a list, one client): wait until the client has
    received every push the simulator made and routed them, for at most `timeout` s per settle."""
    log = sim.event_log
    if log is None:
        raise InputError("over_sockets needs the simulator's event_log: set sim.event_log = [] before the suite")

    async def settle() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while realtime.invocations < len(log) or realtime.backlog():
            if loop.time() > deadline:
                raise TimeoutError(f"{len(log) - realtime.invocations} pushes did not arrive in {timeout} s")
            await asyncio.sleep(0.0005)
    return settle


class Stepper:
    """Steps a simulator's manual clock through [now, end) with a suite and a stepped StrategyRunner on it.

    `after_step(t_us)` (if given) runs after each step has settled, e.g. to sample equity.
    """

    def __init__(self, sim: Simulator, suite: TradingSuite, runner: StrategyRunner, settle: Settle, *,
                 step: float = 0.25, after_step: Callable[[int], None] | None = None) -> None:
        if sim.clock.realtime:
            raise InputError("stepping needs a simulator on a manual clock")
        if not runner.stepped:
            raise InputError("stepping needs a StrategyRunner made with stepped=True")
        self.sim, self.suite, self.runner, self.settle = sim, suite, runner, settle
        self.step_us = round(check_step(step) * 1_000_000)
        self.after_step = after_step
        self.steps = 0
        self.ticks = 0  # market prints the simulator made on the way

    async def run(self, end: datetime) -> None:
        """Step until the simulated clock reaches `end`, session by session."""
        clock = self.sim.clock
        end_us = to_us(end)
        await self._quiesce()
        for opens, closes in sessions_between(clock.now(), end):
            open_us, close_us = to_us(opens), min(to_us(closes + _TAIL), end_us)
            if open_us >= end_us:
                break
            if clock.now_us() < open_us:  # across closed time nothing trades: one step stands for all of it
                await self._step(open_us)
            while clock.now_us() < close_us:
                await self._step(min(close_us, clock.now_us() + self.step_us))
        if clock.now_us() < end_us:
            await self._step(end_us)

    async def _step(self, t_us: int) -> None:
        self.sim.clock.set(t_us)
        self.ticks += self.sim.step()
        await self._quiesce()
        self.suite.tick()
        await self._quiesce()
        self.steps += 1
        if self.after_step is not None:
            self.after_step(t_us)

    async def _quiesce(self) -> None:
        """Deliver and route every push, run the hooks they call for, and again for what the hooks did."""
        while True:
            await self.settle()
            if not await self.runner.run_due():
                return

    def __repr__(self) -> str:
        return f"Stepper(at {from_us(self.sim.clock.now_us()):%Y-%m-%d %H:%M:%S} UTC, {self.steps} steps)"
