"""Record every hub push to partitioned parquet on one writer thread, and read recordings back as polars frames.

Layout: `<dir>/<kind>/day=<trading day>/contract=<contract id>/part-<run>-<n>.parquet` (accounts by day only),
the trading day of each row's exchange time (pxkit.hours.trading_day). Kinds and their `timestamp` column:

| kind      | message         | one row per     | timestamp (exchange time, UTC, us)                       |
|-----------|-----------------|-----------------|----------------------------------------------------------|
| trades    | TradesPushed    | trade print     | the print's                                              |
| quotes    | QuotePushed     | quote           | the quote's `timestamp`, else `last_updated`, else arrival |
| depth     | DepthPushed     | level-2 record  | the record's                                             |
| orders    | OrderPushed     | order change    | `update_timestamp`, else `creation_timestamp`            |
| fills     | UserTradePushed | fill            | `creation_timestamp`                                     |
| positions | PositionPushed  | position change | arrival (the gateway stamps no change time)              |
| accounts  | AccountPushed   | account change  | arrival                                                  |

Every row also has `received_at` (when its frame arrived) and `seq` (arrival order within a run). Each flush
writes a new part under a hidden temporary name and renames it, so a killed process leaves only whole files and
loses at most what arrived since the last flush. Nothing is ever dropped: when the writer falls behind and its
queue is full, `write` blocks the caller until there is room (counted in `stalls`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..client.realtime import ProjectXRealtimeClient
from ..errors import ClosedError, InputError
from ..hours import trading_day
from ..messages import (
    AccountPushed,
    DepthPushed,
    HubPush,
    OrderPushed,
    PositionPushed,
    QuotePushed,
    TradesPushed,
    UserTradePushed,
)
from ..times import from_us, to_us

log = logging.getLogger(__name__)

_T = pl.Datetime("us", "UTC")
_F, _I, _E, _S, _B = pl.Float64, pl.Int64, pl.Int8, pl.String, pl.Boolean
_HEAD = {"timestamp": _T, "received_at": _T, "seq": _I}
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "trades": {**_HEAD, "symbol_id": _S, "price": _F, "volume": _I, "type": _E},
    "quotes": {**_HEAD, "symbol": _S, "symbol_name": _S, "last_price": _F, "best_bid": _F, "best_ask": _F,
               "change": _F, "change_percent": _F, "open": _F, "high": _F, "low": _F, "volume": _I,
               "last_updated": _T},
    "depth": {**_HEAD, "type": _E, "price": _F, "volume": _I, "current_volume": _I},
    "orders": {**_HEAD, "order_id": _I, "account_id": _I, "symbol_id": _S, "creation_timestamp": _T,
               "update_timestamp": _T, "status": _E, "type": _E, "side": _E, "size": _I, "limit_price": _F,
               "stop_price": _F, "fill_volume": _I, "filled_price": _F, "custom_tag": _S, "action": _E},
    "fills": {**_HEAD, "trade_id": _I, "account_id": _I, "order_id": _I, "price": _F, "fees": _F, "side": _E,
              "size": _I, "profit_and_loss": _F, "voided": _B, "action": _E},
    "positions": {**_HEAD, "position_id": _I, "account_id": _I, "creation_timestamp": _T, "type": _E, "size": _I,
                  "average_price": _F, "action": _E},
    "accounts": {**_HEAD, "account_id": _I, "name": _S, "balance": _F, "can_trade": _B, "is_visible": _B,
                 "simulated": _B, "action": _E},
}
KINDS = tuple(SCHEMAS)
_TIME_COLUMNS = {kind: [n for n, t in schema.items() if t == _T] for kind, schema in SCHEMAS.items()}
_BUILD = {kind: {n: _I if t == _T else t for n, t in schema.items()} for kind, schema in SCHEMAS.items()}
_PART = re.compile(r"^part-([0-9A-Za-z]+)(?:-(\d+))?\.parquet$")
_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")
_STOP = object()

Key = tuple[str, date, str | None]  # kind, trading day, contract
Row = tuple[Any, ...]


def _us(ts: datetime | None) -> int | None:
    return None if ts is None else to_us(ts)


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def recording_dir(path: str | os.PathLike[str]) -> Path:
    """The recording directory `path`, made if missing; an InputError when it cannot be one."""
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise InputError(f"a recording needs a directory path, got {path!r}")
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the recording directory {root}: {exc.strerror or exc}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise InputError(f"the recording directory {root} is not writable")
    return root


def _interval(flush_interval: object) -> float:
    if (isinstance(flush_interval, bool) or not isinstance(flush_interval, int | float)
            or not math.isfinite(flush_interval) or not 0 < flush_interval <= 3600):
        raise InputError(f"flush_interval must be a number of seconds above 0 and at most 3600, got {flush_interval!r}")
    return float(flush_interval)


@dataclass
class RecorderStats:
    """What a recorder has done: rows and parts written, flushes, back-pressure, and the writer's lag."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    parts: int = 0
    flushes: int = 0
    stalls: int = 0  # times `write` waited for room in the queue
    stalled_seconds: float = 0.0
    lost_rows: int = 0  # rows whose part could not be written (each failure logged as an error)
    max_lag: float = 0.0  # seconds from a row's arrival to its part on disk, the worst so far
    last_lag: float = 0.0  # the same for the oldest row of the last flush


class Recorder:
    """Writes hub pushes to a recording directory from one background thread, in bounded memory.

    `write(message)` (on the event loop) only queues the message; the writer thread turns messages into rows and
    writes a part per partition at least every `flush_interval` seconds, or sooner once `max_rows` are buffered.
    `await stop()` writes what is left and, with `compact`, merges this run's parts of each partition into one.
    A directory that already holds a recording gets new parts beside the old ones.
    """

    def __init__(self, path: str | os.PathLike[str], *, flush_interval: float = 1.0, queue_size: int = 100_000,
                 max_rows: int = 500_000, compact: bool = True) -> None:
        self.flush_interval = _interval(flush_interval)
        for name, value in (("queue_size", queue_size), ("max_rows", max_rows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
        self.root = recording_dir(path)
        self.run = f"{datetime.now(UTC):%Y%m%dT%H%M%S}{secrets.token_hex(4)}"
        self.stats = RecorderStats()
        self.received = 0  # messages given to `write`
        self.compact = compact
        self.max_rows = max_rows
        self._queue: queue.Queue[Any] = queue.Queue(queue_size)
        self._pending: dict[Key, list[Row]] = {}
        self._buffered = 0
        self._oldest: float | None = None  # arrival of the oldest buffered row
        self._parts: dict[Key, list[Path]] = {}  # this run's parts, by partition
        self._seq = 0
        self._days: dict[int, date] = {}  # trading day by UTC hour: a day starts on a whole hour
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"pxkit-recorder-{self.run}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "recording"
        return f"Recorder({str(self.root)!r}, {state}, rows={sum(self.stats.rows.values())}, parts={self.stats.parts})"

    # ------------------------------------------------------------------ the caller's side

    def write(self, message: HubPush) -> None:
        """Queue one push for the writer; blocks while the queue is full (back-pressure, never a drop)."""
        if self._stopped:
            raise ClosedError("this recorder is stopped")
        self.received += 1
        try:
            self._queue.put_nowait(message)
            return
        except queue.Full:
            pass
        started = time.monotonic()
        self.stats.stalls += 1
        log.warning("recorder %s: the writer is behind and its queue is full; waiting for room", self.root)
        while True:
            try:
                self._queue.put(message, timeout=1.0)
                break
            except queue.Full:
                if not self._thread.is_alive():
                    raise ClosedError(f"the recorder's writer for {self.root} has stopped") from None
        self.stats.stalled_seconds += time.monotonic() - started

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def queued(self) -> int:
        """Messages waiting for the writer."""
        return self._queue.qsize()

    async def stop(self) -> RecorderStats:
        """Write everything queued, compact (if asked), end the writer thread; returns the stats."""
        if not self._stopped:
            self._stopped = True
            self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        return self.stats

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            if item is not None:
                self._take(item)
            now = time.monotonic()
            if now >= next_flush or self._buffered >= self.max_rows:
                self._flush()
                next_flush = max(next_flush + self.flush_interval, now) if now >= next_flush else next_flush
        self._flush()
        if self.compact:
            for key, parts in self._parts.items():
                if len(parts) > 1:
                    self._compact(key, parts)

    def _take(self, message: HubPush) -> None:
        try:
            rows = self._rows(message)
        except Exception:  # a message no row can hold must not stop the recording
            self.stats.lost_rows += 1
            log.exception("recorder %s: cannot record %r", self.root, message)
            return
        if self._oldest is None:
            self._oldest = message.received_at
        for key, row in rows:
            self._pending.setdefault(key, []).append(row)
        self._buffered += len(rows)

    def _day(self, t_us: int) -> date:
        hour = t_us // 3_600_000_000
        day = self._days.get(hour)
        if day is None:
            day = self._days[hour] = trading_day(from_us(t_us))
        return day

    def _rows(self, message: HubPush) -> list[tuple[Key, Row]]:
        """(partition, row) for each row of a push, in the column order of its kind's schema."""
        received = round(message.received_at * 1_000_000)
        seq = self._seq
        out: list[tuple[Key, Row]] = []

        def add(kind: str, t: int | None, contract: str | None, *fields: Any) -> None:
            nonlocal seq
            t = received if t is None else t
            out.append(((kind, self._day(t), contract), (t, received, seq, *fields)))
            seq += 1

        match message:
            case TradesPushed(contract_id=cid, trades=trades):
                for tr in trades:
                    add("trades", to_us(tr.timestamp), cid or tr.symbol_id, tr.symbol_id, tr.price, round(tr.volume),
                        int(tr.type))
            case QuotePushed(contract_id=cid, quote=q):
                add("quotes", _us(q.timestamp or q.last_updated), cid or q.symbol, q.symbol, q.symbol_name,
                    q.last_price, q.best_bid, q.best_ask, q.change, q.change_percent, q.open, q.high, q.low,
                    _int(q.volume), _us(q.last_updated))
            case DepthPushed(contract_id=cid, entries=entries):
                for d in entries:
                    add("depth", to_us(d.timestamp), cid or "unknown", int(d.type), d.price, round(d.volume),
                        d.current_volume)
            case OrderPushed(order=o, action=action):
                add("orders", _us(o.update_timestamp or o.creation_timestamp), o.contract_id, o.id, o.account_id,
                    o.symbol_id, _us(o.creation_timestamp), _us(o.update_timestamp), int(o.status), int(o.type),
                    int(o.side), o.size, o.limit_price, o.stop_price, o.fill_volume, o.filled_price, o.custom_tag,
                    int(action))
            case UserTradePushed(trade=f, action=action):
                add("fills", to_us(f.creation_timestamp), f.contract_id, f.id, f.account_id, f.order_id, f.price,
                    f.fees, int(f.side), f.size, f.profit_and_loss, f.voided, int(action))
            case PositionPushed(position=p, action=action):
                add("positions", None, p.contract_id, p.id, p.account_id, _us(p.creation_timestamp), int(p.type),
                    p.size, p.average_price, int(action))
            case AccountPushed(account=a, action=action):
                add("accounts", None, None, a.id, a.name, a.balance, a.can_trade, a.is_visible, a.simulated,
                    int(action))
        self._seq = seq
        return out

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        oldest, self._oldest, self._buffered = self._oldest, None, 0
        for key, rows in pending.items():
            kind = key[0]
            try:
                frame = pl.DataFrame(rows, schema=_BUILD[kind], orient="row").with_columns(
                    pl.col(_TIME_COLUMNS[kind]).cast(_T))
                parts = self._parts.setdefault(key, [])
                target = self._partition(key) / f"part-{self.run}-{len(parts) + 1:06d}.parquet"
                self._write(frame, target)
            except Exception:  # disk full, permissions...: counted and said loudly
                self.stats.lost_rows += len(rows)
                log.exception("recorder %s: could not write %d %s rows of %s", self.root, len(rows), kind, key[2])
                continue
            parts.append(target)
            self.stats.rows[kind] += len(rows)
            self.stats.parts += 1
        self.stats.flushes += 1
        if oldest is not None:
            self.stats.last_lag = max(0.0, time.time() - oldest)
            self.stats.max_lag = max(self.stats.max_lag, self.stats.last_lag)

    def _partition(self, key: Key) -> Path:
        kind, day, contract = key
        folder = self.root / kind / f"day={day.isoformat()}"
        if contract is not None:
            folder /= f"contract={_UNSAFE.sub('_', contract)}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @staticmethod
    def _write(frame: pl.DataFrame, target: Path) -> None:
        """Write under a hidden temporary name, then rename: readers and a kill only ever see whole files."""
        temporary = target.with_name(f".{target.name}.tmp")
        frame.write_parquet(temporary, statistics=True)
        os.replace(temporary, target)

    def _compact(self, key: Key, parts: list[Path]) -> None:
        """Merge this run's parts of a partition into `part-<run>.parquet`; the reader prefers it to the parts, so
        a kill between the rename and the removals neither loses nor doubles a row."""
        target = parts[0].with_name(f"part-{self.run}.parquet")
        try:
            self._write(pl.concat([pl.read_parquet(p) for p in parts]), target)
        except Exception:
            log.exception("recorder %s: compacting %s failed; its parts are kept", self.root, target.parent)
            return
        for part in parts:
            part.unlink(missing_ok=True)
        self.stats.parts -= len(parts) - 1
        self._parts[key] = [target]


# ---------------------------------------------------------------------- recording a realtime client


class Recording:
    """A Recorder fed with every push of a realtime client; `await rec.stop()` or `async with` ends it."""

    def __init__(self, realtime: ProjectXRealtimeClient, path: str | os.PathLike[str], *,
                 flush_interval: float = 1.0, on_stop: Callable[[Recording], None] | None = None, **options: Any
                 ) -> None:
        self.recorder = Recorder(path, flush_interval=flush_interval, **options)
        self.realtime = realtime
        self._on_stop = on_stop
        realtime.on(HubPush, self.recorder.write)

    @property
    def path(self) -> Path:
        return self.recorder.root

    @property
    def stats(self) -> RecorderStats:
        return self.recorder.stats

    def __repr__(self) -> str:
        return f"Recording({self.recorder!r})"

    async def stop(self) -> RecorderStats:
        """Stop listening, write what is left, compact; safe to call twice."""
        if not self.recorder.stopped:
            self.realtime.off(HubPush, self.recorder.write)
            if self._on_stop is not None:
                self._on_stop(self)
        return await self.recorder.stop()

    async def __aenter__(self) -> Recording:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


# ---------------------------------------------------------------------- reading


def _parts(folder: Path) -> list[Path]:
    """The readable parts of one partition: a run's compacted file replaces its numbered parts."""
    found = [(m.group(1), m.group(2), folder / m.group(0)) for m in
             (_PART.match(entry.name) for entry in os.scandir(folder) if entry.is_file()) if m]
    compacted = {run for run, number, _ in found if number is None}
    return sorted(path for run, number, path in found if number is None or run not in compacted)


def scan_recording(path: str | os.PathLike[str], kind: str, *, contract: str | None = None,
                   day: date | str | None = None) -> pl.LazyFrame:
    """A lazy frame of one kind of a recording (see `read_recording`); the filters pick partitions."""
    if kind not in SCHEMAS:
        raise InputError(f"unknown kind {kind!r}; a recording has {list(KINDS)}")
    if not isinstance(path, str | os.PathLike) or not Path(path).expanduser().is_dir():
        raise InputError(f"no recording directory at {path!r}")
    if contract is not None and kind == "accounts":
        raise InputError("account events are partitioned by day only: leave contract= out")
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise InputError(f"day must be a date or YYYY-MM-DD, got {day!r}") from None
    elif day is not None and (not isinstance(day, date) or isinstance(day, datetime)):
        raise InputError(f"day must be a date or YYYY-MM-DD, got {day!r}")
    base = Path(path).expanduser() / kind
    days = [base / f"day={day.isoformat()}"] if day is not None else sorted(base.glob("day=*"))
    hive: dict[str, pl.DataType] = {"day": pl.Date}
    folders = days
    if kind != "accounts":
        hive["contract"] = pl.String
        name = None if contract is None else f"contract={_UNSAFE.sub('_', contract)}"
        folders = [f for d in days for f in ([d / name] if name else sorted(d.glob("contract=*")))]
    files = [str(p) for folder in folders if folder.is_dir() for p in _parts(folder)]
    order = ["timestamp", "received_at", "seq"]
    if not files:
        return pl.LazyFrame(schema={**hive, **SCHEMAS[kind]})
    frame = pl.scan_parquet(files, hive_partitioning=True, hive_schema=hive)
    return frame.select(*hive, *SCHEMAS[kind]).sort(order, maintain_order=True)


def read_recording(path: str | os.PathLike[str], kind: str, *, contract: str | None = None,
                   day: date | str | None = None) -> pl.DataFrame:
    """One kind of a recording (`trades`, `quotes`, `depth`, `orders`, `fills`, `positions`, `accounts`) as a
    frame: `day` and `contract` (the partition), then the kind's columns, sorted by exchange time, then arrival."""
    return scan_recording(path, kind, contract=contract, day=day).collect()


def replay_trades(path: str | os.PathLike[str], contract: str, *, day: date | str | None = None
                  ) -> Iterator[tuple[float, int, int]]:
    """The recorded trades of a contract as (price, size, exchange time in us), oldest first: what
    `MultiTimeframeBars.on_trade` and `BarSeries.on_trade` take."""
    frame = scan_recording(path, "trades", contract=contract, day=day).select(
        "price", "volume", pl.col("timestamp").dt.epoch("us")).collect()
    return frame.iter_rows()

