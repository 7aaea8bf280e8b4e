"""What a height becoming final does (SPEC §4, §5): PENDING → QUEUED, cancels and deadlines taking effect with
their refunds, and the settlement of every epoch now due; each recorded at the height that became final."""

from aicf.core.chain import CancelOutcome, Job
from aicf.core.jobs import FINAL_STATUSES, JobStatus, check_move
from aicf.core.params import Params
from aicf.service.escrow import refund_escrow
from aicf.service.settle import settle_due
from aicf.store.interface import META_FINAL_HEIGHT, ConcurrentUpdateError, Tx


def final_height_of(tx: Tx) -> int:
    """The highest height whose finality effects are applied (-1 before any)."""
    value = tx.get_meta(META_FINAL_HEIGHT)
    return -1 if value is None else value


def apply_finality(tx: Tx, final: int, params: Params) -> tuple[int, int]:
    """Apply the effects of every height that became final, each recorded at that height."""
    queued = cancelled = 0
    done = final_height_of(tx)
    for height in range(done + 1, final + 1):
        block = tx.block_at(height)
        time = block.time if block is not None else 0
        tx.finalize_blocks_through(height)
        pending = tx.pending_jobs_through(height)
        for task in pending:
            check_move(task, JobStatus.PENDING, JobStatus.QUEUED)
        if pending:
            moved = tx.move_jobs(pending, JobStatus.PENDING, JobStatus.QUEUED, "final", height, time)
            if moved != len(pending):
                raise ConcurrentUpdateError(f"{len(pending) - moved} PENDING jobs moved while they became final")
        queued += len(pending)
        cancelled += _apply_cancels(tx, height, time)
        cancelled += _apply_deadlines(tx, height, time)
        tx.set_meta(META_FINAL_HEIGHT, height)
        settle_due(tx, height, params)
    return queued, cancelled


def _cancel(tx: Tx, job: Job, reason: str, height: int, time: int) -> bool:
    check_move(job.task_id, job.status, JobStatus.CANCELLED)
    if not tx.move_job(job.task_id, job.status, JobStatus.CANCELLED, reason, height, time):
        return False
    refund_escrow(tx, job, "refund", height, time)
    return True


def _apply_cancels(tx: Tx, height: int, time: int) -> int:
    """SPEC §4: a cancel takes effect once its block is final. QUEUED → CANCELLED with a full refund; a
    leased job is marked and cancelled only if the lease ends without an accepted proof."""
    count = 0
    for cancel in tx.waiting_cancels_through(height):
        job = tx.get_job(cancel.task_id)
        if job is None or job.caller != cancel.sender or job.status in FINAL_STATUSES:
            outcome = CancelOutcome.IGNORED
        elif job.status == JobStatus.QUEUED:
            outcome = CancelOutcome.CANCELLED if _cancel(tx, job, "cancelled", height, time) else CancelOutcome.IGNORED
            count += outcome == CancelOutcome.CANCELLED
        elif job.status == JobStatus.PENDING:  # cannot happen: its enqueue is at or below the cancel's height
            outcome = CancelOutcome.IGNORED
        else:
            tx.set_cancel_requested(job.task_id)
            outcome = CancelOutcome.DEFERRED
        tx.set_cancel_outcome(cancel.height, cancel.tx_index, outcome)
    return count


def _apply_deadlines(tx: Tx, height: int, time: int) -> int:
    """SPEC §4: QUEUED → CANCELLED when enqueue height + deadline_blocks is final."""
    return sum(1 for job in tx.queued_jobs_at_deadline(height) if _cancel(tx, job, "deadline", height, time))
