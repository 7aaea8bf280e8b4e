"""The coordinator's trap duties (SPEC §8; the rules are in aicf.service.traps): seed commitments and reveals,
linking trap jobs to their tasks, revealing answers, sending the new traps aicf.service.trap_enqueue chose, and
the oracle's cached answers."""

import logging
from dataclasses import dataclass, replace

from aicf.core.chain import TxKind
from aicf.core.errors import AicfError
from aicf.core.ids import output_digest, trap_seed_commitment
from aicf.core.operator import OP_TRAP_COMMIT, OP_TRAP_FUND, OP_TRAP_RECLAIM, OP_TRAP_REVEAL
from aicf.core.records import TrapRecord, TrapSeedRecord
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.context import Context, Work, unit_of_work
from aicf.service.operator_ops import OperatorSender
from aicf.service.trap_enqueue import TrapCallerKeys, new_traps
from aicf.service.trap_funding import (
    CHAIN_REFUNDED,
    TRAP_FINAL_STATUSES,
    Purse,
    follow_grant,
    left_to_reclaim,
    new_grants,
    reclaims_to_resend,
)
from aicf.service.traps import ExpectedAnswer, trap_log_hash

log = logging.getLogger("aicf.coordinator")

MAX_EXPECTED_ANSWERS = 1024  # trap answers kept (oldest dropped first); a dropped one is re-executed if needed
META_TRAP_REVEAL_NEXT = "trap_reveal_next"  # the first epoch whose trap seed is not revealed yet


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapPassReport:
    committed: tuple[int, ...] = ()  # epochs whose seed commitment this pass posted
    revealed: tuple[int, ...] = ()  # epochs whose seed this pass revealed
    enqueued: tuple[bytes, ...] = ()  # callers of the new trap jobs
    linked: int = 0  # trap jobs seen ingested (their H("aicf/trap/v1", s_E, task_id) logged)
    answers_revealed: int = 0
    reclaimed: tuple[bytes, ...] = ()  # trap callers whose refund this pass asked back (trap_reclaim)


def trap_pass(ctx: Context) -> TrapPassReport:
    """One pass of the trap duties, run before matching each coordinator pass:
    1. post the seed commitment of the current epoch (the first pass only) and of the next one, so each is
       public before its epoch's first lease: an operator `trap_commit` transaction (epoch 0's in epoch 0, every
       other one before its epoch), remembered in `trap_seeds` so it is sent once;
    2. reveal s_E for every epoch that has a batch (an operator `trap_reveal` transaction);
    3. log H("aicf/trap/v1", s_E, task_id) for trap jobs now ingested; once a trap's job is final, reveal the
       answer digest and send a `trap_reclaim` for its refund (the trap budget counts only what traps were
       charged), again if it is not on chain after RECLAIM_RESEND_S;
    4. enqueue the traps each corpus model is due, as far as the fund and the trap budget (aicf.core.trap_budget)
       pay them: an operator `trap_fund` transaction (fund → requester:<caller> on chain, so every node that
       follows the chain sees the escrow funded), then the trap's ai_enqueue;
    5. send the grants requesters asked for (aicf.service.grants) exactly as traps, with what the traps left of
       the fund and the budget, none while a due trap is held back; follow, reclaim and close them like traps.
    """
    committed: list[int] = []
    revealed: list[int] = []
    linked = answers = 0
    enqueues: list[tuple[bytes, dict[str, object], int]] = []
    operator_txs: list[dict[str, object]] = []
    sender = ctx.chain_writer if isinstance(ctx.chain_writer, OperatorSender) else None
    if isinstance(ctx.chain_writer, TrapCallerKeys) and not ctx.chain_writer.may_send():
        return TrapPassReport()  # another replica holds the writer lock: it runs the trap duties
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        head = tx.head_block()
        if head is None:
            return TrapPassReport()
        for epoch in (head.epoch, head.epoch + 1):  # (1)
            if tx.get_trap_seed(epoch) is None:
                record = TrapSeedRecord(
                    epoch=epoch,
                    commitment=trap_seed_commitment(ctx.trap_seed(epoch)),
                    committed_at=now,
                    committed_height=head.height,
                )
                if tx.insert_trap_seed(record):
                    committed.append(epoch)
                    if epoch > head.epoch or epoch == 0:  # the chain takes a commitment only before its epoch
                        body = {"op": OP_TRAP_COMMIT, "epoch": epoch, "commitment": record.commitment}
                        operator_txs.append(body)
        last = tx.last_batch_epoch()  # (2)
        first = tx.get_meta(META_TRAP_REVEAL_NEXT) or 0
        if last is not None and first <= last:
            for epoch in range(first, last + 1):
                if tx.reveal_trap_seed(epoch, ctx.trap_seed(epoch), now):
                    revealed.append(epoch)
                    operator_txs.append({"op": OP_TRAP_REVEAL, "epoch": epoch, "seed": ctx.trap_seed(epoch)})
            tx.set_meta(META_TRAP_REVEAL_NEXT, last + 1)
        reclaims: list[bytes] = []
        for trap in tx.open_traps(1000):  # (3)
            linked_now, answered, reclaim = _follow_trap(w, trap)
            linked += linked_now
            answers += answered
            if reclaim and sender is not None:
                reclaims.append(trap.caller)
                ctx.caches.trap_reclaims[trap.caller] = now
                operator_txs.append({"op": OP_TRAP_RECLAIM, "from": trap.caller})
        for grant in tx.open_grants(1000):  # (5) grants: linked, reclaimed and closed like traps
            if follow_grant(w, grant) and sender is not None:
                reclaims.append(grant.caller)
                ctx.caches.trap_reclaims[grant.caller] = now
                operator_txs.append({"op": OP_TRAP_RECLAIM, "from": grant.caller})
        for caller in reclaims_to_resend(w):
            ctx.caches.trap_reclaims[caller] = now
            operator_txs.append({"op": OP_TRAP_RECLAIM, "from": caller})
        purse = Purse(w)
        if ctx.trap_oracle is not None and ctx.trap_corpus and sender is not None:  # (4)
            enqueues = new_traps(w, head.epoch, purse)
        if sender is not None and not purse.held:  # (5) grants take what the traps left
            enqueues += new_grants(w, purse)
        w.commit()
    if sender is not None:
        for body in operator_txs:
            _send(sender, body)
    sent: list[bytes] = []
    for caller, body, funded in enqueues:
        if ctx.chain_writer is not None and sender is not None:
            if funded > 0 and not _send(sender, {"op": OP_TRAP_FUND, "to": caller, "amount": funded}):
                continue  # unfunded: its enqueue would be refused (an EVM contract would revert it)
            try:
                ctx.chain_writer.submit(TxKind.AI_ENQUEUE, body, caller)
            except AicfError as exc:
                log.warning("trap enqueue from 0x%s not sent: %s", caller.hex(), exc)
                continue
            sent.append(caller)
    if sent:
        log.info("enqueued %d fund-funded AI jobs (traps and grants)", len(sent))
    return TrapPassReport(
        committed=tuple(committed),
        revealed=tuple(revealed),
        enqueued=tuple(sent),
        linked=linked,
        answers_revealed=answers,
        reclaimed=tuple(reclaims),
    )


def _follow_trap(w: Work, trap: TrapRecord) -> tuple[int, int, bool]:
    """(1 if the trap's task was linked now, 1 if its answer was revealed now, whether to send its trap_reclaim)."""
    tx, ctx = w.tx, w.ctx
    jobs = tx.jobs_of_caller(trap.caller)
    job = jobs[-1] if jobs else None
    if job is None:
        if trap.task_id:  # its enqueue block was orphaned: wait for the transaction to land again
            tx.update_trap(replace(trap, task_id=b"", log_hash=b""))
        return 0, 0, False
    linked = 0
    if job.task_id != trap.task_id:
        trap = replace(trap, task_id=job.task_id, log_hash=trap_log_hash(ctx.trap_seed(trap.epoch), job.task_id))
        tx.update_trap(trap)
        linked = 1
    if job.status not in TRAP_FINAL_STATUSES:
        return linked, 0, False
    reclaim = (
        job.status in CHAIN_REFUNDED
        and left_to_reclaim(w, trap.caller) > 0
        and trap.caller not in ctx.caches.trap_reclaims
    )
    if ctx.trap_oracle is None:
        return linked, 0, reclaim
    expected = expected_answer(ctx, trap)
    digest = output_digest(expected.output) if isinstance(expected, ExpectedAnswer) else b""
    tx.update_trap(replace(trap, answer_digest=digest, revealed_at=w.now))
    return linked, 1, reclaim


def _send(sender: OperatorSender, body: dict[str, object]) -> bool:
    try:
        sender.send_operator(body)
    except AicfError as exc:  # the chain refused it (say a nonce race): the rows say what was meant, log it
        log.warning("operator %s transaction not sent: %s", body.get("op"), exc)
        return False
    return True


def expected_answer(ctx: Context, trap: TrapRecord) -> ExpectedAnswer | Reject:
    """The oracle's answer to a trap, computed once per (model, prompt, max_tokens) while it is cached; an oracle
    that cannot run the model gives UNVERIFIABLE (no slash, the job requeues)."""
    key = (trap.model, trap.prompt, trap.max_tokens)
    found = ctx.caches.expected.get(key)
    if found is not None:
        return found
    answer = run_oracle(ctx, "trap", "no trap oracle configured", trap.model, trap.prompt, trap.max_tokens)
    if isinstance(answer, ExpectedAnswer):
        cache = ctx.caches.expected
        while len(cache) >= MAX_EXPECTED_ANSWERS:  # recycled prompts and real budgets: no longer bounded by the corpus
            del cache[next(iter(cache))]
        cache[key] = answer
    return answer


def run_oracle(
    ctx: Context, purpose: str, missing: str, model: str, prompt: bytes, max_tokens: int
) -> ExpectedAnswer | Reject:
    """One re-execution by the coordinator's own model (a trap's or a sampled job's; `purpose` prefixes the
    messages): the answer, or UNVERIFIABLE when there is no oracle (`missing` says so) or it cannot run."""
    if ctx.trap_oracle is None:
        return Reject(code=RejectCode.UNVERIFIABLE, message=f"{purpose}: {missing}")
    try:
        return ctx.trap_oracle.expected(model, prompt, max_tokens)
    except AicfError as exc:
        log.warning("%s re-execution of %s failed: %s", purpose, model, exc)
        return Reject(code=RejectCode.UNVERIFIABLE, message=f"{purpose}: cannot re-execute {model}: {exc}")
