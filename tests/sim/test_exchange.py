"""The simulator's matching engine in-process: fills against the synthetic book, brackets, P&L, rejections."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pxkit import enums
from pxkit.codec import Target, unwrap_user_event
from pxkit.enums import OrderSide, OrderStatus, OrderType, PositionType, UserAction
from pxkit.models import Account, BracketSpec, ModifyOrderRequest, Order, PlaceOrderRequest, Position, Trade
from pxkit.sim.clock import SimClock
from pxkit.sim.engine import SimConfig, Simulator
from pxkit.sim.exchange import ExchangeError
from pxkit.sim.instruments import PRODUCTS_BY_ROOT

MNQ, ES = "CON.F.US.MNQ.H26", "CON.F.US.EP.H26"
TICK, TICK_VALUE, FEE = (getattr(PRODUCTS_BY_ROOT["MNQ"], a) for a in ("tick_size", "tick_value", "fee"))
BUY, SELL = OrderSide.BUY, OrderSide.SELL
MARKET, LIMIT, STOP, TRAIL = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.TRAILING_STOP
OPEN, FILLED, CANCELLED, PENDING = (OrderStatus[n] for n in ("OPEN", "FILLED", "CANCELLED", "PENDING"))
LONG, SHORT, FLAT = PositionType.LONG, PositionType.SHORT, PositionType.UNDEFINED
CREATED, UPDATED = UserAction.CREATED, UserAction.UPDATED
PE, ME, PCE = enums.PlaceOrderError, enums.ModifyOrderError, enums.PartialCloseError
START = {1001: 50_000.0, 1002: 150_000.0}
SIDES = pytest.mark.parametrize("side", [BUY, SELL], ids=["buy", "sell"])
MODELS = {Target.USER_ORDER: ("order", Order), Target.USER_TRADE: ("trade", Trade),
          Target.USER_POSITION: ("position", Position), Target.USER_ACCOUNT: ("account", Account)}


class Recorder:
    """A hub connection stand-in: keeps every push; take() decodes them to (kind, action, model)."""

    def __init__(self) -> None:
        self.raw: list[tuple[str, list[Any]]] = []

    def send(self, target: str, arguments: list[Any]) -> None:
        self.raw.append((target, arguments))

    def take(self) -> list[tuple[str, UserAction, Any]]:
        out = [(MODELS[t][0], *unwrap_user_event(MODELS[t][1], args)) for t, args in self.raw]
        self.raw.clear()
        return out


def make_sim(seed: int = 1) -> tuple[Simulator, Recorder]:
    sim, rec = Simulator(SimConfig(seed=seed), SimClock()), Recorder()
    for account in START:
        for topic in ("accounts", "orders", "positions", "user_trades"):
            sim.subscribe(topic, account, rec)
    return sim, rec


def place(sim: Simulator, type_: OrderType = MARKET, side: OrderSide = BUY, size: int = 1,
          account: int = 1001, contract: str = MNQ, **kw: Any) -> int:
    return sim.exchange.place(PlaceOrderRequest(account, contract, type_, side, size, **kw))


def book(sim: Simulator):
    return sim.market.book_at(MNQ, sim.clock.now_us())


def last(sim: Simulator) -> int:
    return sim.market.last_trade(MNQ, sim.clock.now_us())[0]


def px(ticks: float) -> float:
    return ticks * TICK


def walk(levels: tuple[tuple[int, int], ...], qty: int) -> list[tuple[int, int]]:
    """(price, qty) taken level by level, best first."""
    out = []
    for price, size in levels:
        if qty:
            out.append((price, min(size, qty)))
            qty -= out[-1][1]
    return out


def vwap(fills: list[tuple[int, int]]) -> float:
    return round(sum(p * q for p, q in fills) / sum(q for _, q in fills) * TICK, 9)


def ticks_ahead(sim: Simulator, seconds: int = 3600) -> list[tuple[int, int, int]]:
    """(time, price, aggressor) of the MNQ trades in the next `seconds`."""
    now = sim.clock.now_us()
    t = sim.market.ticks_between(MNQ, now, now + seconds * 1_000_000)
    return list(zip(t.time.tolist(), t.price.tolist(), t.side.tolist(), strict=True))


def advance_to(sim: Simulator, t_us: int, rec: Recorder | None = None) -> None:
    """sim.advance by exactly the seconds to land on t_us; with rec, check nothing happens before t_us."""
    if rec is not None:
        advance_to(sim, t_us - 1)
        assert rec.take() == []
    delta = t_us - sim.clock.now_us()
    seconds = delta / 1e6
    while int(seconds * 1_000_000) < delta:
        seconds = math.nextafter(seconds, math.inf)
    sim.advance(seconds)
    assert sim.clock.now_us() == t_us


def shape(events) -> list[tuple[str, UserAction, Any]]:
    return [(k, a, m.status if k == "order" else m.type if k == "position" else None) for k, a, m in events]


def fill_shape(trades: int, status: OrderStatus = FILLED, position: tuple = (UPDATED, LONG)) -> list[tuple]:
    return [("order", UPDATED, status), *[("trade", CREATED, None)] * trades, ("position", *position),
            ("account", UPDATED, None)]


def of(events, kind: str) -> list[Any]:
    return [m for k, _, m in events if k == kind]


@pytest.fixture
def env() -> tuple[Simulator, Recorder]:
    return make_sim()


@pytest.mark.parametrize("n_levels", [1, 3])
def test_market_buy_walks_the_asks_and_emits_order_trades_position_account(env, n_levels):
    sim, rec = env
    asks = book(sim).asks.levels
    size = sum(s for _, s in asks[: n_levels - 1]) + 1
    expected = walk(asks, size)
    assert len(expected) == n_levels
    oid = place(sim, size=size, account=1002)
    events = rec.take()
    assert shape(events) == [("order", CREATED, PENDING), *fill_shape(n_levels, position=(CREATED, LONG))]
    assert (events[1][2].filled_price, events[1][2].fill_volume) == (vwap(expected), size)
    assert [(t.price, t.size, t.side, t.order_id, t.profit_and_loss) for t in of(events, "trade")] == [
        (px(p), q, BUY, oid, None) for p, q in expected]
    assert len({t.price for t in of(events, "trade")}) == n_levels
    assert (events[-2][2].size, events[-2][2].average_price) == (size, vwap(expected))
    assert events[-1][2].balance == round(START[1002] - sum(round(FEE * q, 2) for _, q in expected), 2)


def test_marketable_limit_fills_what_the_book_has_then_the_rest_when_traded_through(env):
    sim, rec = env
    asks = book(sim).asks.levels
    limit, available = asks[1][0], asks[0][1] + asks[1][1]
    oid = place(sim, LIMIT, size=available + 5, account=1002, limit_price=px(limit))
    events = rec.take()
    assert shape(events) == [("order", CREATED, OPEN), *fill_shape(2, OPEN, (CREATED, LONG))]
    assert (events[1][2].fill_volume, events[1][2].size) == (available, available + 5)
    t, _, _ = next(tk for tk in ticks_ahead(sim) if tk[1] < limit)
    advance_to(sim, t, rec)
    events = rec.take()
    assert shape(events) == fill_shape(1)
    assert [(m.price, m.size, m.order_id) for m in of(events, "trade")] == [(px(limit), 5, oid)]
    assert events[0][2].filled_price == vwap([*asks[:2], (limit, 5)])


@SIDES
def test_resting_limit_fills_at_its_price_only_when_a_trade_prints_through_it(env, side):
    sim, rec = env
    ticks, sign = ticks_ahead(sim), side.sign
    for k in range(1, 60):  # a limit the market touches before trading through it
        limit = last(sim) - k * sign
        cross = next(i for i, (_, p, _) in enumerate(ticks) if (p - limit) * sign < 0)
        if any(p == limit for _, p, _ in ticks[:cross]):
            break
    oid = place(sim, LIMIT, side, limit_price=px(limit))
    assert shape(rec.take()) == [("order", CREATED, OPEN)]
    advance_to(sim, ticks[cross][0], rec)  # the touch at the limit price did not fill
    events = rec.take()
    assert shape(events) == fill_shape(1, position=(CREATED, LONG if side is BUY else SHORT))
    assert (events[0][2].filled_price, events[1][2].price, events[1][2].order_id) == (px(limit),) * 2 + (oid,)


@SIDES
def test_stop_triggers_when_the_market_trades_at_or_through_it_and_fills_from_the_book(env, side):
    sim, rec = env
    stop = last(sim) + 3 * side.sign
    place(sim, STOP, side, stop_price=px(stop))
    assert [(m.status, m.stop_price) for _, _, m in rec.take()] == [(OPEN, px(stop))]
    t, price, aggressor = next(tk for tk in ticks_ahead(sim) if (tk[1] - stop) * side.sign >= 0)
    advance_to(sim, t, rec)
    at = sim.market.book(MNQ, price, aggressor, t)
    events = rec.take()
    assert shape(events)[:2] == [("order", UPDATED, FILLED), ("trade", CREATED, None)]
    assert events[0][2].filled_price == events[1][2].price == px((at.asks if side is BUY else at.bids).best)


@SIDES
def test_trailing_stop_follows_the_market_and_never_retreats(env, side):
    sim, rec = env
    trail, sign = 20, side.sign
    stop, moves = last(sim) + trail * sign, []
    place(sim, TRAIL, side, trail_price=px(trail))
    assert rec.take()[0][2].stop_price == px(stop)
    for tick in ticks_ahead(sim):
        if (tick[1] - stop) * sign >= 0:
            break
        if (tick[1] + trail * sign - stop) * sign < 0:  # a better stop: closer to the market on its own side
            stop = tick[1] + trail * sign
            moves.append(px(stop))
    t, price, aggressor = tick
    advance_to(sim, t)
    orders = of(rec.take(), "order")
    updates = [m.stop_price for m in orders if m.status is OPEN]
    assert updates == moves and len(moves) > 1 and updates == sorted(updates, reverse=side is BUY)
    at = sim.market.book(MNQ, price, aggressor, t)
    assert orders[-1].status is FILLED
    assert orders[-1].filled_price == px((at.asks if side is BUY else at.bids).best)


@pytest.mark.parametrize(("type_", "side", "where"), [(OrderType.JOIN_BID, BUY, "bids"),
                                                      (OrderType.JOIN_ASK, SELL, "asks")])
def test_join_orders_rest_at_the_touch(env, type_, side, where):
    sim, rec = env
    best = getattr(book(sim), where).best
    place(sim, type_, side)
    assert [(a, m.status, m.limit_price, m.fill_volume) for _, a, m in rec.take()] == [
        (CREATED, OPEN, px(best), 0)]


@pytest.mark.parametrize(("side", "sl", "tp", "winner"), [
    (BUY, -40, 6, LIMIT), (BUY, -6, 40, STOP), (SELL, 40, -6, LIMIT), (SELL, 6, -40, STOP)])
def test_native_bracket_legs_are_oco_and_realise_the_exact_pnl(env, side, sl, tp, winner):
    sim, rec = env
    size, sign = 2, side.sign
    [(entry, _)] = walk((book(sim).asks if side is BUY else book(sim).bids).levels, size)
    place(sim, side=side, size=size, stop_loss_bracket=BracketSpec(sl, STOP),
          take_profit_bracket=BracketSpec(tp, LIMIT))
    events = rec.take()
    legs = [m for k, a, m in events if k == "order" and a is CREATED][1:]
    assert [(m.type, m.status, m.side, m.size, m.stop_price, m.limit_price) for m in legs] == [
        (STOP, OPEN, side.opposite, size, px(entry + sl), None),
        (LIMIT, OPEN, side.opposite, size, None, px(entry + tp))]
    t, price, aggressor = next(
        tk for tk in ticks_ahead(sim) if (tk[1] - entry - sl) * sign <= 0 or (tk[1] - entry - tp) * sign > 0)
    hit_stop = (price - entry - sl) * sign <= 0
    assert (STOP if hit_stop else LIMIT) is winner
    at = sim.market.book(MNQ, price, aggressor, t)
    exits = walk((at.bids if side is BUY else at.asks).levels, size) if hit_stop else [(entry + tp, size)]
    advance_to(sim, t, rec)
    events = rec.take()
    won, lost = legs if hit_stop else legs[::-1]
    assert [(m.id, m.status) for m in of(events, "order")] == [(won.id, FILLED), (lost.id, CANCELLED)]
    assert shape(events) == [*fill_shape(len(exits), position=(UPDATED, FLAT)), ("order", UPDATED, CANCELLED)]
    pnl = sum((p - entry) * sign * q for p, q in exits) * TICK_VALUE
    assert hit_stop or pnl == abs(tp) * TICK_VALUE * size
    assert sum(t.profit_and_loss for t in of(events, "trade")) == pytest.approx(pnl)
    assert of(events, "position")[0].size == 0 and sim.exchange.ledger.position(1001, MNQ) == 0
    assert of(events, "account")[0].balance == round(START[1001] - 2 * size * FEE + pnl, 2)


def test_closing_the_position_cancels_the_working_legs(env):
    sim, rec = env
    place(sim, stop_loss_bracket=BracketSpec(-200, STOP), take_profit_bracket=BracketSpec(200, LIMIT))
    legs = [m.id for k, a, m in rec.take() if k == "order" and a is CREATED][1:]
    sim.advance(30)
    assert rec.take() == []
    sim.exchange.close_position(1001, MNQ)
    events = rec.take()
    assert shape(events) == [("order", CREATED, PENDING), *fill_shape(1, position=(UPDATED, FLAT)),
                             ("order", UPDATED, CANCELLED), ("order", UPDATED, CANCELLED)]
    assert [m.id for _, _, m in events[-2:]] == legs and events[2][2].profit_and_loss is not None
    assert sim.exchange.open_orders(1001) == []


def test_modify_price_and_size_then_cancel_and_cancel_errors(env):
    sim, rec = env
    oid, moved = place(sim, LIMIT, limit_price=px(last(sim) - 20)), px(last(sim) - 25)
    rec.take()
    sim.exchange.modify(ModifyOrderRequest(1001, oid, limit_price=moved))
    sim.exchange.modify(ModifyOrderRequest(1001, oid, size=3))
    sim.exchange.cancel(1001, oid)
    assert [(a, m.status, m.limit_price, m.size) for _, a, m in rec.take()] == [
        (UPDATED, OPEN, moved, 1), (UPDATED, OPEN, moved, 3), (UPDATED, CANCELLED, moved, 3)]
    filled = place(sim)
    rec.take()
    for account, order, code in ((1001, oid, ME.REJECTED), (1001, filled, ME.REJECTED),
                                 (1001, 123, ME.ORDER_NOT_FOUND), (1002, filled, ME.ORDER_NOT_FOUND),
                                 (9999, filled, ME.ACCOUNT_NOT_FOUND)):
        with pytest.raises(ExchangeError) as err:
            sim.exchange.cancel(account, order)
        assert err.value.code == code
    assert rec.take() == [] and sim.exchange.orders[filled].status is FILLED


def test_modifying_a_stop_to_the_wrong_side_of_the_market_is_rejected(env):
    sim, rec = env
    oid = place(sim, STOP, side=SELL, stop_price=px(last(sim) - 10))
    rec.take()
    with pytest.raises(ExchangeError) as err:
        sim.exchange.modify(ModifyOrderRequest(1001, oid, stop_price=px(last(sim) + 2)))
    assert err.value.code == ME.REJECTED
    assert rec.take() == [] and sim.exchange.orders[oid].stop == last(sim) - 10


def test_long_then_short_through_zero_realises_pnl_and_flips_at_the_fill(env):
    sim, rec = env
    entry = book(sim).asks.best
    place(sim)
    sim.advance(60)
    bid, bid_size = book(sim).bids.levels[0]
    assert bid_size >= 3
    place(sim, side=SELL, size=3)
    events = rec.take()[5:]
    assert shape(events) == [("order", CREATED, PENDING), *fill_shape(1, position=(UPDATED, SHORT))]
    pnl = (bid - entry) * TICK_VALUE
    assert (events[2][2].profit_and_loss, events[2][2].fees) == (pnl, round(3 * FEE, 2))
    assert (events[3][2].size, events[3][2].average_price) == (2, px(bid))
    assert events[4][2].balance == round(START[1001] - 4 * FEE + pnl, 2)


def test_partial_close_leaves_the_rest_and_checks_size_and_position(env):
    sim, rec = env
    [(entry, _)] = walk(book(sim).asks.levels, 3)
    place(sim, size=3)
    sim.advance(30)
    bid = book(sim).bids.best
    rec.take()
    sim.exchange.close_position(1001, MNQ, 1)
    events = rec.take()
    assert events[2][2].profit_and_loss == (bid - entry) * TICK_VALUE
    assert (events[3][2].type, events[3][2].size, events[3][2].average_price) == (LONG, 2, px(entry))
    cases = [(1001, size, PCE.INVALID_CLOSE_SIZE) for size in (0, -1, 3, 5)]  # position is 2: above it
    cases += [(1002, None, enums.ClosePositionError.POSITION_NOT_FOUND), (1002, 1, PCE.POSITION_NOT_FOUND)]
    for account, size, code in cases:
        with pytest.raises(ExchangeError) as err:
            sim.exchange.close_position(account, MNQ, size)
        assert err.value.code == code
    assert rec.take() == [] and sim.exchange.ledger.position(1001, MNQ) == 2
    sim.exchange.close_position(1001, MNQ, 2)  # a partial close of the whole size flattens
    assert sim.exchange.ledger.position(1001, MNQ) == 0 and rec.take()[3][2].size == 0


REJECTIONS = {  # request fields (prices as tick offsets from the last trade) -> errorCode
    "size-0": ({"size": 0}, PE.ORDER_REJECTED),
    "size-negative": ({"size": -2}, PE.ORDER_REJECTED),
    "limit-off-grid": ({"type_": LIMIT, "limit_price": -10.4}, PE.ORDER_REJECTED),
    "limit-missing": ({"type_": LIMIT}, PE.ORDER_REJECTED),
    "stop-missing": ({"type_": STOP}, PE.ORDER_REJECTED),
    "stop-limit": ({"type_": OrderType.STOP_LIMIT, "limit_price": 0, "stop_price": 4}, PE.ORDER_REJECTED),
    "buy-stop-at-last": ({"type_": STOP, "stop_price": 0}, PE.ORDER_REJECTED),
    "buy-stop-below": ({"type_": STOP, "stop_price": -4}, PE.ORDER_REJECTED),
    "sell-stop-at-last": ({"type_": STOP, "side": SELL, "stop_price": 0}, PE.ORDER_REJECTED),
    "sell-stop-above": ({"type_": STOP, "side": SELL, "stop_price": 4}, PE.ORDER_REJECTED),
    "unknown-contract": ({"contract": "CON.F.US.XXX.H26"}, PE.CONTRACT_NOT_FOUND),
    "expired-contract": ({"contract": "CON.F.US.MNQ.Z25"}, PE.CONTRACT_NOT_FOUND),
    "locked-account": ({"account": 1003}, PE.ACCOUNT_REJECTED),
    "hidden-account": ({"account": 1004}, PE.ACCOUNT_REJECTED),
    "unknown-account": ({"account": 9999}, PE.ACCOUNT_NOT_FOUND),
    "huge": ({"size": 1000}, PE.INSUFFICIENT_FUNDS),
    "buy-sl-positive": ({"stop_loss_bracket": BracketSpec(10, STOP)}, PE.ORDER_REJECTED),
    "buy-tp-negative": ({"take_profit_bracket": BracketSpec(-10, LIMIT)}, PE.ORDER_REJECTED),
    "sell-sl-negative": ({"side": SELL, "stop_loss_bracket": BracketSpec(-10, STOP)}, PE.ORDER_REJECTED),
    "sell-tp-positive": ({"side": SELL, "take_profit_bracket": BracketSpec(10, LIMIT)}, PE.ORDER_REJECTED),
    "bracket-zero-ticks": ({"take_profit_bracket": BracketSpec(0, LIMIT)}, PE.ORDER_REJECTED),
    "bracket-market-leg": ({"take_profit_bracket": BracketSpec(8, MARKET)}, PE.ORDER_REJECTED),
}


@pytest.mark.parametrize(("fields", "code"), list(REJECTIONS.values()), ids=list(REJECTIONS))
def test_rejections_leave_no_order_and_emit_nothing(env, fields, code):
    sim, rec = env
    fields = {k: px(last(sim) + v) if k.endswith("_price") else v for k, v in fields.items()}
    with pytest.raises(ExchangeError) as err:
        place(sim, **fields)
    assert err.value.code == code
    assert sim.exchange.orders == {} and rec.raw == [] and sim.exchange.ledger.trades == []
    assert sim.exchange.ledger.accounts[1001].balance == START[1001]


def test_custom_tag_is_unique_per_account(env):
    sim, rec = env
    first = place(sim, LIMIT, limit_price=px(last(sim) - 40), custom_tag="t1")
    rec.take()
    with pytest.raises(ExchangeError) as err:
        place(sim, LIMIT, limit_price=px(last(sim) - 41), custom_tag="t1")
    assert err.value.code == PE.ORDER_REJECTED and list(sim.exchange.orders) == [first] and rec.raw == []
    other = place(sim, LIMIT, account=1002, limit_price=px(last(sim) - 41), custom_tag="t1")
    assert [(m.id, m.account_id, m.custom_tag) for _, _, m in rec.take()] == [(other, 1002, "t1")]


def run_script(seed: int) -> list[tuple[str, list[Any]]]:
    sim, rec = make_sim(seed)
    place(sim, size=2, stop_loss_bracket=BracketSpec(-12, STOP), take_profit_bracket=BracketSpec(12, LIMIT))
    sim.advance(60)
    place(sim, LIMIT, SELL, account=1002, limit_price=px(last(sim) + 4))
    place(sim, STOP, BUY, account=1002, stop_price=px(last(sim) + 6))
    sim.advance(120)
    place(sim, TRAIL, SELL, account=1002, trail_price=2.0)
    sim.advance(180)
    return rec.raw


def test_same_seed_and_script_give_identical_events_and_another_seed_differs():
    first, again, other = run_script(1), run_script(1), run_script(2)
    assert first == again
    prices = [[a[0]["data"]["price"] for t, a in run if t == Target.USER_TRADE] for run in (first, other)]
    assert len(prices[0]) >= 4 and prices[0] != prices[1]



def test_working_orders_on_two_contracts_match_only_their_own_ticks(env):
    sim, _ = env
    limit, t0 = last(sim) - 400, sim.clock.now_us()
    oid = place(sim, LIMIT, limit_price=px(limit))  # far below MNQ's prices, far above ES's
    es = sim.market.last_trade(ES, t0)[0]
    place(sim, LIMIT, SELL, account=1002, contract=ES, limit_price=px(es + 400))
    sim.advance(30)
    assert sim.market.ticks_between(MNQ, t0, sim.clock.now_us()).price.min() > limit  # MNQ never got there
    assert sim.exchange.orders[oid].status is OPEN



def test_a_flip_through_zero_is_margin_checked(env):
    sim, _ = env
    place(sim)
    with pytest.raises(ExchangeError) as err:
        place(sim, side=SELL, size=1000)  # short 999 MNQ on a 50k account
    assert err.value.code == PE.INSUFFICIENT_FUNDS



def test_bracket_legs_never_open_a_position_after_a_partial_close(env):
    sim, _ = env
    place(sim, size=2, stop_loss_bracket=BracketSpec(-6, STOP), take_profit_bracket=BracketSpec(6, LIMIT))
    sim.exchange.close_position(1001, MNQ, 1)
    sim.advance(600)
    assert sim.exchange.ledger.position(1001, MNQ) == 0
