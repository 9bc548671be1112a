"""Research on recorded and simulated markets: the recorder and its reader, strategies, backtests and sweeps."""

from .backtest import backtest
from .recorder import KINDS, Recorder, RecorderStats, Recording, read_recording, replay_trades, scan_recording
from .results import BacktestResult
from .strategy import Strategy, StrategyRunner

__all__ = ["KINDS", "BacktestResult", "Recorder", "RecorderStats", "Recording", "Strategy", "StrategyRunner",
           "backtest", "read_recording", "replay_trades", "scan_recording"]
