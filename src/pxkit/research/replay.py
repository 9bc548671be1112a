"""A recording as the simulator's market: its recorded prints stand in for the generated ones of their contracts,
so a backtest trades against what the gateway really streamed (the book around each print stays synthetic)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import polars as pl

from ..errors import InputError
from ..hours import trading_day
from ..sim.instruments import parse_contract_id
from ..sim.market import Market
from ..times import from_us
from .recorder import scan_recording

_HISTORY = timedelta(days=1)  # prints before the window kept too: the suite's history and the first quotes


def replay_into(market: Market, recording: str | os.PathLike[str], start: datetime, end: datetime) -> datetime:
    """Install the recording's prints of every contract the simulator knows, from a day before `start` to
    `end`; returns when the replay can begin: `start`, or the latest contract's first print if later."""
    first_day, last_day = trading_day(start - _HISTORY), trading_day(end)
    trades = (scan_recording(recording, "trades")
              .filter(pl.col("day").is_between(first_day, last_day), pl.col("timestamp") <= end)
              .select("contract", pl.col("timestamp").dt.epoch("us").alias("t"), "price", "volume", "type")
              .collect())
    found = sorted(c for c in trades["contract"].unique().to_list() if parse_contract_id(c) is not None)
    if not found:
        raise InputError(f"the recording at {recording} has no trades of a known contract from {first_day} to "
                         f"{end:%Y-%m-%d %H:%M} UTC")
    begin = start
    for contract_id in found:
        rows = trades.filter(pl.col("contract") == contract_id).sort("t", maintain_order=True)
        path = market.replay(contract_id, rows["t"].to_numpy(), rows["price"].to_numpy(),
                             rows["volume"].to_numpy(), rows["type"].to_numpy())
        begin = max(begin, from_us(path.first_us))
    if begin >= end:
        raise InputError(f"the recording's prints begin at {begin:%Y-%m-%d %H:%M:%S} UTC, after the window's end")
    return begin


def check_replayed(market: Market, contracts: dict[str, str]) -> None:
    """InputError when an instrument's contract (symbol -> id) is not in the replayed recording."""
    missing = {s: c for s, c in contracts.items() if c not in market.replayed}
    if missing:
        raise InputError(f"the recording has no trades of {', '.join(f'{s} ({c})' for s, c in missing.items())}; it "
                         f"has {sorted(market.replayed)}")
