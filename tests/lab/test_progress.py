"""A slow history load shows a tqdm bar on a terminal and nothing elsewhere; a fast one shows none."""

from __future__ import annotations

import io
import sys

import pytest

from suites import open_suite


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize(("stream", "latency", "shown"), [(Terminal, 1.5, True), (Pipe, 1.5, False),
                                                          (Terminal, 0.0, False)])
async def test_history_bar(sim, monkeypatch, stream, latency, shown) -> None:
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    async with open_suite(sim, ["MNQ"], timeframes=["1min", "5min"]) as suite:
        sim.faults.add_latency(latency)
        await suite["MNQ"].data.resync()
        sim.faults.clear()
    assert ("MNQ history" in err.getvalue() and "/2 " in err.getvalue()) is shown
