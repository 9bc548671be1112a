"""RiskStore: lockouts, enforcement log, daily P&L and the order-intent journal in one crash-safe SQLite file."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..enums import OrderSide, OrderType
from ..errors import InputError, RiskStateError
from ..models import PlaceOrderRequest
from ..times import from_us, to_us

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE lockouts (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, until_us INTEGER NOT NULL, rule TEXT NOT NULL,
    reason TEXT NOT NULL, created_us INTEGER NOT NULL);
CREATE INDEX lockouts_by_account ON lockouts (account_id, until_us);
CREATE TABLE enforcement_log (
    id INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, account_id INTEGER NOT NULL, rule TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE daily_pnl (
    account_id INTEGER NOT NULL, trading_day TEXT NOT NULL, realised REAL NOT NULL, fees REAL NOT NULL,
    updated_us INTEGER NOT NULL, PRIMARY KEY (account_id, trading_day));
CREATE TABLE order_intents (
    tag TEXT PRIMARY KEY, account_id INTEGER NOT NULL, contract_id TEXT NOT NULL, side INTEGER NOT NULL,
    size INTEGER NOT NULL, type INTEGER NOT NULL, limit_price REAL, stop_price REAL, trail_price REAL,
    state TEXT NOT NULL, order_id INTEGER, error TEXT, created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);
CREATE INDEX order_intents_by_state ON order_intents (state);
"""
_TABLES = frozenset({"lockouts", "enforcement_log", "daily_pnl", "order_intents"})
_INTENT_COLUMNS = ("tag, account_id, contract_id, side, size, type, limit_price, stop_price, trail_price, state, "
                   "order_id, error, created_us, updated_us")


class IntentState(StrEnum):
    """Where a journaled order stands: INTENDED, SENT and UNKNOWN (the caller was told its fate is unknown) are
    unresolved until ACKNOWLEDGED or FAILED."""

    INTENDED = "intended"
    SENT = "sent"
    UNKNOWN = "unknown"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"


_UNRESOLVED = (IntentState.INTENDED, IntentState.SENT, IntentState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Lockout:
    """A cool-down of an account: no new exposure before `until` (UTC)."""

    account_id: int
    until: datetime
    rule: str
    reason: str
    created: datetime


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """One journaled order, keyed by its customTag."""

    tag: str
    account_id: int
    contract_id: str
    side: OrderSide
    size: int
    type: OrderType
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    state: IntentState
    order_id: int | None
    error: str | None
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class EnforcementRecord:
    """One enforcement step: the rule, the action taken, what it concerned and how it ended."""

    at: datetime
    account_id: int
    rule: str
    action: str
    detail: str
    outcome: str


@dataclass(frozen=True, slots=True)
class DailyPnl:
    """Realised P&L and fees of one account over one trading day."""

    account_id: int
    trading_day: date
    realised: float
    fees: float
    updated: datetime

    @property
    def net(self) -> float:
        return self.realised - self.fees


def _us(name: str, value: datetime | None) -> int:
    if value is None:
        return to_us(datetime.now(UTC))
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InputError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return to_us(value)


def _fsync_directory(directory: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


class RiskStore:
    """Durable risk state of every account in one SQLite file (WAL, synchronous=FULL: a committed write survives a
    killed process). A missing file is created; a corrupt, foreign or newer-schema file raises RiskStateError and
    is left untouched. Calls are synchronous (a write waits up to `busy_timeout` s for another writer of the file),
    so a live process makes them off its event loop (StoreWriter); one store per process and file."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path).expanduser().absolute()
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        if not self.path.exists():
            self._create()
        self._db = self._open()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RiskStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ opening

    def _fail(self, what: str) -> RiskStateError:
        return RiskStateError(f"risk store {self.path}: {what}", path=str(self.path))

    def _create(self) -> None:
        for suffix in ("-wal", "-journal"):
            if Path(f"{self.path}{suffix}").exists():
                raise self._fail(f"the file is missing but its {suffix[1:]} file remains; it may hold lockouts, "
                                 "so it is not replaced by a fresh store (restore the file or remove both)")
        fresh = self.path.with_name(f"{self.path.name}.{os.getpid()}.new")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh.unlink(missing_ok=True)
            db = sqlite3.connect(fresh, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
            finally:
                db.close()
            with suppress(FileExistsError):
                os.link(fresh, self.path)
            _fsync_directory(self.path.parent)
        except (OSError, sqlite3.Error) as exc:
            raise self._fail(f"cannot create it: {exc}") from exc
        finally:
            fresh.unlink(missing_ok=True)

    def _open(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(f"{self.path.as_uri()}?mode=rw", uri=True, isolation_level=None,
                                 check_same_thread=False, timeout=self.busy_timeout)
        except sqlite3.Error as exc:
            raise self._fail(f"cannot open it: {exc}") from exc
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                raise self._fail("not a pxkit risk store (no schema version); it is left as it is")
            if version != SCHEMA_VERSION:
                raise self._fail(f"schema version {version} is not the supported {SCHEMA_VERSION} "
                                 "(written by another pxkit version)")
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise self._fail(f"the file is corrupt: {'; '.join(problems[:3])}")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables >= _TABLES:
                raise self._fail(f"tables missing: {', '.join(sorted(_TABLES - tables))}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except RiskStateError:
            db.close()
            raise
        except sqlite3.Error as exc:
            db.close()
            raise self._fail(f"the file is unreadable or corrupt: {exc}") from exc
        return db

    @contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.IntegrityError as exc:
                raise InputError(f"risk store refused the record: {exc}") from None
            except sqlite3.Error as exc:
                raise self._fail(f"{exc}") from exc

    # ------------------------------------------------------------------ lockouts

    def add_lockout(self, account_id: int, until: datetime, rule: str, reason: str, *,
                    at: datetime | None = None) -> Lockout:
        """Record (durably, before returning) that the account may not add exposure before `until`."""
        until_us, created_us = _us("until", until), _us("at", at)
        with self._sql() as db:
            db.execute("INSERT INTO lockouts (account_id, until_us, rule, reason, created_us) VALUES (?, ?, ?, ?, ?)",
                       (account_id, until_us, str(rule), reason, created_us))
        return Lockout(account_id, from_us(until_us), str(rule), reason, from_us(created_us))

    def active_lockout(self, account_id: int, now: datetime) -> Lockout | None:
        """The lockout that ends last among those still running at `now` (exchange time), or None."""
        with self._sql() as db:
            row = db.execute("SELECT account_id, until_us, rule, reason, created_us FROM lockouts "
                             "WHERE account_id = ? AND until_us > ? ORDER BY until_us DESC LIMIT 1",
                             (account_id, _us("now", now))).fetchone()
        return None if row is None else _lockout(row)

    def lockouts(self, account_id: int) -> list[Lockout]:
        """Every lockout of the account, expired ones included, oldest first."""
        with self._sql() as db:
            rows = db.execute("SELECT account_id, until_us, rule, reason, created_us FROM lockouts "
                              "WHERE account_id = ? ORDER BY created_us, id", (account_id,)).fetchall()
        return [_lockout(row) for row in rows]

    # ------------------------------------------------------------------ enforcement log

    def log_enforcement(self, account_id: int, rule: str, action: str, detail: str, outcome: str, *,
                        at: datetime | None = None) -> EnforcementRecord:
        """Append one enforcement step (what was breached, what was done, how it ended)."""
        at_us = _us("at", at)
        with self._sql() as db:
            db.execute("INSERT INTO enforcement_log (at_us, account_id, rule, action, detail, outcome) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (at_us, account_id, str(rule), str(action), detail, outcome))
        return EnforcementRecord(from_us(at_us), account_id, str(rule), str(action), detail, outcome)

    def enforcement_log(self, account_id: int | None = None, *, limit: int = 100) -> list[EnforcementRecord]:
        """The latest enforcement steps (of one account, or all), newest first."""
        where, params = ("WHERE account_id = ?", (account_id, limit)) if account_id is not None else ("", (limit,))
        with self._sql() as db:
            rows = db.execute(f"SELECT at_us, account_id, rule, action, detail, outcome FROM enforcement_log {where} "
                              "ORDER BY at_us DESC, id DESC LIMIT ?", params).fetchall()
        return [EnforcementRecord(from_us(row[0]), *row[1:]) for row in rows]

    # ------------------------------------------------------------------ daily P&L

    def set_daily_pnl(self, account_id: int, trading_day: date, realised: float, fees: float, *,
                      at: datetime | None = None) -> DailyPnl:
        """Store the day's totals (not increments, so replayed trade events cannot count twice)."""
        updated_us = _us("at", at)
        with self._sql() as db:
            db.execute("INSERT INTO daily_pnl (account_id, trading_day, realised, fees, updated_us) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, trading_day) DO UPDATE SET "
                       "realised = excluded.realised, fees = excluded.fees, updated_us = excluded.updated_us",
                       (account_id, trading_day.isoformat(), float(realised), float(fees), updated_us))
        return DailyPnl(account_id, trading_day, float(realised), float(fees), from_us(updated_us))

    def daily_pnl(self, account_id: int, trading_day: date) -> DailyPnl | None:
        with self._sql() as db:
            row = db.execute("SELECT realised, fees, updated_us FROM daily_pnl WHERE account_id = ? AND "
                             "trading_day = ?", (account_id, trading_day.isoformat())).fetchone()
        return None if row is None else DailyPnl(account_id, trading_day, row[0], row[1], from_us(row[2]))

    # ------------------------------------------------------------------ order-intent journal

    def journal_intent(self, request: PlaceOrderRequest, *, at: datetime | None = None) -> IntentRecord:
        """Record an order before it is sent, keyed by its customTag (InputError if untagged or already known)."""
        tag = request.custom_tag
        if not tag:
            raise InputError("an order needs a customTag to be journaled")
        now_us = _us("at", at)
        with self._sql() as db:
            added = db.execute(f"INSERT INTO order_intents ({_INTENT_COLUMNS}) VALUES "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?) ON CONFLICT (tag) DO NOTHING",
                               (tag, request.account_id, request.contract_id, int(request.side), request.size,
                                int(request.type), request.limit_price, request.stop_price, request.trail_price,
                                IntentState.INTENDED.value, now_us, now_us)).rowcount
        if not added:
            raise InputError(f"an order tagged {tag!r} is already journaled")
        return self._intent(tag)

    def mark_sent(self, tag: str, *, at: datetime | None = None) -> IntentRecord:
        """The request is about to go out (or went out): from here a crash leaves the outcome unknown."""
        return self._move(tag, IntentState.SENT, (IntentState.INTENDED,), at)

    def mark_acknowledged(self, tag: str, order_id: int, *, at: datetime | None = None) -> IntentRecord:
        """The gateway holds the order; also accepted after `failed`, since the gateway's word wins."""
        current = self.intent(tag)
        if current is not None and current.state is IntentState.ACKNOWLEDGED and current.order_id == order_id:
            return current
        return self._move(tag, IntentState.ACKNOWLEDGED, (*_UNRESOLVED, IntentState.FAILED), at, order_id=order_id)

    def mark_unknown(self, tag: str, error: str, *, at: datetime | None = None) -> IntentRecord:
        """Placing it ended without knowing whether the gateway holds it: it is settled later by its tag."""
        return self._move(tag, IntentState.UNKNOWN, (IntentState.INTENDED, IntentState.SENT), at, error=error)

    def mark_failed(self, tag: str, error: str, *, at: datetime | None = None) -> IntentRecord:
        """The order is known not to exist on the gateway (refused, or not found after a restart)."""
        return self._move(tag, IntentState.FAILED, _UNRESOLVED, at, error=error)

    def intent(self, tag: str) -> IntentRecord | None:
        with self._sql() as db:
            row = db.execute(f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE tag = ?", (tag,)).fetchone()
        return None if row is None else _intent_record(row)

    def unresolved_intents(self, account_id: int | None = None) -> list[IntentRecord]:
        """Intents never acknowledged nor failed (a crash came between journal and answer), oldest first: look
        each up by tag on the gateway, then mark it acknowledged or failed, instead of placing it again."""
        where = f"state IN ({', '.join('?' for _ in _UNRESOLVED)})"
        where += " AND account_id = ?" if account_id is not None else ""
        params: tuple[Any, ...] = tuple(state.value for state in _UNRESOLVED)
        with self._sql() as db:
            rows = db.execute(f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE {where} ORDER BY created_us, tag",
                              params + ((account_id,) if account_id is not None else ())).fetchall()
        return [_intent_record(row) for row in rows]

    def _intent(self, tag: str) -> IntentRecord:
        record = self.intent(tag)
        if record is None:
            raise InputError(f"no order tagged {tag!r} is journaled")
        return record

    def _move(self, tag: str, state: IntentState, allowed_from: tuple[IntentState, ...], at: datetime | None, *,
              order_id: int | None = None, error: str | None = None) -> IntentRecord:
        now_us = _us("at", at)
        marks = ", ".join("?" for _ in allowed_from)
        with self._sql() as db:
            changed = db.execute(
                "UPDATE order_intents SET state = ?, order_id = COALESCE(?, order_id), error = ?, updated_us = ? "
                f"WHERE tag = ? AND state IN ({marks})",
                (state.value, order_id, error, now_us, tag, *(s.value for s in allowed_from))).rowcount
        record = self._intent(tag)
        if not changed:
            raise InputError(f"order {tag!r} is {record.state.value}; it cannot become {state.value}")
        return record


def _lockout(row: tuple[Any, ...]) -> Lockout:
    return Lockout(row[0], from_us(row[1]), row[2], row[3], from_us(row[4]))


def _intent_record(row: tuple[Any, ...]) -> IntentRecord:
    return IntentRecord(row[0], row[1], row[2], OrderSide(row[3]), row[4], OrderType(row[5]), row[6], row[7], row[8],
                        IntentState(row[9]), row[10], row[11], from_us(row[12]), from_us(row[13]))
