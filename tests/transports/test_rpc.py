"""JSON-RPC at /rpc: the shape of every answer and the code of every failure path (SPEC §12, STYLE §4)."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from aicf.core.encoding import to_hex
from aicf.transports.rpc import Limits, decode_cursor, encode_cursor
from transports.helpers import OPERATOR_TOKEN, START, Harness, fresh_nonce, harness, key, pid, signed

JSON = {"content-type": "application/json"}


@pytest.fixture
def h() -> Harness:
    return harness()


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient]:
    with TestClient(h.app) as c:
        yield c


def rpc(client: TestClient, body: object, headers: dict[str, str] | None = None) -> Any:
    response = client.post("/rpc", content=json.dumps(body), headers={**JSON, **(headers or {})})
    assert response.status_code == 200, response.text
    return response.json()


def err(answer: dict[str, Any], code: int, request_id: object = 1) -> dict[str, Any]:
    """Assert `answer` is a JSON-RPC error with `code` and the request id; return its error object."""
    assert answer.get("jsonrpc") == "2.0"
    assert "result" not in answer
    assert answer["id"] == request_id
    assert answer["error"]["code"] == code, answer
    assert isinstance(answer["error"]["message"], str)
    assert answer["error"]["message"]
    return dict(answer["error"])


def call(method: str, params: object = None, request_id: object = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        out["params"] = params
    return out


# ---- success shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [1, 0, -7, 2**70, "abc", "", None])
def test_a_result_echoes_the_request_id(client: TestClient, request_id: object) -> None:
    answer = rpc(client, call("test.echo", {"text": "hi", "n": 3}, request_id))
    assert answer == {"jsonrpc": "2.0", "result": {"text": "hi", "n": 3, "method": "test.echo"}, "id": request_id}


def test_bytes_go_out_as_0x_hex_and_integers_as_integers(client: TestClient) -> None:
    task = bytes(range(32))
    answer = rpc(client, call("test.task", {"task_id": to_hex(task)}))
    assert answer["result"] == {"task_id": to_hex(task), "raw": [0, 1]}


def test_absent_params_mean_an_empty_object(client: TestClient, h: Harness) -> None:
    assert rpc(client, call("test.touch"))["result"] == 1
    assert rpc(client, call("test.touch", {}))["result"] == 2


def test_a_notification_runs_and_gets_no_answer(client: TestClient, h: Harness) -> None:
    response = client.post("/rpc", json={"jsonrpc": "2.0", "method": "test.touch"})
    assert response.status_code == 204
    assert response.content == b""
    assert h.state.touched == 1


def test_a_failing_notification_gets_no_answer_either(client: TestClient) -> None:
    response = client.post("/rpc", json={"jsonrpc": "2.0", "method": "nope"})
    assert response.status_code == 204


# ---- protocol errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{", b"", b"not json", b'{"jsonrpc": "2.0", "method": "test.touch", "id": 1,}', b"\xff\xfe{}", b"NaN",
     b'{"jsonrpc": "2.0", "method": "test.echo", "params": {"text": "x", "n": Infinity}, "id": 1}',
     b"[" * 100_000, b"1" * 5000],
    ids=["truncated", "empty", "text", "trailing-comma", "not-utf8", "nan", "infinity", "deep", "huge-int"],
)  # fmt: skip
def test_a_body_that_is_not_json_is_a_parse_error_with_a_null_id(client: TestClient, body: bytes) -> None:
    response = client.post("/rpc", content=body, headers=JSON)
    assert response.status_code == 200
    error = err(response.json(), -32700, None)
    assert error["message"].startswith("parse error")


def test_json_nested_deeper_than_the_limit_is_a_parse_error(client: TestClient) -> None:
    params: Any = {"text": "x"}
    for _ in range(70):
        params = {"a": params}
    error = err(rpc(client, call("test.echo", params)), -32700, None)
    assert "nested deeper" in error["message"]


@pytest.mark.parametrize(
    ("body", "request_id", "says"),
    [
        ({"method": "test.touch", "id": 1}, 1, '"jsonrpc" must be exactly "2.0"'),
        ({"jsonrpc": "1.0", "method": "test.touch", "id": 1}, 1, '"jsonrpc" must be exactly "2.0"'),
        ({"jsonrpc": 2.0, "method": "test.touch", "id": 1}, 1, '"jsonrpc" must be exactly "2.0"'),
        ({"jsonrpc": "2.0", "id": 1}, 1, '"method" must be a string'),
        ({"jsonrpc": "2.0", "method": 5, "id": "x"}, "x", '"method" must be a string'),
        ({"jsonrpc": "2.0", "method": "test.touch", "params": "x", "id": 1}, 1, '"params" must be an object'),
        ({"jsonrpc": "2.0", "method": "test.touch", "params": 3, "id": 1}, 1, '"params" must be an object'),
        ({"jsonrpc": "2.0", "method": "test.touch", "params": None, "id": 1}, 1, '"params" must be an object'),
        ({"jsonrpc": "2.0", "method": "test.touch", "id": 1.5}, None, '"id" must be a string, an integer or null'),
        ({"jsonrpc": "2.0", "method": "test.touch", "id": True}, None, '"id" must be a string, an integer or null'),
        ({"jsonrpc": "2.0", "method": "test.touch", "id": [1]}, None, '"id" must be a string, an integer or null'),
        ({"jsonrpc": "2.0", "method": "test.touch", "id": 1, "extra": 1}, 1, "unknown member(s) 'extra'"),
        ({"jsonrpc": "2.0", "method": "test.touch", "id": 1, "auth": {}}, 1, '"auth" is only for provider methods'),
        ([], None, "empty batch"),
        ("a string", None, "a request must be a JSON object"),
        (17, None, "a request must be a JSON object"),
        (None, None, "a request must be a JSON object"),
    ],
)
def test_a_malformed_request_is_an_invalid_request(
    client: TestClient, body: object, request_id: object, says: str
) -> None:
    error = err(rpc(client, body), -32600, request_id)
    assert says in error["message"]


def test_an_unknown_method_is_method_not_found(client: TestClient) -> None:
    error = err(rpc(client, call("aicf.nope", {})), -32601)
    assert "aicf.nope" in error["message"]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({}, "text", "Field required"),
        ({"text": 5}, "text", "valid string"),
        ({"text": "x", "n": "5"}, "n", "valid integer"),
        ({"text": "x", "n": 5.0}, "n", "valid integer"),
        ({"text": "x", "n": True}, "n", "valid integer"),
        ({"text": "x", "n": -1}, "n", "greater than or equal to 0"),
        ({"text": "x", "zzz": 1}, "zzz", "Extra inputs are not permitted"),
    ],
)
def test_params_failing_the_schema_are_invalid_params_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str, reason: str
) -> None:
    error = err(rpc(client, call("test.echo", params)), -32602)
    assert error["message"].startswith(f"invalid params: {field}: ")
    assert any(e["field"] == field and reason in e["reason"] for e in error["data"]["errors"]), error


def test_bytes_params_must_be_0x_hex_of_the_right_length(client: TestClient) -> None:
    for bad in ["00" * 32, "0x" + "00" * 31, "0x" + "zz" * 32, "0x" + "0" * 63, 5]:
        error = err(rpc(client, call("test.task", {"task_id": bad})), -32602)
        assert error["data"]["errors"][0]["field"] == "task_id"


def test_params_by_position_are_refused_as_invalid_params(client: TestClient) -> None:
    error = err(rpc(client, call("test.echo", ["hi"])), -32602)
    assert "by name" in error["message"]


def test_an_aicf_error_from_a_handler_keeps_its_code_and_message(client: TestClient) -> None:
    error = err(rpc(client, call("test.refuse", {})), -32013)
    assert error["message"] == "request rejected: model: unknown model 'gpt-9'"


@pytest.mark.parametrize("method", ["test.boom", "test.floaty"])
def test_a_bug_is_an_internal_error_with_a_bland_message_and_a_logged_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="aicf.transports.rpc"):
        response = client.post("/rpc", json=call(method, {}))
    assert response.status_code == 200
    error = err(response.json(), -32603)
    assert "internal error" in error["message"]
    assert "Traceback" not in response.text
    assert "passwd" not in response.text
    assert "data" not in error
    assert any(r.exc_info for r in caplog.records)


# ---- batches and limits ------------------------------------------------------------------------------------


def test_a_batch_answers_each_call_in_order_and_skips_notifications(client: TestClient, h: Harness) -> None:
    answer = rpc(
        client,
        [
            call("test.echo", {"text": "a"}, 1),
            {"jsonrpc": "2.0", "method": "test.touch"},
            call("nope", {}, "two"),
            5,
            call("test.echo", {"text": 1}, 3),
        ],
    )
    assert [a["id"] for a in answer] == [1, "two", None, 3]
    assert answer[0]["result"]["text"] == "a"
    assert [a.get("error", {}).get("code") for a in answer] == [None, -32601, -32600, -32602]
    assert h.state.touched == 1


def test_a_batch_of_notifications_only_is_answered_with_204(client: TestClient, h: Harness) -> None:
    response = client.post("/rpc", json=[{"jsonrpc": "2.0", "method": "test.touch"}] * 3)
    assert response.status_code == 204
    assert h.state.touched == 3


def test_a_batch_at_the_limit_passes_and_one_more_is_refused_whole(client: TestClient, h: Harness) -> None:
    assert len(rpc(client, [call("test.touch", {}, i) for i in range(50)])) == 50
    error = err(rpc(client, [call("test.touch", {}, i) for i in range(51)]), -32051, None)
    assert "51 calls, the limit is 50" in error["message"]
    assert h.state.touched == 50


def test_a_body_over_the_limit_is_refused_with_413_and_a_json_rpc_error(client: TestClient, h: Harness) -> None:
    big = call("test.echo", {"text": "x" * (1 << 20)})
    response = client.post("/rpc", content=json.dumps(big), headers=JSON)
    assert response.status_code == 413
    error = err(response.json(), -32050, None)
    assert "1048576" in error["message"]


def test_a_streamed_body_over_the_limit_is_refused_too() -> None:
    small = harness(limits=Limits(max_body_bytes=1000))

    def chunks() -> Iterator[bytes]:
        yield b'{"jsonrpc": "2.0", "method": "test.echo", "params": {"text": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}, "id": 1}'

    with TestClient(small.app) as c:
        response = c.post("/rpc", content=chunks(), headers=JSON)  # no content-length: chunked
    assert response.status_code == 413
    err(response.json(), -32050, None)


def test_get_on_rpc_is_method_not_allowed(client: TestClient) -> None:
    assert client.get("/rpc").status_code == 405


# ---- operator methods ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "send the header"),
        ({"Authorization": "Bearer wrong"}, "token is wrong"),
        ({"Authorization": f"Basic {OPERATOR_TOKEN}"}, "must be `Bearer"),
        ({"Authorization": "Bearer"}, "must be `Bearer"),
        ({"Authorization": f"Bearer {OPERATOR_TOKEN}x"}, "token is wrong"),
    ],
)
def test_an_operator_method_without_the_right_token_is_refused_and_changes_nothing(
    client: TestClient, h: Harness, headers: dict[str, str], says: str
) -> None:
    error = err(rpc(client, call("test.set", {"value": 7}), headers), -32052)
    assert says in error["message"]
    assert h.state.setting == 0


def test_an_operator_method_with_the_token_runs(client: TestClient, h: Harness) -> None:
    answer = rpc(client, call("test.set", {"value": 7}), {"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert answer["result"] == 7
    assert h.state.setting == 7


def test_operator_methods_are_disabled_without_a_configured_token() -> None:
    h = harness(operator_token=None)
    with TestClient(h.app) as c:
        error = err(rpc(c, call("test.set", {"value": 7}), {"Authorization": "Bearer "}), -32052)
    assert "disabled" in error["message"]


# ---- provider methods ------------------------------------------------------------------------------------------


def test_a_signed_provider_call_runs_as_that_provider(client: TestClient, h: Harness) -> None:
    answer = rpc(client, signed("test.add", {"amount": 5}))
    assert answer["result"] == {"counter": 5, "provider_id": to_hex(pid(key(1)))}
    assert h.state.by_provider == {pid(key(1)): 5}
    assert rpc(client, signed("test.ping", {}, signer=key(2)))["result"] == to_hex(pid(key(2)))


@pytest.mark.parametrize("skew", [-60, 60])
def test_a_timestamp_at_the_edge_of_the_window_passes(client: TestClient, h: Harness, skew: int) -> None:
    assert rpc(client, signed("test.add", {"amount": 1}, ts=START + skew))["result"]["counter"] == 1


def _refused(client: TestClient, h: Harness, body: object, code: int) -> dict[str, Any]:
    before = h.state.snapshot()
    error = err(rpc(client, body), code)
    assert h.state.snapshot() == before
    return error


def test_a_provider_call_without_auth_is_refused(client: TestClient, h: Harness) -> None:
    error = _refused(client, h, call("test.add", {"amount": 5}), -32053)
    assert "auth" in error["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sig": "0x00"}, "sig"),
        ({"nonce": "0x" + "00" * 15}, "nonce"),
        ({"provider_id": "ab" * 32}, "provider_id"),
        ({"ts": "1700000000"}, "ts"),
        ({"ts": -1}, "ts"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_malformed_auth_is_refused_naming_the_field(
    client: TestClient, h: Harness, change: dict[str, Any], field: str
) -> None:
    body = signed("test.add", {"amount": 5})
    body["auth"].update(change)
    error = _refused(client, h, body, -32053)
    assert f"auth.{field}" in error["message"]


def test_auth_that_is_not_an_object_is_refused(client: TestClient, h: Harness) -> None:
    body = signed("test.add", {"amount": 5})
    body["auth"] = "0xdeadbeef"
    _refused(client, h, body, -32053)


@pytest.mark.parametrize("skew", [-61, 61, -(10**6), 10**6])
def test_a_timestamp_outside_the_window_is_refused(client: TestClient, h: Harness, skew: int) -> None:
    error = _refused(client, h, signed("test.add", {"amount": 5}, ts=START + skew), -32054)
    assert "±60 s" in error["message"]


def test_a_request_from_an_unknown_provider_is_refused(client: TestClient, h: Harness) -> None:
    error = _refused(client, h, signed("test.add", {"amount": 5}, signer=key(9)), -32055)
    assert to_hex(pid(key(9))) in error["message"]


def test_a_forged_signature_is_refused(client: TestClient, h: Harness) -> None:
    forged = signed("test.add", {"amount": 5}, signer=key(9))
    forged["auth"]["provider_id"] = to_hex(pid(key(1)))  # claims to be provider 1, signed by another key
    _refused(client, h, forged, -32056)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b["params"].update(amount=500),
        lambda b: b["params"].update(note="x"),
        lambda b: b.update(method="test.ping", params={}),
        lambda b: b["auth"].update(ts=b["auth"]["ts"] + 1),
        lambda b: b["auth"].update(nonce="0x" + "ff" * 16),
        lambda b: b["auth"].update(sig=b["auth"]["sig"][:-2] + ("00" if b["auth"]["sig"][-2:] != "00" else "01")),
    ],
    ids=["params", "added-param", "method", "ts", "nonce", "sig"],
)
def test_any_change_to_a_signed_request_breaks_the_signature(client: TestClient, h: Harness, tamper: Any) -> None:
    body = signed("test.add", {"amount": 5})
    tamper(body)
    _refused(client, h, body, -32056)


def test_a_replayed_request_is_refused_and_runs_once(client: TestClient, h: Harness) -> None:
    body = signed("test.add", {"amount": 5})
    assert rpc(client, body)["result"]["counter"] == 5
    error = _refused(client, h, body, -32057)
    assert "already used" in error["message"]
    h.clock.advance(59)
    _refused(client, h, body, -32057)
    h.clock.advance(2)  # now past the window: the old ts fails first
    _refused(client, h, body, -32054)
    assert h.state.counter == 5


def test_the_same_nonce_is_refused_inside_one_batch(client: TestClient, h: Harness) -> None:
    nonce = fresh_nonce()
    answer = rpc(client, [signed("test.add", {"amount": 5}, nonce=nonce, request_id=i) for i in (1, 2)])
    assert answer[0]["result"]["counter"] == 5
    err(answer[1], -32057, 2)
    assert h.state.counter == 5


def test_another_provider_may_use_the_same_nonce(client: TestClient, h: Harness) -> None:
    nonce = fresh_nonce()
    rpc(client, signed("test.add", {"amount": 1}, nonce=nonce))
    assert rpc(client, signed("test.add", {"amount": 1}, nonce=nonce, signer=key(2)))["result"]["counter"] == 2


def test_a_refused_request_does_not_burn_its_nonce(client: TestClient, h: Harness) -> None:
    nonce = fresh_nonce()
    _refused(client, h, signed("test.add", {"amount": 5000}, nonce=nonce), -32602)  # schema: amount <= 1000
    assert rpc(client, signed("test.add", {"amount": 5}, nonce=nonce))["result"]["counter"] == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [({"amount": 1, "note": 1.5}, "params.note"), ({"amount": 1, "note": None}, "params.note")],
)
def test_signed_params_that_canonical_cbor_cannot_hold_are_invalid_params(
    client: TestClient, h: Harness, params: dict[str, Any], field: str
) -> None:
    body = signed("test.add", {"amount": 1})
    body["params"] = params
    error = _refused(client, h, body, -32602)
    assert error["data"]["errors"][0]["field"] == field


# ---- pagination ---------------------------------------------------------------------------------------------------


def test_pages_follow_the_cursor_to_the_end(client: TestClient, h: Harness) -> None:
    h.state.items = [{"id": i, "name": f"item-{i}"} for i in range(120)]
    seen: list[int] = []
    cursor = None
    sizes = []
    while True:
        params: dict[str, Any] = {"limit": 50} if cursor is None else {"limit": 50, "cursor": cursor}
        page = rpc(client, call("test.items", params))["result"]
        assert set(page) == {"items", "next_cursor"}
        sizes.append(len(page["items"]))
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert sizes == [50, 50, 20]
    assert seen == list(range(120))


def test_the_default_page_is_50_and_the_largest_500(client: TestClient, h: Harness) -> None:
    h.state.items = [{"id": i} for i in range(600)]
    assert len(rpc(client, call("test.items", {}))["result"]["items"]) == 50
    assert len(rpc(client, call("test.items", {"limit": 500}))["result"]["items"]) == 500
    for bad in (0, 501, -1, "10"):
        error = err(rpc(client, call("test.items", {"limit": bad})), -32602)
        assert error["message"].startswith("invalid params: limit: ")


@pytest.mark.parametrize("cursor", ["garbage", "", "!!!", encode_cursor(("x",)), encode_cursor((1, 2)), "e30"])
def test_a_cursor_the_server_did_not_issue_is_invalid_params(client: TestClient, h: Harness, cursor: str) -> None:
    h.state.items = [{"id": i} for i in range(3)]
    error = err(rpc(client, call("test.items", {"cursor": cursor})), -32602)
    assert error["data"]["errors"][0]["field"] == "cursor"


def test_cursors_round_trip_ints_text_and_bytes() -> None:
    key_ = (5, "abc", b"\x00\xff")
    assert decode_cursor(encode_cursor(key_), (int, str, bytes)) == key_


# ---- OpenRPC --------------------------------------------------------------------------------------------------------


def test_the_openrpc_document_lists_every_method_with_its_params_schema(client: TestClient) -> None:
    doc = client.get("/openrpc.json").json()
    assert doc["openrpc"].startswith("1.2")
    methods = {m["name"]: m for m in doc["methods"]}
    assert {"test.echo", "test.add", "test.set", "test.items"} <= set(methods)
    echo = methods["test.echo"]
    assert echo["paramStructure"] == "by-name"
    assert [(p["name"], p["required"], p["schema"]["type"]) for p in echo["params"]] == [
        ("text", True, "string"),
        ("n", False, "integer"),
    ]
    assert methods["test.add"]["x-access"] == "provider"
    assert -32056 in {e["code"] for e in methods["test.add"]["errors"]}
    assert methods["test.set"]["x-access"] == "operator"
    assert methods["test.items"]["x-pagination"]["result"] == "{items, next_cursor}"
    assert methods["test.task"]["params"][0]["schema"]["pattern"] == "^0x[0-9a-fA-F]{64}$"
    assert rpc(client, call("rpc.discover", {}))["result"] == doc
