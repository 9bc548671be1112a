"""Codec tests pinned to the gateway payloads quoted in PROTOCOL.md (fixtures/protocol_examples.json)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pxkit import codec, models, times
from pxkit.enums import DomType, OrderSide, OrderStatus, OrderType, PositionType, TradeType, UserAction
from pxkit.errors import ProtocolError
from pxkit.messages import AccountPushed, DepthPushed, OrderPushed, QuotePushed, TradesPushed

FX = json.loads((Path(__file__).parent / "fixtures" / "protocol_examples.json").read_text())
TS_KEYS = {"t", "creationTimestamp", "updateTimestamp", "timestamp", "lastUpdated"}
DOCUMENTED = {  # the documented wire field set of each entity (PROTOCOL.md §2, §3.3)
    models.Account: {"id", "name", "balance", "canTrade", "isVisible", "simulated"},
    models.Contract: {"id", "name", "description", "tickSize", "tickValue", "activeContract", "symbolId"},
    models.Bar: {"t", "o", "h", "l", "c", "v"},
    models.Order: {"id", "accountId", "contractId", "symbolId", "creationTimestamp", "updateTimestamp",
                   "status", "type", "side", "size", "limitPrice", "stopPrice", "fillVolume", "filledPrice",
                   "customTag"},
    models.Position: {"id", "accountId", "contractId", "creationTimestamp", "type", "size", "averagePrice"},
    models.Trade: {"id", "accountId", "contractId", "creationTimestamp", "price", "profitAndLoss", "fees",
                   "side", "size", "voided", "orderId"},
    models.Quote: {"symbol", "symbolName", "lastPrice", "bestBid", "bestAsk", "change", "changePercent",
                   "open", "high", "low", "volume", "lastUpdated", "timestamp"},
    models.MarketTrade: {"symbolId", "price", "timestamp", "type", "volume"},
    models.DepthEntry: {"timestamp", "type", "price", "volume", "currentVolume"},
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def assert_exact(actual: object, expected: object) -> None:
    """Equal values *and* equal types per field (enums are enums, numbers floats, datetimes UTC-aware)."""
    assert actual == expected
    for field in dataclasses.fields(expected):
        got, want = getattr(actual, field.name), getattr(expected, field.name)
        assert type(got) is type(want), field.name
        if dataclasses.is_dataclass(want):
            assert_exact(got, want)
        elif isinstance(got, datetime):
            assert got.utcoffset() == timedelta(0), field.name


def assert_same_json(original: dict, encoded: dict, cls: type) -> None:
    """`encoded` carries exactly the documented keys and means what `original` means (absent == null)."""
    assert all(type(v) in (int, float, str, bool, type(None)) for v in encoded.values())  # plain JSON values
    assert set(encoded) == DOCUMENTED[cls]
    for key, value in encoded.items():
        src = original.get(key)
        if src is None:
            assert value is None, key
        elif key in TS_KEYS:
            assert times.parse_ts(value) == times.parse_ts(src), key
        elif isinstance(src, bool | str):
            assert type(value) is type(src) and value == src, key
        else:
            assert not isinstance(value, bool) and float(value) == float(src), key


# --------------------------------------------------------------------------- REST responses

ORDER_TS = utc(2025, 7, 18, 21, 0, 1, 268009)
ACCOUNT = models.Account(18667281, "PRAC-V2-93360-47923526", 150256.61, True, True, True)
ENQ = models.Contract("CON.F.US.ENQ.H25", "ENQH25", "E-mini NASDAQ-100: March 2025", 0.25, 5.0, True,
                      "F.US.ENQ")
MNQ_OLD = models.Contract("CON.F.US.MNQ.H25", "MNQH25", "Micro E-mini Nasdaq-100: March 2025", 0.25, 0.5,
                          True)  # old docs: no symbolId
CLOSING_FILL = models.Trade(8604, 203, "CON.F.US.EP.H25", utc(2025, 1, 21, 16, 13, 52, 523293), 6065.25, 1.4,
                            OrderSide.SELL, 1, 14328, profit_and_loss=50.0, voided=False)
OPENING_FILL = models.Trade(8603, 203, "CON.F.US.EP.H25", utc(2025, 1, 21, 16, 13, 4, 142302), 6064.25, 1.4,
                            OrderSide.BUY, 1, 14326, profit_and_loss=None, voided=False)
POSITION = models.Position(6124, 536, "CON.F.US.GMET.J25", utc(2025, 4, 21, 19, 52, 32, 175721),
                           PositionType.LONG, 2, 1575.75)
REST_CASES = [
    ("account_search_response", "accounts", models.Account, [ACCOUNT]),
    ("contract_search_response", "contracts", models.Contract, [ENQ, MNQ_OLD]),
    ("bars_response", "bars", models.Bar, [  # newest first, as sent
        models.Bar(utc(2024, 12, 20, 14), 2208.1, 2217.0, 2206.7, 2210.1, 87),
        models.Bar(utc(2024, 12, 20, 13), 2195.8, 2215.0, 2192.9, 2209.8, 536)]),
    ("orders_response", "orders", models.Order, [
        models.Order(36598, 704, "CON.F.US.EP.U25", ORDER_TS, OrderStatus.FILLED, OrderType.MARKET,
                     OrderSide.BUY, 1, symbol_id="F.US.EP", update_timestamp=ORDER_TS, fill_volume=1,
                     filled_price=6335.25)]),
    ("positions_response", "positions", models.Position, [POSITION]),
    ("trades_response", "trades", models.Trade, [CLOSING_FILL, OPENING_FILL]),
]


@pytest.mark.parametrize(("name", "key", "cls", "expected"), REST_CASES, ids=[c[0] for c in REST_CASES])
def test_rest_response_decodes_and_reencodes(name, key, cls, expected):
    body = FX[name]
    decoded = codec.decode_list(cls, body, key)
    assert len(decoded) == len(expected)
    for got, want, raw in zip(decoded, expected, body[key], strict=True):
        assert_exact(got, want)
        assert_same_json(raw, codec.to_wire(got), cls)
    assert codec.decode_list(cls, [None, *body[key]], key) == decoded  # bare list (as the SDK allows), nulls


# --------------------------------------------------------------------------- timestamps

INSTANT = utc(2025, 4, 21, 19, 45, 52, 105808)
WHOLE = utc(2026, 2, 22, 23, 40, 39)


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-04-21T19:45:52.105808+00:00", INSTANT),                           # 6 digits, +00:00
    ("2026-02-26T09:46:21.295+00:00", utc(2026, 2, 26, 9, 46, 21, 295000)),  # 3 digits
    ("2026-02-22T23:40:39Z", WHOLE),                                         # Z, whole seconds
    ("2026-02-22T23:40:39+00:00", WHOLE),                                    # whole seconds, +00:00
    ("2026-02-22T23:40:39", WHOLE),                                          # naive -> UTC
    ("2025-04-21T19:45:52.1058080+00:00", INSTANT),                          # .NET 7 digits
    ("2025-04-21T19:45:52.105808099Z", INSTANT),                             # 9 digits
    ("2025-04-21T19:45:52.1058080", INSTANT),
    ("2025-04-21T21:45:52.105808+02:00", INSTANT),                           # other offsets -> UTC
])
def test_parse_ts_shapes(text, expected):
    parsed = times.parse_ts(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("value", "style", "text", "back"), [
    (INSTANT, "offset", "2025-04-21T19:45:52.105808+00:00", INSTANT),
    (INSTANT, "z", "2025-04-21T19:45:52.105808Z", INSTANT),
    (INSTANT, "naive", "2025-04-21T19:45:52.105808", INSTANT),
    (INSTANT, "millis", "2025-04-21T19:45:52.105+00:00", INSTANT.replace(microsecond=105000)),  # truncates
    (WHOLE, "z", "2026-02-22T23:40:39Z", WHOLE),
    (WHOLE, "offset", "2026-02-22T23:40:39.000000+00:00", WHOLE),  # the gateway's shape: always 6 digits
    (INSTANT.astimezone(timezone(timedelta(hours=2))), "offset", "2025-04-21T19:45:52.105808+00:00", INSTANT),
    (INSTANT.replace(tzinfo=None), "z", "2025-04-21T19:45:52.105808Z", INSTANT),  # naive input = UTC
])
def test_format_ts_styles_round_trip(value, style, text, back):
    assert times.format_ts(value, style) == text
    assert times.parse_ts(text) == back


@pytest.mark.parametrize("bad", ["", "garbage", "2025-13-01T00:00:00Z", "21/04/2025 19:45", 1745264752, None])
def test_parse_ts_rejects_garbage(bad):
    with pytest.raises(ProtocolError):
        times.parse_ts(bad)


def test_bad_timestamp_in_entity_names_the_field():
    position = {**FX["positions_response"]["positions"][0], "creationTimestamp": "garbage"}
    with pytest.raises(ProtocolError, match="creationTimestamp"):
        codec.from_wire(models.Position, position)


# --------------------------------------------------------------------------- Contract/searchById

ENQ_RAW = FX["contract_search_response"]["contracts"][0]


@pytest.mark.parametrize(("body", "expected"), [
    (codec.envelope(contract=ENQ_RAW), ENQ),
    (codec.envelope(contracts=[ENQ_RAW]), ENQ),  # old docs
    ({"contract": None, "success": False, "errorCode": 1, "errorMessage": None}, None),
    (codec.envelope(contracts=[]), None),
], ids=["contract", "contracts", "not-found", "empty-list"])
def test_contract_by_id(body, expected):
    assert codec.decode_contract_by_id(body) == expected


def test_contract_by_id_malformed_contracts_is_protocol_error():
    with pytest.raises(ProtocolError):
        codec.decode_contract_by_id({"contracts": ENQ_RAW})
    with pytest.raises(ProtocolError, match="neither"):
        codec.decode_contract_by_id(codec.envelope())


@pytest.mark.parametrize("body", [codec.envelope(), codec.envelope(orders=None), {"success": True}],
                         ids=["no-key", "null", "bare-envelope"])
def test_an_answer_without_its_list_is_a_protocol_error_not_an_empty_list(body):
    with pytest.raises(ProtocolError, match="no 'orders' list"):
        codec.decode_list(models.Order, body, "orders")


# --------------------------------------------------------------------------- user hub

USER_TS = utc(2026, 2, 22, 23, 54, 35)
USER_ORDER = models.Order(2499804656, 18667281, "CON.F.US.MNQ.H26", USER_TS, OrderStatus.FILLED,
                          OrderType.MARKET, OrderSide.BUY, 1, symbol_id="F.US.MNQ", update_timestamp=USER_TS,
                          fill_volume=1, filled_price=24958.5, custom_tag="e9733a88-...")


@pytest.mark.parametrize(("name", "cls", "expected"), [("user_account_event", models.Account, ACCOUNT),
                                                       ("user_order_event", models.Order, USER_ORDER)])
def test_user_event_round_trip(name, cls, expected):
    event = FX[name]
    action, obj = codec.unwrap_user_event(cls, [event])  # the arguments list as it comes off the hub
    assert action is UserAction.UPDATED
    assert_exact(obj, expected)
    wrapped = codec.wrap_user_event(UserAction.UPDATED, obj)
    assert set(wrapped) == {"action", "data"} and type(wrapped["action"]) is int and wrapped["action"] == 1
    assert_same_json(event["data"], wrapped["data"], cls)
    if cls is models.Account:  # the example carries every documented key, so it comes back identical
        assert wrapped == event


@pytest.mark.parametrize(("shape", "action"), [
    (lambda e: [e], UserAction.UPDATED),
    (lambda e: [{**e, "action": 0}], UserAction.CREATED),
    (lambda e: {**e, "action": 2}, UserAction.DELETED),
    (lambda e: e["data"], UserAction.UPDATED),    # bare: defaults to UPDATED
    (lambda e: [e["data"]], UserAction.UPDATED),  # bare inside the arguments list
], ids=["wrapped-in-list", "created", "wrapped-dict", "bare", "bare-in-list"])
def test_unwrap_user_event_shapes(shape, action):
    assert codec.unwrap_user_event(models.Order, shape(FX["user_order_event"])) == (action, USER_ORDER)


_OPENING_RAW, _POSITION_RAW = FX["trades_response"]["trades"][1], FX["positions_response"]["positions"][0]


@pytest.mark.parametrize(("cls", "event", "expected"), [
    (models.Trade, {"action": 0, "data": {k: v for k, v in _OPENING_RAW.items() if k != "profitAndLoss"}},
     (UserAction.CREATED, OPENING_FILL)),  # live opening fill omits profitAndLoss entirely
    (models.Position, {"action": 2, "data": {**_POSITION_RAW, "size": 0}},
     (UserAction.DELETED, dataclasses.replace(POSITION, size=0))),  # position closed
    (models.Position, {"action": 1, "data": {**_POSITION_RAW, "size": 0, "type": 0}},
     (UserAction.UPDATED, dataclasses.replace(POSITION, size=0, type=PositionType.UNDEFINED))),
], ids=["trade-without-pnl", "position-close", "position-close-type-0"])
def test_user_event_quirks(cls, event, expected):
    action, obj = codec.unwrap_user_event(cls, [event])
    assert action is expected[0]
    assert_exact(obj, expected[1])


@pytest.mark.parametrize("payload", [[], [{"action": 7, "data": {}}], [{"action": "1", "data": {}}]])
def test_malformed_user_event(payload):
    with pytest.raises(ProtocolError):
        codec.unwrap_user_event(models.Order, payload)


# --------------------------------------------------------------------------- market hub

QUOTE = models.Quote("F.US.ENQ", "/NQ", 24964.5, 24964.25, 24965.75, -103.0, -0.0041, 25033.75, 25059.75,
                     24956.5, 7640.0, WHOLE, utc(2026, 2, 22, 20, 53, 40))
DEPTH_TS = utc(2026, 2, 26, 9, 46, 21, 295000)
MARKET_CASES = [
    ("gateway_trade_args", models.MarketTrade, "CON.F.US.EP.U25",
     [models.MarketTrade("F.US.EP", 6400.25, utc(2025, 8, 5, 19, 0, 1, 123000), TradeType.BUY, 2.0)]),
    ("gateway_depth_args", models.DepthEntry, "CON.F.US.ENQ.H26",
     [models.DepthEntry(DEPTH_TS, DomType.TRADE, 25310.0, 408.0, 0),
      models.DepthEntry(DEPTH_TS, DomType.BEST_ASK, 25310.25, 12.0, 12)]),
]


def test_quote_event():
    args = FX["gateway_quote_args"]
    contract_id, payload = codec.split_market_event(args)
    assert contract_id == "CON.F.US.ENQ.H26" and codec.market_event_args(contract_id, payload) == args
    quote = codec.from_wire(models.Quote, payload)
    assert_exact(quote, QUOTE)
    assert_same_json(payload, codec.to_wire(quote), models.Quote)


@pytest.mark.parametrize(("name", "cls", "contract_id", "expected"), MARKET_CASES, ids=["trade", "depth"])
def test_record_events(name, cls, contract_id, expected):
    cid, records = codec.split_market_event(FX[name])
    assert cid == contract_id
    for got, want, raw in zip(codec.decode_records(cls, records), expected, records, strict=True):
        assert_exact(got, want)
        assert_same_json(raw, codec.to_wire(got), cls)
    assert codec.decode_records(cls, records[0]) == expected[:1]  # one object instead of a batch
    assert codec.decode_records(cls, [None, *records, None]) == expected  # null records skipped
    assert codec.decode_records(cls, None) == []
    assert codec.split_market_event([records[0]]) == (None, records[0])  # lone payload, no contract id


def test_record_enums():
    sell = {**FX["gateway_trade_args"][1][0], "type": 1}
    assert codec.decode_records(models.MarketTrade, [sell])[0].type is TradeType.SELL
    reset = {"price": 0, "volume": 0, "type": 6, "timestamp": "2026-02-26T09:46:21.295+00:00"}
    [entry] = codec.decode_records(models.DepthEntry, reset)
    assert_exact(entry, models.DepthEntry(DEPTH_TS, DomType.RESET, 0.0, 0.0, 0))  # currentVolume absent -> 0
    with pytest.raises(ProtocolError, match="'type'"):
        codec.decode_records(models.DepthEntry, {**reset, "type": 12})


def test_a_batch_keeps_its_good_records_around_a_bad_one():
    good = FX["gateway_trade_args"][1][0]
    batch = [{**good, "price": 6400.0 + i * 0.25} for i in range(50)]
    batch[17] = {**batch[17], "type": 5}  # no such aggressor side
    errors: list[ProtocolError] = []
    trades = codec.decode_records(models.MarketTrade, batch, errors.append)
    assert [t.price for t in trades] == [r["price"] for i, r in enumerate(batch) if i != 17]
    [error] = errors
    assert isinstance(error, ProtocolError) and "record 17" in str(error) and "'type'" in str(error)
    with pytest.raises(ProtocolError, match="'type'"):  # without a handler the batch is all or nothing
        codec.decode_records(models.MarketTrade, batch)


@pytest.mark.parametrize("args", [[1, {}], [None, {}], ["CON.F.US.EP.H26", {}, {}], [], "CON.F.US.EP.H26", 7, None])
def test_malformed_market_arguments_are_a_protocol_error(args):
    with pytest.raises(ProtocolError, match="market event"):
        codec.split_market_event(args)


# --------------------------------------------------------------------------- hub pushes -> messages


def test_every_target_decodes_into_its_message():
    trades = codec.decode_push(codec.Target.TRADE, FX["gateway_trade_args"], 12.5)
    assert trades == TradesPushed("CON.F.US.EP.U25", tuple(MARKET_CASES[0][3]), 12.5)
    depth = codec.decode_push(codec.Target.DEPTH, FX["gateway_depth_args"], 12.5)
    assert depth == DepthPushed("CON.F.US.ENQ.H26", tuple(MARKET_CASES[1][3]), 12.5)
    quote = codec.decode_push(codec.Target.QUOTE, FX["gateway_quote_args"], 12.5)
    assert quote == QuotePushed("CON.F.US.ENQ.H26", QUOTE, 12.5)
    order = codec.decode_push(codec.Target.USER_ORDER, [{**FX["user_order_event"], "action": 0}], 12.5)
    assert order == OrderPushed(USER_ORDER, UserAction.CREATED, 12.5)
    account = codec.decode_push(codec.Target.USER_ACCOUNT, [FX["user_account_event"]], 12.5)
    assert account == AccountPushed(ACCOUNT, UserAction.UPDATED, 12.5)
    assert set(codec.TARGET_MESSAGES) == set(codec.Target) == codec.MARKET_TARGETS | codec.USER_TARGETS
    assert {type(m) for m in (trades, depth, quote, order, account)} <= set(codec.TARGET_MESSAGES.values())


def test_a_batch_push_hands_its_bad_records_over_and_keeps_the_others():
    good = FX["gateway_trade_args"][1][0]
    errors: list[ProtocolError] = []
    pushed = codec.decode_push(codec.Target.TRADE, ["CON.F.US.EP.U25", [good, {**good, "type": 9}, None, good]], 1.0,
                               errors.append)
    assert len(pushed.trades) == 2 and [str(e)[:8] for e in errors] == ["record 1"]
    with pytest.raises(ProtocolError, match="unknown hub target 'GatewayNews'"):
        codec.decode_push("GatewayNews", ["CON.F.US.EP.U25", {}], 1.0)
    with pytest.raises(ProtocolError, match="market event"):
        codec.decode_push(codec.Target.QUOTE, [7, FX["gateway_quote_args"][1]], 1.0)


INLINE_DECODERS = [(codec.decode_trade, models.MarketTrade, FX["gateway_trade_args"][1][0]),
                   (codec.decode_depth_entry, models.DepthEntry, FX["gateway_depth_args"][1][1]),
                   (codec.decode_quote, models.Quote, FX["gateway_quote_args"][1])]
ODD_VALUES = [None, True, False, 0, -0.0, 3, 2.0, 1.5, 2**53, 2**53 + 1, 1e12, 1e13, float("nan"), float("inf"), "1.5",
              "", "F.US.EP", [], {}, 10**400, "2026-03-02T14:30:00Z", "2026-03-02T14:30:00.1234567+00:00",
              " 2026-03-02T14:30:00 ", "2026-03-02T14:30:00+05:00", "9999-12-31T23:59:59-05:00", "soon"]


def _outcome(decode, item):
    try:
        return decode(item)
    except ProtocolError as exc:
        return f"ProtocolError: {exc}"


@pytest.mark.parametrize(("decode", "cls", "raw"), INLINE_DECODERS, ids=["trade", "depth", "quote"])
def test_the_inline_market_decoders_give_exactly_what_the_schema_decoder_gives(decode, cls, raw):
    """Every field set to every odd value, or removed, and records that are not objects: the same model with the
    same types, or the same error."""
    items = [raw, None, [], "x", 7, {**raw, "someFutureKey": 1}]
    items += [{k: v for k, v in raw.items() if k != key} for key in raw]
    items += [{**raw, key: value} for key in codec.wire_fields(cls) for value in ODD_VALUES]
    for item in items:
        inline, schema = _outcome(decode, item), _outcome(lambda i: codec.from_wire(cls, i), item)
        assert inline == schema, item
        if not isinstance(schema, str):
            assert_exact(inline, schema)


def test_partial_quote():
    raw = {"symbol": "F.US.EP", "bestBid": 6400.25}
    quote = codec.from_wire(models.Quote, raw)
    assert_exact(quote, models.Quote("F.US.EP", best_bid=6400.25))  # every other field None
    assert codec.to_wire(quote, omit_none=True) == raw
    assert_same_json(raw, codec.to_wire(quote), models.Quote)
    with pytest.raises(ProtocolError, match="'symbol'"):
        codec.from_wire(models.Quote, {"bestBid": 6400.25})


# --------------------------------------------------------------------------- request bodies

SDK_ORDER = FX["sdk_place_order_payload"]


@pytest.mark.parametrize(("extra", "fields"), [
    ({}, {}),  # the SDK payload as sent, null keys included
    ({"linkedOrderId": 555}, {"linked_order_id": 555}),
    ({"size": 1.0}, {}),  # an integral JSON number is an int
    ({"stopLossBracket": {"ticks": -10, "type": 4}, "takeProfitBracket": {"ticks": 20, "type": 1}},
     {"stop_loss_bracket": models.BracketSpec(-10, OrderType.STOP),
      "take_profit_bracket": models.BracketSpec(20, OrderType.LIMIT)}),
], ids=["sdk", "linked", "integral-float", "brackets"])
def test_place_order_request(extra, fields):
    body = {**SDK_ORDER, **extra}
    request = codec.from_wire(models.PlaceOrderRequest, body)
    assert_exact(request, models.PlaceOrderRequest(123, "CON.F.US.MNQ.Z25", OrderType.LIMIT, OrderSide.BUY, 1,
                                                   limit_price=21000.25, custom_tag="my_tag", **fields))
    assert codec.to_wire(request, omit_none=True) == {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(("cls", "body", "field"), [
    (models.PlaceOrderRequest, {**SDK_ORDER, "size": "1"}, "size"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "accountId": True}, "accountId"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "size": 1.5}, "size"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "limitPrice": "21000.25"}, "limitPrice"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "customTag": 7}, "customTag"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "type": 99}, "type"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "side": 2}, "side"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "contractId": None}, "contractId"),
    (models.PlaceOrderRequest, {**SDK_ORDER, "stopLossBracket": {"ticks": "-10", "type": 4}}, "ticks"),
    (models.AccountSearchRequest, {"onlyActiveAccounts": 1}, "onlyActiveAccounts"),
    (models.Order, {**FX["orders_response"]["orders"][0], "status": 9}, "status"),
])
def test_bad_values_raise_protocol_error_naming_the_field(cls, body, field):
    with pytest.raises(ProtocolError, match=f"'{field}'"):
        codec.from_wire(cls, body)


# --------------------------------------------------------------------------- numbers and times no gateway means

TRADE_RAW = FX["gateway_trade_args"][1][0]
ORDER_RAW = FX["orders_response"]["orders"][0]


UNMEANT = [
    (models.MarketTrade, TRADE_RAW, "price", 1e300),
    (models.MarketTrade, TRADE_RAW, "price", -1.7e308),
    (models.MarketTrade, TRADE_RAW, "price", 10**400),  # a JSON integer of 401 digits: no float can hold it
    (models.MarketTrade, TRADE_RAW, "volume", 1e21),
    (models.MarketTrade, TRADE_RAW, "volume", float("nan")),
    (models.MarketTrade, TRADE_RAW, "price", float("inf")),
    (models.MarketTrade, TRADE_RAW, "type", 10**30),
    (models.Order, ORDER_RAW, "id", 2**53 + 1),
    (models.Order, ORDER_RAW, "size", 1e300),  # a float that is a whole number, far beyond any size
    (models.Order, ORDER_RAW, "limitPrice", 2e12),
]


@pytest.mark.parametrize(("cls", "raw", "field", "value"), UNMEANT, ids=[f"{f}={v!r:.10}" for _, _, f, v in UNMEANT])
def test_numbers_the_gateway_cannot_mean_are_protocol_errors(cls, raw, field, value):
    with pytest.raises(ProtocolError, match=f"'{field}'"):
        codec.from_wire(cls, {**raw, field: value})


def test_the_largest_numbers_a_gateway_may_send_still_decode():
    order = codec.from_wire(models.Order, {**ORDER_RAW, "id": 2**53, "limitPrice": 1e12, "size": -(2**53)})
    assert (order.id, order.limit_price, order.size) == (2**53, 1e12, -(2**53))


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_timestamps_beyond_the_calendar_in_utc_are_protocol_errors(text):
    with pytest.raises(ProtocolError, match="out of range"):
        times.parse_ts(text)
    with pytest.raises(ProtocolError, match="'timestamp'"):
        codec.from_wire(models.MarketTrade, {**TRADE_RAW, "timestamp": text})


# --------------------------------------------------------------------------- tolerance and secrets

EXTRA = {"parentOrderId": 1, "trailPrice": 2.5, "someFutureKey": {"nested": [1]}}
ENTITY_RAWS = [(cls, FX[name][key][0]) for name, key, cls, _ in REST_CASES] + [
    (models.Quote, FX["gateway_quote_args"][1]), *[(cls, FX[name][1][0]) for name, cls, *_ in MARKET_CASES]]


@pytest.mark.parametrize(("cls", "raw"), ENTITY_RAWS, ids=[cls.__name__ for cls, _ in ENTITY_RAWS])
def test_unknown_keys_are_ignored(cls, raw):
    assert codec.from_wire(cls, {**raw, **EXTRA}) == codec.from_wire(cls, raw)


@pytest.mark.parametrize(("cls", "body", "secrets"), [
    (models.LoginKeyRequest, {"userName": "trader1", "apiKey": "s3cr3t-api-key"}, ["s3cr3t-api-key"]),
    (models.LoginAppRequest, {"userName": "trader1", "password": "pa55word", "deviceId": "dev",
                              "appId": "app", "verifyKey": "v3rify-key"}, ["pa55word", "v3rify-key"]),
])
def test_login_repr_hides_secrets(cls, body, secrets):
    request = codec.from_wire(cls, body)
    assert "trader1" in repr(request)
    assert not any(secret in text for secret in secrets for text in (repr(request), str(request)))
