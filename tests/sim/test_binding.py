"""Request binding of the simulated gateway over a real socket, as ASP.NET Core's web defaults bind requests.

Names match case-insensitively, numbers may come as strings, an out-of-range enum reaches the endpoint's own
check (HTTP 200, its errorCode), wrong kinds and missing fields are 400 problems, non-JSON bodies 415.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import ACCOUNT, MNQ
from pxkit.sim import Limit, SimConfig, SimServer

PLACE, BARS, SEARCH = "/api/Order/place", "/api/History/retrieveBars", "/api/Contract/search"
SINCE = "2026-03-01T00:00:00Z"
FAR_BID = 15000.25  # a buy limit far below MNQ (~20,200): it rests


def bars_body(**over: Any) -> dict[str, Any]:
    return {"contractId": MNQ, "live": False, "startTime": "2026-03-02T13:00:00Z", "endTime": "2026-03-02T15:00:00Z",
            "unit": 2, "unitNumber": 1, "limit": 5, "includePartialBar": True, **over}


def limit_buy(**over: Any) -> dict[str, Any]:
    return {"accountId": ACCOUNT, "contractId": MNQ, "type": 1, "side": 0, "size": 1, "limitPrice": FAR_BID, **over}


async def answer(rest: httpx.AsyncClient, path: str, body: Any) -> dict[str, Any]:
    r = await rest.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def problem(rest: httpx.AsyncClient, path: str, body: Any) -> dict[str, list[str]]:
    """POST, expect a 400 problem-details body; return its errors."""
    r = await rest.post(path, json=body)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json"), r.text
    details = r.json()
    assert details["status"] == 400 and details["title"] == "One or more validation errors occurred."
    return details["errors"]


async def orders(rest: httpx.AsyncClient) -> list[dict[str, Any]]:
    return (await answer(rest, "/api/Order/search", {"accountId": ACCOUNT, "startTimestamp": SINCE}))["orders"]


# ---------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("spell", [str.upper, str.lower, lambda name: name[0].upper() + name[1:]],
                         ids=["upper", "lower", "pascal"])
async def test_property_names_match_case_insensitively(rest: httpx.AsyncClient, spell) -> None:
    exact = await answer(rest, BARS, bars_body())
    assert exact["success"] and len(exact["bars"]) == 5
    assert await answer(rest, BARS, {spell(k): v for k, v in bars_body().items()}) == exact
    placed = await answer(rest, PLACE, {spell(k): v for k, v in limit_buy(customTag=spell("tag")).items()})
    assert placed["success"], placed
    [order] = await orders(rest)
    assert (order["id"], order["limitPrice"], order["customTag"]) == (placed["orderId"], FAR_BID, spell("tag"))


async def test_the_last_of_several_spellings_wins(rest: httpx.AsyncClient) -> None:
    body = {**bars_body(limit=5), "LIMIT": 3}
    assert len((await answer(rest, BARS, body))["bars"]) == 3


# ---------------------------------------------------------------------------------------------- numbers as strings
async def test_numbers_bind_from_json_strings(rest: httpx.AsyncClient) -> None:
    placed = await answer(rest, PLACE, limit_buy(accountId=str(ACCOUNT), size="2", limitPrice=str(FAR_BID)))
    assert placed["success"], placed
    [order] = await orders(rest)
    assert (order["accountId"], order["size"], order["limitPrice"]) == (ACCOUNT, 2, FAR_BID)
    assert len((await answer(rest, BARS, bars_body(limit="4", unitNumber="1")))["bars"]) == 4


@pytest.mark.parametrize(("path", "body", "where"), [
    (PLACE, limit_buy(size="2.5"), "$.size"),  # a number, but not an integer
    (PLACE, limit_buy(size=" 2"), "$.size"),
    (PLACE, limit_buy(limitPrice="NaN"), "$.limitPrice"),
    (PLACE, limit_buy(type="1"), "$.type"),  # enums are not read from strings
    (BARS, bars_body(unit="2"), "$.unit"),
    (BARS, bars_body(live="false"), "$.live"),  # "true"/"false" are strings, not booleans
    (BARS, bars_body(includePartialBar=1), "$.includePartialBar"),  # nor are numbers
    (PLACE, limit_buy(accountId=True), "$.accountId"),  # booleans are not numbers
], ids=["fraction-for-int", "blank", "nan", "enum-as-string", "unit-as-string", "bool-as-string", "int-for-bool",
        "bool-for-int"])
async def test_what_a_number_or_boolean_string_does_not_bind_to(rest: httpx.AsyncClient, path: str,
                                                                body: dict[str, Any], where: str) -> None:
    assert list(await problem(rest, path, body)) == [where]
    assert await orders(rest) == []


# ---------------------------------------------------------------------------------------------- enums out of range
@pytest.mark.parametrize("unit", [7, 9, -1, 0])
async def test_an_out_of_range_bar_unit_is_unit_invalid(rest: httpx.AsyncClient, unit: int) -> None:
    body = await answer(rest, BARS, bars_body(unit=unit))
    assert (body["success"], body["errorCode"], body["bars"]) == (False, 2, None)
    assert isinstance(body["errorMessage"], str)


@pytest.mark.parametrize("over", [
    {"type": 9}, {"type": 0}, {"type": 3}, {"side": 5}, {"side": -1},
    {"stopLossBracket": {"ticks": -10, "type": 9}},
], ids=["type-9", "type-unknown", "type-stop-limit", "side-5", "side-minus-1", "bracket-type-9"])
async def test_an_unplaceable_type_or_side_is_order_rejected(rest: httpx.AsyncClient, over: dict[str, Any]) -> None:
    body = await answer(rest, PLACE, limit_buy(**over))
    assert (body["success"], body["errorCode"], body["orderId"]) == (False, 2, None)
    assert isinstance(body["errorMessage"], str)
    assert await orders(rest) == []


async def test_an_enum_beyond_int32_does_not_bind(rest: httpx.AsyncClient) -> None:
    assert list(await problem(rest, PLACE, limit_buy(type=2**31))) == ["$.type"]


# ---------------------------------------------------------------------------------------------- wrong kinds, missing
@pytest.mark.parametrize(("path", "body", "where"), [
    (PLACE, limit_buy(accountId="abc"), "$.accountId"),
    (PLACE, limit_buy(contractId={"id": MNQ}), "$.contractId"),
    (PLACE, limit_buy(size=1.5), "$.size"),
    (PLACE, limit_buy(size=2.0), "$.size"),  # System.Text.Json reads an Int32 only from an integer literal
    (PLACE, limit_buy(customTag=7), "$.customTag"),
    (PLACE, limit_buy(stopLossBracket={"ticks": "ten", "type": 4}), "$.stopLossBracket.ticks"),
    (PLACE, limit_buy(stopLossBracket=[-10, 4]), "$.stopLossBracket"),
    (BARS, bars_body(startTime="yesterday"), "$.startTime"),
    (BARS, bars_body(startTime=1772456400), "$.startTime"),
    (PLACE, limit_buy(SIZE="x"), "$.size"),  # the path names the property, however it was spelt
], ids=["text-for-int", "object-for-string", "fraction-for-int", "float-for-int", "int-for-string",
        "nested", "array-for-object", "bad-date", "number-for-date", "case-variant"])
async def test_a_value_of_the_wrong_kind_is_a_400_keyed_by_its_json_path(rest: httpx.AsyncClient, path: str,
                                                                         body: dict[str, Any], where: str) -> None:
    errors = await problem(rest, path, body)
    assert list(errors) == [where] and where in errors[where][0]
    assert await orders(rest) == []


async def test_the_first_bad_value_in_the_document_is_the_one_reported(rest: httpx.AsyncClient) -> None:
    errors = await problem(rest, PLACE, {"size": "y", "accountId": "z", "contractId": MNQ})
    assert list(errors) == ["$.size"]  # System.Text.Json stops at the first value it cannot read


async def test_every_missing_required_field_is_reported_however_the_others_are_spelt(rest: httpx.AsyncClient) -> None:
    errors = await problem(rest, PLACE, {"ACCOUNTID": ACCOUNT, "contractid": MNQ, "side": None,
                                         "stopLossBracket": {"type": 4}})
    assert errors == {name: [f"The {name} field is required."]
                      for name in ("stopLossBracket.ticks", "type", "side", "size")}


# ---------------------------------------------------------------------------------------------- body formats
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_a_body_that_is_not_json_is_415(rest: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = await rest.post(PLACE, content=b'{"accountId": 1001}', headers=headers)
    assert r.status_code == 415 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 415
    assert await orders(rest) == []


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/json", "application/problem+json",
                                          "Application/JSON"])
async def test_every_json_media_type_binds(rest: httpx.AsyncClient, content_type: str) -> None:
    r = await rest.post(SEARCH, content=b'{"live": false, "searchText": "MNQ"}',
                        headers={"Content-Type": content_type})
    assert r.status_code == 200 and r.json()["contracts"]


@pytest.mark.parametrize("raw", [b"{", b'{"live": false,}', b'{"live": NaN}', b"\xff\xfe", b"   "],
                         ids=["truncated", "trailing-comma", "nan", "not-utf8", "blank"])
async def test_malformed_json_with_a_json_content_type_is_400(rest: httpx.AsyncClient, raw: bytes) -> None:
    r = await rest.post(SEARCH, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and list(r.json()["errors"]) == ["$"]


@pytest.mark.parametrize("path", ["/api/Auth/validate", "/api/Auth/logout"])
async def test_bodyless_routes_need_neither_a_body_nor_a_content_type(rest: httpx.AsyncClient, path: str) -> None:
    r = await rest.post(path)
    assert r.status_code == 200 and r.json()["success"] is True


# ---------------------------------------------------------------------------------------------- required per Swagger
async def test_contract_search_needs_only_live(rest: httpx.AsyncClient) -> None:
    empty = await answer(rest, SEARCH, {"searchText": "", "live": False})
    assert empty["success"] and empty["contracts"]
    assert await answer(rest, SEARCH, {"live": False}) == empty
    assert await answer(rest, SEARCH, {"live": False, "searchText": None}) == empty
    assert await problem(rest, SEARCH, {"searchText": "NQ"}) == {"live": ["The live field is required."]}


async def test_trade_search_needs_only_the_account(sim: SimServer, rest: httpx.AsyncClient) -> None:
    market = {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 1}
    assert (await answer(rest, PLACE, market))["success"]
    await sim.advance(5)
    assert (await answer(rest, PLACE, {**market, "side": 1}))["success"]
    every = (await answer(rest, "/api/Trade/search", {"accountId": ACCOUNT}))["trades"]
    assert len(every) == 2 and {t["side"] for t in every} == {0, 1}
    later = (await answer(rest, "/api/Trade/search", {"accountId": ACCOUNT, "startTimestamp": "2026-03-02T14:30:01Z"}))
    assert [t["side"] for t in later["trades"]] == [1]
    assert list(await problem(rest, "/api/Trade/search", {"startTimestamp": SINCE})) == ["accountId"]
    assert list(await problem(rest, "/api/Order/search", {"accountId": ACCOUNT})) == ["startTimestamp"]


# ---------------------------------------------------------------------------------------------- ping
async def test_ping_answers_pong_without_a_token_a_limit_or_a_log_entry() -> None:
    async with SimServer(config=SimConfig(seed=1), rate_limits={"general": Limit(1, 60)}) as sim, \
            httpx.AsyncClient(base_url=sim.base_url, timeout=10) as anon:
        for _ in range(5):
            r = await anon.get("/api/Status/ping")
            assert (r.status_code, r.text) == (200, "pong") and r.headers["content-type"].startswith("text/plain")
        assert sim.requests == []
        authed = {"Authorization": f"Bearer {sim.login()}"}
        assert (await anon.post("/api/Account/search", json={"onlyActiveAccounts": True}, headers=authed)).status_code \
            == 200  # pings used none of the budget
        assert (await anon.post("/api/Status/ping")).status_code == 405
