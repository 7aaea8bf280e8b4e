"""Thousands of malformed requests at /rpc get only JSON-RPC error objects: no 500, no traceback (SPEC §12)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from transports.helpers import Harness, harness, signed

METHODS = ["test.echo", "test.touch", "test.items", "test.task", "test.refuse", "test.add", "test.ping", "test.set"]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
ids = st.none() | st.integers() | st.text(max_size=10) | st.floats() | st.booleans() | st.lists(st.integers())
auths = json_values | st.fixed_dictionaries(
    {"provider_id": st.text(max_size=70), "ts": json_values, "nonce": st.text(max_size=40), "sig": json_values}
)


@st.composite
def requests(draw: st.DrawFn) -> Any:
    request: dict[str, Any] = {}
    if draw(st.booleans()):
        request["jsonrpc"] = draw(st.sampled_from(["2.0", "2.0", "1.0", 2, None]))
    if draw(st.integers(0, 9)):
        request["method"] = draw(st.sampled_from(METHODS) | st.text(max_size=15) | json_values)
    if draw(st.booleans()):
        request["params"] = draw(
            json_values
            | st.dictionaries(
                st.sampled_from(["text", "n", "amount", "limit", "cursor", "task_id", "value"]), json_values
            )
        )
    if draw(st.integers(0, 4)):
        request["id"] = draw(ids)
    if draw(st.integers(0, 3)) == 0:
        request["auth"] = draw(auths)
    if draw(st.integers(0, 9)) == 0:
        request[draw(st.text(max_size=5))] = draw(json_values)
    return request


bodies = (
    requests().map(json.dumps)
    | st.lists(requests(), min_size=0, max_size=6).map(json.dumps)
    | json_values.map(json.dumps)
    | st.builds(lambda p: json.dumps(signed("test.add", {"amount": 1})).replace('"amount": 1', p), st.text(max_size=8))
    | st.binary(max_size=60).map(lambda b: b.decode("latin-1"))
    | st.text(max_size=60)
)


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[Harness, TestClient]]:
    h = harness()
    with TestClient(h.app, raise_server_exceptions=False) as client:
        yield h, client


def _valid_id(request: Any) -> Any:
    if isinstance(request, dict) and "id" in request:
        value = request["id"]
        if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
    return None


def _check_answer(answer: Any, request: Any) -> None:
    assert isinstance(answer, dict), answer
    assert answer["jsonrpc"] == "2.0"
    assert ("result" in answer) != ("error" in answer), answer
    if "error" in answer:
        error = answer["error"]
        assert isinstance(error["code"], int)
        assert not isinstance(error["code"], bool)
        assert error["code"] in {-32700, -32600, -32601, -32602, -32603} or -32099 <= error["code"] <= -32000
        assert isinstance(error["message"], str)
        assert error["message"]
        if error["code"] == -32603:
            assert error == {"code": -32603, "message": error["message"]}
    if request is not None:
        assert answer["id"] == _valid_id(request), (answer, request)


# Three bodies per example: hypothesis spends its time per example, not per body, so 700 examples send 2,100
# malformed bodies (most holding one request, some a batch of up to six) in about half the time.
@pytest.mark.slow
@settings(max_examples=examples(700), suppress_health_check=list(HealthCheck), deadline=None, database=None)
@given(three=st.tuples(bodies, bodies, bodies))
def test_malformed_requests_only_ever_get_json_rpc_errors(
    app: tuple[Harness, TestClient], three: tuple[str, str, str]
) -> None:
    _, client = app
    for body in three:
        _post_and_check(client, body)


def _post_and_check(client: TestClient, body: str) -> None:
    raw = body.encode("utf-8", "surrogatepass")
    response = client.post("/rpc", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (200, 204), (response.status_code, response.text)
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    if response.status_code == 204:
        assert response.content == b""
        return
    answer = response.json()
    try:
        request = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        request = None
    if isinstance(request, list) and request and len(request) <= 50:
        assert isinstance(answer, list)
        answered = [r for r in request if not (isinstance(r, dict) and "id" not in r and _envelope_ok(r))]
        assert len(answer) <= len(request)
        for item in answer:
            _check_answer(item, None)
        assert len(answer) >= len([r for r in answered if not isinstance(r, dict)])
    elif isinstance(request, dict):
        _check_answer(answer, request)
    else:
        _check_answer(answer, None)
        assert "error" in answer


def _no_constants(name: str) -> None:
    raise ValueError(name)


def _envelope_ok(request: dict[str, Any]) -> bool:
    return request.get("jsonrpc") == "2.0" and isinstance(request.get("method"), str)
