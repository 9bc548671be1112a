"""The hubs' JSON protocol for signalrcore, read record by record: a malformed record is skipped, never its frame."""

from __future__ import annotations

import json
from typing import Any

from signalrcore.messages.close_message import CloseMessage
from signalrcore.messages.completion_message import CompletionMessage
from signalrcore.messages.invocation_message import InvocationMessage
from signalrcore.messages.ping_message import PingMessage
from signalrcore.protocol.json_hub_protocol import JsonHubProtocol

_INVOCATION, _COMPLETION, _PING, _CLOSE = 1, 3, 6, 7
_UNUSED = {2, 4, 5, 8, 9}  # stream items, stream invocations, cancels, acks, sequences: only a sign of life here
_EXCERPT = 60


class BadRecord:
    """A record of a frame that could not be read, handed on in its place so the link counts and logs it."""

    __slots__ = ("excerpt", "reason")

    def __init__(self, reason: str, record: str) -> None:
        self.reason = reason
        self.excerpt = record[:_EXCERPT] + ("..." if len(record) > _EXCERPT else "")

    def __repr__(self) -> str:
        return f"BadRecord({self.reason!r}, {self.excerpt!r})"


class RecordByRecordJsonProtocol(JsonHubProtocol):
    """signalrcore's JSON hub protocol, except that each `\\x1e` record of a frame is parsed and checked on its own.

    signalrcore parses a frame in one go, so one bad record loses every record of it (and stops its receive
    loop). Here a record that is not JSON, not an object, or lacks what its message type needs (an invocation's
    string target and argument list, a completion's string id) becomes a BadRecord; the others go on in order.
    """

    def parse_messages(self, raw: str) -> list[Any]:
        return [_parse(record) for record in raw.split(self.record_separator) if record]


def _parse(record: str) -> Any:
    try:
        message = json.loads(record)
    except (ValueError, RecursionError) as exc:
        return BadRecord(f"not JSON ({type(exc).__name__})", record)
    if not isinstance(message, dict):
        return BadRecord(f"a JSON {type(message).__name__}, not an object", record)
    kind = message.get("type")
    if type(kind) is not int:
        return BadRecord("no integer message type", record)
    invocation_id = message.get("invocationId")
    if kind == _INVOCATION:
        target, arguments = message.get("target"), message.get("arguments")
        if not isinstance(target, str) or not isinstance(arguments, list):
            return BadRecord("an invocation needs a string target and a list of arguments", record)
        return InvocationMessage(invocation_id, target, arguments)
    if kind == _COMPLETION:
        error = message.get("error")
        if not isinstance(invocation_id, str) or not isinstance(error, str | None):
            return BadRecord("a completion needs a string invocationId (and a string error, if any)", record)
        return CompletionMessage(invocation_id, message.get("result"), error)
    if kind == _CLOSE:
        error = message.get("error")
        if not isinstance(error, str | None):
            return BadRecord("a close message's error must be a string", record)
        return CloseMessage(error, message.get("allowReconnect"))
    if kind == _PING or kind in _UNUSED:
        return PingMessage()
    return BadRecord(f"unknown message type {kind}", record)
