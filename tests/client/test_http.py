"""ProjectX end to end against the simulated gateway over real sockets: every endpoint, paged bars, input
validation that sends nothing, and secrets that never leak into logs, reprs or error messages."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conftest import ACCOUNT, MNQ
from pxkit.client.http import ProjectX
from pxkit.config import ProjectXConfig
from pxkit.enums import BarUnit, OrderSide, OrderStatus, OrderType, PositionType
from pxkit.errors import (
    AccountNotFoundError,
    AuthenticationError,
    ConfigError,
    InputError,
    InstrumentNotFoundError,
    InsufficientFundsError,
    OrderNotFoundError,
    OrderRejectedError,
    PositionNotFoundError,
)
from pxkit.models import Order
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.auth import Credentials
from pxkit.times import to_us

PLACE, HISTORY = "/api/Order/place", "/api/History/retrieveBars"
NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # the simulator's clock
ENQ, EP = "CON.F.US.ENQ.H26", "CON.F.US.EP.H26"
FAR_BID = 15000.0  # MNQ trades near 20,200: a buy limit here rests
BAR_DTYPES = {"timestamp": pl.Datetime("us", "UTC"), "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
              "close": pl.Float64, "volume": pl.Int64}


@pytest.fixture
async def px(sim: SimServer) -> AsyncIterator[ProjectX]:
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as client:
        yield client


def sent(sim: SimServer, path: str) -> list[Any]:
    return [r.body for r in sim.requests if r.path == path]


def last_price(sim: SimServer) -> float:
    return sim.sim.market.last_trade(MNQ, sim.sim.clock.now_us())[0] * 0.25


async def order(px: ProjectX, order_id: int) -> Order:
    return next(o for o in await px.search_orders() if o.id == order_id)


def expected_bars(sim: SimServer, start: datetime, end: datetime, unit: BarUnit = BarUnit.MINUTE, number: int = 1,
                  partial: bool = False) -> pl.DataFrame:
    bars = sim.sim.market.bars(MNQ, to_us(start), to_us(end), sim.sim.clock.now_us(), unit, number, partial)
    rows = [(b.timestamp, b.open, b.high, b.low, b.close, b.volume) for b in bars]
    return pl.DataFrame(rows, schema=BAR_DTYPES, orient="row")


# ---------------------------------------------------------------------------------------------- session, accounts


async def test_authenticate_selects_the_first_tradable_account(sim: SimServer, px: ProjectX) -> None:
    assert px.account is not None and px.account.id == ACCOUNT
    assert [r.path for r in sim.requests] == ["/api/Auth/loginKey", "/api/Account/search"]
    assert sent(sim, "/api/Account/search") == [{"onlyActiveAccounts": True}]
    assert "PRAC-V2-SIM-50K-1" in repr(px)


@pytest.mark.parametrize(("name", "account_id"), [
    ("PRAC-V2-SIM-150K-2", 1002), ("prac-v2-sim-150k-2", 1002), ("  Prac-V2-Sim-150k-2 ", 1002), ("NOPE", None),
])
async def test_authenticate_with_account_name(sim: SimServer, name: str, account_id: int | None) -> None:
    client = ProjectX(ProjectXConfig.for_simulator(sim.base_url, account_name=name))
    if account_id is None:
        with pytest.raises(ConfigError, match="no account 'NOPE'; available: PRAC-V2-SIM-50K-1"):
            await client.__aenter__()
        assert client.transport.http.is_closed  # a failed entry closes the client
        return
    async with client as px:
        assert px.account is not None and px.account.id == account_id


async def test_list_and_select_accounts(px: ProjectX) -> None:
    assert [a.id for a in await px.list_accounts()] == [1001, 1002, 1003]
    assert [a.id for a in await px.list_accounts(only_active=False)] == [1001, 1002, 1003, 1004]
    for wanted, account_id in ((1002, 1002), ("eval-sim-locked-3", 1003), (1004, 1004), ("PRAC-V2-SIM-50K-1", 1001)):
        assert (await px.select_account(wanted)).id == account_id == px.account.id  # type: ignore[union-attr]
    for unknown in (999, "NOPE"):
        with pytest.raises(ConfigError, match="no account"):
            await px.select_account(unknown)
    assert px.account.id == ACCOUNT  # type: ignore[union-attr]  # unchanged by a failed selection


# ---------------------------------------------------------------------------------------------- instruments


async def test_search_instruments(px: ProjectX) -> None:
    found = {c.id for c in await px.search_instruments("NQ")}
    assert {MNQ, ENQ} <= found and "CON.F.US.MNQ.M26" not in found  # search lists the active contracts only
    available = {c.id: c.active_contract for c in await px.available_instruments()}
    assert (available[MNQ], available["CON.F.US.MNQ.M26"]) == (True, False)
    assert await px.search_instruments("ZZZ") == []


@pytest.mark.parametrize(("symbol", "contract_id"), [
    ("MNQ", MNQ), ("mnq", MNQ), ("NQ", ENQ), ("ES", EP), ("/es", EP), ("GC", "CON.F.US.GCE.H26"), (MNQ, MNQ),
    ("MNQH6", MNQ), ("CON.F.US.MNQ.M26", "CON.F.US.MNQ.M26"), ("MNQM6", "CON.F.US.MNQ.M26"),
    ("CL", "CON.F.US.CLE.H26"),
])
async def test_get_instrument_resolves_and_caches(sim: SimServer, px: ProjectX, symbol: str, contract_id: str) -> None:
    contract = await px.get_instrument(symbol)
    assert contract.id == contract_id
    before = len(sim.requests)
    assert await px.get_instrument(symbol) is contract
    assert await px.get_instrument(f" /{symbol.lower()} ") is contract
    assert await px.get_instrument(contract_id) is contract  # cached under its id too
    assert len(sim.requests) == before


@pytest.mark.parametrize("symbol", ["ZZZ", "CON.F.US.ZZZ.H26", "MNQZ9"])
async def test_get_instrument_unknown(px: ProjectX, symbol: str) -> None:
    with pytest.raises(InstrumentNotFoundError, match=symbol):
        await px.get_instrument(symbol)


# ---------------------------------------------------------------------------------------------- orders


def entry_cases(sim: SimServer) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    last, bid = last_price(sim), sim.sim.market.book_at(MNQ, sim.sim.clock.now_us()).bids.best * 0.25
    return {  # place_order kwargs -> expected Order fields
        "market": ({"side": "buy", "size": 2}, {"type": OrderType.MARKET, "status": OrderStatus.FILLED,
                                                 "side": OrderSide.BUY, "size": 2, "fill_volume": 2}),
        "limit": ({"side": "buy", "size": 1, "order_type": OrderType.LIMIT, "limit_price": FAR_BID},
                  {"type": OrderType.LIMIT, "status": OrderStatus.OPEN, "limit_price": FAR_BID, "side": OrderSide.BUY}),
        "stop": ({"side": "sell", "size": 3, "order_type": OrderType.STOP, "stop_price": last - 10},
                 {"type": OrderType.STOP, "status": OrderStatus.OPEN, "stop_price": last - 10, "size": 3}),
        "trailing": ({"side": OrderSide.SELL, "size": 1, "order_type": OrderType.TRAILING_STOP, "trail_price": 5.0},
                     {"type": OrderType.TRAILING_STOP, "status": OrderStatus.OPEN, "stop_price": last - 5.0}),
        "join-bid": ({"side": 0, "size": 1, "order_type": OrderType.JOIN_BID},
                     {"type": OrderType.JOIN_BID, "status": OrderStatus.OPEN, "limit_price": bid}),
    }


@pytest.mark.parametrize("case", ["market", "limit", "stop", "trailing", "join-bid"])
async def test_place_order_types(sim: SimServer, px: ProjectX, case: str) -> None:
    kwargs, want = entry_cases(sim)[case]
    placed = await px.place_order("MNQ", **kwargs)
    assert (placed.contract_id, placed.order) == (MNQ, None)
    got = await order(px, placed.order_id)
    assert {k: getattr(got, k) for k in want} == want
    assert (got.account_id, got.contract_id, got.custom_tag) == (ACCOUNT, MNQ, placed.custom_tag)
    open_ids = {o.id for o in await px.search_open_orders()}
    assert (placed.order_id in open_ids) == (want["status"] is OrderStatus.OPEN)


@pytest.mark.parametrize(("side", "sl", "tp", "order_type"), [
    ("buy", 10, 20, OrderType.MARKET), ("sell", 10, 20, OrderType.MARKET), ("buy", 8, 12, OrderType.LIMIT),
])
async def test_place_order_with_brackets(sim: SimServer, px: ProjectX, side: str, sl: int, tp: int,
                                         order_type: OrderType) -> None:
    price = {"limit_price": last_price(sim) + 5} if order_type is OrderType.LIMIT else {}  # marketable limit
    placed = await px.place_order("MNQ", side, 1, order_type=order_type, stop_loss_ticks=sl, take_profit_ticks=tp,
                                  verify=True, **price)
    assert placed.order is not None and placed.order.status is OrderStatus.FILLED
    sign = 1 if side == "buy" else -1  # distances are unsigned; the wire's ticks are signed from the entry
    assert sent(sim, PLACE)[-1]["stopLossBracket"] == {"ticks": -sign * sl, "type": int(OrderType.STOP)}
    assert sent(sim, PLACE)[-1]["takeProfitBracket"] == {"ticks": sign * tp, "type": int(OrderType.LIMIT)}
    entry = placed.order.filled_price
    legs = {o.type: o for o in await px.search_open_orders()}
    exit_side = OrderSide.SELL if side == "buy" else OrderSide.BUY
    assert legs[OrderType.STOP].stop_price == entry - sign * sl * 0.25 and legs[OrderType.STOP].side is exit_side
    assert legs[OrderType.LIMIT].limit_price == entry + sign * tp * 0.25 and legs[OrderType.LIMIT].side is exit_side
    assert {o.size for o in legs.values()} == {1}


async def test_resting_entry_has_no_legs_until_filled(px: ProjectX) -> None:
    placed = await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID,
                                  stop_loss_ticks=10, take_profit_ticks=10)
    assert [o.id for o in await px.search_open_orders()] == [placed.order_id]


async def test_custom_tags_given_or_generated(sim: SimServer, px: ProjectX) -> None:
    mine = await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID, custom_tag="t-1")
    auto = [await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID) for _ in range(3)]
    assert mine.custom_tag == "t-1" and (await order(px, mine.order_id)).custom_tag == "t-1"
    tags = [p.custom_tag for p in auto]
    assert all(t.startswith("pxkit-") for t in tags) and len(set(tags)) == 3
    assert [b["customTag"] for b in sent(sim, PLACE)] == ["t-1", *tags]
    with pytest.raises(OrderRejectedError, match="customTag"):  # reused: the gateway refuses, sent once
        await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID, custom_tag="t-1")
    assert len(sent(sim, PLACE)) == 5


@pytest.mark.parametrize(("verify", "config_verify"), [(True, False), (None, True), (False, True)])
async def test_verify_returns_the_order(sim: SimServer, verify: bool | None, config_verify: bool) -> None:
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url, verify_orders=config_verify)) as px:
        placed = await px.place_order("MNQ", "sell", 1, verify=verify)
        if verify is False:
            assert placed.order is None
        else:
            assert placed.order is not None and placed.order.id == placed.order_id
            assert placed.order.custom_tag == placed.custom_tag and placed.order.status is OrderStatus.FILLED


async def test_modify_and_cancel_order(sim: SimServer, px: ProjectX) -> None:
    placed = await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID)
    await px.modify_order(placed.order_id, limit_price=FAR_BID + 100, size=3)
    assert sent(sim, "/api/Order/modify") == [{"accountId": ACCOUNT, "orderId": placed.order_id, "size": 3,
                                               "limitPrice": FAR_BID + 100}]
    (working,) = await px.search_open_orders()
    assert (working.id, working.limit_price, working.size) == (placed.order_id, FAR_BID + 100, 3)
    await px.cancel_order(placed.order_id)
    assert await px.search_open_orders() == []
    assert (await order(px, placed.order_id)).status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejectedError):
        await px.cancel_order(placed.order_id)  # no longer working
    with pytest.raises(OrderNotFoundError):
        await px.modify_order(123, size=2)


async def test_positions_partial_and_full_close_and_trades(sim: SimServer, px: ProjectX) -> None:
    entry = await px.place_order("MNQ", "buy", 3)
    (position,) = await px.search_open_positions()
    assert (position.contract_id, position.type, position.size) == (MNQ, PositionType.LONG, 3)
    await px.partially_close_position("MNQ", 1)
    assert sent(sim, "/api/Position/partialCloseContract") == [{"accountId": ACCOUNT, "contractId": MNQ, "size": 1}]
    assert [p.size for p in await px.search_open_positions()] == [2]
    with pytest.raises(OrderRejectedError):
        await px.partially_close_position("MNQ", 5)  # more than the position
    await px.close_position("mnq")
    assert await px.search_open_positions() == []
    with pytest.raises(PositionNotFoundError):
        await px.close_position("MNQ")
    trades = await px.search_trades()
    opening = [t for t in trades if t.order_id == entry.order_id]
    closing = [t for t in trades if t.order_id != entry.order_id]
    assert sum(t.size for t in opening) == 3 and all(t.profit_and_loss is None for t in opening)
    assert sum(t.size for t in closing) == 3 and all(isinstance(t.profit_and_loss, float) for t in closing)
    assert {t.side for t in closing} == {OrderSide.SELL}
    assert position.average_price == pytest.approx(sum(t.price * t.size for t in opening) / 3)
    assert await px.search_trades(NOW - timedelta(days=2), NOW - timedelta(days=1)) == []


# ---------------------------------------------------------------------------------------------- bars


async def test_two_months_of_minute_bars_are_paged(sim: SimServer, px: ProjectX) -> None:
    start = datetime(2026, 1, 1, 14, 30, tzinfo=UTC)
    frame = await px.get_bars("MNQ", start_time=start, end_time=NOW)
    # New Year's Day is closed: the first bar is 18:00 New York that evening; then 39 sessions of 23 hours (MLK
    # Day and Washington's Birthday closed) and Monday's first 15.5 hours
    assert frame.height == 39 * 23 * 60 + 930
    assert dict(frame.schema) == BAR_DTYPES
    assert frame["timestamp"].is_sorted() and frame["timestamp"].is_unique().all()
    assert (frame["timestamp"][0], frame["timestamp"][-1]) == (datetime(2026, 1, 1, 23, tzinfo=UTC),
                                                               NOW - timedelta(minutes=1))
    assert_frame_equal(frame, expected_bars(sim, start, NOW))
    bodies = sent(sim, HISTORY)
    assert len(bodies) >= 3 and all(b["limit"] <= 20_000 for b in bodies)


async def test_days_limit_and_naive_times(sim: SimServer, px: ProjectX) -> None:
    day = await px.get_bars("MNQ", days=1, end_time=NOW)
    assert_frame_equal(day, expected_bars(sim, NOW - timedelta(days=1), NOW))
    assert day.height == 930  # the session opened on Sunday 18:00 New York, 15.5 hours before NOW
    newest = await px.get_bars("MNQ", days=1, end_time=NOW, limit=100)
    assert_frame_equal(newest, day.tail(100))
    naive = await px.get_bars("MNQ", start_time=datetime(2026, 3, 2, 12), end_time=datetime(2026, 3, 2, 14, 30))
    assert_frame_equal(naive, day.tail(150))
    default_end = await px.get_bars("MNQ", days=1)  # ends at the gateway's clock
    assert default_end["timestamp"][-1] == NOW - timedelta(minutes=1)


@pytest.mark.parametrize(("interval", "unit", "bar_unit"), [
    (5, "minute", BarUnit.MINUTE), (15, "min", BarUnit.MINUTE), (1, "hour", BarUnit.HOUR), (2, "Hours", BarUnit.HOUR),
    (30, "s", BarUnit.SECOND), (1, BarUnit.DAY, BarUnit.DAY), (1, 2, BarUnit.MINUTE),
])
async def test_bar_units(sim: SimServer, px: ProjectX, interval: int, unit: Any, bar_unit: BarUnit) -> None:
    start = NOW - timedelta(hours=3) if bar_unit is not BarUnit.DAY else NOW - timedelta(days=10)
    frame = await px.get_bars("MNQ", start_time=start, end_time=NOW, interval=interval, unit=unit)
    assert frame.height > 0
    assert_frame_equal(frame, expected_bars(sim, start, NOW, bar_unit, interval))
    assert sent(sim, HISTORY)[-1]["unit"] == int(bar_unit) and sent(sim, HISTORY)[-1]["unitNumber"] == interval


async def test_partial_bar_after_time_moves(sim: SimServer, px: ProjectX) -> None:
    await sim.advance(30)
    start, end = NOW - timedelta(minutes=30), NOW + timedelta(minutes=1)
    whole = await px.get_bars("MNQ", start_time=start, end_time=end)
    with_partial = await px.get_bars("MNQ", start_time=start, end_time=end, partial=True)
    assert (whole.height, with_partial.height) == (30, 31)
    assert with_partial["timestamp"][-1] == NOW and with_partial["volume"][-1] > 0
    assert_frame_equal(with_partial, expected_bars(sim, start, end, partial=True))
    assert_frame_equal(with_partial.head(30), whole)
    assert sent(sim, HISTORY)[-1]["includePartialBar"] is True


@pytest.mark.parametrize("kwargs", [
    {"days": 1, "unit": "fortnight"}, {"days": 1, "unit": 0}, {"days": 1, "unit": 9}, {"days": 1, "interval": 0},
    {"days": 1, "limit": 0}, {"start_time": NOW + timedelta(hours=1)}, {"start_time": NOW}, {"days": 0},
    {"days": -1}, {"days": 1, "start_time": NOW}, {},
])
async def test_bad_bar_requests_send_no_history_request(sim: SimServer, px: ProjectX, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        await px.get_bars("MNQ", **{"end_time": NOW, **kwargs})
    assert sent(sim, HISTORY) == []


# ---------------------------------------------------------------------------------------------- bad input sends nothing

LIMIT, STOP = {"order_type": OrderType.LIMIT, "limit_price": FAR_BID}, {"order_type": OrderType.STOP}
BAD_ORDERS: dict[str, tuple[Any, Any, dict[str, Any]]] = {  # place_order("MNQ", side, size, **kwargs)
    "size-0": ("buy", 0, {}), "size-negative": ("buy", -1, {}), "size-fraction": ("buy", 1.5, {}),
    "size-bool": ("buy", True, {}), "side-up": ("up", 1, {}), "side-2": (2, 1, {}),
    "off-grid": ("buy", 1, {**LIMIT, "limit_price": 20000.1}), "negative": ("buy", 1, {**LIMIT, "limit_price": -1.0}),
    "missing-limit": ("buy", 1, {"order_type": OrderType.LIMIT}), "stop-on-market": ("buy", 1, {"stop_price": 2e4}),
    "missing-trail": ("sell", 1, {"order_type": OrderType.TRAILING_STOP}),
    "limit-on-stop": ("buy", 1, {**STOP, "stop_price": 21000.0, "limit_price": 21000.0}),
    "buy-sl-negative": ("buy", 1, {"stop_loss_ticks": -10}), "sell-sl-negative": ("sell", 1, {"stop_loss_ticks": -9}),
    "buy-tp-negative": ("buy", 1, {"take_profit_ticks": -10}),
    "sell-tp-negative": ("sell", 1, {"take_profit_ticks": -10}),
    "zero-sl": ("buy", 1, {"stop_loss_ticks": 0}), "zero-tp": ("sell", 1, {**LIMIT, "take_profit_ticks": 0}),
    "fraction-ticks": ("buy", 1, {"stop_loss_ticks": 2.5}), "bool-ticks": ("buy", 1, {"take_profit_ticks": True}),
    "market-leg": ("buy", 1, {"stop_loss_ticks": 4, "stop_loss_type": OrderType.MARKET}),
    "stop-limit": ("buy", 1, {"order_type": OrderType.STOP_LIMIT}), "type-3": ("buy", 1, {"order_type": 3}),
    "blank-tag": ("buy", 1, {"custom_tag": "  "}),
}
BAD_INPUT: dict[str, Callable[[ProjectX], Awaitable[Any]]] = {
    **{name: (lambda px, a=args: px.place_order("MNQ", a[0], a[1], **a[2])) for name, args in BAD_ORDERS.items()},
    "modify-nothing": lambda px: px.modify_order(7_000_001),
    "modify-size-0": lambda px: px.modify_order(7_000_001, size=0),
    "partial-0": lambda px: px.partially_close_position("MNQ", 0),
    "partial-fraction": lambda px: px.partially_close_position("MNQ", 0.5),  # type: ignore[arg-type]
    "blank-symbol": lambda px: px.get_instrument(" "),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
async def test_bad_input_raises_and_sends_nothing(sim: SimServer, px: ProjectX, case: str) -> None:
    await px.get_instrument("MNQ")
    before = len(sim.requests)
    with pytest.raises(InputError) as info:
        await BAD_INPUT[case](px)
    assert isinstance(info.value, ValueError)
    assert len(sim.requests) == before


@pytest.mark.parametrize("price", [-5.0, 0.0, float("nan"), float("inf")])
async def test_modify_order_rejects_impossible_prices_locally(sim: SimServer, px: ProjectX, price: float) -> None:
    placed = await px.place_order("MNQ", "buy", 1, **LIMIT)
    before = len(sim.requests)
    with pytest.raises(InputError):
        await px.modify_order(placed.order_id, limit_price=price)
    assert len(sim.requests) == before


@pytest.mark.parametrize("kwargs", [{"interval": 1.5}, {"interval": True}, {"limit": 2.5}])
async def test_non_integer_bar_counts_are_input_errors(sim: SimServer, px: ProjectX, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        await px.get_bars("MNQ", days=1, end_time=NOW, **kwargs)
    assert sent(sim, HISTORY) == []


@pytest.mark.parametrize(("call", "error"), [
    (lambda px: px.place_order("MNQ", "buy", 100), InsufficientFundsError),
    (lambda px: px.place_order("MNQ", "buy", 1, account_id=1003), OrderRejectedError),  # cannot trade
    (lambda px: px.place_order("MNQ", "buy", 1, order_type=OrderType.STOP, stop_price=FAR_BID), OrderRejectedError),
    (lambda px: px.search_open_orders(account_id=999), AccountNotFoundError),
    (lambda px: px.search_trades(account_id=999), AccountNotFoundError),
])
async def test_gateway_rejections_are_typed(sim: SimServer, px: ProjectX, call: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        await call(px)
    assert type(info.value) is error and info.value.endpoint in str(info.value)  # type: ignore[attr-defined]
    assert len([r for r in sim.requests if r.path == info.value.endpoint]) == 1  # type: ignore[attr-defined]


async def test_unknown_symbol_places_nothing(sim: SimServer, px: ProjectX) -> None:
    with pytest.raises(InstrumentNotFoundError):
        await px.place_order("ZZZ", "buy", 1)
    with pytest.raises(InstrumentNotFoundError):
        await px.close_position("CON.F.US.ZZZ.H26")
    assert {r.path for r in sim.requests} == {"/api/Auth/loginKey", "/api/Account/search", "/api/Contract/search",
                                             "/api/Contract/available", "/api/Contract/searchById"}


async def test_round_to_tick_rounds_and_sends(sim: SimServer, px: ProjectX) -> None:
    with pytest.raises(InputError, match=r"nearest: 20000\.0"):
        await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=20000.1)
    placed = await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=20000.1, round_to_tick=True)
    (body,) = sent(sim, PLACE)
    assert body["limitPrice"] == 20000.0 and "stopPrice" not in body
    assert (await order(px, placed.order_id)).limit_price == 20000.0


# ---------------------------------------------------------------------------------------------- secrets

KEY = "SECRET-KEY-123"


def chain(exc: BaseException | None) -> str:
    """The messages and reprs of an exception and everything it was raised from."""
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


async def test_secrets_never_leak(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with SimServer(config=SimConfig(seed=1), credentials=Credentials("trader", KEY)) as sim:
        config = ProjectXConfig.for_simulator(sim.base_url, username="trader", api_key=KEY)
        async with ProjectX(config) as px:
            tokens = {px.tokens.current}
            placed = await px.place_order("MNQ", "buy", 1, verify=True)
            await px.get_bars("MNQ", days=0.1, end_time=NOW)
            px.tokens.expires_at = time.time()  # the token looks stale: the next call refreshes it through validate
            await px.list_accounts()
            tokens.add(px.tokens.current)
            tokens.add(await px.transport.tokens.renew(px.tokens.current))  # a fresh login
            sim.expire_tokens()  # 401, then a login again
            await px.search_open_positions()
            tokens.add(px.tokens.current)
            assert len(tokens) == 4 and px.tokens.refreshes == 3
            assert sent(sim, "/api/Auth/validate") == [None]
            sim.gateway.api.credentials = Credentials("trader", "ROTATED-KEY")  # our key stops working
            sim.expire_tokens()
            with pytest.raises(AuthenticationError) as refused:
                await px.list_accounts()
            shown = [repr(px), str(px), repr(config), str(config), repr(px.tokens), repr(px.transport.tokens),
                     repr(placed), str(placed), chain(refused.value)]
        with pytest.raises(AuthenticationError) as wrong_key:
            async with ProjectX(ProjectXConfig.for_simulator(sim.base_url, username="trader", api_key="WRONG-KEY-9")):
                pass
        assert wrong_key.value.error_code == 3 and "trader" in str(wrong_key.value)
        shown.append(chain(wrong_key.value))
    async with SimServer(credentials=Credentials("trader", KEY), token_ttl=-60) as sim:  # tokens born expired
        px = ProjectX(ProjectXConfig.for_simulator(sim.base_url, username="trader", api_key=KEY))
        with pytest.raises(AuthenticationError, match="HTTP 401") as expired:
            async with px:
                pass
        tokens.add(px.tokens.current)
        shown += [chain(expired.value), repr(px.tokens)]
    assert None not in tokens and len(tokens) == 5
    assert "token installed" in caplog.text and "/api/Auth/validate" in caplog.text  # the logs did run
    for secret in (KEY, "WRONG-KEY-9", *tokens):
        assert secret not in caplog.text
        for text in shown:
            assert secret not in text
