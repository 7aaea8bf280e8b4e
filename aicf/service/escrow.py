"""Escrow moves shared by ingest (chain-driven, recorded at a height) and the coordinator (off-chain)."""

from aicf.core.chain import Job
from aicf.core.ledger import Posting, escrow_account, requester_account
from aicf.core.types import MicroAnm
from aicf.store.interface import Tx


def refund_escrow(tx: Tx, job: Job, reason: str, height: int | None, time: int) -> int:
    """Return whatever escrow:<task_id> still holds to its requester (SPEC §2: CANCELLED, FAILED and REJECTED
    refund all of it). `height` None records an off-chain entry. Returns the amount refunded."""
    account = escrow_account(job.task_id)
    have = tx.balances([account])[account]
    if have > 0:
        tx.post(
            [
                Posting(
                    debit=account,
                    credit=requester_account(job.caller),
                    amount=MicroAnm(have),
                    ref_kind=reason,
                    ref=job.task_id,
                )
            ],
            height,
            time,
        )
    return have
