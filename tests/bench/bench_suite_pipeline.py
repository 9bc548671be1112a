"""Benchmark: market pushes per second through the suite's router into live bars, book and events.

Feeds decoded trade pushes (batches of 20 trades) and depth pushes (one per trade batch) for
three contracts straight into `Router.route`, as the router task does after the hub hand-off, with three
timeframes per instrument, an order book, and a TICK and a NEW_BAR handler on every bus. The network and
the decoding are not timed (bench_realtime_latency.py measures those). Prints the trade rate overall and
over the first and the last 100,000 trades, the depth-entry rate, and the peak RSS.
`--short` runs 100,000 trades.

    python tests/bench/bench_suite_pipeline.py [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta

from pxkit.enums import DomType, TradeType
from pxkit.events import EventBus, EventType
from pxkit.instrument.context import InstrumentContext
from pxkit.instrument.data import RealtimeDataManager
from pxkit.instrument.orderbook import OrderBook
from pxkit.instrument.orders import OrderManager
from pxkit.instrument.positions import PositionManager
from pxkit.messages import DepthPushed, TradesPushed
from pxkit.models import Account, Contract, DepthEntry, MarketTrade
from pxkit.router import Router

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
CONTRACTS = [Contract("CON.F.US.MNQ.H26", "MNQH6", "MNQ", 0.25, 0.5, True, "F.US.MNQ"),
             Contract("CON.F.US.EP.H26", "ESH6", "ES", 0.25, 12.5, True, "F.US.EP"),
             Contract("CON.F.US.MGC.H26", "MGCH6", "MGC", 0.1, 1.0, True, "F.US.MGC")]
BATCH, WINDOW = 20, 100_000


def context(contract: Contract) -> InstrumentContext:
    bus = EventBus(contract.description)
    data = RealtimeDataManager(None, contract, bus, symbol=contract.description, timeframes=["1min", "5min", "1hr"])
    data.release_pushes()  # live at once: no history to wait for
    ticks = [0]
    bus.on(EventType.TICK, lambda e: ticks.__setitem__(0, ticks[0] + 1))
    bus.on(EventType.NEW_BAR, lambda e: None)
    return InstrumentContext(contract.description, contract, data,
                             OrderManager(None, contract, bus, account_id=1, symbol=contract.description),
                             PositionManager(None, contract, bus, account_id=1, symbol=contract.description,
                                             last_price=lambda: data.last_price),
                             bus, OrderBook(contract))


def pushes(count: int, seed: int = 7) -> list[TradesPushed | DepthPushed]:
    """Trade batches and depth updates for the three contracts, round robin, exchange times rising."""
    rng = random.Random(seed)
    ticks = {c.id: 100_000 for c in CONTRACTS}
    t = START
    events = []
    for n in range(count // BATCH):
        contract = CONTRACTS[n % len(CONTRACTS)]
        trades = []
        for _ in range(BATCH):
            ticks[contract.id] += rng.choice((-1, 0, 0, 1))
            t += timedelta(microseconds=rng.randrange(0, 30_000))
            trades.append(MarketTrade(contract.symbol_id, ticks[contract.id] * contract.tick_size, t,
                                      TradeType(rng.randint(0, 1)), rng.randint(1, 5)))
        price = ticks[contract.id] * contract.tick_size
        depth = (DepthEntry(t, DomType.BID, price - contract.tick_size, rng.randint(1, 40)),
                 DepthEntry(t, DomType.ASK, price + contract.tick_size, rng.randint(1, 40)))
        events.append(TradesPushed(contract.id, tuple(trades), 0.0))
        events.append(DepthPushed(contract.id, depth, 0.0))
    return events


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="100,000 trades instead of 1,000,000")
    args = parser.parse_args()
    count = 100_000 if args.short else 1_000_000
    events = pushes(count)
    router = Router(Account(1, "bench", 50_000.0, True, True), EventBus("suite"), lambda: START)
    for contract in CONTRACTS:
        router.add(context(contract))
    clock = time.perf_counter
    marks, done, begin = [], 0, clock()
    for event in events:
        router.route(event)
        if isinstance(event, TradesPushed):
            done += len(event.trades)
            if done % WINDOW == 0:
                marks.append(clock() - begin)
    total = clock() - begin
    first, last = marks[0], marks[-1] - marks[-2] if len(marks) > 1 else marks[0]
    print(f"suite pipeline (router -> 3 timeframes + book + events, 3 contracts): {done / total:,.0f} trades/s "
          f"({done:,} trades in {total:.2f} s)")
    print(f"first {WINDOW:,} trades: {WINDOW / first:,.0f}/s; last {WINDOW:,}: {WINDOW / last:,.0f}/s "
          f"(last/first {first / last:.2f})")
    entries = sum(len(e.entries) for e in events if isinstance(e, DepthPushed))
    print(f"depth entries alongside: {entries:,} ({entries / total:,.0f}/s)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (includes the pushes)")
    for ctx in router.contexts.values():
        assert ctx.data.stats.counters["trades"] > 0 and ctx.orderbook.get_best_bid_ask()[0] is not None
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
