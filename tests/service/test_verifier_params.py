"""The proof verifier judges a body by the params the coordinator passes with it, the params in force (issue 17:
an on-chain params change applies from its epoch), not by params it was built with at start."""

from dataclasses import replace

from aicf.core.chain import Job
from aicf.core.leases import LeaseStatus
from aicf.core.params import Params
from aicf.core.records import LeaseRecord
from aicf.core.types import MicroAnm, MilliUnits
from aicf.proofs.attestation.registry import TrustAnchors
from aicf.proofs.attestation.roots import VendorRoots
from aicf.proofs.envelope import ProofEnvelope
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.verifier import BodyAccepted, StandardVerifier

TASK, LEASE, PROVIDER, AT = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 1_700_000_000
JOB = Job(
    task_id=TASK, chain_id=1, tx_hash=bytes(32), caller=bytes(20), kind="quantum", payload=b"",
    payload_hash=bytes(32), model="", fee_per_unit=1, tier=0, max_units_mu=MilliUnits(1000), escrow=MicroAnm(1000),
    depth=0, deadline_height=100, enqueue_height=1, enqueue_tx_index=0,
)  # fmt: skip
LEASED = LeaseRecord(
    lease_id=LEASE, task_id=TASK, provider_id=PROVIDER, attempt=1, granted_at=AT - 10, expires_at=AT + 60,
    status=LeaseStatus.LIVE, epoch=0,
)  # fmt: skip


def verify_with(params: Params, traps: int) -> BodyAccepted | Reject:
    """A QUANTUM_V1 body with the job's counts and `traps` trap counts, from a device nobody pinned."""
    body = {"circuit_digest": bytes(32), "shots": 1, "results": [{"0": 1}] * (traps + 1), "cert_chain": [],
            "qos": {"runtime_ms": 5}}  # fmt: skip
    env = ProofEnvelope(
        version=1, kind="QUANTUM_V1", task_id=TASK, lease_id=LEASE, provider_id=PROVIDER, body=body, sig=b""
    )
    verifier = StandardVerifier(model_digests={}, trap_seed=lambda _: bytes(32))
    no_roots = TrustAnchors(roots=VendorRoots(roots=()))
    return verifier.verify(env, JOB, {"shots": 1}, LEASED, AT, 10, no_roots, params)


def test_the_trap_count_a_quantum_body_must_carry_is_the_passed_params_trap_k() -> None:
    started = Params()
    changed = replace(started, trap_k=started.trap_k + 2)  # as an operator params change would make it
    shaped_for_start = verify_with(started, started.trap_k)
    assert isinstance(shaped_for_start, Reject)
    assert shaped_for_start.code is RejectCode.UNPINNED_DEVICE  # past the shape, refused for its unpinned device
    refused = verify_with(changed, started.trap_k)
    assert isinstance(refused, Reject)
    assert refused.code is RejectCode.MALFORMED
    assert f"expected {changed.trap_k + 1} entries (job + {changed.trap_k} traps), got {started.trap_k + 1}" in (
        refused.message
    )
    assert verify_with(changed, changed.trap_k) == shaped_for_start
