"""The simulated SignalR hub against real sockets: raw aiohttp WebSockets and the real signalrcore client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from pxkit.codec import Target
from pxkit.sim.hub import Hub, HubConnection, HubMethodError
from signalr_probe import HubError, HubProbe

RS = "\x1e"
CID = "CON.F.US.EP.U25"
PATH = "/hubs/test"
TIMEOUT_TEXT = "Server timeout elapsed without receiving a message from the client."


class Inbox:
    """Collects items on the test's event loop and wakes whoever waits for them."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()
        return self.items


def quote(seq: int) -> dict[str, Any]:
    return {"seq": seq, "lastPrice": 6400.25}


async def _yield_then(count: int, value: Any) -> Any:
    for _ in range(count):
        await asyncio.sleep(0)  # let other tasks run: the reply must still come in call order
    return value


def invoke(conn: HubConnection, target: str, args: list[Any]) -> Any:
    if target == "Echo":
        return args[0]
    if target == "Subscribe":
        for seq in range(args[0]):
            conn.send(Target.QUOTE, [CID, quote(seq)])
        return None
    if target == "YieldThen":
        return _yield_then(args[0], args[1])
    if target == "Fail":
        raise RuntimeError("boom")
    raise HubMethodError(f"Unknown hub method '{target}'")


@dataclass
class Server:
    hub: Hub
    port: int
    connected: Inbox
    disconnected: Inbox

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}"


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    runners: list[web.AppRunner] = []
    servers: list[Server] = []

    async def start(**options: Any) -> Server:
        connected, disconnected = Inbox(), Inbox()
        hub = Hub("test", invoke=invoke, authorize=lambda token: token == "good",
                  on_connect=lambda c: connected.add(c.connection_id),
                  on_disconnect=lambda c: disconnected.add(c.connection_id), **options)
        app = web.Application()
        hub.add_routes(app, PATH)
        runner = web.AppRunner(app, shutdown_timeout=2.0)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        servers.append(Server(hub, port, connected, disconnected))
        return servers[-1]

    yield start
    for runner in runners:
        await runner.cleanup()
    for server in servers:  # on_disconnect ran exactly once for every connection on_connect saw
        assert sorted(server.disconnected.items) == sorted(server.connected.items)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


# ---------------------------------------------------------------- raw client helpers


def record(message: dict[str, Any]) -> str:
    return json.dumps(message) + RS


def invocation(target: str, *args: Any, invocation_id: str | None = None) -> str:
    message: dict[str, Any] = {"type": 1, "target": target, "arguments": list(args)}
    if invocation_id is not None:
        message["invocationId"] = invocation_id
    return record(message)


async def next_frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> list[dict[str, Any]]:
    msg = await ws.receive(timeout)
    assert msg.type is WSMsgType.TEXT, msg
    assert msg.data.endswith(RS)
    return [json.loads(part) for part in msg.data.split(RS)[:-1]]


async def raw_connect(session: aiohttp.ClientSession, url: str, *, version: int = 1,
                      handshake: bool = True) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, autoping=False, heartbeat=None)
    if handshake:
        await ws.send_str(record({"protocol": "json", "version": version}))
        assert await next_frame(ws) == [{}]
    return ws


async def expect_http_error(session: aiohttp.ClientSession, url: str, status: int) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(url)
    assert info.value.status == status


# ---------------------------------------------------------------- signalrcore end to end


@pytest.fixture
async def probes() -> AsyncIterator[list[HubProbe]]:
    """Started signalrcore probes, stopped at teardown."""
    started: list[HubProbe] = []
    yield started
    for probe in started:
        await probe.stop()


async def start_probe(probes: list[HubProbe], server: Server, targets: tuple[str, ...] = (Target.QUOTE,), *,
                      skip_negotiation: bool) -> HubProbe:
    probe = HubProbe(server.http_url, "good", targets, skip_negotiation=skip_negotiation)
    probes.append(probe)
    return await probe.start()


@pytest.mark.parametrize("skip_negotiation", [False, True], ids=["negotiate", "skip-negotiation"])
async def test_signalrcore_invokes_and_receives_events_in_order(
        start_server: StartServer, probes: list[HubProbe], skip_negotiation: bool) -> None:
    server = await start_server()
    probe = await start_probe(probes, server, skip_negotiation=skip_negotiation)
    await server.connected.wait_for(bool)
    assert [c.connection_id for c in server.hub.connections] == server.connected.items

    assert await probe.invoke("Echo", [{"a": [1, 2.5, None]}]) == {"a": [1, 2.5, None]}
    assert await probe.invoke("Subscribe", [300]) is None
    await probe.wait_for(lambda events: len(events) >= 300)
    assert probe.of(Target.QUOTE) == [[CID, quote(seq)] for seq in range(300)]

    with pytest.raises(HubError, match="Unknown hub method 'Nope'"):
        await probe.invoke("Nope", [])

    probes.clear()
    await probe.stop()
    await server.disconnected.wait_for(bool)
    assert server.disconnected.items == server.connected.items
    assert server.hub.connections == []


async def test_signalrcore_receives_a_burst_of_20000_events_complete_and_in_order(
        start_server: StartServer, probes: list[HubProbe]) -> None:
    server = await start_server()
    probe = await start_probe(probes, server, ("Tick",), skip_negotiation=True)
    await server.connected.wait_for(bool)
    conn = server.hub.connections[0]
    total = 20_000
    for seq in range(total):
        conn.send("Tick", [CID, {"seq": seq, "bestBid": 6400.0, "bestAsk": 6400.25, "volume": 1234}])
    await probe.wait_for(lambda events: len(events) >= total, timeout=20.0)
    assert [args[1]["seq"] for args in probe.of("Tick")] == list(range(total))


async def test_drop_all_closes_signalrcore_and_reports_each_disconnect_once(
        start_server: StartServer, probes: list[HubProbe]) -> None:
    server = await start_server()
    for skip in (False, True):
        await start_probe(probes, server, skip_negotiation=skip)
    await server.connected.wait_for(lambda items: len(items) == 2)

    assert server.hub.drop_all() == 2
    assert server.hub.connections == []
    for probe in probes:
        await probe.wait_closed()
    await server.disconnected.wait_for(lambda items: len(items) == 2)
    assert sorted(server.disconnected.items) == sorted(server.connected.items)
    assert server.hub.drop_all() == 0


async def test_close_all_sends_close_message_to_signalrcore(
        start_server: StartServer, probes: list[HubProbe]) -> None:
    server = await start_server()
    probe = await start_probe(probes, server, skip_negotiation=True)
    await server.connected.wait_for(bool)
    async with asyncio.timeout(3.0):
        await server.hub.close_all()
    await probe.wait_closed()
    assert server.disconnected.items == server.connected.items


# ---------------------------------------------------------------- negotiate and connect


async def test_negotiate_answers_v0_without_version_and_v1_when_asked(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server()
    transports = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]

    async with session.post(f"{server.http_url}/negotiate?access_token=good") as resp:
        assert resp.status == 200
        v0 = await resp.json()
    assert v0 == {"negotiateVersion": 0, "connectionId": v0["connectionId"],
                  "availableTransports": transports}

    async with session.post(f"{server.http_url}/negotiate?negotiateVersion=1",
                            headers={"Authorization": "Bearer good"}) as resp:
        v1 = await resp.json()
    assert v1 == {"negotiateVersion": 1, "connectionId": v1["connectionId"],
                  "connectionToken": v1["connectionToken"], "availableTransports": transports}
    assert len({v0["connectionId"], v1["connectionId"], v1["connectionToken"]}) == 3

    async with session.post(f"{server.http_url}/negotiate?negotiateVersion=7&access_token=good") as resp:
        assert (await resp.json())["negotiateVersion"] == 1


async def test_negotiated_ids_are_single_use_and_unknown_ids_are_404(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server()
    async with session.post(f"{server.http_url}/negotiate?access_token=good") as resp:
        v0 = await resp.json()
    async with session.post(f"{server.http_url}/negotiate?negotiateVersion=1&access_token=good") as resp:
        v1 = await resp.json()

    ws_v0 = await raw_connect(session, f"{server.ws_url}?access_token=good&id={v0['connectionId']}")
    ws_v1 = await raw_connect(session, f"{server.ws_url}?access_token=good&id={v1['connectionToken']}")
    await server.connected.wait_for(lambda items: len(items) == 2)
    assert server.connected.items == [v0["connectionId"], v1["connectionId"]]

    await expect_http_error(session, f"{server.ws_url}?access_token=good&id={v0['connectionId']}", 404)
    await expect_http_error(session, f"{server.ws_url}?access_token=good&id={v1['connectionToken']}", 404)
    await expect_http_error(session, f"{server.ws_url}?access_token=good&id={v1['connectionId']}", 404)
    await expect_http_error(session, f"{server.ws_url}?access_token=good&id=nope", 404)
    await ws_v0.close()
    await ws_v1.close()
    await server.disconnected.wait_for(lambda items: len(items) == 2)


async def test_bad_token_is_401_on_negotiate_and_websocket(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server()
    for query in ("?access_token=bad", ""):
        async with session.post(f"{server.http_url}/negotiate{query}") as resp:
            assert resp.status == 401
        await expect_http_error(session, f"{server.ws_url}{query}", 401)
    async with session.post(f"{server.http_url}/negotiate", headers={"Authorization": "Bearer bad"}) as resp:
        assert resp.status == 401
    ws = await session.ws_connect(server.ws_url, headers={"Authorization": "Bearer good"})
    await ws.close()
    assert server.connected.items == []


# ---------------------------------------------------------------- handshake and messages


@pytest.mark.parametrize("version", [0, 1])
async def test_handshake_accepts_version_0_and_1(
        start_server: StartServer, session: aiohttp.ClientSession, version: int) -> None:
    server = await start_server()
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good", version=version)
    await ws.send_str(invocation("Echo", version, invocation_id="1"))
    assert await next_frame(ws) == [{"type": 3, "invocationId": "1", "result": version}]
    await ws.close()


@pytest.mark.parametrize(("handshake", "error"), [
    ({"protocol": "json", "version": 2}, "The server does not support version 2 of the 'json' protocol."),
    ({"protocol": "messagepack", "version": 1}, "The protocol 'messagepack' is not supported."),
])
async def test_handshake_rejects_unsupported_version_or_protocol(
        start_server: StartServer, session: aiohttp.ClientSession,
        handshake: dict[str, Any], error: str) -> None:
    server = await start_server()
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good", handshake=False)
    await ws.send_str(record(handshake))
    assert await next_frame(ws) == [{"error": error}]
    assert (await ws.receive(3.0)).type is WSMsgType.CLOSE
    assert server.connected.items == []
    assert server.hub.connections == []


async def test_records_sharing_a_frame_are_all_answered_in_call_order(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server(coalesce=False)
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good", handshake=False)
    await ws.send_str(record({"protocol": "json", "version": 1}) + invocation("Echo", "a", invocation_id="1"))
    assert await next_frame(ws) == [{}]
    assert await next_frame(ws) == [{"type": 3, "invocationId": "1", "result": "a"}]

    await ws.send_str(invocation("YieldThen", 20, "slow", invocation_id="2") + record({"type": 6})
                      + invocation("Echo", "fast", invocation_id="3"))
    assert await next_frame(ws) == [{"type": 3, "invocationId": "2", "result": "slow"}]
    assert await next_frame(ws) == [{"type": 3, "invocationId": "3", "result": "fast"}]

    # a record split over two frames
    text = invocation("Echo", [1, 2], invocation_id="4")
    await ws.send_str(text[:10])
    await ws.send_str(text[10:])
    assert await next_frame(ws) == [{"type": 3, "invocationId": "4", "result": [1, 2]}]
    await ws.close()


async def test_completions_for_errors_none_results_and_no_invocation_id(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server(coalesce=False)
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good")
    await ws.send_str(invocation("Nope", 1, invocation_id="1"))
    assert await next_frame(ws) == [{"type": 3, "invocationId": "1", "error": "Unknown hub method 'Nope'"}]
    await ws.send_str(invocation("Fail", invocation_id="2"))
    assert await next_frame(ws) == [{"type": 3, "invocationId": "2",
                                     "error": "An unexpected error occurred invoking 'Fail' on the server."}]
    await ws.send_str(invocation("Echo", None, invocation_id="3"))
    assert await next_frame(ws) == [{"type": 3, "invocationId": "3"}]
    # without an invocationId there is no completion: the next frame answers the following call
    await ws.send_str(invocation("Echo", "quiet") + invocation("Nope")
                      + invocation("Echo", "loud", invocation_id="4"))
    assert await next_frame(ws) == [{"type": 3, "invocationId": "4", "result": "loud"}]
    await ws.close()


async def test_invalid_record_closes_with_error(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server()
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good")
    await ws.send_str("not json" + RS)
    [close] = await next_frame(ws)
    assert close["type"] == 7
    assert close["error"].startswith("Connection closed with an error.")
    assert (await ws.receive(3.0)).type is WSMsgType.CLOSE
    await server.disconnected.wait_for(bool)


# ---------------------------------------------------------------- pings, timeouts, closing


async def test_server_pings_and_never_sends_websocket_ping_frames(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server(ping_interval=0.1, client_timeout=0.5)
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good")
    pings = 0
    async with asyncio.timeout(3.0):
        while pings < 6:  # 0.6 s of traffic, longer than the client timeout: our own pings keep us alive
            msg = await ws.receive()
            assert msg.type is WSMsgType.TEXT, msg  # never a PING/PONG frame
            assert msg.data == record({"type": 6}).replace(" ", "")
            pings += 1
            await ws.send_str(record({"type": 6}))
    await ws.ping(b"hi")
    while (msg := await ws.receive(3.0)).type is WSMsgType.TEXT:
        pass
    assert msg.type is WSMsgType.PONG
    assert msg.data == b"hi"
    assert len(server.hub.connections) == 1
    await ws.close()


async def test_silent_client_gets_timeout_close(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server(ping_interval=0.2, client_timeout=0.6)
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good")
    loop = asyncio.get_running_loop()
    started = loop.time()
    records: list[dict[str, Any]] = []
    while not records or records[-1]["type"] == 6:
        records += await next_frame(ws)
    assert records[-1] == {"type": 7, "error": TIMEOUT_TEXT, "allowReconnect": True}
    assert 0.5 <= loop.time() - started < 2.0
    assert (await ws.receive(3.0)).type is WSMsgType.CLOSE
    await server.disconnected.wait_for(bool)
    assert server.hub.connections == []


async def test_connection_close_and_close_all_send_close_message(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server()
    ws1 = await raw_connect(session, f"{server.ws_url}?access_token=good")
    ws2 = await raw_connect(session, f"{server.ws_url}?access_token=good")
    await server.connected.wait_for(lambda items: len(items) == 2)
    first = server.hub.connections[0]
    await first.close("bye")
    assert first.closed
    assert await next_frame(ws1) == [{"type": 7, "error": "bye", "allowReconnect": True}]
    assert (await ws1.receive(3.0)).type is WSMsgType.CLOSE

    await server.hub.close_all()
    assert await next_frame(ws2) == [{"type": 7, "allowReconnect": True}]
    assert (await ws2.receive(3.0)).type is WSMsgType.CLOSE
    assert server.disconnected.items == server.connected.items


async def test_go_silent_stops_all_output_but_new_connections_work(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server(ping_interval=0.1, client_timeout=0.4)
    old = await raw_connect(session, f"{server.ws_url}?access_token=good")
    await server.connected.wait_for(bool)
    conn = server.hub.connections[0]
    assert server.hub.go_silent() == 1
    conn.send(Target.QUOTE, [CID, {}])
    await old.send_str(invocation("Echo", 1, invocation_id="1"))
    await old.ping(b"x")
    with pytest.raises(TimeoutError):  # several pings and the client timeout would be due by now
        await old.receive(0.6)
    assert not conn.closed
    assert server.hub.connections == [conn]

    new = await raw_connect(session, f"{server.ws_url}?access_token=good")
    await new.send_str(invocation("Echo", 2, invocation_id="2"))
    records: list[dict[str, Any]] = []
    while {"type": 6} not in records or len(records) < 2:
        records += await next_frame(new)
    assert {"type": 3, "invocationId": "2", "result": 2} in records

    async with asyncio.timeout(3.0):
        await server.hub.close_all()
    assert (await old.receive(3.0)).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert server.disconnected.items == server.connected.items


# ---------------------------------------------------------------- writer framing


@pytest.mark.parametrize("coalesce", [True, False])
async def test_writer_coalesces_queued_records_into_one_frame_or_not(
        start_server: StartServer, session: aiohttp.ClientSession, coalesce: bool) -> None:
    server = await start_server(coalesce=coalesce)
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good")
    await ws.send_str(invocation("Subscribe", 100, invocation_id="1"))
    frames: list[list[dict[str, Any]]] = []
    while sum(map(len, frames)) < 101:
        frames.append(await next_frame(ws))
    records = [r for frame in frames for r in frame]
    events = [{"type": 1, "target": Target.QUOTE, "arguments": [CID, quote(seq)]} for seq in range(100)]
    assert records == [*events, {"type": 3, "invocationId": "1"}]
    assert len(frames) == (1 if coalesce else 101)
    await ws.close()


async def test_coalesced_frames_are_capped_in_size(
        start_server: StartServer, session: aiohttp.ClientSession) -> None:
    server = await start_server()
    ws = await raw_connect(session, f"{server.ws_url}?access_token=good")
    await ws.send_str(invocation("Subscribe", 5_000, invocation_id="1"))
    frames: list[list[dict[str, Any]]] = []
    while sum(map(len, frames)) < 5_001:
        frames.append(await next_frame(ws))
    assert 1 < len(frames) < 20
    seqs = [r["arguments"][1]["seq"] for frame in frames for r in frame if r["type"] == 1]
    assert seqs == list(range(5_000))
    await ws.close()
