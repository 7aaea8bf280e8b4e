"""Proof submission (SPEC §8): check the envelope, verify the body, then accept (signed acceptance, inclusion on
chain) or reject (requeue or REJECTED, and a slash when the code earns one). The verdict's records and their
writing are in aicf.service.proof_verdicts; the only state the steps share is the submission's unit of work."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from aicf.core.chain import Job
from aicf.core.jobs import JobStatus, check_move
from aicf.core.outages import Outage, credited_s
from aicf.core.records import LeaseRecord, ProofRecord, TrapRecord
from aicf.proofs.envelope import ProofEnvelope, check_envelope
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.context import Context, Work
from aicf.service.errors import LeaseNotFoundError
from aicf.service.outages import outages_for_proofs
from aicf.service.proof_verdicts import ProofOutcome, accepted_record, measured_runtime, outcome_of, reject_proof
from aicf.service.steps import as_int, core_lease, decode_request, parse_for_chain, send_inclusion
from aicf.service.trap_duties import expected_answer, run_oracle
from aicf.service.traps import ExpectedAnswer, audit_verdict, is_audited, trap_verdict
from aicf.store.interface import ConcurrentUpdateError, QosRange

MAX_AUDIT_ANSWERS = 256  # re-executions of sampled jobs kept, so a resubmission does not run the model again


class _Raced(Enum):
    """`_submit`'s answer when another replica moved the job between its read and its write."""

    RACED = "raced"


_RACED = RACED = _Raced.RACED


@dataclass(frozen=True, slots=True, kw_only=True)
class _Audit:
    """`_submit`'s answer for a sampled ordinary AI job whose re-execution is not known yet (nothing written)."""

    task_id: bytes
    model: str
    prompt: bytes
    max_tokens: int


def submit_proof(ctx: Context, raw: Mapping[str, object]) -> ProofOutcome:
    """Check the envelope, verify the body, then accept or reject. A drop changes nothing."""
    received_ms = ctx.clock.now_ms()
    env = parse_for_chain(ctx, raw)
    if isinstance(env, Reject):
        return unparsed(env)
    return submit_alone(ctx, env, received_ms)


def unparsed(env: Reject) -> ProofOutcome:
    return ProofOutcome(proof_id=b"", accepted=False, code=env.code.value, message=env.message, dropped=True)


def submit_alone(ctx: Context, env: ProofEnvelope, received_ms: int) -> ProofOutcome:
    answer: ExpectedAnswer | Reject | None = None
    for _ in range(3):
        outcome = _submit(ctx, env, received_ms, answer)
        if isinstance(outcome, ProofOutcome):
            return outcome
        if isinstance(outcome, TrapRecord):  # a trap whose answer is not known yet: run the model outside any tx
            answer = expected_answer(ctx, outcome)
        elif isinstance(outcome, _Audit):  # a sampled ordinary job: re-execute it outside any tx
            answer = _reexecute(ctx, outcome)
        # _RACED: another replica moved the job meanwhile; the next look answers as it finds it
    raise ConcurrentUpdateError(f"proof 0x{env.proof_id.hex()[:12]}: the job kept moving under it")


def _submit(
    ctx: Context, env: ProofEnvelope, received_ms: int, answer: ExpectedAnswer | Reject | None
) -> ProofOutcome | TrapRecord | _Audit | _Raced:
    """One submission in one transaction (see `_submit_in`); an accepted proof goes to the chain after commit."""
    with ctx.store.transaction() as tx:
        w = Work(tx, received_ms // 1000, ctx)
        outcome = submit_in(w, env, received_ms, answer)
        if not isinstance(outcome, Written):
            return outcome
        w.commit()
    if outcome.accepted is not None:
        send_inclusion(ctx, outcome.accepted)
    return outcome.outcome


@dataclass(frozen=True, slots=True)
class Written:
    """`_submit_in`'s answer when it wrote a verdict: the transaction must commit, then the accepted proof (if
    it is one) goes to the chain."""

    outcome: ProofOutcome
    accepted: ProofRecord | None


def submit_in(
    w: Work,
    env: ProofEnvelope,
    received_ms: int,
    answer: ExpectedAnswer | Reject | None,
    outages: Sequence[Outage] | None = None,
) -> ProofOutcome | Written | TrapRecord | _Audit | _Raced:
    """One submission in `w`'s transaction. A bare ProofOutcome wrote nothing (a drop, a replay); `Written`
    wrote the verdict. For a trap job whose answer this process has not computed yet it writes nothing and
    returns the trap, and for a sampled ordinary job whose body passed the checks an `_Audit`: the caller
    computes the answer (a model run, outside any transaction) and calls again with it. `_RACED` (nothing
    written) when the job left LEASED between the read and the write. `outages`: outages_for_proofs(w) if read."""
    ctx, tx = w.ctx, w.tx
    params = ctx.params
    now = received_ms // 1000
    pid = env.proof_id
    interval = params.heartbeat_interval_s
    # the widest QoS window (registration can only shorten it): accepted_record filters to the provider's own
    qos = QosRange(
        since=now - params.qos_window_s,
        first_slot=(now - params.qos_window_s) // interval,
        last_slot=now // interval,
    )
    outages = outages_for_proofs(w) if outages is None else outages
    pc = tx.proof_context(env.provider_id, env.lease_id, env.task_id, pid, qos)
    provider, stored = pc.provider, pc.lease
    lease = core_lease(stored) if stored is not None else None
    drop = check_envelope(
        env,
        provider_key=provider.public_key if provider is not None else None,
        lease=lease,
        received_at=now,
        seen_proof=lambda asked: pc.seen if asked == pid else tx.proof_seen(asked),
    )
    if drop is not None:
        if drop.code is RejectCode.DUPLICATE:
            first = tx.get_proof(pid)
            if first is not None:  # replaying a message returns the first answer
                return outcome_of(first)
        return ProofOutcome(proof_id=pid, accepted=False, code=drop.code.value, message=drop.message, dropped=True)
    if provider is None or stored is None:  # unreachable: check_envelope dropped these
        raise LeaseNotFoundError(env.lease_id, "is unknown")
    job = pc.job
    if job is None or job.status is not JobStatus.LEASED:
        return ProofOutcome(
            proof_id=pid,
            accepted=False,
            code=RejectCode.UNKNOWN_LEASE.value,
            message="the task is not leased",
            dropped=True,
        )
    expected = answer
    audited = pc.trap is None and job.kind == "ai" and _audited(ctx, job, stored)
    trap = pc.trap if answer is None and job.kind == "ai" else None
    if trap is not None:
        expected = ctx.caches.expected.get((trap.model, trap.prompt, trap.max_tokens))
        if expected is None:
            return trap
    head = pc.head
    height = head.height if head is not None else 0
    observed = max(0, received_ms - stored.granted_at * 1000)  # the provider may have worked through an outage
    # but time the coordinator could not receive the proof is not the provider's latency (aicf.core.outages)
    latency = max(0, observed - 1000 * credited_s(outages, stored.granted_at, now))
    # judged by the roots and policy in force at the earliest inclusion height: the acceptance goes on
    # chain with the envelope at the next block at the earliest (aicf.service.trust, docs/ROOTS.md)
    inclusion = height + 1 if head is not None else 0
    trust = ctx.trust.anchors_at(tx, inclusion, pc.trust_version)
    verdict = ctx.verifier.verify(env, job, decode_request(job), stored, now, inclusion, trust, ctx.params)
    if isinstance(verdict, Reject) and verdict.is_drop:  # SPEC §8: a malformed body uses no attempt
        return ProofOutcome(
            proof_id=pid, accepted=False, code=verdict.code.value, message=verdict.message, dropped=True
        )
    if not isinstance(verdict, Reject) and verdict.units_mu is None:  # AI: pay only for time observed
        verdict = measured_runtime(env, verdict, observed)
    reference: bytes | None = None
    if audited and not isinstance(verdict, Reject):  # a sampled ordinary job: compare with a re-execution
        if answer is None:
            request = decode_request(job)
            prompt = request.get("prompt")
            return _Audit(
                task_id=job.task_id,
                model=job.model,
                prompt=prompt if isinstance(prompt, bytes) else b"",
                max_tokens=as_int(request.get("max_tokens")),
            )
        verdict, reference = audit_verdict(answer, env, verdict, ctx.params)
    elif expected is not None and not isinstance(verdict, Reject):  # a trap job: compare with our answer
        verdict = expected if isinstance(expected, Reject) else trap_verdict(expected, env, verdict, ctx.params)
    check_move(job.task_id, JobStatus.LEASED, JobStatus.SUBMITTED)
    received = ProofRecord(  # what both verdicts record; each adds its own outcome
        proof_id=pid,
        task_id=env.task_id,
        lease_id=env.lease_id,
        provider_id=env.provider_id,
        kind=env.kind,
        envelope=env.encoded(),
        received_at=now,
        latency_ms=latency,
        verdict="",
    )
    if isinstance(verdict, Reject):
        if not tx.move_job(job.task_id, JobStatus.LEASED, JobStatus.SUBMITTED, "proof submitted", None, now):
            return _RACED
        rejected = reject_proof(w, env, job, stored, provider, verdict, received, height, reference=reference)
        return Written(rejected, None)
    accepted = accepted_record(ctx, env, job, provider, verdict, received, now, pc, outages)
    if not tx.accept_proof(accepted, now):
        return _RACED  # the caller rolls back: part of accept_proof may be written
    return Written(outcome_of(accepted), accepted)


def _audited(ctx: Context, job: Job, lease: LeaseRecord) -> bool:
    """Whether this ordinary AI job is in its epoch's re-execution sample (issue 14; docs/TRAPS.md)."""
    if ctx.trap_oracle is None or ctx.params.audit_bps <= 0:
        return False
    return is_audited(ctx.trap_seed(lease.epoch), job.task_id, ctx.params.audit_bps)


def _reexecute(ctx: Context, audit: _Audit) -> ExpectedAnswer | Reject:
    """The oracle's answer for a sampled job, kept per task (bounded) so resubmissions do not run it again."""
    answers = ctx.caches.audit_answers
    found = answers.get(audit.task_id)
    if found is not None:
        return found
    answer = run_oracle(ctx, "audit", "no oracle configured", audit.model, audit.prompt, audit.max_tokens)
    if isinstance(answer, Reject):
        return answer
    if len(answers) >= MAX_AUDIT_ANSWERS:
        answers.pop(next(iter(answers)))
    answers[audit.task_id] = answer
    return answer
