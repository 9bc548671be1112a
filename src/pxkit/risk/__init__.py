"""Risk rules engine: limits, pure pre-/post-trade evaluation, and the durable SQLite risk store."""

from .limits import RiskConfig, TradingWindow, default_db_path, trading_day_bounds
from .rules import Action, OrderIntent, RiskRules, RiskState, Rule, Violation, signed_positions, trading_day
from .store import DailyPnl, EnforcementRecord, IntentRecord, IntentState, Lockout, RiskStore

__all__ = [
    "Action",
    "DailyPnl",
    "EnforcementRecord",
    "IntentRecord",
    "IntentState",
    "Lockout",
    "OrderIntent",
    "RiskConfig",
    "RiskRules",
    "RiskState",
    "RiskStore",
    "Rule",
    "TradingWindow",
    "Violation",
    "default_db_path",
    "signed_positions",
    "trading_day",
    "trading_day_bounds",
]
