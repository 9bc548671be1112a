"""Contracts as on the real gateway: active-only search, a listing that follows the roll calendar, one path each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from pxkit.sim import SimConfig, SimServer
from pxkit.sim.instruments import PRODUCTS_BY_ROOT, Expiry
from pxkit.sim.market import product_levels
from pxkit.sim.pricepath import DAY_US, EPOCH_US
from pxkit.times import parse_ts, to_us
from waiting import until

ACCOUNT = 1001
H26, M26, U26, Z25 = (f"CON.F.US.MNQ.{code}" for code in ("H26", "M26", "U26", "Z25"))
MNQ_SPEC = PRODUCTS_BY_ROOT["MNQ"]
ROLL = to_us(datetime(2026, 3, 11, 22, tzinfo=UTC))  # Thursday 2026-03-12's trading day opens 18:00 EDT Wednesday
EXPIRY = to_us(datetime(2026, 3, 20, 13, 30, tzinfo=UTC))  # 09:30 EDT on the third Friday of March


def utc(*args: int) -> str:
    return datetime(*args, tzinfo=UTC).isoformat()


async def post(rest: httpx.AsyncClient, path: str, body: dict[str, Any], key: str) -> Any:
    """POST and return the payload under `key` (None with the error code on a failure)."""
    data = (await rest.post(path, json=body)).json()
    return data[key] if data["success"] else (None, data["errorCode"])


async def listing(rest: httpx.AsyncClient, text: str = "MNQ") -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """(search hits, available contracts) of MNQ as (id, activeContract), sorted."""
    found = await post(rest, "/api/Contract/search", {"searchText": text, "live": False}, "contracts")
    every = await post(rest, "/api/Contract/available", {"live": False}, "contracts")
    return (sorted((c["id"], c["activeContract"]) for c in found if c["id"].startswith("CON.F.US.MNQ.")),
            sorted((c["id"], c["activeContract"]) for c in every if c["id"].startswith("CON.F.US.MNQ.")))


async def bars(rest: httpx.AsyncClient, contract: str, start: str, end: str, unit: int = 2) -> Any:
    body = {"contractId": contract, "live": False, "startTime": start, "endTime": end, "unit": unit,
            "unitNumber": 1, "limit": 20_000, "includePartialBar": False}
    return await post(rest, "/api/History/retrieveBars", body, "bars")


def market_buy(contract: str) -> dict[str, Any]:
    return {"accountId": ACCOUNT, "contractId": contract, "type": 2, "side": 0, "size": 1}


def test_the_roll_calendar_is_the_cme_equity_index_one() -> None:
    march = Expiry(2026, 3)
    assert (march.code, march.last_day.isoformat(), march.roll_day.isoformat()) == ("H26", "2026-03-20", "2026-03-12")
    assert (march.rolls_us, march.expires_us) == (ROLL, EXPIRY)
    assert [e.last_day.isoformat() for e in (march.next, march.next.next, march.next.next.next)] == [
        "2026-06-19", "2026-09-18", "2026-12-18"]


async def test_search_lists_the_active_contract_and_available_every_listed_one(rest: httpx.AsyncClient) -> None:
    found, every = await listing(rest)
    assert found == [(H26, True)]
    assert every == [(H26, True), (M26, False)]
    assert (await post(rest, "/api/Contract/searchById", {"contractId": M26}, "contract"))["activeContract"] is False
    for unlisted in (Z25, U26):
        assert await post(rest, "/api/Contract/searchById", {"contractId": unlisted}, "contract") == (None, 1)


async def test_orders_trade_on_listed_inactive_contracts_and_not_on_unlisted_ones(rest: httpx.AsyncClient) -> None:
    order_id = await post(rest, "/api/Order/place", market_buy(M26), "orderId")
    assert isinstance(order_id, int)
    [position] = await post(rest, "/api/Position/searchOpen", {"accountId": ACCOUNT}, "positions")
    assert (position["contractId"], position["size"]) == (M26, 1)
    for unlisted in (Z25, U26):
        assert await post(rest, "/api/Order/place", market_buy(unlisted), "orderId") == (None, 8)


async def test_the_next_contract_prints_its_own_trades(rest: httpx.AsyncClient) -> None:
    window = (utc(2026, 3, 2, 14), utc(2026, 3, 2, 14, 10))
    front, nxt = [await bars(rest, c, *window, unit=1) for c in (H26, M26)]
    assert len(front) > 100 and len(nxt) > 100
    front_closes = {parse_ts(b["t"]): b["c"] for b in front}
    next_closes = {parse_ts(b["t"]): b["c"] for b in nxt}
    assert front_closes.keys() != next_closes.keys()  # trades at other times
    assert [b["v"] for b in front[:50]] != [b["v"] for b in nxt[:50]]  # other sizes
    gaps = {next_closes[t] - front_closes[t] for t in front_closes.keys() & next_closes.keys()}
    assert len(gaps) > 10  # not the front's prints shifted by a constant


@pytest.mark.parametrize("day", [(2026, 2, 3), (2026, 3, 19)], ids=["45-days-out", "a-day-out"])
async def test_each_contract_trades_at_the_carry_to_its_expiry(rest: httpx.AsyncClient, sim: SimServer,
                                                                day: tuple[int, int, int]) -> None:
    """At the first print of a UTC day a contract opens at the product's level * (1 + carry * days left / 365)."""
    sim.sim.clock.set(to_us(datetime(2026, 3, 19, 12, tzinfo=UTC)))  # both days are history
    start = datetime(*day, tzinfo=UTC)
    level = product_levels(1, 0)[(to_us(start) - EPOCH_US) // DAY_US] * MNQ_SPEC.tick_size
    days_left = {H26: (datetime(2026, 3, 20, tzinfo=UTC) - start).days,
                 M26: (datetime(2026, 6, 19, tzinfo=UTC) - start).days}
    opens = {c: (await bars(rest, c, start.isoformat(), utc(*day, 0, 1)))[0]["o"] for c in (H26, M26)}
    half_tick = MNQ_SPEC.tick_size / 2
    for contract, days in days_left.items():
        assert opens[contract] == pytest.approx(level * (1 + MNQ_SPEC.carry * days / 365), abs=half_tick)
    basis = opens[M26] - opens[H26]
    assert basis == pytest.approx(level * MNQ_SPEC.carry * 91 / 365, abs=2 * half_tick)  # 91 days between expiries
    front_premium = opens[H26] / level - 1
    assert front_premium == pytest.approx(MNQ_SPEC.carry * days_left[H26] / 365, abs=1e-5)


async def test_the_front_converges_on_the_product_level_by_its_expiry(rest: httpx.AsyncClient, sim: SimServer) -> None:
    sim.sim.clock.set(EXPIRY)
    days = [(2026, 2, 3), (2026, 3, 3), (2026, 3, 10), (2026, 3, 17), (2026, 3, 20)]
    premiums = []
    for day in days:
        start = datetime(*day, tzinfo=UTC)
        level = product_levels(1, 0)[(to_us(start) - EPOCH_US) // DAY_US] * MNQ_SPEC.tick_size
        [bar] = await bars(rest, H26, start.isoformat(), utc(*day, 0, 1))
        premiums.append(bar["o"] / level - 1)
    assert premiums == sorted(premiums, reverse=True) and premiums[0] > 0.002
    assert premiums[-1] == pytest.approx(0, abs=1e-5)


async def test_the_front_rolls_on_the_roll_date_and_the_expired_contract_leaves(rest: httpx.AsyncClient,
                                                                                sim: SimServer) -> None:
    sim.sim.clock.set(ROLL - 1_000_000)
    assert await listing(rest) == ([(H26, True)], [(H26, True), (M26, False)])
    await sim.advance(1)
    assert await listing(rest) == ([(M26, True)], [(H26, False), (M26, True), (U26, False)])
    assert isinstance(await post(rest, "/api/Order/place", market_buy(H26), "orderId"), int)  # inactive, still trades

    sim.sim.clock.set(EXPIRY - 1_000_000)
    assert (await listing(rest))[1] == [(H26, False), (M26, True), (U26, False)]
    await sim.advance(1)
    assert await listing(rest) == ([(M26, True)], [(M26, True), (U26, False)])
    assert await post(rest, "/api/Contract/searchById", {"contractId": H26}, "contract") == (None, 1)
    assert await post(rest, "/api/Order/place", market_buy(H26), "orderId") == (None, 8)
    assert len(await bars(rest, H26, utc(2026, 3, 19, 13), utc(2026, 3, 19, 14))) == 60  # its history stays


async def test_a_real_time_simulator_rolls_without_a_restart() -> None:
    start = datetime.fromtimestamp((ROLL - 3_000_000) / 1_000_000, UTC)
    async with SimServer(config=SimConfig(seed=1), realtime=True, start=start) as sim, \
            httpx.AsyncClient(base_url=sim.base_url, timeout=10) as rest:
        rest.headers["Authorization"] = f"Bearer {sim.login()}"
        assert (await listing(rest))[0] == [(H26, True)]
        await until(lambda: sim.sim.clock.now_us() > ROLL, "the real-time clock to pass the roll")
        assert await listing(rest) == ([(M26, True)], [(H26, False), (M26, True), (U26, False)])


async def test_history_is_per_contract_and_unchanged_by_the_roll(rest: httpx.AsyncClient, sim: SimServer) -> None:
    before_roll = (utc(2026, 3, 11, 19), utc(2026, 3, 11, 20, 30))
    sim.sim.clock.set(ROLL - 15 * 60_000_000)
    asked_before = {c: await bars(rest, c, *before_roll) for c in (H26, M26)}
    sim.sim.clock.set(ROLL + 3 * 3_600_000_000)
    asked_after = {c: await bars(rest, c, *before_roll) for c in (H26, M26)}
    assert asked_after == asked_before and len(asked_before[H26]) == len(asked_before[M26]) == 90
    across = {c: await bars(rest, c, utc(2026, 3, 11, 19), utc(2026, 3, 12, 1)) for c in (H26, M26)}
    for contract in (H26, M26):
        assert across[contract][-90:] == asked_before[contract]  # newest first: the window's oldest bars at the end
    rolled = datetime.fromtimestamp(ROLL / 1_000_000, UTC)
    after = {c: {parse_ts(b["t"]): b["c"] for b in across[c] if parse_ts(b["t"]) >= rolled} for c in (H26, M26)}
    assert len(after[H26]) == len(after[M26]) == 180
    spread = np.array([after[M26][t] - after[H26][t] for t in after[H26]])
    assert np.unique(spread).size > 50  # each its own path past the roll: no series spliced onto the other
