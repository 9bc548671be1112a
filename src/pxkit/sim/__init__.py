"""The simulated ProjectX gateway: same REST + SignalR protocol, seeded market, real matching engine."""

from .app import HubSettings, LoggedRequest
from .auth import Credentials
from .engine import SimConfig, Simulator
from .ratelimit import Limit
from .server import SimServer

__all__ = ["Credentials", "HubSettings", "Limit", "LoggedRequest", "SimConfig", "SimServer", "Simulator"]
