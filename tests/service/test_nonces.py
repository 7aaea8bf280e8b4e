"""Signed-call nonces in the store: two API replicas on one database refuse each other's replays."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from store.backends import memory_store
from transports.helpers import key, pid, signed
from transports.test_cli_ops import SteppedClock

from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client.signing import public_key_bytes
from aicf.service.coordinator import Capabilities
from aicf.service.nonces import StoreNonces
from aicf.store.interface import StoreUnavailableError
from aicf.store.sqlite import SqliteStore

PID = b"p" * 32
NONCE = b"n" * 16
T = 1_700_000_000


def test_a_nonce_one_replica_accepted_is_refused_by_another_until_it_expires(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "aicf.db"), SqliteStore(tmp_path / "aicf.db")
    try:
        a, b = StoreNonces(first, ttl_s=120), StoreNonces(second, ttl_s=120)
        assert a.remember(PID, NONCE, T)
        assert not b.remember(PID, NONCE, T + 1), "a replay sent to the other replica"
        assert not a.remember(PID, NONCE, T + 119)
        assert b.remember(PID, b"m" * 16, T + 2)
        assert b.remember(b"q" * 32, NONCE, T + 2), "another provider's nonce"
        assert b.remember(PID, NONCE, T + 120), "forgotten once its window is over"
    finally:
        first.close()
        second.close()


def test_a_refused_nonce_leaves_the_stored_ones_alone(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aicf.db")
    try:
        nonces = StoreNonces(store, ttl_s=120)
        assert nonces.remember(PID, NONCE, T)
        assert not nonces.remember(PID, NONCE, T + 5)
        with store.transaction() as tx:
            assert [(n.provider_id, n.nonce, n.expires_at) for n in tx.snapshot().nonces] == [(PID, NONCE, T + 120)]
    finally:
        store.close()


def test_aicf_up_keeps_rpc_nonces_in_its_store(tmp_path: Path) -> None:
    store = memory_store()
    system = build_system(store, devnet_params(), SystemConfig(var=tmp_path, model_digests={}), clock=SteppedClock(T))
    nonces = system.app.state.rpc.nonces
    assert isinstance(nonces, StoreNonces)
    assert nonces.remember(PID, NONCE, T)
    with store.transaction() as tx:
        assert [n.nonce for n in tx.snapshot().nonces] == [NONCE]


class _LosesCommits:
    """A store whose next commit of a transaction that wrote a heartbeat or a provider row fails, as a crash or a
    lost connection between the use-case's writes and its commit would."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.armed = False
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as tx:
            yield _Tx(tx, self)


class _Tx:
    def __init__(self, inner: Any, owner: _LosesCommits) -> None:
        self.inner, self.owner, self.heartbeat = inner, owner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def record_heartbeat(self, *args: Any) -> Any:
        self.heartbeat = True
        return self.inner.record_heartbeat(*args)

    def update_provider(self, *args: Any) -> Any:
        self.heartbeat = True
        return self.inner.update_provider(*args)

    def commit(self) -> None:
        if self.owner.armed and self.heartbeat:
            self.owner.armed = False
            raise StoreUnavailableError("the database went away", "retry")
        self.owner.commits += 1
        self.inner.commit()


def _system(tmp_path: Path, store: Any) -> System:
    system = build_system(store, devnet_params(), SystemConfig(var=tmp_path, model_digests={}), clock=SteppedClock(T))
    system.coord.register(public_key_bytes(key(1)), Capabilities(kinds=("quantum",), devices=("stim",)))
    system.coord.deposit_stake(pid(key(1)), 10_000, source="external")
    return system


def _call(system: System, method: str, params: dict[str, Any], nonce: bytes) -> dict[str, Any]:
    here = system.app.state.rpc.deployment_id
    body = signed(method, params, signer=key(1), ts=T, nonce=nonce, deployment=here)
    with TestClient(system.app) as client:
        answer: dict[str, Any] = client.post("/rpc", json=body).json()
    return answer


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_signed_calls_nonce_commits_in_its_use_cases_transaction(tmp_path: Path, backend: str) -> None:
    store = _LosesCommits(memory_store() if backend == "memory" else SqliteStore(tmp_path / "nonces.db"))
    system = _system(tmp_path, store)
    before = store.commits
    assert _call(system, "aicf.heartbeat", {}, NONCE)["result"]["now"] == T
    assert store.commits == before + 1  # one transaction: the heartbeat and its nonce
    with store.transaction() as tx:
        assert [n.nonce for n in tx.snapshot().nonces] == [NONCE]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_call_whose_commit_is_lost_can_be_sent_again_with_its_nonce(tmp_path: Path, backend: str) -> None:
    store = _LosesCommits(memory_store() if backend == "memory" else SqliteStore(tmp_path / "nonces.db"))
    system = _system(tmp_path, store)
    store.armed = True
    assert _call(system, "aicf.withdraw", {"amount": 4_000}, NONCE)["error"]["code"] == -32030  # commit failed
    with store.transaction() as tx:
        assert tx.snapshot().nonces == ()  # ... and the withdrawal's nonce went with it
    assert _call(system, "aicf.withdraw", {"amount": 4_000}, NONCE)["result"]["unbonding_stake"] == 4_000
    assert _call(system, "aicf.withdraw", {"amount": 4_000}, NONCE)["error"]["code"] == -32057  # now a replay


def test_a_refused_withdrawal_keeps_its_nonce_used(tmp_path: Path) -> None:
    system = _system(tmp_path, memory_store())
    assert _call(system, "aicf.withdraw", {"amount": 20_000}, NONCE)["error"]["code"] == -32003  # more than bonded
    system.coord.deposit_stake(pid(key(1)), 10_000, source="external")
    assert _call(system, "aicf.withdraw", {"amount": 20_000}, NONCE)["error"]["code"] == -32057


def test_a_call_that_commits_nothing_still_uses_its_nonce(tmp_path: Path) -> None:
    store = _LosesCommits(memory_store())
    system = _system(tmp_path, store)
    here = system.app.state.rpc.deployment_id
    body = signed("aicf.nextLease", {}, signer=key(1), ts=T, nonce=NONCE, deployment=here)
    with TestClient(system.app) as client:
        assert client.post("/rpc", json=body).json()["result"]["items"] == []
        assert client.post("/rpc", json=body).json()["error"]["code"] == -32057


def test_a_replayed_call_is_refused_before_its_use_case_runs(tmp_path: Path) -> None:
    """A replay costs one read: the handler (a proof's verification, a model re-run) is not run again."""
    system = _system(tmp_path, memory_store())
    registry = system.app.state.rpc.registry
    method = registry.get("aicf.withdraw")
    runs: list[object] = []
    handler = method.handler

    def counting(params: Any, context: Any) -> Any:
        runs.append(params)
        return handler(params, context)

    object.__setattr__(method, "handler", counting)
    assert "result" in _call(system, "aicf.withdraw", {"amount": 1_000}, NONCE)
    assert _call(system, "aicf.withdraw", {"amount": 1_000}, NONCE)["error"]["code"] == -32057
    assert len(runs) == 1
