"""The recorder on the simulator: a recorded session replays into the gateway's own bars, every market and account
push the simulator published is in the recording, a SIGKILLed recorder loses at most its last flush, and bad input
is refused."""

from __future__ import annotations

import asyncio
import math
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pxkit.codec import Target, decode_push
from pxkit.enums import TradeType
from pxkit.errors import InputError
from pxkit.instrument.bars import BarSeries
from pxkit.messages import TradesPushed
from pxkit.models import MarketTrade
from pxkit.research import KINDS, Recorder, read_recording, replay_trades
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.app import HubSettings
from pxkit.sim.clock import DEFAULT_START
from pxkit.times import to_us
from suites import caught_up, open_suite
from waiting import until

MNQ, ES = "CON.F.US.MNQ.H26", "CON.F.US.EP.H26"
SCRIPT = Path(sys.executable).with_name("pxkit")


async def run_to(sim: SimServer, suite, moment: datetime, chunk: float = 60.0) -> None:
    """Move the market to `moment` a chunk at a time, each chunk's pushes received before the clock moves on."""
    while sim.sim.clock.now() < moment:
        await sim.advance(min(chunk, (moment - sim.sim.clock.now()).total_seconds()))
        await until(lambda: caught_up(sim, suite), "the suite to receive every trade")


def published(sim: SimServer, target: Target) -> list:
    """The pushes of one target the simulator sent since its event log was switched on, decoded."""
    return [decode_push(t, args, 0.0) for t, args in sim.sim.event_log or [] if t == target]


def published_trades(sim: SimServer, contract: str) -> list[tuple[int, float, int]]:
    return [(to_us(tr.timestamp), tr.price, round(tr.volume)) for push in published(sim, Target.TRADE)
            if push.contract_id == contract for tr in push.trades]


def recorded_trades(path: Path, contract: str) -> list[tuple[int, float, int]]:
    return [(t, price, size) for price, size, t in replay_trades(path, contract)]


def parts(path: Path) -> list[Path]:
    return sorted(path.rglob("part-*.parquet"))


async def test_a_session_across_the_daily_halt_replays_into_the_gateways_bars(tmp_path: Path) -> None:
    start = datetime(2026, 3, 10, 19, 0, tzinfo=UTC)  # Tuesday 15:00 New York; the halt is 17:00-18:00
    close, reopen, end = start + timedelta(hours=2), start + timedelta(hours=3), start + timedelta(hours=5)
    async with SimServer(config=SimConfig(seed=1), start=start, hubs=HubSettings(ping_interval=0.5)) as sim, \
            open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as suite:
        sim.sim.event_log = []
        async with suite.record(tmp_path, flush_interval=0.2) as recording:
            await run_to(sim, suite, close)
            sim.sim.clock.set(to_us(reopen) - 5_000_000)  # nothing prints while the market is closed
            assert sim.sim.step() == 0
            await run_to(sim, suite, end)
            await until(lambda: recording.recorder.received == len(sim.sim.event_log), "the recorder to get every push")
        for ctx in suite.values():
            contract = ctx.instrument_info
            assert recorded_trades(tmp_path, contract.id) == published_trades(sim, contract.id)
            series = BarSeries("1min", 10_000, contract.tick_size)
            for trade in replay_trades(tmp_path, contract.id):
                series.on_trade(*trade)
            series.close_due(end)
            first = start + timedelta(minutes=1)  # the minute the recording began in holds a print made before it
            built = series.frame().filter(pl.col("timestamp").is_between(first, end, closed="left"))
            truth = await suite.client.get_bars(contract.id, start_time=first, end_time=end, unit="min", interval=1)
            assert built.height == truth.height > 200 and built.equals(truth), ctx.symbol
            assert not built.filter(pl.col("timestamp").is_between(close, reopen, closed="left")).height
            before = read_recording(tmp_path, "trades", contract=contract.id, day="2026-03-10")
            after = read_recording(tmp_path, "trades", contract=contract.id, day=date(2026, 3, 11))
            assert before["timestamp"].max() < close <= reopen <= after["timestamp"].min()  # trading days split
            assert before.height + after.height == len(published_trades(sim, contract.id))
    assert recording.stats.rows["trades"] == sum(len(published_trades(sim, c)) for c in (MNQ, ES))
    assert recording.stats.lost_rows == recording.stats.stalls == 0
    folders = {p.parent for p in parts(tmp_path)}
    assert len(folders) == len(parts(tmp_path)) == 8  # compacted: one file for each of 2 kinds x 2 days x 2 contracts


async def test_quotes_depth_and_the_users_own_orders_fills_and_positions_are_recorded(tmp_path: Path) -> None:
    async with SimServer(config=SimConfig(seed=3, trades_per_minute=240), hubs=HubSettings(ping_interval=0.5)
                         ) as sim, open_suite(sim, ["MNQ"], timeframes=["1min"], features=["orderbook"]) as suite:
        mnq = suite["MNQ"]
        sim.sim.event_log = []
        async with suite.record(tmp_path, flush_interval=0.1) as recording:
            await run_to(sim, suite, sim.sim.clock.now() + timedelta(seconds=20), chunk=5)
            await mnq.orders.place_market_order("buy", 2)
            await run_to(sim, suite, sim.sim.clock.now() + timedelta(seconds=5), chunk=1)
            await until(lambda: mnq.positions.size == 2, "the buy to fill")
            await mnq.positions.close_position()
            await run_to(sim, suite, sim.sim.clock.now() + timedelta(seconds=5), chunk=1)
            await until(lambda: mnq.positions.size == 0 and suite.router.state.positions == {}, "the close to fill")
            await until(lambda: len(published(sim, Target.USER_ACCOUNT)) >= 1, "the balance to change")
            pushed = {target: len(published(sim, target)) for target in Target}
            await until(lambda: recording.recorder.received == len(sim.sim.event_log), "the recorder to get every push")
    quotes = read_recording(tmp_path, "quotes", contract=MNQ)
    expected = [(to_us(q.quote.timestamp or q.quote.last_updated), q.quote.best_bid, q.quote.best_ask)
                for q in published(sim, Target.QUOTE)]
    assert [(to_us(t), b, a) for t, b, a in quotes.select("timestamp", "best_bid", "best_ask").iter_rows()] == expected
    depth = read_recording(tmp_path, "depth", contract=MNQ)
    entries = [(to_us(d.timestamp), int(d.type), d.price, round(d.volume))
               for push in published(sim, Target.DEPTH) for d in push.entries]
    assert depth.height == len(entries) > 100
    assert [(to_us(t), *rest) for t, *rest in depth.select("timestamp", "type", "price", "volume").iter_rows()
            ] == sorted(entries, key=lambda e: e[0])  # stable: the gateway's order within a moment
    orders = read_recording(tmp_path, "orders", contract=MNQ)
    assert orders.height == pushed[Target.USER_ORDER] >= 4  # two market orders, each opened and filled
    assert sorted(orders.filter(pl.col("status") == 2)["order_id"].to_list()) == sorted(  # FILLED
        {o.order.id for o in published(sim, Target.USER_ORDER)})
    fills = read_recording(tmp_path, "fills", contract=MNQ)
    trades = [t.trade for t in published(sim, Target.USER_TRADE)]
    assert fills.select("trade_id", "price", "size", "side").rows() == [(t.id, t.price, t.size, int(t.side))
                                                                        for t in trades]
    assert fills["profit_and_loss"].to_list()[0] is None and fills["profit_and_loss"].to_list()[-1] is not None
    positions = read_recording(tmp_path, "positions", contract=MNQ)
    assert positions.height == pushed[Target.USER_POSITION] and positions["size"].to_list()[-1] == 0
    assert 2 in positions["size"].to_list()
    accounts = read_recording(tmp_path, "accounts")
    assert accounts.height == pushed[Target.USER_ACCOUNT] and set(accounts.columns) >= {"day", "balance"}
    assert accounts["balance"].to_list()[-1] == suite.account.balance
    assert recording.stats.rows == {"trades": read_recording(tmp_path, "trades").height, "quotes": quotes.height,
                                    "depth": depth.height, "orders": orders.height, "fills": fills.height,
                                    "positions": positions.height, "accounts": accounts.height}


async def test_a_sigkilled_recorder_loses_at_most_its_last_flush_and_every_file_reads(tmp_path: Path) -> None:
    interval, slack = 0.5, 0.5  # slack: delivery and the write itself, on a loaded machine
    async with SimServer(config=SimConfig(seed=2, trades_per_minute=3000), realtime=True, start=DEFAULT_START,
                         hubs=HubSettings(ping_interval=0.5)) as sim:
        sim.sim.event_log = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROJECT_X_")}
        env |= {"PROJECT_X_USERNAME": "demo", "PROJECT_X_API_KEY": "demo", "PROJECT_X_API_URL": sim.base_url,
                "PROJECT_X_USER_HUB_URL": sim.user_hub_url, "PROJECT_X_MARKET_HUB_URL": sim.market_hub_url,
                "PYTHONUNBUFFERED": "1"}
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT), "record", "MNQ", "--out", str(tmp_path), "--flush-interval", str(interval),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        try:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line.startswith(f"pxkit record: MNQ {MNQ} from {sim.base_url}"), line
            trades = tmp_path / "trades"
            await until(lambda: len(parts(trades)) >= 4, "four flushes of trades", timeout=30)
            process.kill()
            killed_at = sim.sim.clock.now_us()
            assert await asyncio.wait_for(process.wait(), 10) == -9
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        sent = published_trades(sim, MNQ)
    for part in parts(tmp_path):
        assert pl.read_parquet(part).height > 0  # whole files only: temporaries are hidden and never read
    for kind in KINDS:
        read_recording(tmp_path, kind)
    kept = recorded_trades(tmp_path, MNQ)
    first = sent.index(kept[0])  # the suite subscribed, then loaded history, then began recording
    assert kept == sent[first:first + len(kept)]  # an unbroken run of what was published
    due = [t for t in sent[first:] if t[0] <= killed_at - (interval + slack) * 1e6]
    assert len(kept) >= len(due) > 20, f"lost {(killed_at - kept[-1][0]) / 1e6:.2f} s before the kill"


def trade(ts: datetime, price: float) -> TradesPushed:
    return TradesPushed(MNQ, (MarketTrade("F.US.MNQ", price, ts, TradeType.BUY, 1.0),), ts.timestamp())


async def test_a_second_recording_in_the_same_directory_adds_parts_and_clobbers_none(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    first = Recorder(tmp_path, flush_interval=0.05)
    for i in range(3):
        first.write(trade(t0 + timedelta(seconds=i), 20_000 + i))
    await first.stop()
    before = {p: p.read_bytes() for p in parts(tmp_path)}
    second = Recorder(tmp_path, flush_interval=0.05)
    for i in range(3, 5):
        second.write(trade(t0 + timedelta(seconds=i), 20_000 + i))
    await second.stop()
    assert first.run != second.run and {p: p.read_bytes() for p in before} == before
    assert len(parts(tmp_path)) == 2
    assert read_recording(tmp_path, "trades")["price"].to_list() == [20_000.0 + i for i in range(5)]


async def test_a_compacted_run_is_read_instead_of_the_parts_a_kill_left_beside_it(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    recorder = Recorder(tmp_path, flush_interval=0.05, compact=False)
    for i in range(3):
        recorder.write(trade(t0 + timedelta(seconds=i), 20_000 + i))
        await until(lambda i=i: recorder.stats.rows["trades"] == i + 1, "the flush")
    await recorder.stop()
    numbered = parts(tmp_path)
    assert len(numbered) == 3
    pl.concat([pl.read_parquet(p) for p in numbered]).write_parquet(numbered[0].with_name(f"part-{recorder.run}"
                                                                                           ".parquet"))
    assert read_recording(tmp_path, "trades").height == 3  # not 6


@pytest.mark.parametrize("interval", [0, -1, math.nan, math.inf, True, "1", 3601])
def test_bad_flush_intervals_are_refused(tmp_path: Path, interval) -> None:
    with pytest.raises(InputError, match="flush_interval must be a number of seconds above 0"):
        Recorder(tmp_path, flush_interval=interval)


def test_bad_paths_and_queries_are_refused(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    for path, complaint in [(afile, "is not a directory"), (afile / "under", "cannot make the recording directory"),
                            ("", "needs a directory path"), (None, "needs a directory path")]:
        with pytest.raises(InputError, match=complaint):
            Recorder(path)
    for query, complaint in [({"kind": "ticks"}, "unknown kind 'ticks'"),
                             ({"kind": "trades", "day": "March 2"}, "day must be a date"),
                             ({"kind": "trades", "day": datetime(2026, 3, 2, tzinfo=UTC)}, "day must be a date"),
                             ({"kind": "accounts", "contract": MNQ}, "partitioned by day only")]:
        with pytest.raises(InputError, match=complaint):
            read_recording(tmp_path, **query)
    with pytest.raises(InputError, match="no recording directory"):
        read_recording(tmp_path / "missing", "trades")
    empty = read_recording(tmp_path, "trades", contract=MNQ)
    assert empty.height == 0 and empty.columns[:4] == ["day", "contract", "timestamp", "received_at"]
