"""Benchmark: events/second and latency (server send -> asyncio handler) of the realtime client.

A simulated gateway in its own process pushes GatewayQuote events at a fixed rate, each stamped with the
wall-clock time it was queued for sending; the realtime client (signalrcore + the asyncio hand-off) runs in
this process and a handler measures `now - stamp`. Prints one line per figure. `--short` runs briefly.

    python tests/bench/bench_realtime_latency.py [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

from pxkit import LinkSettings, ProjectX, ProjectXConfig, ProjectXRealtimeClient
from pxkit.codec import Target
from pxkit.messages import QuotePushed
from pxkit.times import format_ts

SERVE = "--serve"
MNQ = "CON.F.US.MNQ.H26"
MARK = "bench"  # symbolName of the pushed quotes (the subscription snapshot is not one of them)


async def serve(rate: float, seconds: float) -> None:
    from pxkit.sim import SimServer

    async with SimServer(rate_limits={}) as sim:
        print(sim.base_url, flush=True)
        while not sim.sim.subscribers("quotes", MNQ):
            await asyncio.sleep(0.01)
        interval = 0.001  # send in bursts of two: asyncio's timer cannot pace single events at 2,000/s
        per_burst = max(1, round(rate * interval))
        started = time.perf_counter()
        sent = 0
        while time.perf_counter() - started < seconds:
            for _ in range(per_burst):
                stamp = format_ts(datetime.now(UTC))
                sim.sim.publish("quotes", MNQ, Target.QUOTE,
                                 [MNQ, {"symbol": "F.US.MNQ", "symbolName": MARK, "lastPrice": 20000.25 + sent % 8,
                                        "timestamp": stamp}])
                sent += 1
            target = started + sent / rate
            await asyncio.sleep(max(0.0, target - time.perf_counter()))
        await asyncio.Event().wait()


async def measure(base_url: str, seconds: float) -> tuple[float, list[float]]:
    config = ProjectXConfig.for_simulator(base_url)
    latencies: list[float] = []
    async with ProjectX(config) as px:
        realtime = ProjectXRealtimeClient(config, px.tokens, settings=LinkSettings(skip_negotiation=True))

        def on_quote(pushed: QuotePushed) -> None:
            if pushed.quote.symbol_name == MARK:
                latencies.append(time.time() - pushed.quote.timestamp.timestamp())

        realtime.on(QuotePushed, on_quote)
        await realtime.connect()
        try:
            await realtime.subscribe_market(MNQ, quotes=True, trades=False)
            deadline = time.monotonic() + seconds + 10
            while not latencies and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            first = time.perf_counter()
            await asyncio.sleep(seconds)  # the measurement window
            count = len(latencies)
            rate = count / (time.perf_counter() - first)
        finally:
            await realtime.disconnect()
    return rate, latencies[:count]


def run(rate: float, seconds: float) -> None:
    server = subprocess.Popen([sys.executable, __file__, SERVE, str(rate), str(seconds + 2)], stdout=subprocess.PIPE,
                              text=True)
    try:
        base_url = server.stdout.readline().strip()
        received, latencies = asyncio.run(measure(base_url, seconds))
    finally:
        server.terminate()
        server.wait(10)
    cuts = statistics.quantiles(latencies, n=1000)
    print(f"realtime quotes at {rate:,.0f}/s sent: {received:,.0f} events/s handled; latency p50 "
          f"{cuts[499] * 1000:.2f} ms, p99 {cuts[989] * 1000:.2f} ms, p99.9 {cuts[998] * 1000:.2f} ms, "
          f"max {max(latencies) * 1000:.2f} ms ({len(latencies):,} events)")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == SERVE:
        asyncio.run(serve(float(sys.argv[2]), float(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="a quick run for CI")
    args = parser.parse_args()
    run(2_000.0, 1.5 if args.short else 10.0)


if __name__ == "__main__":
    main()
