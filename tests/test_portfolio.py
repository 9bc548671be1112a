"""suite.portfolio on the simulated gateway: correlation of returns, exposure and P&L against the gateway's own."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from pxkit import EventType, OrderSide
from pxkit.errors import InputError
from pxkit.sim import SimServer
from suites import open_suite
from waiting import until


async def gateway_returns(sim: SimServer, suite, symbols: list[str], count: int) -> np.ndarray:
    """Close-to-close 1min returns of the newest `count` closed bars, from the gateway's own history."""
    now = sim.sim.clock.now().replace(second=0, microsecond=0)
    closes = None
    for symbol in symbols:
        bars = await suite.client.get_bars(suite[symbol].instrument_info.id, start_time=now - timedelta(hours=3),
                                           end_time=now, unit="min")
        frame = bars.select("timestamp", pl.col("close").alias(symbol))
        closes = frame if closes is None else closes.join(frame, on="timestamp")
    prices = closes.sort("timestamp").tail(count + 1).select(symbols).to_numpy()
    return np.diff(prices, axis=0) / prices[:-1]


async def test_correlation_matrix_matches_returns_of_the_gateway_bars(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "ES", "MGC"], timeframes=["1min"]) as suite:
        matrix = await suite.portfolio.correlation_matrix("1min", count=100)
        symbols = ["MNQ", "ES", "MGC"]
        assert matrix["symbol"].to_list() == symbols and matrix.columns == ["symbol", *symbols]
        expected = np.corrcoef(await gateway_returns(sim, suite, symbols, 100), rowvar=False)
        assert np.allclose(matrix.select(symbols).to_numpy(), expected, atol=1e-12)
        assert np.allclose(np.diag(expected), 1.0)
        with pytest.raises(InputError, match="not built"):
            await suite.portfolio.correlation_matrix("5min", 50)
        with pytest.raises(InputError, match="at least 3"):
            await suite.portfolio.correlation_matrix("1min", 2)


async def test_correlation_matrix_refuses_what_it_cannot_compute(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as suite:
        with pytest.raises(InputError, match="two instruments"):
            await suite.portfolio.correlation_matrix("1min", 50)


async def test_exposure_and_pnl_follow_the_positions_and_match_the_balance(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as suite:
        mnq, es = suite["MNQ"], suite["ES"]
        balance = suite.account.balance
        assert suite.portfolio.total_exposure() == 0
        for ctx, side in ((mnq, OrderSide.BUY), (es, OrderSide.SELL)):
            opened = ctx.event_bus.wait_for(EventType.POSITION_OPENED, timeout=10)
            await (await ctx.orders.place_market_order(side, 2)).wait_filled(timeout=10)
            await opened
        exposures = suite.portfolio.exposures()
        assert exposures["MNQ"] == pytest.approx(2 * mnq.data.last_price * 0.5 / 0.25)
        assert exposures["ES"] == pytest.approx(-2 * es.data.last_price * 12.5 / 0.25)
        assert suite.portfolio.total_exposure() == pytest.approx(exposures["MNQ"] - exposures["ES"])
        await sim.advance(90)
        pnl = suite.portfolio.get_portfolio_pnl()
        assert pnl.instruments["MNQ"].size == 2 and pnl.instruments["ES"].size == -2
        for ctx in (mnq, es):
            closed = ctx.event_bus.wait_for(EventType.POSITION_CLOSED, timeout=10)
            await ctx.orders.close_position()
            await closed
        await until(lambda: suite.account.balance != balance, "the account update")
        accounts = {a.id: a for a in await suite.client.list_accounts()}
        pnl = suite.portfolio.get_portfolio_pnl()
        assert pnl.unrealized == 0 and pnl.fees > 0
        assert round(pnl.net, 2) == round(accounts[suite.account.id].balance - balance, 2)
        assert suite.account.balance == accounts[suite.account.id].balance
        assert suite.portfolio.total_exposure() == 0


async def test_portfolio_risk_is_the_historical_var_of_the_positions_held(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as suite:
        flat = await suite.portfolio.calculate_portfolio_risk("1min", 100)
        assert (flat.gross_exposure, flat.var_95, flat.correlation_risk) == (0, 0.0, None)
        for symbol, side, size in (("MNQ", OrderSide.BUY, 2), ("ES", OrderSide.SELL, 1)):
            ctx = suite[symbol]
            opened = ctx.event_bus.wait_for(EventType.POSITION_OPENED, timeout=10)
            await (await ctx.orders.place_market_order(side, size)).wait_filled(timeout=10)
            await opened
        exposures = suite.portfolio.exposures()
        risk = await suite.portfolio.calculate_portfolio_risk("1min", 100)
        returns = await gateway_returns(sim, suite, ["MNQ", "ES"], 100)
        pnl = returns @ np.array([exposures["MNQ"], exposures["ES"]])
        assert risk.observations == 100
        assert risk.var_95 == pytest.approx(-np.quantile(pnl, 0.05), rel=1e-9) and risk.var_95 > 0
        assert risk.gross_exposure == pytest.approx(abs(exposures["MNQ"]) + abs(exposures["ES"]))
        assert risk.net_exposure == pytest.approx(exposures["MNQ"] + exposures["ES"])
        rho = np.corrcoef(returns, rowvar=False)[0, 1]
        assert risk.correlation_risk == pytest.approx(-rho)  # long one, short the other: they hedge
