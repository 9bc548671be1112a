"""Research on recorded and simulated markets: the recorder and its reader."""

from .recorder import KINDS, Recorder, RecorderStats, Recording, read_recording, replay_trades, scan_recording

__all__ = ["KINDS", "Recorder", "RecorderStats", "Recording", "read_recording", "replay_trades", "scan_recording"]
