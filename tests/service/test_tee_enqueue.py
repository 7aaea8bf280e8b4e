"""Issue 14: attestation fails closed at enqueue. A `tee_required` job is refused (a RefusedTx naming `tee`, no
money moved) unless an operator attestation policy in force at its block admits TEE evidence: a CPU TEE kind with a
non-empty measurement allowlist and a minimum TCB. A GPU-only policy admits nothing."""

from dataclasses import replace

import pytest
from store.backends import memory_store

from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.ledger import requester_account
from aicf.proofs.attestation.result import Policy, SnpTcb
from aicf.service.audit import verify
from aicf.service.trust import TrustRegistry
from aicf.store.sqlite import SqliteStore
from service.helpers import ALICE, ESCROW_1000MS, ai_body, devnet, ingest

QUALIFIED = Policy(allowed_measurements=frozenset({b"\x11" * 48}), min_snp_tcb=SnpTcb(bootloader=3, tee=0, snp=8,
                   microcode=115))  # fmt: skip


def _enqueue_tee_job(policies: dict[str, Policy]) -> tuple[SqliteStore, int]:
    store = memory_store()
    net = devnet()
    net.submit(ALICE, TxKind.DEPOSIT, {"to": ALICE, "amount": 10 * ESCROW_1000MS})
    net.mine()
    ingest(store, net)
    trust = TrustRegistry(store, FakeClock(1_700_000_000))
    for kind, policy in policies.items():
        trust.set_policy(kind=kind, activation_height=2, policy=policy)  # the next block
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body(b"secret work", tee="required"))
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body(b"plain work"))  # a job without a TEE is never affected
    net.mine()
    ingest(store, net)
    with store.transaction() as tx:
        balance = tx.balances([requester_account(ALICE)])[requester_account(ALICE)]
    return store, balance


@pytest.mark.parametrize(
    "policies",
    [
        {},
        {"sev-snp": Policy()},  # no allowlist
        {"sev-snp": replace(QUALIFIED, allowed_measurements=frozenset())},  # an allowlist that admits nothing
        {"sev-snp": replace(QUALIFIED, min_snp_tcb=None)},  # no minimum TCB
        {"nvidia-gpu": QUALIFIED},  # GPU evidence alone never counts
    ],
    ids=["no policy", "no allowlist", "empty allowlist", "no minimum tcb", "gpu only"],
)
def test_a_tee_required_job_without_a_qualifying_policy_is_refused_at_enqueue(policies: dict[str, Policy]) -> None:
    store, balance = _enqueue_tee_job(policies)
    with store.transaction() as tx:
        snap = tx.snapshot()
    (refused,) = snap.refused
    assert refused.field == "tee"
    assert "measurement allowlist" in refused.reason
    assert "minimum TCB" in refused.reason
    assert [j.tee_required for j in snap.jobs] == [False]  # the plain job went in, the TEE job did not
    assert balance == 10 * ESCROW_1000MS - ESCROW_1000MS  # only the plain job's escrow moved
    assert verify(store).ok


def test_a_tee_required_job_is_taken_under_a_qualifying_policy() -> None:
    store, balance = _enqueue_tee_job({"sev-snp": QUALIFIED})
    with store.transaction() as tx:
        snap = tx.snapshot()
    assert snap.refused == ()
    assert sorted(j.tee_required for j in snap.jobs) == [False, True]
    assert balance == 10 * ESCROW_1000MS - 2 * ESCROW_1000MS
