"""Secrets stay secret through a whole trading session, and the simulator refuses every token it should not honour.

The session runs with every logger at DEBUG: a refused login, a suite of three instruments, orders (filled,
resting, refused before the wire and by the gateway), a dropped hub connection, token refreshes through
Auth/validate, a 401 answered by a re-login, and a 401 that cannot be cured. Then the API keys and every token the
simulator issued are looked for in every log record, every repr/str and notebook HTML, every exception and the
suite's stats.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
import pytest

from pxkit import EventType, OrderSide, ProjectX, ProjectXConfig, TradingSuite
from pxkit.errors import AuthenticationError, InputError, PxError
from pxkit.sim import Credentials, HubSettings, SimServer
from suites import FAST
from waiting import until

USER = "trader-7"
API_KEY = "pk_live_9f8e7d6c5b4a39281706"
WRONG_KEY = "pk_live_typo_5521904c"  # a mistyped key is as secret as the right one
SYMBOLS = ["MNQ", "ES", "MGC"]
TOKEN_TTL = 3.0  # wall seconds: the client refreshes through Auth/validate about every 1.5 s


class Capture(logging.Handler):
    """Keeps every record it is handed, formatted with its arguments and exception text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in logging.LogRecord("", 0, "", 0, "", (), None)
                  .__dict__ and k not in ("message", "asctime")}
        self.texts.append(" | ".join([self.format(record), repr(record.args), repr(record.msg), repr(extras),
                                      record.stack_info or ""]))


@contextlib.contextmanager
def every_log_record() -> Any:
    """Route every record of every logger, at DEBUG, into one Capture."""
    capture = Capture()
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(lg, lg.level) for lg in [root, *loggers]]
    own = [lg for lg in loggers if not lg.propagate]  # these never reach the root's handlers
    root.setLevel(logging.DEBUG)
    root.addHandler(capture)
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
    for lg in own:
        lg.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for lg in own:
            lg.removeHandler(capture)
        for lg, level in saved:
            lg.setLevel(level)


def record_tokens(sim: SimServer) -> list[str]:
    """Every token the simulator's issuer hands out from now on, in order."""
    issued: list[str] = []
    issue = sim.gateway.tokens.issue

    def issue_and_record(*args: Any, **kwargs: Any) -> str:
        issued.append(token := issue(*args, **kwargs))
        return token

    sim.gateway.tokens.issue = issue_and_record  # type: ignore[method-assign]
    return issued


def leaks(secrets: dict[str, str], texts: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(secret's name, where, excerpt) for every text holding a secret."""
    found = []
    for where, items in texts.items():
        for text in items:
            for name, secret in secrets.items():
                if secret in text:
                    at = text.index(secret)
                    found.append((name, where, text[max(0, at - 80): at + len(secret) + 20]))
    return found


async def refreshed(client: ProjectX, count: int, timeout: float = 15.0) -> None:
    """Keep the client busy with REST reads until it has replaced its token `count` times (bounded)."""
    deadline = time.monotonic() + timeout
    while client.tokens.refreshes < count:
        if time.monotonic() > deadline:
            pytest.fail(f"no token refresh within {timeout} s (refreshes: {client.tokens.refreshes})")
        await client.search_open_positions()
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def session_sim() -> AsyncIterator[SimServer]:
    async with SimServer(credentials=Credentials(USER, API_KEY), token_ttl=TOKEN_TTL,
                         hubs=HubSettings(ping_interval=0.5)) as sim:
        yield sim


async def test_no_secret_reaches_a_log_a_repr_an_exception_or_the_stats():
    errors: list[BaseException] = []
    shown: list[str] = []
    with every_log_record() as capture:
        async with session_sim() as sim:
            issued = record_tokens(sim)
            config = ProjectXConfig.for_simulator(sim.base_url, USER, API_KEY)
            with pytest.raises(AuthenticationError) as refused:  # a mistyped key
                async with ProjectX(config.replace(api_key=WRONG_KEY)) as px:
                    shown.append(repr(px))
            errors.append(refused.value)

            suite = await TradingSuite.create(SYMBOLS, config=config, clock=sim.sim.clock.now, link_settings=FAST,
                                              features=["orderbook"], timeframes=["15sec", "1min"])
            try:
                assert list(suite) == SYMBOLS
                await sim.advance(30)
                mnq, es, mgc = (suite[s] for s in SYMBOLS)
                bought = await mnq.orders.place_market_order(OrderSide.BUY, 1)
                await bought.wait_filled(timeout=10)
                resting = await es.orders.place_limit_order(OrderSide.BUY, 1, es.instrument_info.round_price(
                    es.data.last_price * 0.9))
                bracket = await mgc.orders.place_bracket_order(OrderSide.SELL, 1, stop_offset=20, target_offset=40)
                for bad in (lambda: mnq.orders.place_limit_order(OrderSide.BUY, 1, mnq.data.last_price + 0.13),
                            lambda: es.orders.place_market_order(OrderSide.BUY, 5000)):
                    with pytest.raises(PxError) as info:  # refused before the wire, then by the gateway
                        await bad()
                    errors.append(info.value)
                assert isinstance(errors[-2], InputError) and not isinstance(errors[-1], InputError)

                back = suite.event_bus.wait_for(EventType.RECONNECTED, timeout=15,
                                                predicate=lambda e: e.source == "user")
                assert sim.drop_hub_connections() == 2
                await back
                await refreshed(suite.client, 2)  # through Auth/validate, each followed by hub reconnects
                sim.expire_tokens()  # the next call gets a 401 and logs in again
                await suite.client.search_open_positions()
                await sim.advance(20)
                await until(lambda: resting.order is not None and bracket.stop is not None, "orders seen on the hub")
                shown += [repr(x) for x in (suite, config, suite.client, suite.client.tokens, suite.realtime,
                                            bought, resting, bracket, bracket.entry, bracket.stop, *suite.values())]
                shown += [repr(getattr(ctx, part)) for ctx in suite.values()
                          for part in ("data", "orders", "positions", "orderbook")]
                shown += [str(x) for x in (suite, config, suite.client, bought, bracket)]
                shown.append(json.dumps(await suite.get_stats(), default=str))
                shown.append(str(await suite.get_stats()))
                notebook = [suite, bought, resting, bracket, suite.portfolio, await suite.get_stats(), *suite.values()]
                notebook += [getattr(ctx, part) for ctx in suite.values() for part in ("positions", "orderbook")]
                shown += [x._repr_html_() for x in notebook]  # what a notebook shows of them
            finally:
                await asyncio.wait_for(suite.close(), 10)

            async with ProjectX(config) as px:  # a 401 that a re-login cannot cure
                sim.gateway.api.credentials = Credentials(USER, "rotated-key")
                sim.expire_tokens()
                with pytest.raises(AuthenticationError) as rejected:
                    await px.list_accounts()
                errors.append(rejected.value)
                sim.gateway.api.credentials = sim.credentials

    assert suite.client.tokens.refreshes >= 3 and any(r.path == "/api/Auth/validate" for r in sim.requests)
    assert len(issued) >= 5 and len(capture.texts) > 100
    secrets = {"api key": API_KEY, "mistyped api key": WRONG_KEY}
    for n, token in enumerate(issued):
        secrets[f"token {n}"] = token
        secrets[f"signature of token {n}"] = token.rsplit(".", 1)[1]
    exception_texts = [text for exc in errors for text in (str(exc), repr(exc), repr(exc.args),
                                                            str(exc.__cause__), str(exc.__context__))]
    assert leaks(secrets, {"log": capture.texts, "repr": shown, "exception": exception_texts}) == []


# ---------------------------------------------------------------------------------------------- refused tokens
def forged(token: str) -> str:
    """The token with its claims rewritten (a later expiry, another user) and the old signature kept."""
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["exp"] += 365 * 86_400
    claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"] = "admin"
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


def refused_tokens(sim: SimServer, other: SimServer) -> dict[str, Callable[[], str]]:
    return {
        "forged": lambda: forged(sim.login()),
        "foreign": other.login,  # well signed, by another simulator's secret
        "expired": lambda: sim.gateway.tokens.issue(USER, ttl_seconds=-1),
        "expired in bulk": lambda: (sim.login(), sim.expire_tokens())[0],
        "garbage": lambda: "not-a-jwt",
    }


@pytest.fixture
async def two_sims() -> AsyncIterator[tuple[SimServer, SimServer]]:
    async with session_sim() as sim, SimServer(credentials=Credentials(USER, API_KEY)) as other:
        yield sim, other


async def test_rest_answers_401_to_forged_foreign_and_expired_tokens(two_sims: tuple[SimServer, SimServer]):
    sim, other = two_sims
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10) as client:
        for kind, make in refused_tokens(sim, other).items():
            for path, body in (("/api/Account/search", {"onlyActiveAccounts": True}), ("/api/Auth/validate", None)):
                answer = await client.post(path, json=body, headers={"Authorization": f"Bearer {make()}"})
                assert answer.status_code == 401, (kind, path)
        fresh = sim.login()
        answer = await client.post("/api/Account/search", json={"onlyActiveAccounts": True},
                                   headers={"Authorization": f"Bearer {fresh}"})
        assert answer.status_code == 200 and answer.json()["success"] is True


@pytest.mark.parametrize("hub", ["user", "market"])
async def test_both_hubs_answer_401_to_forged_foreign_and_expired_tokens(two_sims: tuple[SimServer, SimServer],
                                                                         hub: str):
    sim, other = two_sims
    url = sim.user_hub_url if hub == "user" else sim.market_hub_url
    async with aiohttp.ClientSession() as session:
        for kind, make in refused_tokens(sim, other).items():
            async with session.post(f"{url}/negotiate?negotiateVersion=1",
                                    headers={"Authorization": f"Bearer {make()}"}) as answer:
                assert answer.status == 401, (kind, "negotiate")
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:  # skip-negotiation, token in the query
                await session.ws_connect(f"{url}?access_token={make()}")
            assert info.value.status == 401, (kind, "websocket")
        ws = await session.ws_connect(f"{url}?access_token={sim.login()}")
        await ws.close()
