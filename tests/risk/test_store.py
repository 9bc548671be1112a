"""RiskStore on real SQLite files: schema on first open, lockouts, enforcement log, daily P&L, the order-intent
journal, refusal of corrupt or foreign files, and durability across a process killed with SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pxkit.client.orders import build_order_request
from pxkit.enums import OrderSide, OrderType
from pxkit.errors import InputError, RiskStateError
from pxkit.models import Contract, PlaceOrderRequest
from pxkit.risk import IntentState, Lockout, RiskStore, Rule
from pxkit.risk.store import SCHEMA_VERSION

T0 = datetime(2026, 3, 3, 15, tzinfo=UTC)
MNQ = Contract("CON.F.US.MNQ.H26", "MNQH6", "Micro E-mini Nasdaq-100", 0.25, 0.5, True)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "pxkit" / "risk.sqlite3"


@pytest.fixture
def store(path: Path):
    with RiskStore(path) as opened:
        yield opened


def order(tag: str, account_id: int = 7) -> PlaceOrderRequest:
    return build_order_request(MNQ, account_id, "buy", 2, OrderType.LIMIT, limit_price=21000.25, custom_tag=tag)


# ---------------------------------------------------------------------------------------------- creation


def test_first_open_creates_a_versioned_wal_store(path: Path) -> None:
    RiskStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["risk.sqlite3"]


def test_state_survives_close_and_reopen(path: Path) -> None:
    with RiskStore(path) as store:
        store.add_lockout(7, T0 + timedelta(hours=1), Rule.DAILY_LOSS, "loss 1000 reached", at=T0)
        store.set_daily_pnl(7, date(2026, 3, 3), -1000.0, 12.5, at=T0)
    with RiskStore(path) as store:
        assert store.active_lockout(7, T0) == Lockout(7, T0 + timedelta(hours=1), "daily_loss", "loss 1000 reached", T0)
        assert store.daily_pnl(7, date(2026, 3, 3)).net == -1012.5


# ---------------------------------------------------------------------------------------------- refusing bad files


def assert_refused(path: Path, match: str) -> None:
    before = path.read_bytes()
    with pytest.raises(RiskStateError, match=match) as caught:
        RiskStore(path)
    assert caught.value.path == str(path)
    assert path.read_bytes() == before


def test_garbage_bytes_are_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite3"
    path.write_bytes(b"these are not the lockouts you are looking for" * 100)
    assert_refused(path, "unreadable or corrupt")


def test_an_empty_file_is_not_taken_for_a_fresh_store(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite3"
    path.touch()
    assert_refused(path, "not a pxkit risk store")


def test_a_truncated_store_is_refused(path: Path) -> None:
    with RiskStore(path) as store:
        for hour in range(50):
            store.log_enforcement(7, Rule.POSITION_SIZE, "reduce", f"MNQ 3 > 2 at hour {hour}", "ok",
                                  at=T0 + timedelta(hours=hour))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    assert_refused(path, "corrupt")


def test_a_newer_schema_version_is_refused(path: Path) -> None:
    RiskStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    assert_refused(path, f"schema version {SCHEMA_VERSION + 1}")


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    assert_refused(path, "not a pxkit risk store")
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.close()
    assert_refused(path, "tables missing: daily_pnl, enforcement_log, lockouts, order_intents")


def test_a_leftover_wal_without_its_store_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite3"
    Path(f"{path}-wal").write_bytes(b"\0" * 64)
    with pytest.raises(RiskStateError, match="wal file remains"):
        RiskStore(path)
    assert not path.exists()


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(RiskStateError, match="cannot open"):
        RiskStore(tmp_path)


# ---------------------------------------------------------------------------------------------- lockouts


def test_active_lockout_is_judged_by_the_time_passed_in(store: RiskStore) -> None:
    until = T0 + timedelta(minutes=30)
    store.add_lockout(7, until, Rule.POSITION_SIZE, "cool-down", at=T0)
    store.add_lockout(7, T0 + timedelta(minutes=10), Rule.OPEN_ORDERS, "cool-down", at=T0)
    store.add_lockout(8, T0 + timedelta(days=1), Rule.DAILY_LOSS, "other account", at=T0)
    assert store.active_lockout(7, T0).until == until
    assert store.active_lockout(7, until - timedelta(microseconds=1)).rule == "position_size"
    assert store.active_lockout(7, until) is None
    assert [lockout.rule for lockout in store.lockouts(7)] == ["position_size", "open_orders"]
    assert store.lockouts(9) == []


def test_times_are_stored_as_utc_and_must_be_aware(store: RiskStore) -> None:
    until = datetime(2026, 3, 3, 18, tzinfo=ZoneInfo("America/New_York"))
    lockout = store.add_lockout(7, until, Rule.DAILY_LOSS, "day's end", at=T0)
    assert lockout.until == until and lockout.until.tzinfo is UTC
    assert store.active_lockout(7, T0).until == datetime(2026, 3, 3, 23, tzinfo=UTC)
    with pytest.raises(InputError, match="timezone-aware"):
        store.add_lockout(7, datetime(2026, 3, 3, 23), Rule.DAILY_LOSS, "naive")
    with pytest.raises(InputError, match="timezone-aware"):
        store.active_lockout(7, datetime(2026, 3, 3, 12))
    with pytest.raises(InputError, match="NOT NULL"):
        store.add_lockout(7, T0, Rule.DAILY_LOSS, None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- log and P&L


def test_enforcement_log_newest_first(store: RiskStore) -> None:
    for minute, account in enumerate((7, 8, 7)):
        store.log_enforcement(account, Rule.DAILY_LOSS, "flatten", f"step {minute}", "ok",
                              at=T0 + timedelta(minutes=minute))
    assert [record.detail for record in store.enforcement_log()] == ["step 2", "step 1", "step 0"]
    assert [record.detail for record in store.enforcement_log(7)] == ["step 2", "step 0"]
    latest = store.enforcement_log(limit=1)
    assert len(latest) == 1 and latest[0].at == T0 + timedelta(minutes=2) and latest[0].action == "flatten"


def test_daily_pnl_keeps_the_latest_totals_per_account_and_day(store: RiskStore) -> None:
    day = date(2026, 3, 3)
    store.set_daily_pnl(7, day, 100.0, 2.8, at=T0)
    store.set_daily_pnl(7, day, -250.0, 5.6, at=T0 + timedelta(minutes=1))
    store.set_daily_pnl(7, date(2026, 3, 4), 40.0, 1.4, at=T0 + timedelta(days=1))
    pnl = store.daily_pnl(7, day)
    assert (pnl.realised, pnl.fees, pnl.net, pnl.updated) == (-250.0, 5.6, -255.6, T0 + timedelta(minutes=1))
    assert store.daily_pnl(8, day) is None


# ---------------------------------------------------------------------------------------------- intent journal


def test_intent_lifecycle(store: RiskStore) -> None:
    record = store.journal_intent(order("t-1"), at=T0)
    assert (record.state, record.side, record.size, record.type, record.limit_price, record.order_id) == (
        IntentState.INTENDED, OrderSide.BUY, 2, OrderType.LIMIT, 21000.25, None)
    assert store.mark_sent("t-1", at=T0 + timedelta(seconds=1)).state is IntentState.SENT
    acked = store.mark_acknowledged("t-1", 9001, at=T0 + timedelta(seconds=2))
    assert (acked.state, acked.order_id, acked.created, acked.updated) == (
        IntentState.ACKNOWLEDGED, 9001, T0, T0 + timedelta(seconds=2))
    assert store.mark_acknowledged("t-1", 9001) == acked
    with pytest.raises(InputError, match="acknowledged; it cannot become acknowledged"):
        store.mark_acknowledged("t-1", 9002)
    with pytest.raises(InputError, match="cannot become failed"):
        store.mark_failed("t-1", "late")


def test_a_late_acknowledgement_overrides_a_failure(store: RiskStore) -> None:
    store.journal_intent(order("t-2"), at=T0)
    assert store.mark_failed("t-2", "timed out").error == "timed out"
    acked = store.mark_acknowledged("t-2", 9003)
    assert (acked.state, acked.order_id, acked.error) == (IntentState.ACKNOWLEDGED, 9003, None)


def test_unresolved_intents_are_the_ones_without_an_answer(store: RiskStore) -> None:
    for second, tag in enumerate(("a", "b", "c", "d")):
        store.journal_intent(order(tag, account_id=8 if tag == "d" else 7), at=T0 + timedelta(seconds=second))
    store.mark_sent("b")
    store.mark_acknowledged("c", 1)
    assert [record.tag for record in store.unresolved_intents()] == ["a", "b", "d"]
    assert [(r.tag, r.state) for r in store.unresolved_intents(7)] == [("a", "intended"), ("b", "sent")]


def test_journal_refuses_untagged_duplicate_and_unknown_tags(store: RiskStore) -> None:
    store.journal_intent(order("dup"))
    with pytest.raises(InputError, match="already journaled"):
        store.journal_intent(order("dup"))
    with pytest.raises(InputError, match="customTag"):
        store.journal_intent(PlaceOrderRequest(7, MNQ.id, OrderType.MARKET, OrderSide.SELL, 1))
    with pytest.raises(InputError, match="no order tagged 'nope'"):
        store.mark_sent("nope")
    assert store.intent("nope") is None


# ---------------------------------------------------------------------------------------------- durability

WRITER = """
import sys
from datetime import UTC, datetime
from pxkit.enums import OrderSide, OrderType
from pxkit.models import PlaceOrderRequest
from pxkit.risk import RiskStore

store = RiskStore(sys.argv[1])
store.add_lockout(7, datetime(2026, 3, 3, 23, tzinfo=UTC), "daily_loss", "loss 1000 reached",
                  at=datetime(2026, 3, 3, 20, tzinfo=UTC))
store.journal_intent(PlaceOrderRequest(7, "CON.F.US.MNQ.H26", OrderType.MARKET, OrderSide.SELL, 1,
                                       custom_tag="crash-1"))
store.mark_sent("crash-1")
print("committed", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_committed_state_survives_sigkill(path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "committed"
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL
    finally:
        writer.kill()
        writer.wait()
        writer.stdin.close()
        writer.stdout.close()
    assert Path(f"{path}-wal").stat().st_size > 0  # the writes live in the WAL, never checkpointed
    with RiskStore(path) as store:
        lockout = store.active_lockout(7, datetime(2026, 3, 3, 22, 59, tzinfo=UTC))
        assert (lockout.rule, lockout.reason) == ("daily_loss", "loss 1000 reached")
        assert [(r.tag, r.state, r.contract_id) for r in store.unresolved_intents(7)] == [
            ("crash-1", IntentState.SENT, "CON.F.US.MNQ.H26")]
