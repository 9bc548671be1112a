"""The simulated market keeps Globex hours: no print during a halt, a weekend or a holiday, history with the same
gaps, the client's calendar in agreement over a whole year, and what happens to orders sent while it is closed."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from conftest import ACCOUNT, MNQ
from pxkit import ProjectX, ProjectXConfig, codec, models
from pxkit.codec import Target
from pxkit.enums import BarUnit, ClosePositionError, OrderStatus, PartialCloseError, PlaceOrderError
from pxkit.hours import NEW_YORK, globex_open
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.app import HubSettings
from pxkit.sim.clock import DEFAULT_START
from pxkit.sim.market import Market
from pxkit.times import from_us, parse_ts, to_us
from signalr_probe import HubProbe

MIN_US = 60_000_000
HOUR_US = 60 * MIN_US
MONTH_DAYS = 35  # from Monday 2026-03-02: five weekends, the DST switch (03-08) and Good Friday (04-03)
MNQ_JUNE = "CON.F.US.MNQ.M26"  # listed all month (the March contract expires on 03-20)
GOOD_FRIDAY = datetime(2026, 4, 3).date()


def open_minutes(start_us: int, end_us: int) -> list[int]:
    """Every minute start in [start_us, end_us) that the client's calendar calls open."""
    first = start_us - start_us % MIN_US
    return [t for t in range(first, end_us, MIN_US) if t >= start_us and globex_open(from_us(t))]


async def test_no_print_quote_or_depth_change_during_a_halt_a_weekend_or_a_holiday_over_a_simulated_month() -> None:
    config = SimConfig(seed=1, trades_per_minute=1, step_seconds=600)
    async with SimServer(config=config, hubs=HubSettings(ping_interval=0.5)) as sim:
        probe = await HubProbe(sim.market_hub_url, sim.login(), (Target.TRADE, Target.QUOTE, Target.DEPTH)).start()
        try:
            for method in ("SubscribeContractTrades", "SubscribeContractQuotes", "SubscribeContractMarketDepth"):
                await probe.invoke(method, [MNQ_JUNE])
            start = sim.sim.clock.now_us()
            snapshots = len(probe.events)  # the quote and depth snapshots of the subscriptions
            pushed = 0
            for _ in range(MONTH_DAYS * 24):  # an hour at a time, each delivered before the clock moves on
                pushed += sim.sim.advance(3600)
                await probe.wait_for(lambda ev, n=pushed: sum(len(a[1]) for t, a in ev if t == Target.TRADE) >= n,
                                     timeout=20)
            end = sim.sim.clock.now_us()
            events = probe.events[snapshots:]
        finally:
            await probe.stop()
        trades = [r for target, args in events if target == Target.TRADE for r in args[1]]
        stamps = [parse_ts(r["timestamp"]) for r in trades]
        assert len(stamps) == pushed > 100_000
        assert all(globex_open(t) for t in stamps)
        traded = sorted({to_us(t) - to_us(t) % MIN_US for t in stamps})
        assert traded == open_minutes(start, end + 1)  # every open minute prints (from its start), no closed one
        assert not [t for t in stamps if t.astimezone(NEW_YORK).date() == GOOD_FRIDAY]
        sunday_open = to_us(datetime(2026, 3, 8, 22, tzinfo=UTC))  # 18:00 EDT on the day DST began
        assert sunday_open in traded and sunday_open - MIN_US not in traded
        quotes = [args[1] for target, args in events if target == Target.QUOTE]
        depth = [r for target, args in events if target == Target.DEPTH for r in args[1] if r is not None]
        assert len(quotes) > 1000 and len(depth) > 100_000
        assert all(globex_open(parse_ts(q["timestamp"])) for q in quotes)
        assert all(globex_open(parse_ts(r["timestamp"])) for r in depth)
        # the session statistics restart with the first print at 18:00
        first = next(q for q in quotes if to_us(parse_ts(q["timestamp"])) >= sunday_open)
        session = [r for r, t in zip(trades, stamps, strict=True)
                   if sunday_open <= to_us(t) <= to_us(parse_ts(first["timestamp"]))]
        assert first["open"] == session[0]["price"] and first["volume"] == sum(r["volume"] for r in session)
        assert first["high"] == max(r["price"] for r in session) and first["low"] == min(r["price"] for r in session)

        async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
            bars = await px.get_bars(MNQ_JUNE, start_time=from_us(start - start % MIN_US), end_time=from_us(end),
                                     unit=BarUnit.MINUTE)
        minutes = [to_us(t) for t in bars["timestamp"].to_list()]
        assert minutes == open_minutes(start - start % MIN_US, end)  # the history's gaps are the halts


def test_the_simulators_market_and_the_clients_calendar_agree_minute_by_minute_over_a_year() -> None:
    market = Market(1, DEFAULT_START)
    start, end = to_us(datetime(2026, 1, 1, tzinfo=UTC)), to_us(datetime(2027, 1, 1, tzinfo=UTC))
    expected = open_minutes(start, end)
    assert len(expected) == 251 * 23 * 60  # 2026: 261 weekdays less 10 holidays, each session 23 hours
    for contract in ("CON.F.US.MNQ.H26", "CON.F.US.MGC.H26", "CON.F.US.CLE.H26"):  # index, metal, energy
        bars = market.path(contract).bars(start, end, end, BarUnit.MINUTE, 1)
        assert bars.start.tolist() == expected, contract
        assert (bars.volume > 0).all()



def advance_to(sim: SimServer, moment: datetime) -> None:
    sim.sim.advance((moment - sim.sim.clock.now()).total_seconds())


async def test_orders_sent_while_the_market_is_closed() -> None:
    friday = datetime(2026, 3, 6, 21, 59, tzinfo=UTC)  # Friday 16:59 EST, a minute before the weekend
    async with SimServer(config=SimConfig(seed=1, step_seconds=60), start=friday) as sim, \
            httpx.AsyncClient(base_url=sim.base_url, timeout=10) as rest:
        rest.headers["Authorization"] = f"Bearer {sim.login()}"

        async def post(path: str, **body) -> dict:
            response = await rest.post(path, json={"accountId": ACCOUNT, **body})
            assert response.status_code == 200
            return response.json()

        async def place(type_: int, side: int = 0, **prices) -> dict:
            return await post("/api/Order/place", contractId=MNQ, type=type_, side=side, size=1, **prices)

        assert (await place(2))["success"]  # long one before the close
        advance_to(sim, datetime(2026, 3, 6, 22, 9, tzinfo=UTC))  # 17:09 EST: closed until Sunday 18:00 EDT
        tick = sim.sim.market.contract(MNQ).tick_size
        last = sim.sim.market.last_trade(MNQ, sim.sim.clock.now_us())[0] * tick
        for type_ in (2, 6, 7):  # market, join bid, join ask
            refused = await place(type_)
            assert (refused["success"], refused["errorCode"], refused["orderId"]) == (
                False, PlaceOrderError.OUTSIDE_TRADING_HOURS, None)
            assert "market is closed" in refused["errorMessage"]
        close = await post("/api/Position/closeContract", contractId=MNQ)
        assert (close["success"], close["errorCode"]) == (False, ClosePositionError.ORDER_REJECTED)
        assert "market is closed" in close["errorMessage"]
        partial = await post("/api/Position/partialCloseContract", contractId=MNQ, size=1)
        assert (partial["success"], partial["errorCode"]) == (False, PartialCloseError.ORDER_REJECTED)
        positions = await post("/api/Position/searchOpen")
        assert [p["size"] for p in positions["positions"]] == [1]  # still long: nothing traded

        reopen = to_us(datetime(2026, 3, 8, 22, tzinfo=UTC))  # Sunday 18:00 EDT
        first = sim.sim.market.ticks_between(MNQ, reopen - 1, reopen + HOUR_US)
        above = (int(first.price[0]) + 40) * tick  # a buy limit 40 ticks above where the market will reopen
        marketable = (await place(1, 0, limitPrice=above))["orderId"]
        resting = (await place(1, 1, limitPrice=last + 2000 * tick))["orderId"]
        stop = (await place(4, 1, stopPrice=last - 2000 * tick))["orderId"]
        advance_to(sim, datetime(2026, 3, 8, 21, 59, tzinfo=UTC))  # Sunday 17:59 EDT: still closed
        working = codec.decode_list(models.Order, await post("/api/Order/searchOpen"), "orders")
        assert {(o.id, o.status, o.fill_volume) for o in working} == {
            (marketable, OrderStatus.OPEN, 0), (resting, OrderStatus.OPEN, 0), (stop, OrderStatus.OPEN, 0)}

        advance_to(sim, datetime(2026, 3, 8, 22, 1, tzinfo=UTC))  # the market reopens at 18:00 EDT (22:00 UTC)
        book = sim.sim.market.book(MNQ, int(first.price[0]), int(first.side[0]), int(first.time[0]))
        trades = codec.decode_list(models.Trade, await post(
            "/api/Trade/search", startTimestamp=friday.isoformat()), "trades")
        fill = next(t for t in trades if t.order_id == marketable)
        # matched as a new arrival at the first print: the best ask then, not its own limit far above
        assert fill.price == sim.sim.market.price(MNQ, book.asks.best) < above
        assert fill.creation_timestamp == from_us(int(first.time[0])) == datetime(2026, 3, 8, 22, tzinfo=UTC)
        still = {o.id for o in codec.decode_list(models.Order, await post("/api/Order/searchOpen"), "orders")}
        assert still == {resting, stop}
