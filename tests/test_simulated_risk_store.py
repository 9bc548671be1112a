"""A suite on the embedded simulator keeps its risk store in the simulator's own directory, gone when it stops."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pxkit import TradingSuite
from pxkit.risk import default_db_path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No gateway credentials, and every place the real risk store's default path is read from under `tmp_path`."""
    for name in ("PROJECT_X_USERNAME", "PROJECT_X_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path().is_relative_to(tmp_path)
    return tmp_path


async def test_a_simulated_suite_never_writes_the_real_risk_database(home: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="pxkit")
    async with TradingSuite.create(["MNQ"], timeframes=["1min"], features=["risk_manager"],
                                   risk={"max_position_size": 2}) as suite:
        assert suite.sim is not None and suite.risk is not None
        store = suite.risk.config.db_path
        assert store.parent == suite.sim.state_dir and store.is_file()  # the store is open, in the simulator's dir
        assert suite.risk.config.max_position_size == 2  # the other settings are the caller's
    announced = [r.getMessage() for r in caplog.records if "embedded simulator" in r.getMessage()]
    assert len(announced) == 1 and announced[0].endswith(f"; risk store {store}")
    assert not store.parent.exists()  # removed with the simulator
    assert list(home.rglob("*")) == []  # nothing under HOME or XDG_DATA_HOME


async def test_an_explicit_risk_database_is_kept_on_the_simulator(home: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="pxkit")
    mine = home / "mine" / "risk.sqlite3"
    async with TradingSuite.create(["MNQ"], timeframes=["1min"], features=["risk_manager"],
                                   risk={"db_path": mine}) as suite:
        assert suite.risk is not None and suite.risk.config.db_path == mine
    assert mine.is_file()  # the caller's file outlives the simulator
    assert any(r.getMessage().endswith(f"; risk store {mine}") for r in caplog.records)
