"""Benchmark: depth entries per second OrderBook.apply_depth sustains, its peak memory, and whether it slows down.

Generates a seeded, realistic level-2 stream up front as DepthEntry models (not timed): mostly size
changes and removals within ten levels of the top, best bid/ask moves, type-5 volume-at-price records
and an occasional Reset followed by a fresh snapshot. Then times applying it in batches of 1-7 entries
(about 4 on average, like the live feed). Prints one line per figure. `--short` runs a small stream (CI).

    python tests/bench/bench_orderbook.py [--short]
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from datetime import UTC, datetime, timedelta

from pxkit.enums import DomType
from pxkit.instrument.orderbook import OrderBook
from pxkit.models import Contract, DepthEntry

MNQ = Contract("CON.F.US.MNQ.H26", "MNQH26", "Micro E-mini Nasdaq-100: March 2026", 0.25, 0.5, True, "F.US.MNQ")
LEVELS = 10
RESET_EVERY = 50_000  # entries between Resets (each followed by a full snapshot)


def generate(count: int, seed: int = 7) -> list[list[DepthEntry]]:
    """A seeded depth stream of about `count` entries, as the batches a client would receive."""
    rng = random.Random(seed)
    tick = MNQ.tick_size
    stamp = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    best_bid = round(24_950 / tick)
    vap: dict[int, int] = {}
    batches: list[list[DepthEntry]] = []
    produced = 0
    next_reset = 0

    def entry(kind: DomType, t: int, volume: float, current: int = 0) -> DepthEntry:
        price = round(t * tick, 2)
        if rng.random() < 0.05:
            price += rng.choice((1e-9, -1e-9))  # float noise the book must round away
        return DepthEntry(stamp, kind, price, float(volume), current)

    while produced < count:
        stamp += timedelta(microseconds=rng.randint(200, 20_000))
        if produced >= next_reset:
            next_reset += RESET_EVERY
            snapshot = [entry(DomType.RESET, 0, 0)]
            snapshot += [entry(DomType.BID, best_bid - i, rng.randint(1, 60)) for i in range(LEVELS)]
            snapshot.append(entry(DomType.BEST_BID, best_bid, rng.randint(1, 60)))
            snapshot += [entry(DomType.ASK, best_bid + 1 + i, rng.randint(1, 60)) for i in range(LEVELS)]
            snapshot.append(entry(DomType.BEST_ASK, best_bid + 1, rng.randint(1, 60)))
            snapshot += [entry(DomType.TRADE, t, v) for t, v in sorted(vap.items())]
            batches.append(snapshot)
            produced += len(snapshot)
            continue
        batch: list[DepthEntry] = []
        for _ in range(rng.randint(1, 7)):
            roll = rng.random()
            if roll < 0.70:  # a size change (15 % removals) near the top
                depth = min(int(rng.expovariate(0.35)), LEVELS - 1)
                bid = rng.random() < 0.5
                t = best_bid - depth if bid else best_bid + 1 + depth
                size = 0 if rng.random() < 0.15 else rng.randint(1, 60)
                batch.append(entry(DomType.BID if bid else DomType.ASK, t, size))
            elif roll < 0.85:  # a print: cumulative volume at price and the print size
                t = best_bid + rng.randint(0, 1)
                size = rng.randint(1, 5)
                vap[t] = vap.get(t, 0) + size
                batch.append(entry(DomType.TRADE, t, vap[t], size))
            else:  # the inside moves by a tick
                move = rng.choice((-1, 1))
                if move > 0:
                    batch.append(entry(DomType.ASK, best_bid + 1, 0))
                    best_bid += 1
                    batch.append(entry(DomType.BEST_BID, best_bid, rng.randint(1, 60)))
                    batch.append(entry(DomType.BEST_ASK, best_bid + 1, rng.randint(1, 60)))
                else:
                    batch.append(entry(DomType.BID, best_bid, 0))
                    best_bid -= 1
                    batch.append(entry(DomType.BEST_ASK, best_bid + 1, rng.randint(1, 60)))
                    batch.append(entry(DomType.BEST_BID, best_bid, rng.randint(1, 60)))
        batches.append(batch)
        produced += len(batch)
    return batches


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="a quick run for CI")
    args = parser.parse_args()
    count = 100_000 if args.short else 1_000_000
    window = min(100_000, count // 5)
    batches = generate(count)
    total = sum(len(b) for b in batches)
    rss_before = rss_mb()
    book = OrderBook(MNQ)
    apply = book.apply_depth
    marks: list[tuple[int, float]] = [(0, time.perf_counter())]  # (entries applied, time) at batch boundaries
    done = 0
    next_mark = window
    start = time.perf_counter()
    for batch in batches:
        apply(batch)
        done += len(batch)
        if done >= next_mark:
            marks.append((done, time.perf_counter()))
            next_mark += window
    elapsed = time.perf_counter() - start
    marks.append((done, time.perf_counter()))
    bid, ask = book.get_best_bid_ask()
    if bid is None or ask is None or bid >= ask:
        raise SystemExit(f"book is broken after the run: bid={bid} ask={ask}")
    (n0, t0), (n1, t1) = marks[0], marks[1]
    (m0, s0), (m1, s1) = marks[-3], marks[-2]
    first, last = (n1 - n0) / (t1 - t0), (m1 - m0) / (s1 - s0)
    print(f"orderbook apply_depth: {total / elapsed:,.0f} depth entries/s ({total:,} entries in {len(batches):,} "
          f"batches, {book.resets} resets), peak RSS {rss_mb():,.0f} MB ({rss_before:,.0f} MB holding the stream)")
    print(f"orderbook apply_depth: first {n1 - n0:,} entries {first:,.0f}/s, last {m1 - m0:,} entries {last:,.0f}/s "
          f"(last/first {last / first:.2f})")


if __name__ == "__main__":
    main()
