"""Issue 14: SPEC §8's drops as written, and AI pay that follows the runtime the coordinator observed.

Drives the real use-cases on SQLite :memory: and the devnet (the `World` of test_coordinator): a malformed
body is dropped without using an attempt, an expired lease answers LEASE_EXPIRED, and a runtime claim is paid
at most what the coordinator saw between the lease grant and the proof (and refused above it plus the slack).
"""

from typing import Any

import pytest

from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.pricing import ai_units
from aicf.core.registry import ProviderStatus
from aicf.proofs.ai_v1 import RUNTIME_SLACK_MS
from aicf.service.audit import verify
from aicf.service.proof_verdicts import ProofOutcome
from service.test_coordinator import DevnetWriter, World, _one_leased, signed_ai_envelope


@pytest.fixture
def world() -> World:
    w = World()
    w.mine(2)  # treasury income so the budget throttle is off
    return w


def _state(world: World, task: bytes, lid: bytes, pid: bytes) -> tuple[Any, ...]:
    with world.store.transaction() as tx:
        job, lease, provider = tx.get_job(task), tx.get_lease(lid), tx.get_provider(pid)
        assert job is not None
        assert lease is not None
        assert provider is not None
        return job.status, job.attempts, lease.status, provider.bonded, provider.strikes, len(tx.slashes_of(pid))


@pytest.mark.parametrize(
    ("name", "qos"),
    [
        ("missing qos", None),
        ("negative runtime_ms", {"runtime_ms": -1, "tokens": 3}),
        ("runtime_ms of 2^63", {"runtime_ms": 2**63, "tokens": 3}),
        ("tokens as text", {"runtime_ms": 100, "tokens": "3"}),
    ],
)
def test_a_malformed_ai_body_is_dropped_without_using_an_attempt(world: World, name: str, qos: Any) -> None:
    key, pid, lid, task = _one_leased(world)
    before = _state(world, task, lid, pid)
    body = dict(world.envelope(key, lid, task)["body"])
    if qos is None:
        del body["qos"]
    else:
        body["qos"] = qos
    outcome = world.coord.submit_proof(signed_ai_envelope(key, task, lid, body))
    assert outcome.code == "MALFORMED", (name, outcome)
    assert outcome.dropped
    assert not outcome.accepted
    assert outcome.slashed == 0
    assert _state(world, task, lid, pid) == before  # still LEASED, same attempt, lease LIVE, nobody slashed
    assert before[0] is JobStatus.LEASED
    with world.store.transaction() as tx:
        assert tx.get_proof(outcome.proof_id) is None  # a drop records nothing
    world.clock.advance(ms=1500)
    good = world.coord.submit_proof(world.envelope(key, lid, task))
    assert good.accepted, good  # the same lease still takes a well-formed proof
    assert verify(world.store).ok


def test_a_proof_of_the_wrong_kind_is_dropped_without_using_an_attempt(world: World) -> None:
    key, pid, lid, task = _one_leased(world)
    before = _state(world, task, lid, pid)
    wire = world.envelope(key, lid, task)
    from aicf.proofs.envelope import ProofEnvelope, sign_envelope

    env = ProofEnvelope(
        version=1, kind="QUANTUM_V1", task_id=task, lease_id=lid, provider_id=pid, body=wire["body"], sig=bytes(64)
    )
    outcome = world.coord.submit_proof({**env.to_map(), "sig": sign_envelope(key, env)})
    assert (outcome.code, outcome.dropped) == ("MALFORMED", True)
    assert _state(world, task, lid, pid) == before


def test_a_proof_for_a_lease_the_sweep_expired_answers_lease_expired(world: World) -> None:
    key, _pid, lid, task = _one_leased(world)
    world.live.clear()  # the provider goes quiet
    world.clock.advance(world.params.lease_ttl_s)
    assert world.coord.sweep().expired == 1
    with world.store.transaction() as tx:
        lease = tx.get_lease(lid)
    assert lease is not None
    assert lease.status is LeaseStatus.EXPIRED
    outcome = world.coord.submit_proof(world.envelope(key, lid, task))
    assert (outcome.code, outcome.dropped) == ("LEASE_EXPIRED", True), outcome


def test_a_proof_at_the_expiry_instant_answers_lease_expired(world: World) -> None:
    key, _pid, lid, task = _one_leased(world)
    with world.store.transaction() as tx:
        lease = tx.get_lease(lid)
    assert lease is not None
    world.clock.set(lease.expires_at)
    outcome = world.coord.submit_proof(world.envelope(key, lid, task))
    assert (outcome.code, outcome.dropped) == ("LEASE_EXPIRED", True), outcome


def _claiming(world: World, runtime_ms: int) -> tuple[Any, bytes, bytes, bytes, dict[str, Any]]:
    key, pid, lid, task = _one_leased(world)
    body = dict(world.envelope(key, lid, task)["body"])
    body["qos"] = {"runtime_ms": runtime_ms, "tokens": 3}
    return key, pid, lid, task, signed_ai_envelope(key, task, lid, body)


def _observed_ms(world: World, lid: bytes) -> int:
    with world.store.transaction() as tx:
        lease = tx.get_lease(lid)
    assert lease is not None
    return world.clock.now_ms() - lease.granted_at * 1000


def test_ai_pay_follows_the_observed_time_when_the_claim_is_larger_but_within_the_slack(world: World) -> None:
    _key, _pid, lid, _task, env = _claiming(world, 1900)
    world.clock.advance(ms=400)
    observed = _observed_ms(world, lid)
    assert observed < 1900 <= observed + RUNTIME_SLACK_MS
    outcome = world.coord.submit_proof(env)
    assert outcome.accepted, outcome
    with world.store.transaction() as tx:
        record = tx.get_proof(outcome.proof_id)
    assert record is not None
    assert record.qos["runtime_ms"] == observed  # min(claimed, observed)
    weight = world.params.weight_milli("llama3-8b") or 0
    assert outcome.units_mu <= ai_units(observed, weight, 11_500, 11_000)


def test_a_runtime_claim_above_the_observed_time_and_slack_is_rejected_and_slashed(world: World) -> None:
    _key, pid, _lid, task, env = _claiming(world, 10**9)  # the made-up claim, a second after the lease
    world.clock.advance(ms=1000)
    outcome = world.coord.submit_proof(env)
    assert not outcome.accepted
    assert outcome.code == "RUNTIME_MISMATCH"
    assert "observed" in outcome.message
    assert "1000000000" in outcome.message
    assert outcome.slashed == 1_000_000 * world.params.slash_bps["FRAUD"] // 10_000
    assert world.job_status(task) is JobStatus.QUEUED  # requeued for someone honest
    with world.store.transaction() as tx:
        provider = tx.get_provider(pid)
        (slash,) = tx.slashes_of(pid)
    assert provider is not None
    assert provider.status is ProviderStatus.BANNED
    assert slash.reason == "FRAUD"
    assert verify(world.store).ok


def test_an_honest_runtime_claim_is_paid_as_claimed(world: World) -> None:
    _key, _pid, _lid, _task, env = _claiming(world, 700)
    world.clock.advance(ms=900)
    outcome = world.coord.submit_proof(env)
    assert outcome.accepted, outcome
    with world.store.transaction() as tx:
        record = tx.get_proof(outcome.proof_id)
    assert record is not None
    assert record.qos["runtime_ms"] == 700


class _SmallChainWriter(DevnetWriter):
    """A chain whose transactions carry proof bodies of at most 600 bytes (an EVM node's bound, scaled down)."""

    max_proof_body_bytes = 600


def test_a_body_the_chain_could_never_include_is_dropped_before_acceptance(world: World) -> None:
    world.coord.chain_writer = _SmallChainWriter(world.devnet)
    key, pid, lid, task = _one_leased(world)
    before = _state(world, task, lid, pid)
    big = world.envelope(key, lid, task, output=b"x" * 700)
    outcome = world.coord.submit_proof(big)
    assert (outcome.code, outcome.dropped, outcome.accepted) == ("MALFORMED", True, False), outcome
    assert "the most this chain can include" in outcome.message
    assert _state(world, task, lid, pid) == before  # still LEASED, same attempt: nothing accepted that never pays
    grouped = world.coord.submit_proofs([big])
    assert [(o.code, o.dropped) for o in grouped if isinstance(o, ProofOutcome)] == [("MALFORMED", True)]
    world.clock.advance(ms=1500)
    small = world.coord.submit_proof(world.envelope(key, lid, task))
    assert small.accepted, small  # the same lease takes a body the chain can carry
    world.mine(1)
    assert world.job_status(task) is JobStatus.VERIFIED
