"""lab.suite in a real kernel: a re-run reuses the suite, other arguments replace it, close and shutdown end it."""

from __future__ import annotations

import json
import socket

import pytest

from kernels import Kernel

COUNT = """
import asyncio, threading, json, os, psutil
print(json.dumps([len(asyncio.all_tasks()), threading.active_count(),
                  len(psutil.Process(os.getpid()).net_connections("all"))]))
"""
START = "from pxkit import lab\nsuite = await lab.suite({symbols}, simulated=True, timeframes={tfs})\n"


def counts(kernel: Kernel) -> list[int]:
    kernel.run(COUNT)
    return json.loads(kernel.stdout.strip().splitlines()[-1])


def test_a_rerun_with_the_same_arguments_reuses_the_suite(kernel: Kernel) -> None:
    kernel.run(START.format(symbols='["MNQ", "ES"]', tfs='["1min"]') + "first = id(suite)")
    before = counts(kernel)
    said = kernel.run(START.format(symbols='[" mnq", "ES"]', tfs='("1min",)') + "print(id(suite) == first)")
    assert kernel.stdout.strip().splitlines()[-1] == "True"
    assert "closing" not in said
    assert counts(kernel) == before


def test_other_arguments_close_the_old_suite_and_say_so_once(kernel: Kernel) -> None:
    kernel.run("old = lab.current(); print(old.sim.base_url)")
    old_url = kernel.stdout.split()[-1]
    host, port = old_url.split("//")[1].rstrip("/").split(":")
    socket.create_connection((host, int(port)), timeout=2).close()
    said = kernel.run(START.format(symbols='["MNQ"]', tfs='["1min"]') + "print(old.router is not suite.router)")
    lines = [line for line in said.splitlines() if "closing" in line]
    assert lines == ["closing the suite on MNQ, ES to start one on MNQ"]
    assert kernel.stdout.strip().splitlines()[-1] == "True"
    assert kernel.run("print(lab.current() is suite, old in __import__('pxkit.suite').suite.live_suites())"
                      ).split() == ["True", "False"]
    with pytest.raises(OSError):  # the old suite's simulator is gone with it
        socket.create_connection((host, int(port)), timeout=2).close()


def test_a_suite_closed_by_the_user_is_not_returned_again(kernel: Kernel) -> None:
    kernel.run("await suite.close()\ngone = lab.current()\n" + START.format(symbols='["MNQ"]', tfs='["1min"]')
               + "print('result', gone, lab.current() is suite)")
    assert kernel.stdout.split() == ["result", "None", "True"]


def test_close_leaves_no_tasks_or_sockets(kernel: Kernel) -> None:
    kernel.run("await lab.close()")
    idle = counts(kernel)
    kernel.run(START.format(symbols='["MNQ"]', tfs='["1min"]'))
    assert counts(kernel)[2] > idle[2]
    kernel.run("await lab.close()\nprint(lab.current())")
    after = counts(kernel)
    assert after[0] == idle[0] and after[2] == idle[2]


async def test_concurrent_calls_share_one_start() -> None:
    import asyncio

    from pxkit import lab

    first, second = await asyncio.gather(lab.suite("MNQ", simulated=True, timeframes=["1min"]),
                                         lab.suite(["mnq"], simulated=True, timeframes=("1min",)))
    try:
        assert first is second is lab.current()
    finally:
        await lab.close()
    assert lab.current() is None


def test_kernel_shutdown_closes_the_suite(tmp_path) -> None:
    marker = tmp_path / "closed"
    mark_close = f"""
import pxkit.suite
_close = pxkit.suite.TradingSuite.close
async def _marked(self):
    await _close(self)
    open({str(marker)!r}, "w").write(",".join(self.contexts))
pxkit.suite.TradingSuite.close = _marked
"""
    k = Kernel()
    try:
        k.run(mark_close + START.format(symbols='["MNQ"]', tfs='["1min"]') + "print(suite.sim.base_url)")
        host, port = k.stdout.split()[-1].split("//")[1].rstrip("/").split(":")
        socket.create_connection((host, int(port)), timeout=2).close()
    finally:
        k.client.stop_channels()
        k.manager.shutdown_kernel(now=False)
    assert marker.read_text() == "MNQ"  # the suite's own close ran to its end during the shutdown
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
