"""OrderBook: every DomType's effect, hand-computed analytics, and a replay of the simulator's depth stream."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from pxkit.codec import Target, decode_records
from pxkit.enums import DomType, TradeType
from pxkit.instrument.orderbook import BOOK_SCHEMA, OrderBook, TradeFlow
from pxkit.models import Contract, DepthEntry, MarketTrade
from pxkit.sim.clock import SimClock
from pxkit.sim.engine import SimConfig, Simulator

MNQ_ID = "CON.F.US.MNQ.H26"
MNQ = Contract(MNQ_ID, "MNQH26", "Micro E-mini Nasdaq-100", 0.25, 0.5, True, "F.US.MNQ")
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def d(kind: DomType, price: float, volume: float = 0, current: int = 0) -> DepthEntry:
    return DepthEntry(T0, kind, price, float(volume), current)


def levels(book: OrderBook, n: int = 100) -> dict[str, list[tuple[float, int]]]:
    snap = book.get_orderbook_snapshot(n)
    return {side: [(r["price"], r["size"]) for r in snap.filter(pl.col("side") == side).iter_rows(named=True)]
            for side in ("bid", "ask")}


@pytest.fixture
def book() -> OrderBook:
    """A two-sided MNQ book: bids 100.00/99.75/99.50, asks 100.25/100.50/100.75."""
    b = OrderBook(MNQ)
    b.apply_depth([d(DomType.BID, 99.5, 30), d(DomType.BID, 99.75, 20), d(DomType.BEST_BID, 100.0, 10),
                   d(DomType.ASK, 100.75, 15), d(DomType.ASK, 100.5, 5), d(DomType.BEST_ASK, 100.25, 5)])
    return b


# ---------------------------------------------------------------------- DomType effects

MIRROR = {DomType.BID: DomType.ASK, DomType.ASK: DomType.BID, DomType.BEST_BID: DomType.BEST_ASK,
          DomType.BEST_ASK: DomType.BEST_BID, DomType.NEW_BEST_BID: DomType.NEW_BEST_ASK,
          DomType.NEW_BEST_ASK: DomType.NEW_BEST_BID}


def test_the_two_sides_are_mirror_images() -> None:
    """A seeded stream and its mirror (bid <-> ask, price p -> 200 - p) build mirrored books, step by step."""
    rng = random.Random(11)
    kinds = list(MIRROR)
    book, mirrored = OrderBook(MNQ), OrderBook(MNQ)
    for _ in range(3000):
        kind = rng.choice(kinds)
        price, size = 100 + rng.randint(-12, 12) * 0.25, rng.choice((0, 0, 1, 5, 20))
        book.apply_depth([d(kind, price, size)])
        mirrored.apply_depth([d(MIRROR[kind], 200 - price, size)])
        bid, ask = book.get_best_bid_ask()
        mirror_bid, mirror_ask = mirrored.get_best_bid_ask()
        assert (bid, ask) == (None if mirror_ask is None else 200 - mirror_ask,
                              None if mirror_bid is None else 200 - mirror_bid)
    sides, mirror_sides = levels(book), levels(mirrored)
    assert sides["bid"] == [(200 - p, n) for p, n in mirror_sides["ask"]]
    assert sides["ask"] == [(200 - p, n) for p, n in mirror_sides["bid"]]
    assert sides["bid"] and sides["ask"]  # the stream left both sides with levels to compare



def test_bid_and_ask_set_levels_sorted_best_first(book: OrderBook) -> None:
    assert levels(book) == {"bid": [(100.0, 10), (99.75, 20), (99.5, 30)],
                            "ask": [(100.25, 5), (100.5, 5), (100.75, 15)]}
    assert book.get_best_bid_ask() == (100.0, 100.25)
    snap = book.get_orderbook_snapshot(2)
    assert snap.schema == pl.Schema(BOOK_SCHEMA)
    assert snap["side"].to_list() == ["bid", "bid", "ask", "ask"]


def test_a_level_update_replaces_the_size(book: OrderBook) -> None:
    book.apply_depth([d(DomType.BID, 99.75, 7), d(DomType.ASK, 100.5, 9)])
    assert levels(book)["bid"][1] == (99.75, 7)
    assert levels(book)["ask"][1] == (100.5, 9)


def test_volume_zero_removes_a_level_and_the_best_moves_on(book: OrderBook) -> None:
    book.apply_depth([d(DomType.BID, 100.0, 0), d(DomType.ASK, 100.25, 0), d(DomType.ASK, 101.0, 0)])
    assert levels(book) == {"bid": [(99.75, 20), (99.5, 30)], "ask": [(100.5, 5), (100.75, 15)]}
    assert book.get_best_bid_ask() == (99.75, 100.5)
    book.apply_depth([d(DomType.BID, 99.75, 0), d(DomType.BID, 99.5, 0)])
    assert book.get_best_bid_ask() == (None, 100.5)
    assert book.get_spread() is None


def test_a_new_level_inside_the_spread_becomes_the_best(book: OrderBook) -> None:
    book.apply_depth([d(DomType.BID, 100.0, 0), d(DomType.BID, 99.25, 3)])  # best stale, then a worse level
    book.apply_depth([d(DomType.ASK, 100.0, 4)])  # the ask side improves without a BestAsk record
    assert book.get_best_bid_ask() == (99.75, 100.0)


def test_prices_are_rounded_onto_the_tick_grid(book: OrderBook) -> None:
    book.apply_depth([d(DomType.BID, 99.75000000001, 11), d(DomType.ASK, 100.4999999999, 12)])
    assert levels(book)["bid"][1] == (99.75, 11)
    assert levels(book)["ask"][1] == (100.5, 12)
    assert book.stats()["bid_levels"] == 3


@pytest.mark.parametrize("kind", [DomType.BEST_BID, DomType.NEW_BEST_BID])
def test_a_higher_best_bid_removes_stale_bids_and_crossed_asks(book: OrderBook, kind: DomType) -> None:
    book.apply_depth([d(kind, 100.5, 8)])
    assert levels(book) == {"bid": [(100.5, 8), (100.0, 10), (99.75, 20), (99.5, 30)], "ask": [(100.75, 15)]}
    book.apply_depth([d(kind, 99.75, 6)])  # a lower best bid: the bids above it were stale
    assert levels(book)["bid"] == [(99.75, 6), (99.5, 30)]
    assert book.get_best_bid_ask() == (99.75, 100.75)


@pytest.mark.parametrize("kind", [DomType.BEST_ASK, DomType.NEW_BEST_ASK])
def test_a_lower_best_ask_removes_stale_asks_and_crossed_bids(book: OrderBook, kind: DomType) -> None:
    book.apply_depth([d(kind, 99.75, 4)])
    assert levels(book) == {"bid": [(99.5, 30)], "ask": [(99.75, 4), (100.25, 5), (100.5, 5), (100.75, 15)]}
    book.apply_depth([d(kind, 100.5, 2)])  # a higher best ask: the asks below it were stale
    assert levels(book)["ask"] == [(100.5, 2), (100.75, 15)]
    assert book.get_best_bid_ask() == (99.5, 100.5)


def test_a_best_that_only_changes_size_keeps_the_other_levels(book: OrderBook) -> None:
    book.apply_depth([d(DomType.BEST_BID, 100.0, 3), d(DomType.BEST_ASK, 100.25, 1)])
    assert levels(book)["bid"] == [(100.0, 3), (99.75, 20), (99.5, 30)]
    assert levels(book)["ask"] == [(100.25, 1), (100.5, 5), (100.75, 15)]


def test_a_best_after_the_old_best_was_pulled_still_clears_what_it_should(book: OrderBook) -> None:
    book.apply_depth([d(DomType.BID, 100.0, 0), d(DomType.BEST_BID, 99.5, 31)])
    assert levels(book)["bid"] == [(99.5, 31)]
    book.apply_depth([d(DomType.ASK, 100.25, 0), d(DomType.BEST_ASK, 100.75, 16)])
    assert levels(book)["ask"] == [(100.75, 16)]


def test_trade_records_set_the_cumulative_volume_at_price(book: OrderBook) -> None:
    book.apply_depth([d(DomType.TRADE, 100.0, 408, 0), d(DomType.TRADE, 100.25, 12, 12)])
    book.apply_depth([d(DomType.TRADE, 100.0, 411, 3)])  # cumulative: replaces, does not add
    profile = book.get_volume_profile()
    assert profile.schema == pl.Schema({"price": pl.Float64, "volume": pl.Int64})
    assert profile.rows() == [(100.0, 411), (100.25, 12)]
    assert (book.last_print_price, book.last_print_size) == (100.0, 3)
    assert book.get_best_bid_ask() == (100.0, 100.25)  # trades do not touch the levels
    assert book.vap_updates == 3


def test_reset_clears_both_sides_and_the_profile(book: OrderBook) -> None:
    book.apply_depth([d(DomType.TRADE, 100.0, 5, 1)])
    book.apply_depth([d(DomType.RESET, 0), d(DomType.BID, 98.0, 1)])
    assert levels(book) == {"bid": [(98.0, 1)], "ask": []}
    assert book.get_best_bid_ask() == (98.0, None)
    assert book.get_volume_profile().height == 0
    assert book.resets == 1
    book.apply_depth([d(DomType.RESET, 0)])
    assert book.get_best_bid_ask() == (None, None)
    assert book.get_orderbook_snapshot().height == 0
    assert book.get_orderbook_snapshot().schema == pl.Schema(BOOK_SCHEMA)
    assert book.get_market_imbalance() == 0.0
    assert book.resets == 2


def test_low_and_high_record_the_session_range(book: OrderBook) -> None:
    book.apply_depth([d(DomType.LOW, 98.50000001), d(DomType.HIGH, 101.25)])
    assert (book.session_low, book.session_high) == (98.5, 101.25)
    assert levels(book)["bid"][0] == (100.0, 10)


def test_fill_unknown_and_null_records_are_counted_and_ignored(book: OrderBook) -> None:
    before = levels(book)
    entries: list[Any] = [d(DomType.FILL, 100.0, 3), None, d(DomType.UNKNOWN, 100.25, 9), None]
    book.apply_depth(entries)
    assert levels(book) == before
    stats = book.stats()
    assert (stats["fills"], stats["unknown"], stats["nulls"]) == (1, 1, 2)
    assert stats["entries_applied"] == 6 + 2
    assert book.last_update == T0


# ---------------------------------------------------------------------- analytics by hand


def test_spread_and_mid(book: OrderBook) -> None:
    assert book.get_spread() == 0.25
    assert book.get_mid_price() == 100.125
    book.apply_depth([d(DomType.ASK, 100.25, 0), d(DomType.ASK, 100.5, 0)])
    assert book.get_spread() == 0.75


def test_imbalance(book: OrderBook) -> None:
    # top 2: bids 10 + 20 = 30, asks 5 + 5 = 10 -> (30 - 10) / 40
    assert book.get_market_imbalance(2) == pytest.approx(0.5)
    # top 5 (all): bids 60, asks 25 -> 35 / 85
    assert book.get_market_imbalance(5) == pytest.approx(35 / 85)
    book.apply_depth([d(DomType.ASK, a, 0) for a in (100.25, 100.5, 100.75)])
    assert book.get_market_imbalance() == 1.0


def test_liquidity_levels(book: OrderBook) -> None:
    deep = book.get_liquidity_levels(15)
    assert deep.rows() == [("bid", 100.0 - 0.25, 20), ("bid", 99.5, 30), ("ask", 100.75, 15)]
    assert book.get_liquidity_levels(15, levels=2).rows() == [("bid", 99.75, 20)]
    assert book.get_liquidity_levels(100).height == 0


def test_sizes_between_reads_a_window_of_both_sides_highest_first(book: OrderBook) -> None:
    assert book.sizes_between(100.5, 99.75) == [(100.5, 0, 5), (100.25, 0, 5), (100.0, 10, 0), (99.75, 20, 0)]
    assert book.sizes_between(101.5, 101.5) == [(101.5, 0, 0)] and book.sizes_between(99.0, 99.5) == []
    book.apply_depth([d(DomType.BID, 99.75, 0)])
    assert book.sizes_between(99.75, 99.5) == [(99.75, 0, 0), (99.5, 30, 0)]


def test_trade_flow_volumes_counts_and_vwap() -> None:
    book = OrderBook(MNQ, max_trades=3)
    t = [T0 + timedelta(seconds=s) for s in range(4)]
    book.apply_trade([MarketTrade("F.US.MNQ", 100.0, t[0], TradeType.BUY, 2)])
    book.apply_trade([MarketTrade("F.US.MNQ", 100.25, t[1], TradeType.SELL, 1), None,
                      MarketTrade("F.US.MNQ", 100.5, t[2], TradeType.BUY, 3),
                      MarketTrade("F.US.MNQ", 100.0, t[3], TradeType.SELL, 4)])
    # retained (max 3): 100.25x1 S, 100.5x3 B, 100.0x4 S
    flow = book.get_trade_flow()
    assert flow == TradeFlow(3.0, 5.0, 3, 1, 2, (100.25 + 301.5 + 400.0) / 8)
    assert flow.delta == -2.0
    recent = book.get_trade_flow(timedelta(seconds=1))  # from t[2] on (the newest trade is the clock)
    assert (recent.buy_volume, recent.sell_volume, recent.count) == (3.0, 4.0, 2)
    assert recent.vwap == pytest.approx((301.5 + 400.0) / 7)
    assert book.get_trade_flow(timedelta(seconds=1), now=t[3] + timedelta(seconds=10)).vwap is None
    assert (book.buy_volume, book.sell_volume, book.trades_applied) == (5.0, 5.0, 4)
    assert len(book.recent_trades()) == 3


def test_snapshot_cache_follows_updates(book: OrderBook) -> None:
    assert book.get_orderbook_snapshot(1)["size"].to_list() == [10, 5]
    book.apply_depth([d(DomType.BID, 100.0, 1)])
    assert book.get_orderbook_snapshot(1)["size"].to_list() == [1, 5]


def test_clear_forgets_state_but_keeps_counters(book: OrderBook) -> None:
    book.apply_trade([MarketTrade("F.US.MNQ", 100.0, T0, TradeType.BUY, 2)])
    book.clear()
    assert book.get_best_bid_ask() == (None, None)
    assert book.get_trade_flow().count == 0
    assert book.entries_applied == 6


# ---------------------------------------------------------------------- against a naive reference


def _reference(stream: list[DepthEntry]) -> dict[str, dict[int, float]]:
    """The same semantics written the slow, obvious way."""
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    bid_kinds = (DomType.BID, DomType.BEST_BID, DomType.NEW_BEST_BID)
    ask_kinds = (DomType.ASK, DomType.BEST_ASK, DomType.NEW_BEST_ASK)
    for e in stream:
        t = MNQ.to_ticks(e.price)
        if e.type == DomType.RESET:
            bids.clear()
            asks.clear()
        elif e.type in (DomType.BID, DomType.ASK) or (e.type in bid_kinds + ask_kinds and e.volume <= 0):
            side = bids if e.type in bid_kinds else asks  # a best of size 0 removes like a plain level
            if e.volume > 0:
                side[t] = e.volume
            else:
                side.pop(t, None)
        elif e.type in (DomType.BEST_BID, DomType.NEW_BEST_BID):
            bids = {p: s for p, s in bids.items() if p <= t} | {t: e.volume}
            asks = {p: s for p, s in asks.items() if p > t}
        elif e.type in (DomType.BEST_ASK, DomType.NEW_BEST_ASK):
            asks = {p: s for p, s in asks.items() if p >= t} | {t: e.volume}
            bids = {p: s for p, s in bids.items() if p < t}
    return {"bid": bids, "ask": asks}


@pytest.mark.parametrize("seed", range(5))
def test_random_streams_match_a_naive_reference(seed: int) -> None:
    rng = random.Random(seed)
    kinds = [DomType.BID] * 8 + [DomType.ASK] * 8 + [DomType.BEST_BID, DomType.BEST_ASK, DomType.NEW_BEST_BID,
                                                     DomType.NEW_BEST_ASK, DomType.TRADE, DomType.FILL]
    stream = [d(DomType.RESET, 0)] if seed % 2 else []
    for i in range(3000):
        kind = DomType.RESET if i % 997 == 996 else rng.choice(kinds)
        stream.append(d(kind, 100 + rng.randint(-12, 12) * 0.25, rng.choice([0, 0, *range(1, 30)])))
    book = OrderBook(MNQ)
    for i in range(0, len(stream), 4):
        book.apply_depth(stream[i : i + 4])
        if i % 40 == 0:
            expected = _reference(stream[: i + 4])
            got = levels(book)
            for side, best in (("bid", max), ("ask", min)):
                want = expected[side]
                assert {MNQ.to_ticks(p): s for p, s in got[side]} == want
                top = book.get_best_bid_ask()[0 if side == "bid" else 1]
                assert top == (MNQ.round_price(best(want) * 0.25) if want else None)


# ---------------------------------------------------------------------- against the simulator


class Recorder:
    """A hub subscriber that keeps every push in order."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, list[Any]]] = []

    def send(self, target: str, arguments: list[Any]) -> None:
        self.pushes.append((target, arguments))


def test_replaying_the_simulator_depth_stream_reproduces_its_book() -> None:
    sim = Simulator(SimConfig(seed=1), SimClock())
    contract = sim.market.contract(MNQ_ID)
    assert contract is not None
    recorder = Recorder()
    sim.subscribe("depth", MNQ_ID, recorder)
    sim.subscribe("trades", MNQ_ID, recorder)
    book = OrderBook(contract)
    seen = 0
    checks = 0
    traded = 0.0
    for _ in range(24):  # 120 simulated seconds, checked every 5
        sim.advance(5)
        for target, args in recorder.pushes[seen:]:
            assert args[0] == MNQ_ID
            if target == Target.DEPTH:
                book.apply_depth(decode_records(DepthEntry, args[1]))
            elif target == Target.TRADE:
                trades = decode_records(MarketTrade, args[1])
                traded += sum(t.volume for t in trades)
                book.apply_trade(trades)
        seen = len(recorder.pushes)
        expected = sim.market.book_at(MNQ_ID, sim.clock.now_us())
        bids = [(sim.market.price(MNQ_ID, p), s) for p, s in expected.bids.levels]
        asks = [(sim.market.price(MNQ_ID, p), s) for p, s in expected.asks.levels]
        assert levels(book) == {"bid": bids, "ask": asks}
        assert book.get_best_bid_ask() == (bids[0][0], asks[0][0])
        checks += 1
    assert checks == 24 and book.resets == 1
    assert book.trades_applied > 50
    assert book.buy_volume + book.sell_volume == traded
    profile = book.get_volume_profile()
    assert profile.height > 0 and profile["volume"].min() > 0
    assert all(contract.on_grid(p) for p in profile["price"])


@pytest.mark.parametrize("bad", [d(DomType.BID, 1.7e308, 5), d(DomType.ASK, float("nan"), 5),
                                 d(DomType.BEST_BID, 100.0, 1e300), d(DomType.TRADE, float("-inf"), 3)],
                         ids=["huge-price", "nan-price", "huge-size", "infinite-print"])
def test_an_entry_no_book_can_hold_is_skipped_and_the_rest_of_its_batch_applies(book: OrderBook, bad) -> None:
    book.apply_depth([d(DomType.BID, 99.25, 7), bad, d(DomType.BEST_ASK, 100.0, 4), d(DomType.TRADE, 100.0, 9, 1)])
    assert book.stats()["rejected"] == 1
    assert book.get_best_bid_ask() == (99.75, 100.0)  # the best ask crossed out the 100.00 bid, as if alone
    assert levels(book, 4) == {"bid": [(99.75, 20), (99.5, 30), (99.25, 7)],
                               "ask": [(100.0, 4), (100.25, 5), (100.5, 5), (100.75, 15)]}
    assert book.get_volume_profile().rows() == [(100.0, 9)]
    assert book.entries_applied == 6 + 3
