"""1,000 jobs end to end (issue 5, item 7): devnet + coordinator + simulated providers on a SQL store.

Every job gets a fate from a seeded generator and the simulated providers act it out, so the run crosses every
status of SPEC §4: honest work (→ SETTLED), a provider that vanishes mid-lease (expiry → MISSED_LEASE →
requeue), releases until no attempt is left (→ FAILED), wrong output digests (DIGEST_MISMATCH, slashed, →
requeue or REJECTED on the last attempt), requester cancels while QUEUED and while LEASED, deadlines, and
reorgs of depth 1..6 while proofs are in flight (an orphaned proof inclusion comes back; nothing is paid
twice). Afterwards the audit passes, money is conserved, every payout names its provider, task, proof and the
params hash, and a second store fed only the chain writes byte-identical batches (item 5).

Params: Γ = 1,000,000 units (SPEC's default) so the unit-rate bucket holds 10,000 mu, a job's max is
1,265 mu (1 s runtime cap) and a provider can take its 4 leases in one matcher pass; the devnet issues
10^12 µANM per block, so the treasury slice (1.5 % = 1.5·10^10) clears the budget throttle
(Γ × base_rate_ai × price // 10^5 ≤ 3·10^9) from the first block on; epochs of 120 s (12 blocks) so the
run settles about ten batches. A fake clock follows the block times; there are no sleeps.
"""

import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from service.test_coordinator import DevnetWriter, _no_circuits, _pub, coordinator_for, signed_ai_envelope
from store.backends import SQL_BACKENDS, memory_store, open_test_store

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.assignment import AssignmentDecision
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.ids import input_digest, output_digest
from aicf.core.jobs import FINAL_STATUSES, JobStatus
from aicf.core.ledger import EXTERNAL, balances_of, minted_of, withdrawn_of
from aicf.core.params import Params, params_from_mapping, params_hash
from aicf.service.audit import verify
from aicf.service.coordinator import Capabilities, Coordinator, decode_request
from aicf.service.errors import ProviderBannedError
from aicf.service.ingest import ingest_available
from aicf.store.interface import Store

PARAMS = params_from_mapping({"epoch_seconds": 120})
MODEL = "llama3-8b"
MODEL_DIGEST = b"\x5a" * 32
GENESIS = 1_700_000_000
JOBS = 1000
PROVIDERS = 40
REQUESTERS = 20  # SPEC's max_open_jobs is 100 per requester
SEED = 5
WORK_MS = 700  # how long a job takes on the fake clock (its proof claims it)

# Fates, acted out by the simulated providers and requesters (the rest are honest).
CANCEL_QUEUED = "cancel-queued"  # a model nobody serves; the requester cancels while QUEUED
DEADLINE = "deadline"  # a model nobody serves, deadline_blocks 8: CANCELLED when the deadline is final
CANCEL_LEASED = "cancel-leased"  # cancelled while LEASED; the holder releases once the cancel is final
FAIL = "fail"  # every holder releases: FAILED after the third attempt
REJECT_LAST = "reject-last"  # released twice, then a wrong digest on the last attempt: REJECTED
REJECT_ONCE = "reject-once"  # a wrong digest on attempt 0 (requeued), then honest work
HONEST = "honest"
FATES = {CANCEL_QUEUED: 30, DEADLINE: 30, CANCEL_LEASED: 10, FAIL: 20, REJECT_LAST: 4, REJECT_ONCE: 4}
UNSERVED = {CANCEL_QUEUED: "clip-vit-b", DEADLINE: "llama3-70b"}


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big"))


@dataclass
class Run:
    """The simulation: one devnet, one coordinator on `store`, providers and requesters with scripted fates."""

    store: Store
    params: Params = PARAMS
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))  # noqa: S311  (a seeded test)
    clock: FakeClock = field(default_factory=lambda: FakeClock(GENESIS))
    devnet: Devnet = field(
        default_factory=lambda: Devnet(DevnetConfig(seed=SEED, genesis_time=GENESIS, issuance=10**12))
    )
    operator: Ed25519PrivateKey = field(default_factory=lambda: _key(10**6))
    keys: dict[bytes, Ed25519PrivateKey] = field(default_factory=dict)
    live: list[bytes] = field(default_factory=list)
    fates: list[str] = field(default_factory=list)
    index_of: dict[bytes, int] = field(default_factory=dict)  # task_id → job index (task ids move with reorgs)
    cancel_sent: set[int] = field(default_factory=set)
    leased_seen: dict[int, int] = field(default_factory=dict)  # CANCEL_LEASED: job index → step it was seen
    acted: set[bytes] = field(default_factory=set)  # leases already proved or released
    step_no: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    coord: Coordinator = field(init=False)

    def __post_init__(self) -> None:
        self.coord = coordinator_for(
            self.store,
            self.clock,
            self.params,
            self.operator,
            DevnetWriter(self.devnet),
            model_digests={MODEL: MODEL_DIGEST},
            trap_secret=b"e2e-secret",
        )
        fates = [f for f, n in FATES.items() for _ in range(n)]
        self.fates = fates + [HONEST] * (JOBS - len(fates))
        self.rng.shuffle(self.fates)
        for i in range(PROVIDERS):
            key = _key(i + 1)
            p = self.coord.register(_pub(key), Capabilities(kinds=("ai",), models=(MODEL,)))
            self.coord.deposit_stake(p.provider_id, 1_000_000_000, source="external")
            self.coord.heartbeat(p.provider_id)
            self.keys[p.provider_id] = key
            self.live.append(p.provider_id)
        for r in range(REQUESTERS):
            self.devnet.submit(self._requester(r), TxKind.DEPOSIT, {"to": self._requester(r), "amount": 10**12})

    @staticmethod
    def _requester(r: int) -> bytes:
        return bytes([0x40 + r]) * 20

    # -- chain ------------------------------------------------------------------------------------------
    def enqueue(self, first: int, count: int) -> None:
        for i in range(first, min(first + count, JOBS)):
            fate = self.fates[i]
            body: dict[str, object] = {
                "model": UNSERVED.get(fate, MODEL),
                "prompt": b"prompt-%d" % i,
                "max_tokens": 64,
                "max_runtime_ms": 1000,
                "fee_per_unit": 20_000,
                "tier": 0,
            }
            if fate == DEADLINE:
                body["deadline_blocks"] = 8
            self.devnet.submit(self._requester(i % REQUESTERS), TxKind.AI_ENQUEUE, body)

    def advance(self, reorg_p: float) -> None:
        """Mine one block, or reorganise the last 1..6 blocks (counting proofs orphaned in flight), then ingest."""
        if self.devnet.head_height() > 8 and self.rng.random() < reorg_p:
            depth = self.rng.randint(1, 6)
            orphaned = [t for b in self.devnet.blocks[-depth:] for t in b.txs if t.kind == TxKind.PROOF]
            self.stats["reorgs"] += 1
            self.stats["orphaned proof inclusions"] += len(orphaned)
            self.devnet.reorg(depth)
        self.devnet.mine(1)
        self.clock.set(max(self.clock.now(), self.devnet.blocks[-1].time))
        ingest_available(self.store, self.devnet, self.params, _no_circuits, operator_key=_pub(self.operator))

    # -- one coordinator round ------------------------------------------------------------------------------
    def step(self, reorg_p: float = 0.3, vanish: int = 0) -> list[bytes]:
        """One round; `vanish` providers that were just granted leases stop heartbeating and answering."""
        self.step_no += 1
        self.advance(reorg_p)
        self.coord.sweep()
        self._cancel_queued()
        decisions = self.coord.match(limit=2000)
        winners = list(dict.fromkeys(d.winner for d in decisions if d.winner is not None))
        gone = [p for p in winners if self.fates[self._index(_task_of(decisions, p))[0]] == HONEST][:vanish]
        self.live = [p for p in self.live if p not in gone]
        self.clock.advance(ms=WORK_MS)  # the work: AI pay follows the runtime the coordinator observed
        for pid in list(self.live):
            try:
                leases = self.coord.heartbeat(pid)
            except ProviderBannedError:  # a ban ends a provider's heartbeats (issue 15)
                self.live.remove(pid)
                continue
            for lease in leases:
                if self._act(pid, lease.lease_id, lease.task_id, lease.attempt):
                    break  # slashed: its other leases were revoked
        return gone

    def _index(self, task: bytes) -> tuple[int, Mapping[str, object]]:
        with self.store.transaction() as tx:
            job = tx.get_job(task)
        assert job is not None
        request = decode_request(job)
        prompt = request["prompt"]
        assert isinstance(prompt, bytes)
        return int(prompt.removeprefix(b"prompt-")), request

    def _cancel_queued(self) -> None:
        with self.store.transaction() as tx:
            queued = tx.list_jobs([JobStatus.QUEUED], None, 5000)
        for job in queued:
            if job.model == UNSERVED[CANCEL_QUEUED]:
                i, _ = self._index(job.task_id)
                if i not in self.cancel_sent:
                    self.cancel_sent.add(i)
                    self.devnet.submit(job.caller, TxKind.CANCEL, {"task_id": job.task_id})

    def _act(self, pid: bytes, lid: bytes, task: bytes, attempt: int) -> bool:
        """Play the task's fate on this lease; True when the provider was slashed for it."""
        if lid in self.acted:  # each lease is proved or released once (a replay would return the first answer)
            return False
        i, request = self._index(task)
        fate = self.fates[i]
        if fate == CANCEL_LEASED:
            if i not in self.leased_seen:
                self.leased_seen[i] = self.step_no
                with self.store.transaction() as tx:
                    job = tx.get_job(task)
                assert job is not None
                self.devnet.submit(job.caller, TxKind.CANCEL, {"task_id": task})
            if self.step_no - self.leased_seen[i] >= 8:  # the cancel is final by now
                self.coord.release(pid, lid)
                self.acted.add(lid)
                self.stats["released"] += 1
            return False
        if fate == FAIL or (fate == REJECT_LAST and attempt < 2):
            self.coord.release(pid, lid)
            self.acted.add(lid)
            self.stats["released"] += 1
            return False
        wrong = (fate == REJECT_LAST and attempt == 2) or (fate == REJECT_ONCE and attempt == 0)
        outcome = self.coord.submit_proof(self._envelope(pid, lid, task, request, wrong=wrong))
        self.stats[f"proof {outcome.code}"] += 1
        self.acted.add(lid)
        return outcome.slashed > 0

    def _envelope(
        self, pid: bytes, lid: bytes, task: bytes, request: Mapping[str, object], *, wrong: bool
    ) -> dict[str, Any]:
        prompt = request["prompt"]
        assert isinstance(prompt, bytes)
        output = b"answer to " + prompt
        body = {
            "model_id": MODEL,
            "model_digest": MODEL_DIGEST,
            "input_digest": input_digest(prompt),
            "output_digest": output_digest(output),
            "output": b"not the answer" if wrong else output,
            "qos": {"runtime_ms": WORK_MS, "tokens": 3},
        }
        return signed_ai_envelope(self.keys[pid], task, lid, body)

    def counts(self) -> dict[JobStatus, int]:
        with self.store.transaction() as tx:
            return tx.job_counts()


def _task_of(decisions: list[AssignmentDecision], winner: bytes) -> bytes:
    return next(d.task_id for d in decisions if d.winner == winner)


@pytest.fixture(params=SQL_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


@pytest.mark.slow
def test_a_thousand_jobs_cross_every_state_and_settle_exactly_once(store: Store) -> None:
    started = time.perf_counter()
    run = Run(store)
    vanished: list[bytes] = []
    wave = 50
    for first in range(0, JOBS, wave):  # a wave of enqueues per block, work and reorgs in between
        run.enqueue(first, wave)
        vanished += run.step(vanish=2 - len(vanished) if first >= 500 else 0)
    for _ in range(400):  # until every job is final and every verified one settled
        counts = run.counts()
        if all(s in FINAL_STATUSES and s is not JobStatus.VERIFIED for s, n in counts.items() if n):
            break
        vanished += run.step(vanish=2 - len(vanished), reorg_p=0.3 if run.step_no < 60 else 0.0)
    run.advance(0.0)
    for pid in run.live[:5]:  # some providers withdraw their earnings (claims leave the supply)
        run.coord.claim_payout(pid, nonce=1)
    elapsed = time.perf_counter() - started

    counts = run.counts()
    with store.transaction() as tx:
        snap = tx.snapshot()
    summary = {s.value: n for s, n in counts.items() if n} | dict(run.stats) | {"seconds": round(elapsed, 1)}
    print(summary)  # noqa: T201  (the run's shape, for the report)
    assert snap.refused == (), Counter(r.reason for r in snap.refused)

    # every job in a final status, as many as were enqueued, in the split the fates ask for
    assert sum(counts.values()) == JOBS, summary
    assert {s for s, n in counts.items() if n} <= FINAL_STATUSES - {JobStatus.VERIFIED}, summary
    assert counts[JobStatus.CANCELLED] == FATES[CANCEL_QUEUED] + FATES[DEADLINE] + FATES[CANCEL_LEASED], summary
    assert counts[JobStatus.FAILED] == FATES[FAIL], summary
    assert counts[JobStatus.REJECTED] == FATES[REJECT_LAST], summary
    assert counts[JobStatus.SETTLED] == JOBS - sum(FATES.values()) + FATES[REJECT_ONCE], summary
    # the transitions reach every status of SPEC §4 (PENDING is every job's status at birth)
    reached = {JobStatus.PENDING} | {t.to for t in snap.transitions}
    assert reached == set(JobStatus), sorted(s.value for s in set(JobStatus) - reached)
    reasons = Counter(t.reason for t in snap.transitions)
    assert reasons["lease expired"] > 0, reasons  # the vanished providers' leases
    assert reasons["cancelled after lease"] > 0, reasons  # (a cancel that lands between leases is plain)
    assert reasons["deadline"] == FATES[DEADLINE], reasons
    # the vanished providers were slashed for the leases they dropped; the cheats for their digests
    slashes = Counter(s.reason for s in snap.slashes)
    assert {s.provider_id for s in snap.slashes if s.reason == "MISSED_LEASE"} == set(vanished)
    assert slashes["FRAUD"] == FATES[REJECT_LAST] + FATES[REJECT_ONCE], slashes
    assert run.stats["proof DIGEST_MISMATCH"] == FATES[REJECT_LAST] + FATES[REJECT_ONCE]
    # reorgs orphaned proof inclusions in flight, and every one came back
    assert run.stats["reorgs"] > 0
    assert run.stats["orphaned proof inclusions"] > 0, run.stats
    # no task paid twice; every payout names provider, task, an accepted proof of that provider, the params hash
    payouts = snap.payouts
    assert len(payouts) == counts[JobStatus.SETTLED]
    assert len({p.task_id for p in payouts}) == len(payouts)
    accepted = {(p.proof_id, p.task_id, p.provider_id) for p in snap.proofs if p.verdict == "ACCEPT"}
    phash = params_hash(PARAMS)
    for p in payouts:
        assert (p.proof_id, p.task_id, p.provider_id) in accepted
        assert p.params_hash == phash
        assert p.provider + p.miner + p.fund == p.reward
    assert all(b.params_hash == phash for b in snap.batches)
    # the audit passes and money is conserved: Σ balances (external aside) == minted − withdrawn
    report = verify(store)
    assert report.ok, report
    postings = [e.posting for e in snap.entries]
    balances = balances_of(postings)
    withdrawn = withdrawn_of(postings)
    assert withdrawn > 0
    assert sum(v for a, v in balances.items() if a != EXTERNAL) == minted_of(postings) - withdrawn

    # item 5: a second coordinator fed only the chain writes byte-identical batches and roots
    replica = memory_store()
    ingest_available(replica, run.devnet, PARAMS, _no_circuits, operator_key=_pub(run.operator))
    with store.transaction() as a, replica.transaction() as b:
        last = a.last_batch_epoch()
        assert last is not None
        assert last == b.last_batch_epoch()
        for epoch in range(last + 1):
            ours, theirs = a.get_batch(epoch), b.get_batch(epoch)
            assert ours is not None
            assert theirs is not None
            assert (ours.batch, ours.root) == (theirs.batch, theirs.root), f"epoch {epoch}"
            assert a.payouts_of_epoch(epoch) == b.payouts_of_epoch(epoch)
