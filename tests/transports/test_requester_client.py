"""The requester client's follow loop (aicf.client.requester.Requester.wait) on a scripted coordinator: progress
is reported once per state, a refusal and a time-out raise with the reason, and time is the injected clock's."""

from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.client.requester import Progress, Requester, RequestFailedError
from aicf.client.rpc import RpcError, RpcTransportError

TX = "0x" + "aa" * 32
TASK = "0x" + "bb" * 32


class ScriptedRpc:
    """Answers aicf.getTransaction / aicf.readResult from scripts, one entry per call (the last one repeats)."""

    def __init__(self, statuses: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
        self.statuses, self.records = statuses, records
        self.calls: list[str] = []

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        self.calls.append(method)
        script = self.statuses if method == "aicf.getTransaction" else self.records
        return script.pop(0) if len(script) > 1 else script[0]

    def close(self) -> None:
        return None


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def requester(rpc: ScriptedRpc, clock: FakeTime) -> Requester:
    key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    return Requester("http://x", key, client=rpc, now=clock.now, sleep=clock.sleep)  # type: ignore[arg-type]


def record(status: str, final: bool, result: object = None) -> dict[str, Any]:
    return {"task_id": TASK, "status": status, "final": final, "result": result, "escrow": 10,
            "charged": 4 if final else None, "refunded": 6 if final else None}  # fmt: skip


def test_wait_reports_each_state_once_and_returns_the_final_record() -> None:
    rpc = ScriptedRpc(
        [{"state": "pending"}, {"state": "pending"}, {"state": "included", "task_id": TASK, "status": "QUEUED"},
         {"state": "included", "task_id": TASK, "status": "VERIFIED"},
         {"state": "included", "task_id": TASK, "status": "SETTLED"}],
        [record("QUEUED", False), record("VERIFIED", False, {"x": 1}), record("SETTLED", True, {"x": 1})],
    )  # fmt: skip
    seen: list[Progress] = []
    clock = FakeTime()
    final = requester(rpc, clock).wait(TX, poll_s=1.0, on_progress=seen.append)
    assert [p.state for p in seen] == ["pending", "QUEUED", "VERIFIED", "SETTLED"]
    assert (final["charged"], final["refunded"]) == (4, 6)
    assert clock.t == 4.0  # four polls waited one injected second each


def test_wait_until_verified_returns_as_soon_as_the_result_is_in() -> None:
    rpc = ScriptedRpc([{"state": "included", "task_id": TASK, "status": "VERIFIED"}], [record("VERIFIED", False, {})])
    assert requester(rpc, FakeTime()).wait(TX, until="verified")["status"] == "VERIFIED"


def test_a_transaction_refused_at_inclusion_raises_with_its_reason() -> None:
    rpc = ScriptedRpc(
        [{"state": "refused", "refused": {"field": "escrow", "reason": "balance 0"}}], [record("", False)]
    )
    with pytest.raises(RequestFailedError, match="refused at inclusion: escrow: balance 0"):
        requester(rpc, FakeTime()).wait(TX)


def test_wait_gives_up_at_its_deadline_on_the_injected_clock() -> None:
    rpc = ScriptedRpc([{"state": "pending"}], [record("", False)])
    clock = FakeTime()
    with pytest.raises(RequestFailedError, match="did not reach final within 30 s"):
        requester(rpc, clock).wait(TX, timeout_s=30, poll_s=5)
    assert clock.t == 30.0


class Outage(ScriptedRpc):
    """Unreachable (or its database down) for the first `down` calls, then the scripts."""

    def __init__(self, down: int, error: Exception, *scripts: list[dict[str, Any]]) -> None:
        super().__init__(*scripts)
        self.down, self.error = down, error

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        if self.down > 0:
            self.down -= 1
            self.calls.append("down")
            raise self.error
        return super().call(method, params)


@pytest.mark.parametrize(
    "error", [RpcTransportError("connection refused"), RpcError(-32030, "the coordinator's database is unavailable")]
)
def test_wait_rides_out_an_outage_with_growing_waits_and_carries_on(error: Exception) -> None:
    rpc = Outage(6, error, [{"state": "included", "task_id": TASK, "status": "SETTLED"}], [record("SETTLED", True)])
    clock = FakeTime()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    client = Requester("http://x", key, client=rpc, now=clock.now, sleep=sleep)  # type: ignore[arg-type]
    assert client.wait(TX, poll_s=1.0)["status"] == "SETTLED"
    assert rpc.calls.count("down") == 6
    assert len(sleeps) == 6
    assert sleeps == sorted(sleeps)  # 0.5 s, 1 s, 2 s, 4 s, 8 s, 16 s ceilings: each at least the one before
    assert 0.25 <= sleeps[0] <= 0.5
    assert sleeps[-1] >= 8.0


def test_an_outage_past_the_deadline_raises_with_the_reason() -> None:
    rpc = Outage(10**6, RpcTransportError("connection refused"), [{"state": "pending"}], [record("", False)])
    clock = FakeTime()
    with pytest.raises(RequestFailedError, match="unreachable: connection refused"):
        requester(rpc, clock).wait(TX, timeout_s=60)
    assert clock.t == 60.0
    assert rpc.calls.count("down") < 15  # backing off, not a poll a second


def test_a_refusal_that_is_not_an_outage_is_raised_at_once() -> None:
    rpc = Outage(1, RpcError(-32602, "invalid params"), [{"state": "pending"}], [record("", False)])
    with pytest.raises(RpcError, match="invalid params"):
        requester(rpc, FakeTime()).wait(TX)


def test_a_nonce_taken_by_another_client_is_retried_with_the_next_one() -> None:
    class Racing(ScriptedRpc):
        def __init__(self) -> None:
            super().__init__([], [])
            self.nonces = [0, 1]
            self.sent: list[str] = []

        def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
            if method == "aicf.getRequestTerms":
                return {"chain_id": 1337}
            if method == "aicf.getAccount":
                return {"next_nonce": self.nonces.pop(0)}
            assert params is not None
            self.sent.append(str(params["tx"]))
            if len(self.sent) == 1:
                raise RpcError(-32042, "transaction refused: nonce: expected 1, got 0: already used")
            return {"tx_hash": TX}

    rpc = Racing()
    assert requester(rpc, FakeTime()).deposit(5) == TX
    assert len(rpc.sent) == 2
    assert rpc.sent[0] != rpc.sent[1]
