"""AI traps and trap seeds (SPEC §8) on SQLite :memory:, with the devnet and a fake clock.

The trap oracle is a deterministic fake that still computes its answer from the prompt (a unit float32 vector
whose hot index comes from the prompt's hash), so a provider that does not run "the model" cannot guess it.
"""

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import cbor2
import pytest

from aicf.core.chain import TxKind
from aicf.core.errors import AicfError
from aicf.core.ids import input_digest, output_digest, trap_seed_commitment
from aicf.core.jobs import JobStatus
from aicf.core.ledger import FUND, provider_account, requester_account
from aicf.core.params import Params, params_from_mapping
from aicf.core.registry import ProviderStatus
from aicf.core.slashing import evidence_ref
from aicf.service.audit import verify
from aicf.service.coordinator import Capabilities, decode_request
from aicf.service.traps import ExpectedAnswer, TrapPrompt, seed_checks, trap_caller, trap_log_hash
from service.test_coordinator import (
    MODEL_DIGEST,
    DevnetWriter,
    World,
    _key,
    _pub,
    coordinator_for,
    signed_ai_envelope,
)

MODEL = "minilm-l6-v2"
DIMS = 384
PARAMS = params_from_mapping({"epoch_seconds": 120, "gamma_units": 1000, "model_weights": {MODEL: 100}})
CORPUS = tuple(TrapPrompt(model=MODEL, prompt=b"trap prompt %d" % i, max_tokens=0) for i in range(4))


def embed(prompt: bytes) -> bytes:
    """The fake model: a unit vector whose hot index is taken from the prompt's hash."""
    hot = int.from_bytes(hashlib.sha3_256(prompt).digest()[:2], "big") % DIMS
    return struct.pack(f"<{DIMS}f", *(1.0 if i == hot else 0.0 for i in range(DIMS)))


@dataclass
class FakeOracle:
    calls: list[bytes] = field(default_factory=list)

    def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
        assert model == MODEL
        self.calls.append(prompt)
        return ExpectedAnswer(kind="embedding", output=embed(prompt))


@dataclass
class TrapWorld(World):
    oracle: FakeOracle = field(default_factory=FakeOracle)

    def __post_init__(self) -> None:
        self.start(PARAMS, DevnetWriter(self.devnet))

    def start(self, params: Params, writer: DevnetWriter) -> None:
        """The coordinator on this world's store with `params` and `writer`, the trap model, oracle and corpus wired."""
        self.params = params
        self.writer = writer
        self.coord = coordinator_for(
            self.store,
            self.clock,
            self.params,
            self.operator,
            self.writer,
            model_digests={MODEL: MODEL_DIGEST},
            trap_oracle=self.oracle,
            trap_corpus=CORPUS,
        )

    def mine(self, n: int = 1) -> None:
        """Each block: ingest (World.mine), then the coordinator's trap pass as `aicf up` runs it every pass."""
        for _ in range(n):
            super().mine(1)
            self.coord.trap_pass()

    def enqueue_model(self, n: int, fee: int = 20_000) -> None:
        requester = b"\x42" * 20
        self.devnet.submit(requester, TxKind.DEPOSIT, {"to": requester, "amount": 10**9})
        for i in range(n):
            body = {
                "model": MODEL,
                "prompt": b"ordinary %d" % i,
                "max_tokens": 0,
                "max_runtime_ms": 2000,
                "fee_per_unit": fee,
                "tier": 0,
            }
            self.devnet.submit(requester, TxKind.AI_ENQUEUE, body)

    def provider_for(self, seed: int, stake: int = 1_000_000) -> bytes:
        p = self.coord.register(_pub(_key(seed)), Capabilities(kinds=("ai",), models=(MODEL,)))
        self.coord.deposit_stake(p.provider_id, stake, source="external")
        self.coord.heartbeat(p.provider_id)
        self.live.append(p.provider_id)
        return p.provider_id

    def proof(self, seed: int, lease_id: bytes, task: bytes, output: bytes) -> dict[str, object]:
        with self.store.transaction() as tx:
            job = tx.get_job(task)
        assert job is not None
        prompt = decode_request(job)["prompt"]
        assert isinstance(prompt, bytes)
        body = {
            "model_id": MODEL,
            "model_digest": MODEL_DIGEST,
            "input_digest": input_digest(prompt),
            "output_digest": output_digest(output),
            "output": output,
            "qos": {"runtime_ms": 1500, "tokens": 0},
        }
        return signed_ai_envelope(_key(seed), task, lease_id, body)


def _fund_the_fund(world: TrapWorld, amount: int = 10**9) -> None:
    """The operator's top-up of the fund for traps on a young devnet (a fund_topup transaction, in the next block):
    the trap budget counts top-ups and the fund's split of settled batches, not other credits."""
    writer = world.coord.chain_writer
    assert isinstance(writer, DevnetWriter)
    writer.send_operator({"op": "fund_topup", "amount": amount})


@pytest.fixture
def world() -> TrapWorld:
    w = TrapWorld()
    w.mine(2)
    _fund_the_fund(w)
    return w


def _trap_task(world: TrapWorld) -> tuple[bytes, bytes]:
    with world.store.transaction() as tx:
        (trap,) = tx.open_traps(10)
    assert trap.task_id, "the trap job is not ingested yet"
    return trap.caller, trap.task_id


def _serve_until_trap(world: TrapWorld, pid: bytes, seed: int, trap_output: bytes) -> tuple[bytes, object]:
    """Match and answer every lease of `pid` (ordinary jobs honestly) until the trap job is answered."""
    _, trap_task = _trap_task(world)
    for _ in range(200):
        world.coord.match()
        for work in world.coord.leases_for(pid):
            task = work.job.task_id
            prompt = work.request["prompt"]
            assert isinstance(prompt, bytes)
            output = trap_output if task == trap_task else embed(prompt)
            world.clock.advance(ms=1500)  # the work takes the runtime the proof claims (pay follows observed time)
            outcome = world.coord.submit_proof(world.proof(seed, work.lease.lease_id, task, output))
            if task == trap_task:
                return task, outcome
        world.mine(1)
    raise AssertionError("the trap job was never leased")


def test_seed_commitment_is_posted_before_the_epoch_and_revealed_after_its_batch(world: TrapWorld) -> None:
    with world.store.transaction() as tx:
        zero, one = tx.get_trap_seed(0), tx.get_trap_seed(1)
    assert zero is not None
    assert one is not None
    assert zero.commitment == trap_seed_commitment(world.coord.trap_seed(0))
    assert one.commitment == trap_seed_commitment(world.coord.trap_seed(1))
    assert zero.seed == b""
    assert one.seed == b""
    world.mine(12 + 7)  # past epoch 0, and its boundary final: batch 0 is built
    with world.store.transaction() as tx:
        batch = tx.get_batch(0)
        zero, one, two = tx.get_trap_seed(0), tx.get_trap_seed(1), tx.get_trap_seed(2)
    assert batch is not None
    assert zero is not None
    assert seed_checks(zero)
    assert zero.seed == world.coord.trap_seed(0)
    assert one is not None
    assert not one.seed
    assert two is not None
    world.mine(12)
    with world.store.transaction() as tx:
        head = tx.head_block()
        assert head is not None
        first_of_2 = min(h for h in range(head.height + 1) if (b := tx.block_at(h)) is not None and b.epoch >= 2)
    assert two.committed_height < first_of_2  # posted before epoch 2's first block
    assert b"trap" not in cbor2.loads(batch.batch)  # the reveal is its own record, outside the SPEC batch map
    assert verify(world.store).ok


def test_traps_are_enqueued_at_trap_bps_from_fund_funded_fresh_callers(world: TrapWorld) -> None:
    world.enqueue_model(18)
    world.mine(1)
    with world.store.transaction() as tx:
        assert tx.open_traps(10) == []  # 18 × 500 // 9500 = 0
    world.enqueue_model(1)
    world.mine(1)  # 19 ordinary enqueues ingested: one trap due, sent this pass
    world.mine(1)  # …and ingested with the next block
    caller, task = _trap_task(world)
    seed = world.coord.trap_seed(0)
    assert caller == trap_caller(seed, 0)
    with world.store.transaction() as tx:
        (trap,) = tx.open_traps(10)
        job = tx.get_job(task)
        ordinary = tx.jobs_of_caller(b"\x42" * 20)
        funding = [e for e in tx.snapshot().entries if e.posting.ref_kind == "trap_funding"]
    assert job is not None
    assert trap.log_hash == trap_log_hash(seed, task)
    assert [(e.posting.debit, e.posting.credit, e.posting.amount) for e in funding] == [
        (FUND, requester_account(caller), job.escrow)
    ]
    request = decode_request(job)
    assert request["prompt"] in {c.prompt for c in CORPUS}
    sample = ordinary[0]
    assert (job.kind, job.model, job.fee_per_unit, job.tier, job.max_units_mu) == (
        sample.kind,
        sample.model,
        sample.fee_per_unit,
        sample.tier,
        sample.max_units_mu,
    )
    assert job.deadline_height - job.enqueue_height == sample.deadline_height - sample.enqueue_height
    assert set(request) == set(decode_request(sample))
    world.enqueue_model(19)
    world.mine(2)
    with world.store.transaction() as tx:
        assert tx.trap_counts() == {MODEL: 2}  # 38 ordinary: 2 traps, 5% of 40
        assert tx.ai_job_counts() == {MODEL: 40}
    assert verify(world.store).ok


def test_honest_provider_passes_a_trap_and_is_paid(world: TrapWorld) -> None:
    pid = world.provider_for(1)
    world.enqueue_model(19)
    world.mine(2)
    caller, _ = _trap_task(world)
    world.mine(7)
    with world.store.transaction() as tx:
        trap = tx.get_trap(caller)
    assert trap is not None
    task, outcome = _serve_until_trap(world, pid, 1, embed(trap.prompt))
    assert outcome.accepted, outcome  # type: ignore[attr-defined]
    assert world.oracle.calls == [trap.prompt]  # re-executed by the coordinator, once
    world.mine(12 + 8)
    assert world.job_status(task) is JobStatus.SETTLED
    with world.store.transaction() as tx:
        payout = tx.payout_of_task(task)
        revealed = tx.get_trap(caller)
    assert payout is not None
    assert payout.provider_id == pid
    assert payout.provider > 0
    assert world.balance(provider_account(pid)) >= payout.provider
    assert revealed is not None
    assert revealed.revealed_at is not None
    assert revealed.answer_digest == output_digest(embed(trap.prompt))
    assert verify(world.store).ok


def test_random_output_fails_the_trap_and_is_slashed_jailed_and_requeued(world: TrapWorld) -> None:
    pid = world.provider_for(2)
    world.enqueue_model(19)
    world.mine(2 + 7)
    garbage = struct.pack(f"<{DIMS}f", *(((i * 7919) % 13) / 13.0 - 0.4 for i in range(DIMS)))
    task, outcome = _serve_until_trap(world, pid, 2, garbage)
    assert not outcome.accepted  # type: ignore[attr-defined]
    assert outcome.code == "TRAP_FAILURE", outcome  # type: ignore[attr-defined]
    assert outcome.slashed == 1_000_000 * 1000 // 10_000  # type: ignore[attr-defined]
    assert world.job_status(task) is JobStatus.QUEUED
    now = world.clock.now()
    with world.store.transaction() as tx:
        provider = tx.get_provider(pid)
        slashes = [s for s in tx.slashes_of(pid) if s.reason == "TRAP_FAILURE"]
    assert provider is not None
    assert provider.status is ProviderStatus.JAILED
    assert provider.jailed_until == now + 24 * 3600
    (slash,) = slashes
    assert slash.evidence_hash == evidence_ref(cbor2.loads(slash.evidence))  # the evidence is what it hashes
    assert verify(world.store).ok


def test_a_trap_the_coordinator_cannot_re_execute_is_unverifiable_without_a_slash(world: TrapWorld) -> None:
    class BrokenOracle(FakeOracle):
        def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
            self.calls.append(prompt)
            raise AicfError("the model weights are missing")

    world.oracle = BrokenOracle()
    world.coord.trap_oracle = world.oracle
    pid = world.provider_for(3)
    world.enqueue_model(19)
    world.mine(2 + 7)
    with world.store.transaction() as tx:
        (trap,) = tx.open_traps(10)
    task, outcome = _serve_until_trap(world, pid, 3, embed(trap.prompt))
    assert not outcome.accepted  # type: ignore[attr-defined]
    assert outcome.code == "UNVERIFIABLE", outcome  # type: ignore[attr-defined]
    assert outcome.slashed == 0  # type: ignore[attr-defined]
    assert world.oracle.calls == [trap.prompt]
    assert world.job_status(task) is JobStatus.QUEUED
    with world.store.transaction() as tx:
        assert tx.slashes_of(pid) == []
    assert verify(world.store).ok


class KeyedWriter(DevnetWriter):
    """A chain writer whose trap callers hold keys and whose chain keeps its own trap fund (as an EVM node's:
    aicf.service.trap_enqueue.TrapCallerKeys); here the callers are a recognisable derivation of (s_E, n)."""

    held: int = 0
    refuse_funding: bool = False
    submitted: int = 0

    def send_operator(self, body: Mapping[str, object]) -> bytes:
        if self.refuse_funding and body["op"] == "trap_fund":
            raise AicfError("TrapFundShort(0, 1)")  # what an EVM contract answers to a trap fund it cannot pay
        return super().send_operator(body)

    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        self.submitted += 1
        super().submit(kind, body, sender)

    def trap_caller(self, seed: bytes, n: int) -> bytes:
        return hashlib.sha3_256(b"keyed" + seed + bytes([n])).digest()[:20]

    def trap_fund_held(self) -> int:
        return self.held

    def may_send(self) -> bool:
        return True


@dataclass
class KeyedTrapWorld(TrapWorld):
    def __post_init__(self) -> None:
        self.keyed = KeyedWriter(self.devnet)  # the world's writer, typed as what these tests read of it
        self.start(PARAMS, self.keyed)


def test_a_chain_whose_trap_callers_hold_keys_names_them_and_pays_traps_only_from_its_own_trap_fund() -> None:
    world = KeyedTrapWorld()
    world.mine(2)
    _fund_the_fund(world)  # the ledger's fund could pay, the chain's trap fund cannot
    world.enqueue_model(19)
    world.mine(2)
    with world.store.transaction() as tx:
        assert tx.open_traps(10) == []
    assert MODEL in world.coord.trap_shortfalls  # counted as a trap the fund could not pay (the demo tops it up)
    world.keyed.held = 10**9
    world.mine(2)  # the next pass sends it; the block after ingests it
    caller, task = _trap_task(world)
    assert caller == world.keyed.trap_caller(world.coord.trap_seed(0), 0) != trap_caller(world.coord.trap_seed(0), 0)
    with world.store.transaction() as tx:
        job = tx.get_job(task)
    assert job is not None
    assert job.caller == caller
    assert verify(world.store).ok


def test_a_trap_whose_funding_the_chain_refuses_is_not_enqueued() -> None:
    world = KeyedTrapWorld()
    world.mine(2)
    _fund_the_fund(world)
    world.keyed.held, world.keyed.refuse_funding = 10**9, True
    world.enqueue_model(19)
    submitted = world.keyed.submitted
    world.mine(2)
    assert world.keyed.submitted == submitted  # no enqueue from a caller nobody funded
    with world.store.transaction() as tx:
        (trap,) = tx.open_traps(10)
        assert tx.jobs_of_caller(trap.caller) == []
