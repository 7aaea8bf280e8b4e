"""Vendor roots and attestation policy in the registry (SPEC §8): evidence is judged by the roots and policy in
force at its (earliest) inclusion height; rotations overlap; bad operator input is refused by field with nothing
stored."""

from typing import Any

import pytest
from proofs.attestation.conftest import TestNitro as NitroChain
from proofs.attestation.conftest import make_nitro_doc, new_test_nitro
from store.backends import memory_store

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.clock import FakeClock
from aicf.core.ids import input_digest, output_digest, provider_id, tee_report_data
from aicf.core.jobs import JobStatus
from aicf.core.ledger import FUND
from aicf.proofs.attestation import AttestationResult, Policy, SnpTcb, verify_evidence
from aicf.proofs.attestation.registry import TrustAnchors
from aicf.service.coordinator import decode_request
from aicf.service.errors import InvalidPolicyError, InvalidRootError
from aicf.service.trust import TrustRegistry
from aicf.store.sqlite import SqliteStore
from service.test_coordinator import MODEL_DIGEST, World, _pub, signed_ai_envelope

T = 1_767_225_600  # 2026-01-01: inside the test chains' validity
PCR0 = b"\x22" * 48


@pytest.fixture
def world() -> World:
    w = World(devnet=Devnet(DevnetConfig(genesis_time=T, interval_s=10)), clock=FakeClock(T))
    w.mine(2)
    return w


@pytest.fixture
def nitro() -> NitroChain:
    return new_test_nitro()


def head(world: World) -> int:
    with world.store.transaction() as tx:
        block = tx.head_block()
        assert block is not None
        return block.height


def tee_envelope(world: World, nitro: NitroChain, key: Any, lease_id: bytes, task: bytes) -> dict[str, Any]:
    """An AI_V1 proof carrying a Nitro document from `nitro`'s chain that binds this task, output and provider."""
    with world.store.transaction() as tx:
        job = tx.get_job(task)
        assert job is not None
    prompt = decode_request(job)["prompt"]
    assert isinstance(prompt, bytes)
    out = b"answer"
    pid = provider_id(_pub(key))
    binding = tee_report_data(task, MODEL_DIGEST, input_digest(prompt), output_digest(out), pid)
    doc = make_nitro_doc(nitro, user_data=binding, pcr0=PCR0, timestamp_ms=world.clock.now() * 1000)
    body = {
        "model_id": "llama3-8b",
        "model_digest": MODEL_DIGEST,
        "input_digest": input_digest(prompt),
        "output_digest": output_digest(out),
        "output": out,
        "qos": {"runtime_ms": 1500, "tokens": 3},
        "attestation": {"type": "nitro", "evidence": doc, "certs": b""},
    }
    return signed_ai_envelope(key, task, lease_id, body)


def two_leases(world: World) -> list[tuple[Any, bytes, bytes]]:
    """Two providers, two jobs, matched: (provider key, lease id, task id) of each lease."""
    keys = {pid: key for key, pid in (world.provider(1), world.provider(2))}
    world.enqueue(2)
    world.mine(7)
    world.coord.match()
    found = [(keys[pid], lease.lease_id, lease.task_id) for pid in keys for lease in world.coord.heartbeat(pid)]
    assert len(found) == 2
    return found


def test_evidence_verifies_while_its_root_is_in_force_and_is_unknown_root_once_it_expired(
    world: World, nitro: NitroChain
) -> None:
    (key1, lid1, task1), (key2, lid2, task2) = two_leases(world)
    h = head(world)
    world.coord.trust.add_root(
        vendor="aws", name="test", der=nitro.root_der, activation_height=h + 1, expiry_height=h + 4
    )
    first = world.coord.submit_proof(tee_envelope(world, nitro, key1, lid1, task1))  # judged at h + 1
    assert first.accepted, first
    world.mine(3)  # head h + 3: the next proof is judged at h + 4, the root's expiry height
    fund_before = world.balance(FUND)
    second = world.coord.submit_proof(tee_envelope(world, nitro, key2, lid2, task2))
    assert (second.accepted, second.code, second.slashed) == (False, "UNKNOWN_ROOT", 0)
    assert "chain ends at" in second.message
    assert world.job_status(task2) is JobStatus.QUEUED  # requeued, nobody slashed
    assert world.balance(FUND) == fund_before


def test_evidence_is_unknown_root_when_its_root_activates_after_the_inclusion_height(
    world: World, nitro: NitroChain
) -> None:
    [(key, lid, task), _] = two_leases(world)
    world.coord.trust.add_root(vendor="aws", name="test", der=nitro.root_der, activation_height=head(world) + 2)
    outcome = world.coord.submit_proof(tee_envelope(world, nitro, key, lid, task))  # judged at head + 1
    assert outcome.code == "UNKNOWN_ROOT"


def test_policy_change_at_a_height_judges_only_proofs_verified_from_that_height(
    world: World, nitro: NitroChain
) -> None:
    (key1, lid1, task1), (key2, lid2, task2) = two_leases(world)
    h = head(world)
    world.coord.trust.add_root(vendor="aws", name="test", der=nitro.root_der, activation_height=h + 1)
    only_other = Policy(allowed_measurements=frozenset({b"\x99" * 48}))
    world.coord.trust.set_policy(kind="nitro", activation_height=h + 3, policy=only_other)
    before = world.coord.submit_proof(tee_envelope(world, nitro, key1, lid1, task1))  # judged at h + 1
    assert before.accepted, before
    world.mine(2)  # judged at h + 3 from now on
    after = world.coord.submit_proof(tee_envelope(world, nitro, key2, lid2, task2))
    assert after.code == "BAD_ATTESTATION"
    assert "not on the allowlist" in after.message


def nitro_verdict(registry: TrustRegistry, store: SqliteStore, chain: NitroChain, height: int) -> str:
    """Verify a Nitro document of `chain` with the anchors in force at `height`: "ok" or the reject code."""
    with store.transaction() as tx:
        anchors = registry.anchors_at(tx, height)
    doc = make_nitro_doc(chain, user_data=b"\x01" * 32, pcr0=PCR0, timestamp_ms=T * 1000)
    out = verify_evidence("nitro", doc, (), anchors.roots, T, anchors.policy_for("nitro", Policy()), height=height)
    return "ok" if isinstance(out, AttestationResult) else out.code.value


def test_rotation_keeps_the_old_root_for_the_overlap_and_only_the_new_one_after() -> None:
    store = memory_store()
    registry = TrustRegistry(store, FakeClock(T))
    old, new = new_test_nitro("nitro-root-old"), new_test_nitro("nitro-root-new")
    registry.add_root(vendor="aws", name="nitro", der=old.root_der, activation_height=0)
    rotation = registry.rotate_root(
        vendor="aws", name="nitro", der=new.root_der, activation_height=10, overlap_blocks=5
    )
    assert (rotation.new.version, rotation.new.activation_height, rotation.new.expiry_height) == (2, 10, None)
    assert [(r.version, r.expiry_height) for r in rotation.retired] == [(1, 15)]
    assert [nitro_verdict(registry, store, old, h) for h in (9, 10, 14, 15)] == ["ok", "ok", "ok", "UNKNOWN_ROOT"]
    assert [nitro_verdict(registry, store, new, h) for h in (9, 10, 14, 15)] == ["UNKNOWN_ROOT", "ok", "ok", "ok"]
    assert [(c.action, c.subject) for c in registry.changes()] == [
        ("add", "aws/nitro v1"),
        ("retire", "aws/nitro v1"),
        ("add", "aws/nitro v2"),
    ]


def test_the_verifiers_view_follows_changes_made_through_another_registry_on_the_same_store() -> None:
    store = memory_store()
    reader, writer = TrustRegistry(store, FakeClock(T)), TrustRegistry(store, FakeClock(T))
    chain = new_test_nitro()
    assert nitro_verdict(reader, store, chain, 5) == "UNKNOWN_ROOT"  # cached: no roots
    writer.add_root(vendor="aws", name="nitro", der=chain.root_der, activation_height=0)
    assert nitro_verdict(reader, store, chain, 5) == "ok"  # a replica's change raises the version
    writer.set_policy(kind="nitro", activation_height=0, policy=Policy(allowed_measurements=frozenset()))
    assert nitro_verdict(reader, store, chain, 5) == "BAD_ATTESTATION"


def test_a_kind_without_a_registry_policy_is_judged_by_the_default() -> None:
    anchors = TrustAnchors(policies={"sev-snp": Policy(allow_debug=True)})
    default = Policy(max_vmpl=1)
    assert anchors.policy_for("sev-snp", default) == Policy(allow_debug=True)
    assert anchors.policy_for("nitro", default) is default


ROOT_ERRORS = [
    ({"vendor": "acme"}, "vendor"),
    ({"name": ""}, "name"),
    ({"der": b"not a certificate"}, "der"),
    ({"activation_height": -1}, "activation_height"),
    ({"activation_height": 5, "expiry_height": 5}, "expiry_height"),
    ({"version": 1}, "version"),  # v1 is stored
]


@pytest.mark.parametrize(("change", "field"), ROOT_ERRORS, ids=[f for _, f in ROOT_ERRORS])
def test_bad_root_input_is_refused_by_field_and_nothing_is_stored(change: dict[str, Any], field: str) -> None:
    store = memory_store()
    registry = TrustRegistry(store, FakeClock(T))
    chain, other = new_test_nitro("a"), new_test_nitro("b")
    registry.add_root(vendor="aws", name="nitro", der=chain.root_der, activation_height=0)
    before = registry.changes()
    args: dict[str, Any] = {"vendor": "aws", "name": "nitro", "der": other.root_der, "activation_height": 3}
    with pytest.raises(InvalidRootError) as info:
        registry.add_root(**(args | change))
    assert info.value.field == field
    assert registry.changes() == before
    assert len(registry.roots()) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [({"version": 1}, "version"), ({"overlap_blocks": -1}, "overlap_blocks"), ({"name": "unknown"}, "name")],
)
def test_bad_rotation_is_refused_by_field_and_nothing_is_stored(change: dict[str, Any], field: str) -> None:
    store = memory_store()
    registry = TrustRegistry(store, FakeClock(T))
    registry.add_root(vendor="aws", name="nitro", der=new_test_nitro("a").root_der, activation_height=0)
    registry.rotate_root(vendor="aws", name="nitro", der=new_test_nitro("b").root_der, activation_height=4,
                         overlap_blocks=2)  # fmt: skip
    before = (registry.roots(), registry.changes())
    args: dict[str, Any] = {"vendor": "aws", "name": "nitro", "der": new_test_nitro("c").root_der,
                            "activation_height": 9, "overlap_blocks": 3}  # fmt: skip
    with pytest.raises(InvalidRootError) as info:
        registry.rotate_root(**(args | change))
    assert info.value.field == field
    assert (registry.roots(), registry.changes()) == before


@pytest.mark.parametrize(
    ("kind", "policy", "field"),
    [
        ("sgx2", Policy(), "kind"),
        ("sev-snp", Policy(max_vmpl=4), "max_vmpl"),
        ("tdx", Policy(accepted_tcb_statuses=frozenset({"Revoked"})), "accepted_tcb_statuses"),
        ("nitro", Policy(allowed_measurements=frozenset({b""})), "allowed_measurements"),
    ],
)
def test_bad_policy_is_refused_by_field_and_nothing_is_stored(kind: str, policy: Policy, field: str) -> None:
    registry = TrustRegistry(memory_store(), FakeClock(T))
    with pytest.raises(InvalidPolicyError) as info:
        registry.set_policy(kind=kind, activation_height=0, policy=policy)
    assert info.value.field == field
    assert registry.policies() == []
    assert registry.changes() == []


def test_policy_versions_round_trip_through_the_store() -> None:
    registry = TrustRegistry(memory_store(), FakeClock(T))
    strict = Policy(
        allowed_measurements=frozenset({b"\x01" * 48, b"\x02" * 48}),
        min_snp_tcb=SnpTcb(bootloader=3, tee=0, snp=8, microcode=115),
        max_vmpl=0,
    )
    registry.set_policy(kind="sev-snp", activation_height=0, policy=Policy())
    second = registry.set_policy(kind="sev-snp", activation_height=7, policy=strict)
    assert second.version == 2
    assert [(v.record.version, v.policy) for v in registry.policies()] == [(1, Policy()), (2, strict)]
