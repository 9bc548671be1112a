"""A page for widget tests without a browser: the widget's comm, recording what the kernel would send to it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
from comm import DummyComm


class Page(DummyComm):
    """Stands in for the browser at the far end of a widget's comm.

    `sent` holds every custom message the widget sent (content, buffers, name of the sending thread);
    `say(content)` delivers a message from the page as the kernel's comm machinery does.
    """

    def __init__(self, widget: Any) -> None:
        self.sent: list[tuple[dict[str, Any], list[bytes], str]] = []
        self.widget = widget
        super().__init__(target_name="jupyter.widget")
        widget.comm = self

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        if msg_type == "comm_msg" and isinstance(data, dict) and data.get("method") == "custom":
            blobs = [bytes(b) for b in buffers or ()]
            self.sent.append((data["content"], blobs, threading.current_thread().name))

    def say(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        self.widget._handle_custom_msg(content, buffers or [])

    def of_kind(self, kind: str) -> list[tuple[dict[str, Any], list[bytes], str]]:
        return [m for m in self.sent if m[0].get("kind") == kind]


class TimedPage(Page):
    """A page that also notes the loop time at which each message was sent."""

    def __init__(self, widget: Any) -> None:
        self.times: list[float] = []
        super().__init__(widget)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        before = len(self.sent)
        super().publish_msg(msg_type, data, metadata, buffers, **keys)
        if len(self.sent) > before:
            self.times.append(asyncio.get_running_loop().time())


def columns(content: dict[str, Any], buffers: list[bytes]) -> dict[str, list[float]]:
    """A chart message's buffers back as columns by name: times (float64), then the others (float32)."""
    names = content["columns"]
    values = np.frombuffer(buffers[1], dtype=np.float32).reshape(len(names) - 1, content["rows"])
    return {"time": np.frombuffer(buffers[0], dtype=np.float64).tolist(),
            **{name: values[i].astype(np.float64).tolist() for i, name in enumerate(names[1:])}}
