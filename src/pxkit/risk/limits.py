"""Risk limits of one account (RiskConfig), trading windows and trading-day bounds, validated on construction."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..client.instruments import is_contract_id, normalise, projectx_root
from ..errors import ConfigError, InputError
from ..hours import DAY_OPEN, NEW_YORK

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = frozenset(range(5))


def trading_day_bounds(day: date) -> tuple[datetime, datetime]:
    """UTC start and end of a trading day: 18:00 New York on the weekday before it (Friday for a Monday) to 18:00
    on the day itself, so that `trading_day(t) == day` exactly for `start <= t < end`."""
    if day.weekday() >= 5:
        raise InputError(f"{day} is a weekend day, not a trading day")
    back = 3 if day.weekday() == 0 else 1
    start = datetime.combine(day - timedelta(days=back), DAY_OPEN, NEW_YORK)
    return start.astimezone(UTC), datetime.combine(day, DAY_OPEN, NEW_YORK).astimezone(UTC)


def aware(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _time(name: str, value: object) -> time:
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a time of day like '09:30', got {value!r}") from None
    if not isinstance(value, time) or value.tzinfo is not None or value.second or value.microsecond:
        raise ConfigError(f"{name} must be a New York time of day in whole minutes, without a timezone, got {value!r}")
    return value


def _day(token: object) -> int:
    if isinstance(token, str) and token.strip().lower() in DAY_NAMES:
        return DAY_NAMES.index(token.strip().lower())
    if isinstance(token, int) and not isinstance(token, bool) and 0 <= token <= 6:
        return token
    raise ConfigError(f"unknown weekday {token!r}; use 0-6 (Monday = 0) or a name like 'mon'")


def _days(spec: object) -> frozenset[int]:
    """Weekdays from `"mon-fri"`, `"sun-thu"` (ranges wrap past Sunday), `"mon,wed"` or an iterable of days."""
    if not isinstance(spec, str | Iterable):
        raise ConfigError(f"days must be names or numbers of weekdays, got {spec!r}")
    days: set[int] = set()
    for token in spec.split(",") if isinstance(spec, str) else spec:
        if isinstance(token, str) and "-" in token:
            first, last = (_day(part) for part in token.split("-", 1))
            days.update((first + step) % 7 for step in range((last - first) % 7 + 1))
        else:
            days.add(_day(token))
    return frozenset(days)


@dataclass(frozen=True, slots=True)
class TradingWindow:
    """Trading allowed from `start` to `end` New York time, opening on each of `days` (Monday = 0); an `end` at or
    before `start` runs past midnight into the next day (`sun-thu 18:00-17:00` is the CME Globex week)."""

    start: time
    end: time
    days: frozenset[int] = WEEKDAYS

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _time("start", self.start))
        object.__setattr__(self, "end", _time("end", self.end))
        object.__setattr__(self, "days", _days(self.days))
        if not self.days:
            raise ConfigError("a trading window needs at least one weekday")

    def contains(self, ts: datetime) -> bool:
        """True when the moment falls inside the window (start inclusive, end exclusive), DST-correct."""
        local = aware("ts", ts).astimezone(NEW_YORK)
        clock, weekday = local.time(), local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= clock < self.end
        return (weekday in self.days and clock >= self.start) or ((weekday - 1) % 7 in self.days and clock < self.end)

    def __str__(self) -> str:
        days = ",".join(DAY_NAMES[day] for day in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | TradingWindow) -> TradingWindow:
        """From a preset (`cme_globex`, `cme_rth`), `"[days ]HH:MM-HH:MM"` (Monday to Friday when no days are
        given, e.g. `"sun-thu 18:00-17:00"`), or a mapping with `start`, `end` and optional `days`."""
        if isinstance(spec, TradingWindow):
            return spec
        if isinstance(spec, Mapping):
            unknown = sorted(str(key) for key in set(spec) - {"start", "end", "days"})
            if unknown or "start" not in spec or "end" not in spec:
                raise ConfigError(f"a trading window mapping takes start, end and days, got {dict(spec)!r}")
            return cls(spec["start"], spec["end"], spec.get("days", WEEKDAYS))
        if not isinstance(spec, str):
            raise ConfigError(f"a trading window is a string or a mapping, got {spec!r}")
        if spec.strip().lower() in PRESETS:
            return PRESETS[spec.strip().lower()]
        parts = spec.split()
        if len(parts) not in (1, 2) or parts[-1].count("-") != 1:
            raise ConfigError(f"trading window {spec!r} is not like 'mon-fri 09:30-16:00'")
        start, end = parts[-1].split("-")
        return cls(start, end, parts[0] if len(parts) == 2 else WEEKDAYS)


PRESETS = {
    "cme_globex": TradingWindow(time(18), time(17), frozenset({6, 0, 1, 2, 3})),
    "cme_rth": TradingWindow(time(9, 30), time(16)),
}


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/pxkit/risk.sqlite3`, or `~/.local/share/pxkit/risk.sqlite3` when that is unset or relative."""
    base = (os.environ if environ is None else environ).get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "pxkit" / "risk.sqlite3"


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a whole number of contracts or orders >= 0, got {value!r}")
    return value


def _limit_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"position_limits keys must be symbols or contract ids, got {key!r}")
    if is_contract_id(key):
        return normalise(key)
    return normalise(key).rsplit(".", 1)[-1] if "." in key else projectx_root(key)


def _root(contract_id: str) -> str:
    parts = contract_id.split(".")
    return parts[3] if len(parts) > 3 else contract_id


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Risk limits of one account, validated on construction; None switches a limit off."""

    enabled: bool = True
    max_daily_loss: float | None = None  # trading stops once the day's net P&L reaches -max_daily_loss
    max_position_size: int | None = None  # contracts per contract id, unless position_limits names it
    position_limits: Mapping[str, int] = field(default_factory=dict, hash=False)  # ticker, root or contract id
    max_total_position_size: int | None = None  # contracts across all instruments
    max_open_orders: int | None = None  # working orders of the account
    trading_hours: tuple[TradingWindow, ...] = ()  # New York windows that allow new exposure; () = any time
    lockout_minutes: float = 30.0  # cool-down after a breach; a daily-loss lockout lasts to the day's end
    db_path: Path = field(default_factory=default_db_path)

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"enabled must be true or false, got {self.enabled!r}")
        loss = self.max_daily_loss
        if loss is not None and (isinstance(loss, bool) or not isinstance(loss, int | float)
                                 or not math.isfinite(loss) or loss <= 0):
            raise ConfigError(f"max_daily_loss must be a positive amount of money, got {loss!r}")
        for name in ("max_position_size", "max_total_position_size", "max_open_orders"):
            if getattr(self, name) is not None:
                _count(name, getattr(self, name))
        if not isinstance(self.position_limits, Mapping):
            raise ConfigError(f"position_limits must map symbols to sizes, got {self.position_limits!r}")
        limits: dict[str, int] = {}
        for key, value in self.position_limits.items():
            name = _limit_key(key)
            if name in limits:
                raise ConfigError(f"position_limits names {name} twice (as {key!r} and another spelling)")
            limits[name] = _count(f"position_limits[{key!r}]", value)
        object.__setattr__(self, "position_limits", MappingProxyType(limits))
        minutes = self.lockout_minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not math.isfinite(minutes) \
                or minutes < 0:
            raise ConfigError(f"lockout_minutes must be a number of minutes >= 0, got {minutes!r}")
        hours = self.trading_hours
        if isinstance(hours, str | Mapping | TradingWindow):
            hours = (hours,)
        if not isinstance(hours, Iterable):
            raise ConfigError(f"trading_hours must be a list of windows, got {hours!r}")
        object.__setattr__(self, "trading_hours", tuple(TradingWindow.parse(window) for window in hours))
        if not isinstance(self.db_path, str | os.PathLike):
            raise ConfigError(f"db_path must be a file path, got {self.db_path!r}")
        object.__setattr__(self, "db_path", Path(self.db_path).expanduser())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskConfig:
        """From a mapping of snake_case settings (a parsed JSON/YAML section); unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"risk settings must be a mapping, got {type(data).__name__}")
        unknown = sorted(str(key) for key in set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown risk settings: {', '.join(unknown)}")
        return cls(**data)

    def position_limit(self, contract_id: str) -> int | None:
        """The size limit of a contract: its own entry, its product root's, else max_position_size."""
        for key in (normalise(contract_id), _root(contract_id)):
            if key in self.position_limits:
                return self.position_limits[key]
        return self.max_position_size
