"""The requester client's follow loop (aicf.client.requester.Requester.wait) on a scripted coordinator: progress
is reported once per state, a refusal and a time-out raise with the reason, and time is the injected clock's."""

from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.client.requester import Progress, Requester, RequestFailedError
from aicf.client.rpc import RpcError

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
