"""WebSocket /ws: subscribe, replay from a sequence number, live events, lagging clients, resume (SPEC §12)."""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from threaded_server import serve_in_thread

from aicf.client import EventSubscriber, SubscriptionError, WsEvent
from aicf.transports.ws import MemoryEventSource, WsLimits
from transports.helpers import Harness, harness

WAIT_S = 10.0


def fill(events: MemoryEventSource, n: int, topic: str = "jobAssigned") -> None:
    events.append_many([(topic, {"i": events.latest_seq() + k + 1, "task_id": b"\x01\x02"}) for k in range(n)])


# ---- protocol, through starlette's TestClient --------------------------------------------------------------


@pytest.fixture
def h() -> Harness:
    return harness(ws_limits=WsLimits(queue_max=4, poll_interval_s=0.01))


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient]:
    with TestClient(h.app) as c:
        yield c


def test_replay_from_a_sequence_number_then_live_events(client: TestClient, h: Harness) -> None:
    fill(h.events, 5)
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "subscribe", "topics": ["jobAssigned"], "from_seq": 3})
        assert ws.receive_json() == {
            "type": "subscribed",
            "topics": ["jobAssigned"],
            "from_seq": 3,
            "latest_seq": 5,
        }
        assert [ws.receive_json()["seq"] for _ in range(3)] == [3, 4, 5]
        fill(h.events, 2)
        h.app.state.events.notify()
        live = [ws.receive_json() for _ in range(2)]
    assert live == [
        {"type": "event", "seq": 6, "topic": "jobAssigned", "data": {"i": 6, "task_id": "0x0102"}},
        {"type": "event", "seq": 7, "topic": "jobAssigned", "data": {"i": 7, "task_id": "0x0102"}},
    ]


def test_only_the_subscribed_topics_arrive_with_their_global_numbers(client: TestClient, h: Harness) -> None:
    h.events.append_many(
        [("jobAssigned", {}), ("epochSettled", {"epoch": 1}), ("jobCompleted", {}), ("epochSettled", {"epoch": 2})]
    )
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "subscribe", "topics": ["epochSettled", "providerSlashed"], "from_seq": 1})
        assert ws.receive_json()["topics"] == ["epochSettled", "providerSlashed"]
        got = [ws.receive_json() for _ in range(2)]
    assert [(e["seq"], e["data"]["epoch"]) for e in got] == [(2, 1), (4, 2)]


def test_without_from_seq_only_new_events_arrive(client: TestClient, h: Harness) -> None:
    fill(h.events, 3)
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "subscribe", "topics": ["jobAssigned"]})
        assert ws.receive_json()["from_seq"] == 4
        fill(h.events, 1)
        assert ws.receive_json()["seq"] == 4


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ({"op": "subscribe", "topics": ["nope"]}, -32602, "topics[0]"),
        ({"op": "subscribe", "topics": []}, -32602, "topics"),
        ({"op": "subscribe", "topics": ["jobAssigned"], "from_seq": 0}, -32602, "from_seq"),
        ({"op": "subscribe", "topics": ["jobAssigned"], "from_seq": "1"}, -32602, "from_seq"),
        ({"op": "listen", "topics": ["jobAssigned"]}, -32602, "op"),
        ({"op": "subscribe", "topics": ["jobAssigned"], "x": 1}, -32602, "x"),
    ],
)
def test_a_bad_subscribe_is_answered_with_an_error_and_closed(
    client: TestClient, message: dict[str, Any], code: int, field: str
) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json(message)
        answer = ws.receive_json()
        assert answer["type"] == "error"
        assert answer["code"] == code
        assert answer["data"]["errors"][0]["field"] == field
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


def test_a_subscribe_that_is_not_json_is_a_parse_error(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text("{nope")
        assert ws.receive_json()["code"] == -32700


def test_a_client_that_falls_behind_is_told_and_disconnected(client: TestClient, h: Harness) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "subscribe", "topics": ["jobAssigned"]})
        ws.receive_json()  # subscribed: this connection is now live at the hub
        fill(h.events, 20)  # one hub read of 20 events against a queue of 4
        h.app.state.events.notify()
        messages: list[dict[str, Any]] = []
        with pytest.raises(WebSocketDisconnect) as closed:
            _read_until_closed(ws, messages)
    assert closed.value.code == 1013
    events, notice = messages[:-1], messages[-1]
    assert notice["type"] == "lagged"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert notice["resume_from"] == len(events) + 1
    with client.websocket_connect("/ws") as ws:  # resuming gets the rest, nothing missed
        ws.send_json({"op": "subscribe", "topics": ["jobAssigned"], "from_seq": notice["resume_from"]})
        ws.receive_json()
        rest = [ws.receive_json()["seq"] for _ in range(20 - len(events))]
    assert rest == list(range(len(events) + 1, 21))


def _read_until_closed(ws: Any, into: list[dict[str, Any]]) -> None:
    while True:
        into.append(ws.receive_json())


# ---- resume against a real uvicorn on 127.0.0.1 ----------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[tuple[Harness, str]]:
    h = harness(ws_limits=WsLimits(queue_max=8, page=64, poll_interval_s=0.01))
    with serve_in_thread(h.app, backlog=128, ws="websockets-sansio", lifespan="on") as listening:
        yield h, f"ws://127.0.0.1:{listening.port}/ws"


def collect(sub: EventSubscriber, n: int) -> list[WsEvent]:
    out: list[WsEvent] = []
    for event in sub.events():
        out.append(event)
        if len(out) == n:
            break
    return out


def test_a_client_that_disconnects_and_resumes_misses_no_event(server: tuple[Harness, str]) -> None:
    h, url = server
    fill(h.events, 10)
    first = EventSubscriber(url, ["jobAssigned", "jobCompleted"], from_seq=1, recv_timeout_s=WAIT_S)
    got = collect(first, 4)  # leaving the loop closes the connection
    assert first.next_seq == 5
    fill(h.events, 10, topic="jobCompleted")
    fill(h.events, 5)
    second = EventSubscriber(url, ["jobAssigned", "jobCompleted"], from_seq=first.next_seq, recv_timeout_s=WAIT_S)
    got += collect(second, 21)
    assert [e.seq for e in got] == list(range(1, 26))
    assert [e.data["i"] for e in got] == list(range(1, 26))


def test_a_lagging_subscriber_resumes_by_itself_and_misses_no_event(server: tuple[Harness, str]) -> None:
    h, url = server
    live = threading.Event()
    sub = EventSubscriber(
        url, ["jobAssigned"], recv_timeout_s=WAIT_S, sleep=lambda _: None, on_subscribed=lambda _: live.set()
    )
    got: list[WsEvent] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            got.extend(collect(sub, 300))
        except (TimeoutError, SubscriptionError) as exc:
            errors.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    assert live.wait(WAIT_S)
    for _ in range(3):
        fill(h.events, 100)  # each hub read brings far more than the queue of 8 holds
    reader.join(WAIT_S * 3)
    assert not errors
    assert [e.seq for e in got] == list(range(1, 301))
    assert sub.lagged >= 1
    assert sub.reconnects >= sub.lagged
