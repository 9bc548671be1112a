"""Notebook output on the simulated gateway: every object's repr is short, stable and holds the facts a trader
looks for; its HTML is well formed, escapes what the gateway sends, follows live status, and neither shows a
memory address nor a secret."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import pytest

from pxkit import OrderSide, OrderStatus, ProjectXConfig, TradingSuite
from pxkit.html import BAD, GOOD, WARN, Html, badge, escape, signed, table
from pxkit.models import tick_decimals
from pxkit.sim import Credentials, HubSettings, SimConfig, SimServer
from pxkit.stats import SuiteStats
from suites import open_suite
from waiting import until

USER = "trader-9"
API_KEY = "pk_live_5e4d3c2b1a0f9e8d7c6b"
HOSTILE = "<img src=x onerror=alert(1)> & \"Co\" 'x'"
VOID = {"br", "hr", "img", "meta", "input", "wbr"}
MAX_REPR = 240


class Markup(HTMLParser):
    """Reads HTML the way a notebook would: tags that do not nest, the text of each table row's cells."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self._open: list[str] = []
        self.feed(html)
        self.close()
        self.problems += [f"<{tag}> never closed" for tag in self._open]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
        if tag not in VOID:
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self._open[-1:] or 'nothing'}")
        else:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if "td" in self._open or "th" in self._open:
            self.rows[-1][-1] += data


def shown(thing: Any, secrets: dict[str, str]) -> tuple[str, str]:
    """(repr, HTML) of `thing`, checked: the same twice for the same state, well-formed, no address, no secret."""
    text, html = repr(thing), thing._repr_html_()
    assert (repr(thing), thing._repr_html_()) == (text, html), type(thing).__name__
    assert Markup(html).problems == [], type(thing).__name__
    for name, secret in secrets.items():
        assert secret not in text and secret not in html, f"{name} in the output of {type(thing).__name__}"
    assert "0x" not in text and "0x" not in html, type(thing).__name__
    if not isinstance(thing, dict):  # SuiteStats keeps the dict's repr, for the callers that print it
        assert len(text) <= MAX_REPR, text
    return text, html


def secrets_of(suite: TradingSuite) -> dict[str, str]:
    token = suite.client.tokens.current
    assert token
    return {"api key": API_KEY, "token": token, "token signature": token.rsplit(".", 1)[1]}


def price(ctx: Any, value: float | None) -> str:
    """A price as the reprs print it: the contract's tick decimals, thousands separated."""
    assert value is not None
    return f"{value:,.{tick_decimals(ctx.instrument_info.tick_size)}f}"


@pytest.fixture
async def keyed_sim() -> AsyncIterator[SimServer]:
    """The tests' manual-clock simulator, with an API key that must never be shown."""
    async with SimServer(config=SimConfig(seed=1), hubs=HubSettings(ping_interval=0.5),
                         credentials=Credentials(USER, API_KEY)) as server:
        yield server


def keyed(sim: SimServer) -> ProjectXConfig:
    return ProjectXConfig.for_simulator(sim.base_url, USER, API_KEY)


async def test_each_repr_is_short_stable_well_formed_and_holds_the_facts(keyed_sim: SimServer) -> None:
    sim = keyed_sim
    async with open_suite(sim, ["MNQ", "ES", "MGC"], features=["orderbook"], config=keyed(sim)) as suite:
        await sim.advance(30)
        mnq, es = suite["MNQ"], suite["ES"]
        bracket = await mnq.orders.place_bracket_order(OrderSide.BUY, 2, stop_offset=200, target_offset=400)
        stop, target = await bracket.wait_legs(timeout=10)
        assert stop is not None and target is not None
        await until(lambda: mnq.positions.size == 2, "the MNQ position")
        resting = await es.orders.place_limit_order(OrderSide.SELL, 1, es.instrument_info.round_price(
            es.data.last_price + 10))
        await until(lambda: resting.order is not None, "the resting order on the hub")
        await until(lambda: all(c.orderbook.get_spread() for c in suite.values()), "books on every instrument")
        secrets = secrets_of(suite)

        text, html = shown(suite, secrets)
        assert text.startswith("TradingSuite(['MNQ', 'ES', 'MGC']") and "user up market up" in text
        assert "health 100" in text and "failed=[]" in text
        assert "PRAC-V2-SIM-50K-1" in html and html.count(">up<") == 2
        for ctx in suite.values():
            assert ctx.instrument_info.id in html and price(ctx, ctx.data.last_price) in html

        text, html = shown(mnq, secrets)
        bid, ask = mnq.orderbook.get_best_bid_ask()
        assert f"last {price(mnq, mnq.data.last_price)}, bid/ask {price(mnq, bid)}/{price(mnq, ask)}" in text
        assert "CON.F.US.MNQ.H26" in text and "position +2" in text and "15sec:" in text
        cells = Markup(html).rows
        for timeframe in ("15sec", "1min", "5min"):
            series = mnq.data.bars[timeframe]
            assert [timeframe, f"{len(series):,}"] == next(r[:2] for r in cells if r[0] == timeframe)
        assert mnq.instrument_info.description in html

        entry = bracket.entry.order
        assert entry is not None and entry.filled_price is not None
        text, html = shown(bracket, secrets)
        assert f"entry {entry.id} BUY MARKET 2 FILLED 2/2 @ {price(mnq, entry.filled_price)}" in text
        assert f"stop {stop.id} SELL STOP 2 @ {price(mnq, stop.order.stop_price)} OPEN 0/2" in text
        assert f"target {target.id} SELL LIMIT 2 @ {price(mnq, target.order.limit_price)} OPEN" in text
        assert text.endswith("protected)") and "protected" in html
        assert [r[0] for r in Markup(html).rows[1:]] == ["entry", "stop", "target"]

        text, html = shown(resting, secrets)
        assert text == f"OrderHandle(ES {resting.id} SELL LIMIT 1 @ {price(es, resting.order.limit_price)} OPEN 0/1)"
        assert "OPEN" in html and str(resting.id) in html

        average = mnq.positions.average_price
        text, html = shown(mnq.positions, secrets)
        assert f"long 2 @ {price(mnq, average)}" in text and f"long 2 @ {price(mnq, average)}" in html

        pnl = suite.portfolio.get_portfolio_pnl()
        text, html = shown(suite.portfolio, secrets)
        assert f"net={pnl.net:+.2f}" in text
        foot = Markup(html).rows[-1]
        assert foot[0] == "total" and foot[-1].replace("\u2212", "-") == f"{pnl.net:+,.2f}"
        text, html = shown(pnl, secrets)
        assert "MNQ +2" in text and "ES flat" in text and "MGC flat" in text
        shown(pnl.instruments["MNQ"], secrets)
        shown(mnq.positions.pnl(), secrets)

        text, html = shown(mnq.orderbook, secrets)
        assert f"bid {price(mnq, bid)} x " in text and f"ask {price(mnq, ask)} x " in text

        stats = await suite.get_stats()
        text, html = shown(stats, secrets)
        assert "health 100" in html and "no problems seen" in html and "TradesPushed" in html and GOOD in html


async def test_the_ladder_is_the_top_five_levels_asks_above_bids(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], features=["orderbook"]) as suite:
        book = suite["MNQ"].orderbook
        await sim.advance(10)
        await until(lambda: book.get_spread() is not None, "a two-sided book")
        rows = Markup(book._repr_html_()).rows
        snapshot = book.get_orderbook_snapshot(5)
        asks = [(p, s) for side, p, s in snapshot.iter_rows() if side == "ask"]
        bids = [(p, s) for side, p, s in snapshot.iter_rows() if side == "bid"]
        assert rows[0] == ["bid size", "price", "ask size"]
        expected = [["", f"{p:,.2f}", f"{s:,}"] for p, s in reversed(asks)] + [[f"{s:,}", f"{p:,.2f}", ""]
                                                                               for p, s in bids]
        assert rows[1:] == expected and len(expected) == 10


async def test_order_and_bracket_reprs_follow_the_live_status(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as suite:
        mnq = suite["MNQ"]
        resting = await mnq.orders.place_limit_order(OrderSide.BUY, 1, mnq.instrument_info.round_price(
            mnq.data.last_price - 50))
        await until(lambda: resting.order is not None, "the order on the hub")
        assert "OPEN 0/1" in repr(resting) and ">OPEN<" in resting._repr_html_()
        await mnq.orders.cancel_order(resting)
        await until(lambda: resting.status is OrderStatus.CANCELLED, "the cancel on the hub")
        assert "CANCELLED 0/1" in repr(resting)
        assert ">CANCELLED<" in resting._repr_html_() and ">OPEN<" not in resting._repr_html_()

        bought = await mnq.orders.place_market_order(OrderSide.BUY, 1)
        filled = await bought.wait_filled(timeout=10)
        assert repr(bought).endswith(f"FILLED 1/1 @ {price(mnq, filled.filled_price)})")

        bracket = await mnq.orders.place_bracket_order(OrderSide.BUY, 1, stop_offset=100, target_offset=200)
        stop, target = await bracket.wait_legs(timeout=10)
        assert repr(bracket).count("OPEN 0/1") == 2
        await until(lambda: mnq.positions.size == 2, "the position of both buys")
        await mnq.orders.close_position()  # the gateway cancels the legs of a flattened bracket
        await until(lambda: stop.done and target.done, "the legs to end")
        assert repr(bracket).count("CANCELLED 0/1") == 2 and "OPEN" not in bracket._repr_html_()
        await until(lambda: mnq.positions.size == 0, "the flat position")
        assert "flat" in repr(mnq.positions) and "flat" in mnq.positions._repr_html_()


async def test_strings_from_the_gateway_are_escaped(sim: SimServer) -> None:
    sim.sim.exchange.ledger.accounts[1001].name = HOSTILE
    async with open_suite(sim, ["MNQ", "<em>X</em>"], timeframes=["1min"]) as suite:
        assert suite.account.name == HOSTILE and "<EM>X</EM>" in suite.failures
        stats = await suite.get_stats()
        for html in (suite._repr_html_(), stats._repr_html_()):
            parsed = Markup(html)
            assert parsed.problems == [] and not {"img", "em"} & set(parsed.tags)
            assert "&lt;EM&gt;X&lt;/EM&gt;" in html
        html = suite._repr_html_()
        assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;Co&quot; &#x27;x&#x27;" in html


async def test_stats_stay_a_dict_and_show_health_with_its_reasons(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "NOPE"], timeframes=["1min"]) as suite:
        stats = await suite.get_stats()
        assert isinstance(stats, SuiteStats) and isinstance(stats, dict)
        assert stats["health"] == 90 and stats["failures"].keys() == {"NOPE"}
        html = stats._repr_html_()
        assert "health 90" in html and WARN in html and "1 instrument failed to start" in html
        assert escape(stats["failures"]["NOPE"]) in html

        sim.refuse_hubs(30)
        await until(lambda: not any(suite.realtime.connected(hub) for hub in ("user", "market")), "both hubs down")
        assert "user down market down" in repr(suite)
        stats = await suite.get_stats()
        html = suite._repr_html_()
        assert html.count(">down<") == 2 and BAD in html and f"health {stats['health']}" in html
        assert "2 of 2 hubs disconnected" in html and "2 of 2 hubs disconnected" in stats._repr_html_()


async def test_a_closed_suite_says_so(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as suite:
        portfolio = suite.portfolio
    assert repr(suite).startswith("TradingSuite(closed, ['MNQ']") and "closed" in suite._repr_html_()
    assert repr(portfolio) == "Portfolio(closed)" and "closed" in portfolio._repr_html_()


def test_html_helpers_escape_all_but_their_own_markup() -> None:
    assert escape(HOSTILE) == "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;Co&quot; &#x27;x&#x27;"
    assert escape(badge("up", "ok")) == badge("up", "ok") and isinstance(badge("up"), Html)
    assert escape(None) == "\u2014"
    assert signed(12.5) == f'<span style="color: {GOOD};">+12.50</span>'
    assert signed(-1234.5) == f'<span style="color: {BAD};">\u22121,234.50</span>' and signed(-0.001) == "0.00"
    html = table([(HOSTILE, badge("x", "bad"), 3)], ("name", "tag", "n"), foot=("total", "", 3))
    parsed = Markup(html)
    assert parsed.problems == [] and "img" not in parsed.tags and parsed.tags.count("span") == 1
    assert parsed.rows == [["name", "tag", "n"], [HOSTILE, "x", "3"], ["total", "", "3"]]
