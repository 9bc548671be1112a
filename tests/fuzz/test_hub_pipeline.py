"""Property-based fuzzing of every hub decoder and of the router, entering where a real frame enters.

Each case is raw frame text: several SignalR records, each a push whose records are valid or hostile (unknown enums,
wrong types, NaN/inf/1e308, huge integers, missing fields, bad timestamps, nulls, nested junk) or a record that is not
even a SignalR message (bad JSON, deep nesting, no target). The text goes through the hub protocol's parse, the hub
link's hand-off (`_receive`, then `_drain` on the loop), the realtime client's handler and a real Router task with
real InstrumentContexts (built as the suite builds them, without sockets), once per test and shared by its cases.

Properties: the router task never dies and never fails on an item; each bad record is counted exactly once, by
kind; every good push reaches the router and the good records around a bad one still apply (TICK per good trade,
book entries per good depth record); state stays readable (every timeframe's bars, the book, orders, positions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import typing
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pxkit import codec, models, times
from pxkit.client.auth import TokenManager
from pxkit.client.hubframes import RecordByRecordJsonProtocol
from pxkit.client.realtime import MARKET, USER, ProjectXRealtimeClient
from pxkit.config import ProjectXConfig
from pxkit.events import EventBus, EventType
from pxkit.instrument.context import InstrumentContext
from pxkit.instrument.data import RealtimeDataManager
from pxkit.instrument.orderbook import OrderBook
from pxkit.instrument.orders import OrderManager
from pxkit.instrument.positions import PositionManager
from pxkit.models import Account, Contract
from pxkit.router import Router

FUZZ = settings(max_examples=10_000, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ACCOUNT, OTHER = 1001, 1002
MNQ = Contract("CON.F.US.MNQ.H26", "MNQH6", "Micro E-mini Nasdaq-100", 0.25, 0.5, True, "F.US.MNQ")
ES = Contract("CON.F.US.EP.H26", "ESH6", "E-mini S&P 500", 0.25, 12.5, True, "F.US.EP")
UNKNOWN_ID, UNKNOWN_SYMBOL = "CON.F.US.ZZZ.H26", "F.US.ZZZ"
NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
TIMEFRAMES = ("1sec", "1day")  # every bucket path: fixed-width intraday, and the 18:00 New York trading day
Target = codec.Target
TARGETS = {Target.QUOTE: models.Quote, Target.TRADE: models.MarketTrade, Target.DEPTH: models.DepthEntry,
           **codec.USER_EVENT_MODELS}
BATCHED = {Target.TRADE, Target.DEPTH}

# ------------------------------------------------------------------------------------------------ values

JUNK = [[], [1, "x"], {}, {"k": None}, {"nested": [[{"x": []}]]}, "", "junk", 0, -1, 3.5, True, False]
NOT_A_NUMBER = [float("nan"), float("inf"), float("-inf"), 1e308, -1.7e308, 1e13, 10**400, "1.5", [1.0], {}, True]
NOT_AN_INT = [1.5, -0.25, 2.0**60, 2**53 + 1, -(10**400), float("nan"), float("inf"), "7", [7], {"v": 7}, True]
NOT_A_TIME = ["", "soon", "2026-13-01T00:00:00Z", "2026-03-02T25:00:00", "9999-12-31T23:59:59-05:00",
              "0001-01-01T00:00:00+05:00", "2026-03-02T14:30:00+99:00", 1772461800, [2026], {"t": 1}]
CORPUS = 4096  # records per model, made once by a seeded generator: one draw per record keeps 10,000 cases fast
DOMAIN: dict[str, Callable[[random.Random], Any]] = {
    "account_id": lambda r: r.choice([ACCOUNT, ACCOUNT, OTHER]),
    "contract_id": lambda r: r.choice([MNQ.id, MNQ.id, ES.id, UNKNOWN_ID]),
    "symbol_id": lambda r: r.choice([MNQ.symbol_id, ES.symbol_id, UNKNOWN_SYMBOL]),
    "symbol": lambda r: r.choice([MNQ.symbol_id, ES.symbol_id, UNKNOWN_SYMBOL]),
    "id": lambda r: r.choice([r.randint(1, 40), ACCOUNT]), "order_id": lambda r: r.randint(1, 40),
    "size": lambda r: r.randint(-3, 12), "volume": lambda r: r.randint(0, 60),
    "current_volume": lambda r: r.randint(0, 10), "fill_volume": lambda r: r.randint(0, 12),
}
KINDS: dict[Any, Callable[[random.Random], Any]] = {
    bool: lambda r: r.random() < 0.5,
    int: lambda r: r.randint(-1000, 10**6),
    str: lambda r: r.choice(["", "x", "PRAC-1001", "tag-\u00e9", "F.US.MNQ", " "]),
    float: lambda r: r.choice([r.randint(60_000, 100_000) * 0.25, r.uniform(-1e6, 1e6), 0.0, -0.0, 1e12, 3]),
    datetime: lambda r: times.format_ts(NOW + timedelta(seconds=r.uniform(-3 * 86_400, 3 * 86_400)),
                                        r.choice(times.TS_STYLES)),
}


def _kind(hint: Any) -> Any:
    """The wire kind of a field's annotation: int, float, str, bool, datetime or an IntEnum (Optional unwrapped)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


@dataclasses.dataclass(frozen=True)
class Field:
    attr: str
    wire: str
    kind: Any
    required: bool


def fields_of(model: type) -> list[Field]:
    hints = typing.get_type_hints(model)
    return [Field(f.name, codec.camel(f.name), _kind(hints[f.name]), f.default is dataclasses.MISSING)
            for f in dataclasses.fields(model)]


def valid(field: Field, rng: random.Random) -> Any:
    if field.attr in DOMAIN:
        return DOMAIN[field.attr](rng)
    if isinstance(field.kind, type) and issubclass(field.kind, IntEnum):
        return int(rng.choice(list(field.kind)))
    return KINDS[field.kind](rng)


def hostile(field: Field, rng: random.Random) -> Any:
    """A value the codec must refuse for this field."""
    kind = field.kind
    if isinstance(kind, type) and issubclass(kind, IntEnum):
        members = {int(m) for m in kind}
        return rng.choice([rng.choice([v for v in range(-3, 40) if v not in members]), rng.randint(-(2**53), 2**53),
                           rng.choice(NOT_AN_INT)])
    if kind is str:
        return rng.choice([rng.randint(-9, 10**6), rng.uniform(-1, 1), True, ["x"], {"x": 1}])
    return rng.choice({bool: [0, 1, "true", [True], 0.0], int: NOT_AN_INT, float: NOT_A_NUMBER,
                       datetime: NOT_A_TIME}[kind])


MUTATIONS = ["none"] * 5 + ["hostile"] * 2 + ["missing", "null", "junk", "extra", "optional-null"]


def record(fields: list[Field], rng: random.Random) -> tuple[Any, bool]:
    """A wire object of a model, valid or hostile, and whether the codec must refuse it."""
    obj = {f.wire: valid(f, rng) for f in fields if f.required or rng.random() < 0.5}
    mutation = rng.choice(MUTATIONS)
    required, optional = [f for f in fields if f.required], [f for f in fields if not f.required]
    if mutation == "hostile":
        field = rng.choice(fields)
        obj[field.wire] = hostile(field, rng)
    elif mutation == "missing":
        obj.pop(rng.choice(required).wire)
    elif mutation == "null":
        obj[rng.choice(required).wire] = None
    elif mutation == "junk":
        return rng.choice([rng.randint(-9, 9), rng.uniform(-1, 1), "record", [], [1, 2], True, float("nan")]), True
    elif mutation == "extra":
        obj["someFutureKey"] = rng.choice(JUNK)
    elif mutation == "optional-null" and optional:
        obj[rng.choice(optional).wire] = None
    return obj, mutation in ("hostile", "missing", "null")


def corpus(model: type) -> list[tuple[Any, bool]]:
    fields, rng = fields_of(model), random.Random(model.__name__)
    return [record(fields, rng) for _ in range(CORPUS)]


# ------------------------------------------------------------------------------------------------ pushes


@dataclasses.dataclass
class Push:
    """One SignalR record of a frame, and what the pipeline must make of it."""

    text: str
    target: str | None = None
    contract_id: str | None = None
    good: list[Any] = dataclasses.field(default_factory=list)  # the good records, as wire objects
    bad: int = 0  # bad records in it (a malformed push counts once, whatever it holds)
    malformed: bool = False  # refused as a whole: its arguments' layout or its action
    frame_bad: bool = False  # not a readable SignalR record at all

    @property
    def reaches_router(self) -> bool:
        return (self.target is not None and not self.frame_bad and not self.malformed
                and (self.target in BATCHED or not self.bad))


def _signalr(target: str, arguments: Any) -> str:
    return json.dumps({"type": 1, "target": target, "arguments": arguments})


CORPORA = {target: corpus(model) for target, model in TARGETS.items()}
RECORDS = {target: st.sampled_from(records) for target, records in CORPORA.items()}
BATCHES = {target: st.lists(st.sampled_from([*CORPORA[target], *[None] * 400]), max_size=8)  # 1 record in 11 null
           for target in BATCHED}
USER_FORMS = st.sampled_from([("wrapped", action) for action in (0, 1, 2)] * 2 + [("bare", None)] * 2
                             + [("bad-action", action) for action in (3, -1, "1", 1.5, None)])
MARKET_FORMS = st.sampled_from([(layout, contract_id) for layout in ["pair"] * 6 + ["lone", "bad-id", "extra"]
                                for contract_id in (MNQ.id, MNQ.id, ES.id, UNKNOWN_ID)])


@st.composite
def push(draw: st.DrawFn, target: str) -> Push:
    if target in BATCHED:
        items = draw(BATCHES[target])
        payload: Any = [None if item is None else item[0] for item in items]
        good = [item[0] for item in items if item is not None and not item[1]]
        bad = sum(1 for item in items if item is not None and item[1])
        if len(items) == 1 and isinstance(payload[0], dict) and draw(st.booleans()):
            payload = payload[0]  # a lone object instead of a batch
    else:
        payload, is_bad = draw(RECORDS[target])
        good, bad = ([] if is_bad else [payload]), int(is_bad)
    if target in codec.USER_EVENT_MODELS:
        form, action = draw(USER_FORMS)
        if form == "bare":
            return Push(_signalr(target, [payload]), target, None, good, bad)
        wrapped = {"action": action, "data": payload}
        if form == "bad-action" and isinstance(payload, dict):
            return Push(_signalr(target, [wrapped]), target, None, [], 1, malformed=True)
        return Push(_signalr(target, [wrapped]), target, None, good, bad)
    layout, contract_id = draw(MARKET_FORMS)
    if layout == "lone":
        return Push(_signalr(target, [payload]), target, None, good, bad)
    if layout == "pair":
        return Push(_signalr(target, [contract_id, payload]), target, contract_id, good, bad)
    arguments = [7, payload] if layout == "bad-id" else [contract_id, payload, {}]
    return Push(_signalr(target, arguments), target, None, [], 1, malformed=True)


PUSHES = {target: push(target) for target in TARGETS}
NOT_SIGNALR = st.sampled_from([
    '[1, 2]', '"text"', "42", "null", "NaN", '{"type": "1"}', '{"type": 42}', "{}", '{"target": "x"}',
    json.dumps({"type": 1, "target": Target.TRADE}), '{"type": 1, "target": 5, "arguments": []}',
    _signalr(Target.QUOTE, {"symbol": "F.US.MNQ"}), '{"type": 3, "invocationId": 9}',
    '{"type": 7, "error": []}', "[" * 100_000 + "]" * 100_000,
    '{"type": 1, "target": "' + Target.TRADE + '", "arguments": [' + "9" * 5000 + "]}"])
HARMLESS = st.sampled_from(['{"type": 6}', '{"type": 3, "invocationId": "999", "result": null}'])
CHOICES = st.sampled_from(["push"] * 5 + ["cut", "not-signalr", "harmless"])


@st.composite
def frame(draw: st.DrawFn, targets: tuple[str, ...]) -> list[Push]:
    """Several records for one hub: mostly pushes of `targets`; some cut short (a proper prefix of a JSON object
    is never JSON) or not SignalR messages at all; some pings or stray completions."""
    pushes: list[Push] = []
    kinds = st.one_of(*(PUSHES[target] for target in targets))
    for _ in range(draw(st.integers(1, 3))):
        item = draw(kinds)
        choice = draw(CHOICES)
        if choice == "cut":
            item = Push(item.text[:draw(st.integers(1, len(item.text) - 1))], frame_bad=True)
        elif choice == "not-signalr":
            item = Push(draw(NOT_SIGNALR), frame_bad=True)
        elif choice == "harmless":
            item = Push(draw(HARMLESS))
        pushes.append(item)
    return pushes


# ------------------------------------------------------------------------------------------------ pipeline


def _context(contract: Contract, *, orderbook: bool) -> InstrumentContext:
    """Real managers as the suite builds them, live at once (no history to load), a TICK counter on the bus."""
    symbol = contract.name
    bus = EventBus(symbol)
    data = RealtimeDataManager(None, contract, bus, symbol=symbol, timeframes=TIMEFRAMES)
    data.release_pushes()
    return InstrumentContext(
        symbol, contract, data, OrderManager(None, contract, bus, account_id=ACCOUNT, symbol=symbol),
        PositionManager(None, contract, bus, account_id=ACCOUNT, symbol=symbol, last_price=lambda: data.last_price),
        bus, OrderBook(contract) if orderbook else None)


class _Settled:
    """Put in the stream after a frame: when the router asks for the next item past it, the frame is applied."""

    def __init__(self) -> None:
        self.done = asyncio.Event()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Pipeline:
    """One realtime client (never connected), its hub links, a Router task and two instruments, on a private loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        config = ProjectXConfig.for_simulator("http://127.0.0.1:9")
        self.realtime = ProjectXRealtimeClient(config, TokenManager(None, "demo", "demo"))
        for link in self.realtime.links.values():
            link._loop = loop  # what start() would set: _receive hands frames to this loop
        self.protocol = RecordByRecordJsonProtocol()
        self.router = Router(Account(ACCOUNT, "PRAC-1001", 50_000.0, True, True, True), EventBus("suite"), lambda: NOW)
        self.contexts = {MNQ.id: _context(MNQ, orderbook=True), ES.id: _context(ES, orderbook=False)}
        self.ticks: Counter[str] = Counter()
        for contract_id, context in self.contexts.items():
            self.router.add(context)
            context.event_bus.on(EventType.TICK, lambda event, cid=contract_id: self.ticks.update([cid]))
        self.task = loop.create_task(self.router.run(self._tapped(self.realtime.stream(USER, MARKET))))

    @staticmethod
    async def _tapped(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item in stream:
            if isinstance(item, _Settled):
                item.done.set()
                continue
            yield item

    def feed(self, hub: str, pushes: list[Push]) -> None:
        """Hand one frame over as signalrcore's receive thread does, and wait until the router applied it."""
        text = "".join(p.text + "\x1e" for p in pushes)
        self.realtime.links[hub]._receive(self.protocol.parse_messages(text))
        self.loop.run_until_complete(self._settle(hub))

    async def _settle(self, hub: str) -> None:
        marker = _Settled()
        self.loop.call_soon(self.realtime._publish, hub, marker)  # after the _drain _receive scheduled
        await marker.done.wait()

    def quote_route(self, p: Push) -> str | None:
        """The contract a quote goes to: its contract id if known here, else the one whose symbolId it names."""
        if p.contract_id in self.contexts:
            return p.contract_id
        by_symbol = {c.instrument_info.symbol_id: cid for cid, c in self.contexts.items()}
        return by_symbol.get(p.good[0]["symbol"])

    async def read(self, pushes: list[Push]) -> None:
        """Read what the frame's pushes changed as a user would (bars of every timeframe after trades, the book after
        depth, orders and positions after user pushes, the price after quotes); any read raising fails the case."""
        routed = [p for p in pushes if p.reaches_router]
        for contract_id, context in self.contexts.items():
            if any(p.target == Target.TRADE and p.contract_id == contract_id for p in routed):
                for timeframe in TIMEFRAMES:
                    await context.data.get_data(timeframe)
            if any(p.target == Target.QUOTE and self.quote_route(p) == contract_id for p in routed):
                await context.data.get_current_price()
            book = context.orderbook
            if book is not None and any(p.target in BATCHED and p.contract_id == contract_id for p in routed):
                book.get_orderbook_snapshot()
                book.get_volume_profile()
                book.get_market_imbalance()
                book.get_trade_flow()
            if any(p.target in codec.USER_EVENT_MODELS for p in routed):
                context.orders.working()
                await context.positions.get_position()
                context.positions.pnl()


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    loop = asyncio.new_event_loop()
    errors = _Errors()
    pxkit_log = logging.getLogger("pxkit")
    level = pxkit_log.level
    pxkit_log.setLevel(logging.ERROR)  # every bad record logs a warning: 10,000 cases of them are noise here
    pxkit_log.addHandler(errors)
    built = Pipeline(loop)
    try:
        yield built
        assert errors.records == [], [r.getMessage() for r in errors.records[:3]]
    finally:
        pxkit_log.removeHandler(errors)
        pxkit_log.setLevel(level)
        built.task.cancel()
        loop.run_until_complete(asyncio.gather(built.task, return_exceptions=True))
        loop.close()


def check(pipeline: Pipeline, hub: str, pushes: list[Push]) -> None:
    """Feed one frame and check every property against the state before it."""
    realtime, router = pipeline.realtime, pipeline.router
    kinds_before, routed_before = realtime.decode_errors_by_kind, Counter(router.stats.counters)
    ticks_before = Counter(pipeline.ticks)
    book = pipeline.contexts[MNQ.id].orderbook
    assert book is not None
    entries_before = book.entries_applied
    quotes_before = {cid: c.data.stats.counters["quotes"] for cid, c in pipeline.contexts.items()}

    pipeline.feed(hub, pushes)

    assert not pipeline.task.done(), "the router task died"
    assert not router.stats.errors, f"routing failed: {dict(router.stats.errors)}"
    expected_kinds = Counter(kinds_before)
    for p in pushes:
        if p.frame_bad:
            expected_kinds[f"{hub}.frame"] += 1
        elif p.bad:
            expected_kinds[f"{hub}.{p.target}"] += p.bad
    assert realtime.decode_errors_by_kind == {k: v for k, v in expected_kinds.items() if v}
    routed = Counter(router.stats.counters) - routed_before
    for target in TARGETS:  # the router counts pushes by message type
        assert routed[codec.TARGET_MESSAGES[target].__name__] == sum(p.reaches_router and p.target == target
                                                                     for p in pushes), target
    for contract_id in pipeline.contexts:
        trades = [p for p in pushes if p.reaches_router and p.target == Target.TRADE and p.contract_id == contract_id]
        assert pipeline.ticks[contract_id] - ticks_before[contract_id] == sum(len(p.good) for p in trades)
        quotes = [p for p in pushes if p.reaches_router and p.target == Target.QUOTE
                  and pipeline.quote_route(p) == contract_id]
        assert pipeline.contexts[contract_id].data.stats.counters["quotes"] - quotes_before[contract_id] == len(quotes)
    depth = [p for p in pushes if p.reaches_router and p.target == Target.DEPTH and p.contract_id == MNQ.id]
    assert book.entries_applied - entries_before == sum(len(p.good) for p in depth)
    pipeline.loop.run_until_complete(pipeline.read(pushes))


# ------------------------------------------------------------------------------------------------ the suite


@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", [Target.QUOTE, Target.TRADE, Target.DEPTH])
def test_market_pushes_of_one_kind(pipeline: Pipeline, target: str) -> None:
    @FUZZ
    @given(frame((target,)))
    def case(pushes: list[Push]) -> None:
        check(pipeline, MARKET, pushes)

    case()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", sorted(codec.USER_EVENT_MODELS))
def test_user_pushes_of_one_kind_wrapped_and_bare(pipeline: Pipeline, target: str) -> None:
    @FUZZ
    @given(frame((target,)))
    def case(pushes: list[Push]) -> None:
        check(pipeline, USER, pushes)

    case()


@pytest.mark.timeout(300)
def test_the_router_under_frames_of_every_kind_on_both_hubs(pipeline: Pipeline) -> None:
    user = tuple(t for t in TARGETS if t in codec.USER_EVENT_MODELS)
    market = tuple(t for t in TARGETS if t not in codec.USER_EVENT_MODELS)

    @FUZZ
    @given(st.one_of(frame(market).map(lambda pushes: (MARKET, pushes)),
                     frame(user).map(lambda pushes: (USER, pushes))))
    def case(hub_and_pushes: tuple[str, list[Push]]) -> None:
        check(pipeline, *hub_and_pushes)

    case()
