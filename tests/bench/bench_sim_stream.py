"""Benchmark: market events per second the simulated gateway streams to one real signalrcore client.

Starts `pxkit sim` in its own process (real-time clock, a high trade rate), subscribes one signalrcore
client to quotes, trades and depth of several contracts, and counts what arrives. Prints one line per
figure. `--short` runs briefly (CI proves the script still works).

    python tests/bench/bench_sim_stream.py [--short]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request

from signalrcore.hub_connection_builder import HubConnectionBuilder

from pxkit.codec import MARKET_TARGETS

CONTRACTS = ["CON.F.US.MNQ.H26", "CON.F.US.EP.H26", "CON.F.US.GCE.H26", "CON.F.US.CLE.H26"]
START = "2026-03-02T14:30:00Z"  # listed contracts follow the start date


class Counter:
    """Counts pushes and records in signalrcore's receive thread (no hand-off cost in the figure)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pushes = 0
        self.records = 0

    def on(self, args: list) -> None:
        payload = args[1]
        with self.lock:
            self.pushes += 1
            self.records += len(payload) if isinstance(payload, list) else 1

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return self.pushes, self.records


def login(base: str) -> str:
    request = urllib.request.Request(f"{base}/api/Auth/loginKey", data=json.dumps(
        {"userName": "demo", "apiKey": "demo"}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["token"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(trades_per_minute: float, max_batch: int, seconds: float) -> tuple[float, float, float]:
    server = subprocess.Popen(
        [sys.executable, "-m", "pxkit.cli", "sim", "--port", "0", "--start", START,
         "--trades-per-minute", str(trades_per_minute), "--max-batch", str(max_batch)],
        stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        base = line.split(" at ")[1].split()[0]
        counter = Counter()
        hub = (HubConnectionBuilder()
               .with_url(f"{base}/hubs/market?access_token={login(base)}", options={"skip_negotiation": True})
               .configure_logging(logging.ERROR).build())
        opened = threading.Event()
        hub.on_open(opened.set)
        for target in MARKET_TARGETS:
            hub.on(target, counter.on)
        hub.start()
        if not opened.wait(10):
            raise RuntimeError("hub did not open")
        for contract in CONTRACTS:
            for method in ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth"):
                hub.invoke(method, [contract])
        time.sleep(1.0)  # warm-up: snapshots and caches, not counted
        p0, r0, t0, c0 = *counter.snapshot(), time.perf_counter(), cpu_seconds(server.pid)
        time.sleep(seconds)  # the measurement window
        p1, r1, t1, c1 = *counter.snapshot(), time.perf_counter(), cpu_seconds(server.pid)
        hub.stop()
        elapsed = t1 - t0
        return (p1 - p0) / elapsed, (r1 - r0) / elapsed, (c1 - c0) / elapsed
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="a quick run for CI")
    args = parser.parse_args()
    seconds = 1.5 if args.short else 8.0
    rates = [30_000.0] if args.short else [30_000.0, 90_000.0, 180_000.0]
    for rate in rates:
        for batch in (50, 1):
            pushes, records, cpu = run(rate, batch, seconds)
            print(f"sim stream: {len(CONTRACTS)} contracts x {rate / 60:,.0f} trades/s, max_batch={batch}: "
                  f"{records:,.0f} market events/s in {pushes:,.0f} pushes/s, server CPU {cpu:.0%} of a core")


if __name__ == "__main__":
    main()
