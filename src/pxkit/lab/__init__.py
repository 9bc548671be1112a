"""pxkit.lab, the Jupyter layer: `suite = await lab.suite([...])` survives cell re-runs; `lab.chart(ctx, "1min")`.

Each name loads its module when first used, so `from pxkit import lab` stays cheap and a notebook that only
wants the kernel-scoped suite never imports the widget stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "suite": "session",
    "close": "session",
    "current": "session",
    "chart": "charting",
    "Chart": "charting",
    "blotter": "blotting",
    "Blotter": "blotting",
    "ladder": "laddering",
    "Ladder": "laddering",
    "ticket": "ticketing",
    "Ticket": "ticketing",
    "correlation": "correlations",
    "Correlation": "correlations",
    "health": "healthbadge",
    "Health": "healthbadge",
    "dashboard": "dashboards",
    "Dashboard": "dashboards",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pxkit.lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
