"""WebSocket /ws under abuse: a connection cap, an Origin check, dead sockets and clients that stop reading."""

import base64
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from threaded_server import serve_in_thread

from aicf.transports.ws import CLOSE_FULL, WsLimits, WsServer, origin_allowed
from transports.helpers import Harness, harness

WAIT_S = 10.0
SUBSCRIBE_ALL = {"op": "subscribe", "topics": ["jobAssigned"], "from_seq": 1}


def ws_server(h: Harness) -> WsServer:
    server = h.app.state.ws
    assert isinstance(server, WsServer)
    return server


# ---- the connection cap --------------------------------------------------------------------------------------------


def test_a_connection_over_the_cap_is_closed_with_1013_and_a_reason_then_a_freed_slot_is_reused() -> None:
    h = harness(ws_limits=WsLimits(max_connections=2, poll_interval_s=0.01))
    with (
        TestClient(h.app) as client,
        client.websocket_connect("/ws") as first,
        client.websocket_connect("/ws") as second,
    ):
        for ws in (first, second):
            ws.send_json({"op": "subscribe", "topics": ["jobAssigned"]})
            assert ws.receive_json()["type"] == "subscribed"
        assert ws_server(h).connections == 2
        with client.websocket_connect("/ws") as third, pytest.raises(WebSocketDisconnect) as closed:
            third.receive_json()
        assert closed.value.code == CLOSE_FULL == 1013
        assert "2 connections" in closed.value.reason
        first.close()
        assert ws_server(h).wait_connections(at_most=1, timeout_s=WAIT_S)
        with client.websocket_connect("/ws") as again:  # the slot the first one freed
            again.send_json({"op": "subscribe", "topics": ["jobAssigned"]})
            assert again.receive_json()["type"] == "subscribed"
    assert ws_server(h).wait_connections(at_most=0, timeout_s=WAIT_S)


def test_the_connection_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        WsLimits(max_connections=0)


# ---- Origin ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://testserver.evil.example", "http://testserver:8080", "null", "file://",
     "http://user@evil.example"],
)  # fmt: skip
def test_a_browser_from_another_origin_is_refused_with_403_naming_the_origin(origin: str) -> None:
    h = harness()
    with TestClient(h.app) as client, pytest.raises(WebSocketDenialResponse) as denied:  # noqa: SIM117
        with client.websocket_connect("/ws", headers={"origin": origin}):
            pass
    assert denied.value.status_code == 403
    assert denied.value.json() == {"error": f"origin {origin!r} may not open /ws (allowed: this server's own origin)"}
    assert ws_server(h).connections == 0


@pytest.mark.parametrize("origin", [None, "http://testserver", "http://TESTSERVER:80", "https://dash.example"])
def test_no_origin_the_same_origin_and_an_allowed_origin_are_served(origin: str | None) -> None:
    h = harness(ws_limits=WsLimits(allowed_origins=frozenset({"https://dash.example"})))
    headers = {} if origin is None else {"origin": origin}
    with TestClient(h.app) as client, client.websocket_connect("/ws", headers=headers) as ws:
        ws.send_json({"op": "subscribe", "topics": ["jobAssigned"]})
        assert ws.receive_json()["type"] == "subscribed"


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed", "ok"),
    [
        (None, "a.example", "ws", frozenset(), True),
        ("http://a.example", "a.example", "ws", frozenset(), True),
        ("https://a.example", "a.example", "wss", frozenset(), True),
        ("http://a.example:8000", "a.example:8000", "ws", frozenset(), True),
        ("http://a.example:8000", "a.example:8001", "ws", frozenset(), False),
        ("http://a.example", "a.example:443", "wss", frozenset(), False),
        ("http://b.example", "a.example", "ws", frozenset({"http://b.example"}), True),
        ("http://b.example/", "a.example", "ws", frozenset({"HTTP://B.example"}), True),
        ("http://b.example", None, "ws", frozenset(), False),
        ("http://a.example:notaport", "a.example", "ws", frozenset(), False),
        ("ftp://a.example", "a.example", "ws", frozenset(), False),
    ],
)
def test_origin_allowed_compares_host_and_port_or_the_allowlist(
    origin: str | None, host: str | None, scheme: str, allowed: frozenset[str], ok: bool
) -> None:
    assert origin_allowed(origin, host, scheme, allowed) is ok


# ---- dead sockets and slow readers, against a real uvicorn on 127.0.0.1 -------------------------------------------


@contextlib.contextmanager
def serving(limits: WsLimits) -> Iterator[tuple[Harness, int, uvicorn.Server]]:
    """A real uvicorn on 127.0.0.1 over a harness holding 20,000 events of about 250 bytes (5 MB of history)."""
    h = harness(ws_limits=limits)
    h.events.append_many([("jobAssigned", {"i": i, "pad": "x" * 200}) for i in range(1, 20_001)])
    # log_config=None: uvicorn's and asyncio's records reach the root logger, where caplog counts them
    with serve_in_thread(h.app, backlog=128, log_config=None, lifespan="on") as listening:
        yield h, listening.port, listening.server


def _masked_text(text: str) -> bytes:
    """A client's text frame (clients must mask)."""
    data, mask = text.encode(), os.urandom(4)
    size = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + struct.pack("!H", len(data))
    return bytes([0x81]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _subscribe_raw(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A bare TCP WebSocket client that has subscribed from seq 1 (no library between the test and the socket)."""
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    conn.settimeout(WAIT_S)
    conn.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    conn.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:  # the server reads frames only after its handshake answer
        head += conn.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    conn.sendall(_masked_text(json.dumps(SUBSCRIBE_ALL)))
    return conn


def test_twenty_clients_that_drop_their_tcp_connection_mid_replay_log_little_and_are_removed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with serving(WsLimits(page=500, poll_interval_s=0.01, send_timeout_s=WAIT_S)) as (h, port, _):
        clients = [_subscribe_raw(port) for _ in range(20)]
        for conn in clients:
            got = 0
            while got < 64 * 1024:  # the replay of the 20,000 events is under way
                got += len(conn.recv(65536))
            conn.close()  # with unread data in its buffer: the kernel answers the server's next write with a reset
        assert ws_server(h).wait_connections(at_most=0, timeout_s=WAIT_S)
        assert h.app.state.events.subscribers == 0
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) <= 20, f"{len(lines)} log lines, e.g. {lines[:3]}"


def test_a_client_that_stops_reading_is_let_go_after_send_timeout_with_a_bounded_buffer() -> None:
    with serving(WsLimits(page=500, poll_interval_s=0.01, send_timeout_s=0.5)) as (h, port, uv):
        conn = _subscribe_raw(port, rcvbuf=4096)  # subscribes from seq 1 to 20,000 events (5 MB), reads nothing
        try:
            assert ws_server(h).wait_connections(at_most=0, timeout_s=WAIT_S)  # dropped after 0.5 s without progress
            assert h.app.state.events.subscribers == 0
            buffered = [_write_buffer(p) for p in list(uv.server_state.connections)]
            assert all(size <= 256 * 1024 for size in buffered), buffered  # not the 5 MB of history
        finally:
            conn.close()


def _write_buffer(protocol: Any) -> int:
    transport = getattr(protocol, "transport", None)
    return int(transport.get_write_buffer_size()) if transport is not None else 0
