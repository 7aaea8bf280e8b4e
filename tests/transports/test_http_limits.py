"""/rpc at the HTTP level: only application/json bodies, no CORS, and a body that never arrives is cut off."""

import json
import socket
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from threaded_server import serve_in_thread

from aicf.transports.rpc import Limits
from transports.helpers import Harness, harness

WAIT_S = 10.0
TOUCH = json.dumps({"jsonrpc": "2.0", "method": "test.touch", "id": 1})


@pytest.fixture
def h() -> Harness:
    return harness()


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient]:
    with TestClient(h.app) as c:
        yield c


# ---- content type: a browser cannot post a "simple" cross-site request ------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data",
     "application/jsonp", "application/json-seq"],
    ids=["none", "text-plain", "text-plain-utf8", "form", "multipart", "jsonp", "json-seq"],
)  # fmt: skip
def test_a_body_that_is_not_application_json_is_refused_with_415_and_nothing_runs(
    client: TestClient, h: Harness, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post("/rpc", content=TOUCH, headers=headers)
    assert response.status_code == 415
    answer = response.json()
    assert answer["jsonrpc"] == "2.0"
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600
    assert "Content-Type must be application/json" in answer["error"]["message"]
    assert h.state.touched == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"]
)
def test_application_json_with_or_without_a_charset_is_served(
    client: TestClient, h: Harness, content_type: str
) -> None:
    response = client.post("/rpc", content=TOUCH, headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json()["result"] == 1
    assert h.state.touched == 1


def test_cors_is_not_opened(client: TestClient) -> None:
    preflight = client.options(
        "/rpc",
        headers={
            "origin": "https://evil.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 405  # no route answers a preflight, so a browser never sends the POST
    assert not any(name.lower().startswith("access-control-") for name in preflight.headers)
    post = client.post("/rpc", content=TOUCH, headers={"content-type": "application/json", "origin": "https://x.y"})
    assert not any(name.lower().startswith("access-control-") for name in post.headers)


# ---- a body that never arrives, against a real uvicorn on 127.0.0.1 ------------------------------------------------


@pytest.fixture
def server() -> Iterator[tuple[Harness, int]]:
    h = harness(limits=Limits(body_timeout_s=0.5))
    with serve_in_thread(h.app, backlog=16, lifespan="on") as listening:
        yield h, listening.port


def _read_all(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    out = b""
    while chunk := conn.recv(65536):
        out += chunk
    return out


@pytest.mark.parametrize("sent", [b"", b'{"jsonrpc": "2.0", "me'], ids=["nothing", "a-part"])
def test_a_body_announced_and_never_sent_is_cut_off_with_408_and_the_connection_closed(
    server: tuple[Harness, int], sent: bytes
) -> None:
    h, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as conn:
        conn.sendall(
            b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + sent
        )
        reply = _read_all(conn)  # returns once the server closes: well within WAIT_S
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert b"connection: close" in head.lower()
    answer = json.loads(body)
    assert answer["error"]["code"] == -32600
    assert "did not arrive within 0.5 s" in answer["error"]["message"]
    assert h.state.touched == 0


def test_a_body_that_arrives_in_time_is_served_over_a_real_socket(server: tuple[Harness, int]) -> None:
    h, port = server
    body = TOUCH.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as conn:
        conn.sendall(
            b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        reply = _read_all(conn)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["result"] == 1
    assert h.state.touched == 1
