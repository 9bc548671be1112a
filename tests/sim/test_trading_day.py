"""The simulator's trading day opens at 18:00 New York: daily bars, the quote's session and the volume at price."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from conftest import MNQ
from pxkit import codec, models, times
from pxkit.codec import Target
from pxkit.enums import BarUnit, DomType
from pxkit.sim import SimConfig, SimServer, Simulator
from pxkit.sim.clock import DEFAULT_START, SimClock
from pxkit.sim.market import Market
from pxkit.times import from_us, to_us

SEC, HOUR = 1_000_000, 3_600_000_000
WINTER_OPEN = to_us(datetime(2026, 3, 2, 23, tzinfo=UTC))  # Monday 18:00 EST opens Tuesday's trading day
SUMMER_OPEN = to_us(datetime(2026, 3, 9, 22, tzinfo=UTC))  # Monday 18:00 EDT, the day after DST began
MNQ_JUNE = "CON.F.US.MNQ.M26"  # listed all along; the active MNQ contract once March's rolls on 2026-03-12


class Recorder:
    """A hub connection stand-in: keeps every push."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, list[Any]]] = []

    def send(self, target: str, arguments: list[Any]) -> None:
        self.pushes.append((target, arguments))

    def payloads(self, target: str) -> list[Any]:
        return [args[1] for name, args in self.pushes if name == target]


def bars_body(start: str, end: str, unit: BarUnit) -> dict[str, Any]:
    return {"contractId": MNQ_JUNE, "live": False, "startTime": start, "endTime": end, "unit": int(unit),
            "unitNumber": 1, "limit": 2000, "includePartialBar": False}


async def test_retrieve_bars_days_open_at_18_00_new_york_across_dst():
    async with SimServer(config=SimConfig(seed=1), start=datetime(2026, 3, 12, 12, tzinfo=UTC)) as sim, \
            httpx.AsyncClient(base_url=sim.base_url, timeout=10) as rest:
        rest.headers["Authorization"] = f"Bearer {sim.login()}"

        async def bars(start: str, end: str, unit: BarUnit) -> list[models.Bar]:
            body = (await rest.post("/api/History/retrieveBars", json=bars_body(start, end, unit))).json()
            return sorted(codec.decode_list(models.Bar, body, "bars"), key=lambda b: b.timestamp)

        days = await bars("2026-03-05T00:00:00Z", "2026-03-11T00:00:00Z", BarUnit.DAY)
        assert [b.timestamp for b in days] == [datetime(2026, 3, d, h, tzinfo=UTC) for d, h in
                                               ((5, 23), (8, 22), (9, 22), (10, 22))]  # no weekend days
        monday = days[1]  # Sunday 18:00 EDT, the day DST began, to Monday 17:00 EDT: 23 hours of minutes
        minutes = await bars("2026-03-08T22:00:00Z", "2026-03-09T22:00:00Z", BarUnit.MINUTE)
        assert len(minutes) == 23 * 60 and minutes[0].timestamp == monday.timestamp
        assert minutes[-1].timestamp == datetime(2026, 3, 9, 20, 59, tzinfo=UTC)
        assert (monday.open, monday.high, monday.low, monday.close, monday.volume) == (
            minutes[0].open, max(b.high for b in minutes), min(b.low for b in minutes), minutes[-1].close,
            sum(b.volume for b in minutes))


@pytest.mark.parametrize("opens", [WINTER_OPEN, SUMMER_OPEN], ids=["est", "edt"])
def test_the_quote_session_is_the_trading_day(opens):
    m = Market(1, DEFAULT_START)
    closed = m.bars(MNQ, opens - 25 * HOUR, opens, opens, BarUnit.DAY, 1, include_partial=False)[-1]
    assert to_us(closed.timestamp) == opens - 24 * HOUR
    last = m.quote(MNQ, opens - 1)
    assert (last.open, last.high, last.low, last.volume) == (closed.open, closed.high, closed.low, closed.volume)
    for t in (opens, opens + 1, opens + 90 * SEC, opens + 2 * HOUR + 5 * SEC):  # the last one is past UTC midnight
        ticks = m.ticks_between(MNQ, opens - 1, t)
        quote = m.quote(MNQ, t)
        assert (quote.open, quote.high, quote.low, quote.volume) == (
            *(m.price(MNQ, p) for p in (ticks.price[0], ticks.price.max(), ticks.price.min())), ticks.size.sum())


def test_streamed_quote_volume_and_volume_at_price_restart_at_18_00_new_york():
    sim = Simulator(SimConfig(seed=1), SimClock(from_us(WINTER_OPEN - 30 * SEC)))
    contract = sim.market.contract(MNQ)
    early, late = Recorder(), Recorder()
    sim.subscribe("quotes", MNQ, early)
    sim.subscribe("depth", MNQ, early)
    assert any(e["type"] == DomType.TRADE for batch in early.payloads(Target.DEPTH) for e in batch)
    sim.advance(60)

    quote: dict[str, Any] = {}
    volumes = []
    for payload in early.payloads(Target.QUOTE):
        quote.update(payload)
        volumes.append((to_us(times.parse_ts(quote["timestamp"])), quote["volume"]))
    ticks = sim.market.ticks_between(MNQ, WINTER_OPEN - 1, WINTER_OPEN + 30 * SEC)
    before = [v for t, v in volumes if t < WINTER_OPEN]
    after = [(t, v) for t, v in volumes if t >= WINTER_OPEN]
    assert before == sorted(before) and len(after) > 10
    assert after[0][1] < before[-1]
    assert after == [(t, float(ticks.size[ticks.time <= t].sum())) for t, _ in after]

    traded = [e for batch in early.payloads(Target.DEPTH) for e in batch
              if e["type"] == DomType.TRADE and to_us(times.parse_ts(e["timestamp"])) >= WINTER_OPEN]
    assert len(traded) > 10
    for entry in traded:  # the session's volume at a price counts only this trading day's prints
        at = (ticks.time <= to_us(times.parse_ts(entry["timestamp"]))) & (ticks.price == contract.to_ticks(
            entry["price"]))
        assert entry["volume"] == ticks.size[at].sum()

    sim.subscribe("depth", MNQ, late)  # 30 s into the day: no finished minute, so no volume at price yet
    snapshot = [[e["type"] for e in batch] for batch in late.payloads(Target.DEPTH)]
    assert len(snapshot) == 2 and snapshot[0] == [DomType.RESET] and DomType.TRADE not in snapshot[1]
