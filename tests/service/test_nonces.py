"""Signed-call nonces in the store: two API replicas on one database refuse each other's replays."""

from pathlib import Path

from store.backends import memory_store
from transports.test_cli_ops import SteppedClock

from aicf.bootstrap.system import SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.service.nonces import StoreNonces
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
