"""aicf.client.RpcClient against the test API: reads, signed provider calls, the operator token, errors, pages."""

from collections.abc import Iterator
from typing import cast

import httpx
import pytest
from starlette.testclient import TestClient

from aicf.client import RpcClient, RpcError, RpcTransportError
from aicf.client.signing import UNBOUND
from aicf.core.clock import FakeClock
from aicf.core.encoding import to_hex
from transports.helpers import OPERATOR_TOKEN, START, Harness, harness, key, pid


@pytest.fixture
def h() -> Harness:
    return harness()


@pytest.fixture
def http(h: Harness) -> Iterator[TestClient]:
    with TestClient(h.app) as c:
        yield c


def counter_nonces() -> Iterator[bytes]:
    n = 0
    while True:
        n += 1
        yield n.to_bytes(16, "big")


def client_for(http: TestClient, h: Harness, **kwargs: object) -> RpcClient:
    nonces = counter_nonces()
    kwargs.setdefault("deployment", UNBOUND)  # the test harness is a framework-only server, bound to no deployment
    return RpcClient("/rpc", http=cast(httpx.Client, http), clock=h.clock, nonce=lambda: next(nonces), **kwargs)  # type: ignore[arg-type]


def test_a_read_call_returns_the_result(http: TestClient, h: Harness) -> None:
    assert client_for(http, h).call("test.echo", {"text": "hi"}) == {"text": "hi", "n": 0, "method": "test.echo"}


def test_an_error_answer_raises_rpc_error_with_code_message_and_data(http: TestClient, h: Harness) -> None:
    with pytest.raises(RpcError) as caught:
        client_for(http, h).call("test.echo", {"text": 5})
    assert caught.value.code == -32602
    assert caught.value.message.startswith("invalid params: text:")
    assert caught.value.data == {"errors": [{"field": "text", "reason": "Input should be a valid string"}]}


def test_provider_calls_are_signed_with_the_clock_and_a_fresh_nonce(http: TestClient, h: Harness) -> None:
    client = client_for(http, h, provider_key=key(2))
    assert client.provider_id == pid(key(2))
    assert client.call_provider("test.add", {"amount": 3}) == {"counter": 3, "provider_id": to_hex(pid(key(2)))}
    assert client.call_provider("test.add", {"amount": 3})["counter"] == 6  # a new nonce each call
    assert client.call_provider("test.ping") == to_hex(pid(key(2)))


def test_a_provider_client_with_a_skewed_clock_is_refused(http: TestClient, h: Harness) -> None:
    ahead = FakeClock(START + 61)
    client = RpcClient("/rpc", http=cast(httpx.Client, http), clock=ahead, provider_key=key(2), deployment=UNBOUND)
    with pytest.raises(RpcError) as caught:
        client.call_provider("test.add", {"amount": 3})
    assert caught.value.code == -32054
    assert h.state.counter == 0


def test_operator_calls_carry_the_token(http: TestClient, h: Harness) -> None:
    assert client_for(http, h, operator_token=OPERATOR_TOKEN).call_operator("test.set", {"value": 4}) == 4
    wrong = client_for(http, h, operator_token=OPERATOR_TOKEN[::-1])
    with pytest.raises(RpcError) as caught:
        wrong.call_operator("test.set", {"value": 5})
    assert caught.value.code == -32052
    assert h.state.setting == 4


def test_pages_walks_every_item(http: TestClient, h: Harness) -> None:
    h.state.items = [{"id": i} for i in range(130)]
    assert [item["id"] for item in client_for(http, h).pages("test.items", {"limit": 40})] == list(range(130))


def test_a_server_that_does_not_speak_json_rpc_is_a_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    with httpx.Client(transport=httpx.MockTransport(handler)) as http, pytest.raises(RpcTransportError, match="502"):
        RpcClient("http://aicf.test/rpc", http=http).call("test.echo", {"text": "x"})
