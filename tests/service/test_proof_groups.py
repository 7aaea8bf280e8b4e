"""Proofs accepted in groups (issue 18): `submit_proofs` gives every proof exactly the verdict, record and ids that
`submit_proof` gives it one at a time, writes the group in one transaction, and never loses one proof to
another's failure."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from replica_harness import replica_harness
from store.backends import open_test_store

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.errors import AicfError
from aicf.core.ids import provider_id
from aicf.core.jobs import JobStatus
from aicf.proofs.envelope import ProofEnvelope, sign_envelope
from aicf.service.coordinator import Capabilities, Coordinator
from aicf.service.errors import ProofGroupError
from aicf.service.ingest import ingest_available
from aicf.service.proof_groups import MAX_PROOF_GROUP
from aicf.service.proof_verdicts import ProofOutcome
from aicf.service.state_digest import state_digest
from aicf.store.interface import ConcurrentUpdateError, Store

_replica = replica_harness()
GENESIS = _replica.GENESIS
MODEL = _replica.MODEL
PARAMS = _replica.PARAMS
PROOF_SENDER = _replica.PROOF_SENDER
make_coordinator_for = _replica.make_coordinator_for
operator_key = _replica.operator_key
plan_txs = _replica.plan_txs
proof_envelope = _replica.proof_envelope
provider_key = _replica.provider_key
public_key = _replica.public_key

JOBS = 24
PROVIDERS = 6  # 4 leases each: half of them lease the first half of the jobs, the other half the rest
FATES = ("good", "good", "duplicate", "late", "malformed", "wrong-signature", "wrong-digest", "not-a-map")


class _Writer:
    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet

    def include_proof(self, body: Any) -> None:
        self.devnet.submit(PROOF_SENDER, TxKind.PROOF, body)

    def submit(self, kind: TxKind, body: Any, sender: bytes) -> None:
        self.devnet.submit(sender, kind, body)


@dataclass
class World:
    store: Store
    devnet: Devnet
    clock: FakeClock
    coord: Coordinator


def _depth(_: bytes) -> int:
    return 1


def _world(store: Store) -> World:
    """JOBS jobs leased to PROVIDERS providers; the first half leased 55 s before the rest, so their leases have
    expired (their proofs are late) when the proofs arrive."""
    clock = FakeClock(GENESIS)
    devnet = Devnet(DevnetConfig(genesis_time=GENESIS, issuance=10**12))
    coord = make_coordinator_for(store, clock, PARAMS, _Writer(devnet))
    for i in range(PROVIDERS):
        p = coord.register(public_key(provider_key(3, i)), Capabilities(kinds=("ai",), models=(MODEL,)))
        coord.deposit_stake(p.provider_id, 10**9, source="external")
    for sender, kind, body in plan_txs(3, JOBS):
        devnet.submit(sender, kind, body)
    for _ in range(PARAMS.finality_depth + 2):
        (block,) = devnet.mine(1)
        clock.set(block.time)
        ingest_available(store, devnet, PARAMS, _depth, operator_key=public_key(operator_key()))
    pids = [provider_id(public_key(provider_key(3, i))) for i in range(PROVIDERS)]
    clock.advance(1)
    for pid in pids[: PROVIDERS // 2]:  # the first half takes its 4 leases each now
        coord.heartbeat(pid)
    coord.match(limit=JOBS // 2)
    clock.advance(PARAMS.lease_ttl_s - 5)
    for pid in pids[PROVIDERS // 2 :]:  # the second half later; the first half's leases are not extended
        coord.heartbeat(pid)
    coord.match(limit=JOBS)
    clock.advance(10)  # past the first pass's expiry, within the second's
    return World(store=store, devnet=devnet, clock=clock, coord=coord)


def _proofs(world: World, seed: int) -> list[Any]:
    """A seeded mix of good, duplicate, late, malformed, wrong-signature and wrong-digest proofs, shuffled."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not a secret
    keys = {provider_id(public_key(provider_key(3, i))): provider_key(3, i) for i in range(PROVIDERS)}
    out: list[Any] = []
    with world.store.transaction() as tx:
        leases = [lease for pid in sorted(keys) for lease in tx.live_leases_of(pid)]
        jobs = tx.get_jobs([lease.task_id for lease in leases])
    assert len(leases) == JOBS
    fates = [FATES[i % len(FATES)] for i in range(JOBS)]
    rng.shuffle(fates)
    for lease, fate in zip(leases, fates, strict=True):
        job = jobs[lease.task_id]
        key = keys[lease.provider_id]
        env: dict[str, Any] = proof_envelope(key, lease.provider_id, lease.lease_id, job)
        if fate == "late" and lease.expires_at > world.clock.now():
            fate = "good"
        if fate == "duplicate":
            out += [env, env]
        elif fate == "malformed":
            out.append({**env, "body": {**env["body"], "qos": "fast"}})
        elif fate == "wrong-signature":
            other = provider_key(4, 0)
            out.append(proof_envelope(other, lease.provider_id, lease.lease_id, job))
        elif fate == "wrong-digest":
            out.append(_resign(key, {**env, "body": {**env["body"], "output_digest": b"\x00" * 32}}))
        elif fate == "not-a-map":
            out.append({"version": 2})
        else:
            out.append(env)
    rng.shuffle(out)
    out += rng.sample(out, 3)  # replays of earlier proofs, later in the group
    return out


def _good_proofs(world: World, n: int) -> list[dict[str, Any]]:
    """Honest proofs for `n` leases that are still live."""
    keys = {provider_id(public_key(provider_key(3, i))): provider_key(3, i) for i in range(PROVIDERS)}
    with world.store.transaction() as tx:
        leases = [lease for pid in sorted(keys) for lease in tx.live_leases_of(pid)]
        live = [lease for lease in leases if lease.expires_at > world.clock.now()][:n]
        jobs = tx.get_jobs([lease.task_id for lease in live])
    assert len(live) == n
    return [proof_envelope(keys[x.provider_id], x.provider_id, x.lease_id, jobs[x.task_id]) for x in live]


def _resign(key: Any, raw: dict[str, Any]) -> dict[str, Any]:
    env = ProofEnvelope(**{**raw, "sig": bytes(64)})
    return {**raw, "sig": sign_envelope(key, env)}


def _shape(result: ProofOutcome | AicfError) -> tuple[object, ...]:
    if isinstance(result, AicfError):
        return ("error", type(result).__name__, str(result))
    return (result.proof_id, result.accepted, result.code, result.message, result.units_mu, result.slashed,
            result.dropped)  # fmt: skip


@pytest.fixture(params=["sqlite-memory", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    with open_test_store(request.param, tmp_path) as one, open_test_store(request.param, tmp_path) as other:
        yield one, other


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_group_gives_every_proof_the_verdict_and_ids_it_gets_one_at_a_time(
    two_stores: tuple[Store, Store], seed: int
) -> None:
    alone, grouped = _world(two_stores[0]), _world(two_stores[1])
    assert state_digest(alone.store) == state_digest(grouped.store)
    raws = _proofs(alone, seed)
    assert raws == _proofs(grouped, seed)
    one_by_one = [_shape(alone.coord.submit_proof(raw)) for raw in raws]
    in_groups = [_shape(r) for chunk in (raws[:10], raws[10:]) for r in grouped.coord.submit_proofs(chunk)]
    assert in_groups == one_by_one
    codes = {shape[2] for shape in one_by_one}
    assert {"ACCEPT", "BAD_SIGNATURE", "LEASE_EXPIRED", "MALFORMED"} <= codes
    proof_ids = [shape[0] for shape in one_by_one if shape[0]]
    assert len(proof_ids) > len(set(proof_ids))  # replays within the group answer as their first
    assert state_digest(grouped.store) == state_digest(alone.store)
    assert [t.body for t in grouped.devnet.mempool] == [t.body for t in alone.devnet.mempool]  # inclusions, in order


def test_a_group_commits_once(two_stores: tuple[Store, Store]) -> None:
    world = _world(two_stores[0])
    raws = _good_proofs(world, 8)
    commits = 0
    real = world.store.transaction

    def counting() -> Any:
        nonlocal commits
        commits += 1
        return real()

    world.store.transaction = counting  # type: ignore[method-assign]
    results = world.coord.submit_proofs(raws)
    assert len(results) == len(raws)
    assert commits == 1
    assert any(isinstance(r, ProofOutcome) and r.accepted for r in results)


def test_one_proofs_failure_is_its_own_and_the_others_are_written(two_stores: tuple[Store, Store]) -> None:
    world = _world(two_stores[0])
    picked = _good_proofs(world, 3)
    failing_task = picked[1]["task_id"]
    store = world.store
    real = store.transaction

    class Failing:
        """accept_proof of the second proof's job writes, then fails as a store error would, every time."""

        def __init__(self, tx: Any) -> None:
            self._tx = tx

        def __getattr__(self, name: str) -> Any:
            return getattr(self._tx, name)

        def accept_proof(self, proof: Any, time: int) -> bool:
            written = bool(self._tx.accept_proof(proof, time))
            if proof.task_id == failing_task:
                raise ConcurrentUpdateError("accept_proof: injected")
            return written

    @contextmanager
    def failing() -> Any:
        with real() as tx:
            yield Failing(tx)

    store.transaction = failing  # type: ignore[method-assign]
    results = world.coord.submit_proofs(picked)
    store.transaction = real  # type: ignore[method-assign]
    assert [type(r).__name__ for r in results] == ["ProofOutcome", "ConcurrentUpdateError", "ProofOutcome"]
    assert [r.code for r in results if isinstance(r, ProofOutcome)] == ["ACCEPT", "ACCEPT"]
    with store.transaction() as tx:
        for raw, result in zip(picked, results, strict=True):
            job = tx.get_job(raw["task_id"])
            assert job is not None
            if isinstance(result, ProofOutcome):
                proof = tx.get_proof(result.proof_id)
                assert proof is not None
                assert proof.verdict == "ACCEPT"
                assert job.status is JobStatus.SUBMITTED
            else:
                assert job.status is JobStatus.LEASED  # its partial writes were rolled back: nothing of it stays
    assert len(world.devnet.mempool) == 2  # only the committed acceptances went to the chain


@pytest.mark.parametrize("size", [0, MAX_PROOF_GROUP + 1])
def test_an_empty_or_oversized_group_is_refused_before_any_check(two_stores: tuple[Store, Store], size: int) -> None:
    world = _world(two_stores[0])
    before = state_digest(world.store)
    with pytest.raises(ProofGroupError, match=f"1 to {MAX_PROOF_GROUP} envelopes, got {size}"):
        world.coord.submit_proofs([{"version": 1}] * size)
    assert state_digest(world.store) == before
