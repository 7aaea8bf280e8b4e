"""The vendor-root and attestation-policy part of the store contract (SPEC §8, migration 0006), one suite run
against every backend."""

import dataclasses
import hashlib

import pytest

from aicf.core.trust import POLICY, ROOT, PolicyRecord, RootRecord, TrustChange
from aicf.store.interface import ConcurrentUpdateError, Store
from store.tx_helpers import policies_in_force, roots_in_force

T = 1_700_000_000


def root(name: str, version: int, activation: int, expiry: int | None = None, vendor: str = "amd") -> RootRecord:
    der = f"{vendor}/{name}/{version}".encode()
    return RootRecord(
        vendor=vendor,
        name=name,
        version=version,
        der=der,
        sha256=hashlib.sha256(der).digest(),
        activation_height=activation,
        expiry_height=expiry,
        added_height=3,
        added_at=T,
    )


def policy(kind: str, version: int, activation: int) -> PolicyRecord:
    return PolicyRecord(
        kind=kind,
        version=version,
        activation_height=activation,
        policy=bytes([version]) * 4,
        added_height=1,
        added_at=T,
    )


def test_roots_in_force_follow_activation_and_expiry_heights(store: Store) -> None:
    old, new = root("ARK", 1, 0, 20), root("ARK", 2, 10)
    other = root("Root CA", 1, 5, vendor="intel")
    with store.transaction() as tx:
        assert tx.vendor_roots() == []
        assert roots_in_force(tx, 0) == []
        for r in (new, other, old):
            assert tx.insert_root(r)
        tx.commit()
    with store.transaction() as tx:
        assert tx.vendor_roots() == [old, new, other]
        assert roots_in_force(tx, 0) == [old]
        assert roots_in_force(tx, 9) == [old, other]
        assert roots_in_force(tx, 10) == [old, new, other]  # the overlap
        assert roots_in_force(tx, 19) == [old, new, other]
        assert roots_in_force(tx, 20) == [new, other]  # expiry height is exclusive


def test_a_root_version_is_stored_once(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.insert_root(root("ARK", 1, 0))
        assert not tx.insert_root(dataclasses.replace(root("ARK", 1, 0), der=b"other", activation_height=4))
        tx.commit()
    with store.transaction() as tx:
        assert tx.vendor_roots() == [root("ARK", 1, 0)]


def test_setting_a_root_expiry_retires_it_from_that_height(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_root(root("ARK", 1, 0))
        assert tx.set_root_expiry("amd", "ARK", 1, 12)
        assert not tx.set_root_expiry("amd", "ARK", 2, 12)  # no such version
        tx.commit()
    with store.transaction() as tx:
        assert tx.vendor_roots() == [root("ARK", 1, 0, 12)]
        assert roots_in_force(tx, 11) == [root("ARK", 1, 0, 12)]
        assert roots_in_force(tx, 12) == []


def test_an_expiry_not_above_activation_is_refused_by_the_store(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_root(root("ARK", 1, 5))
        tx.commit()
    with pytest.raises(ConcurrentUpdateError), store.transaction() as tx:
        tx.set_root_expiry("amd", "ARK", 1, 5)
    with store.transaction() as tx:
        assert tx.vendor_roots() == [root("ARK", 1, 5)]


def test_policy_in_force_is_the_highest_version_already_active(store: Store) -> None:
    with store.transaction() as tx:
        for p in (policy("sev-snp", 1, 0), policy("sev-snp", 2, 50), policy("tdx", 1, 10)):
            assert tx.insert_policy(p)
        assert not tx.insert_policy(dataclasses.replace(policy("tdx", 1, 0), policy=b"x"))
        tx.commit()
    with store.transaction() as tx:
        assert tx.attestation_policies() == [policy("sev-snp", 1, 0), policy("sev-snp", 2, 50), policy("tdx", 1, 10)]
        assert policies_in_force(tx, 0) == [policy("sev-snp", 1, 0)]
        assert policies_in_force(tx, 49) == [policy("sev-snp", 1, 0), policy("tdx", 1, 10)]
        assert policies_in_force(tx, 50) == [policy("sev-snp", 2, 50), policy("tdx", 1, 10)]


def test_every_trust_change_is_a_row_and_raises_the_version(store: Store) -> None:
    first = TrustChange(what=ROOT, action="add", subject="amd/ARK v1", detail="active from 0", height=0, time=T)
    second = TrustChange(what=POLICY, action="set", subject="tdx v1", detail="active from 9", height=2, time=T + 1)
    with store.transaction() as tx:
        assert tx.trust_version() == 0
        seq1 = tx.record_trust_change(first)
        seq2 = tx.record_trust_change(second)
        assert 0 < seq1 < seq2
        assert tx.trust_version() == seq2
        tx.commit()
    with store.transaction() as tx:
        assert tx.trust_changes() == [dataclasses.replace(first, seq=seq1), dataclasses.replace(second, seq=seq2)]


def test_trust_writes_without_commit_are_rolled_back(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_root(root("ARK", 1, 0))
        tx.insert_policy(policy("nitro", 1, 0))
        tx.record_trust_change(TrustChange(what=ROOT, action="add", subject="s", detail="d", height=0, time=T))
    with store.transaction() as tx:
        assert (tx.vendor_roots(), tx.attestation_policies(), tx.trust_changes(), tx.trust_version()) == ([], [], [], 0)
