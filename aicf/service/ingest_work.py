"""What one block's transactions add up to while ingestion reads them (aicf.service.ingest), and the small
steps every transaction handler shares: refusing a transaction, reading a 32-byte id, a running balance."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from aicf.core.chain import Block, CancelRequest, ChainTx, Job, ProofInclusion, RefusedTx
from aicf.core.errors import RequestError
from aicf.core.ledger import Posting
from aicf.core.operator import OperatorChange
from aicf.core.params import Params
from aicf.core.records import ResultRecord
from aicf.store.interface import Tx


@dataclass(slots=True)
class BlockWork:
    """What one block's transactions add up to, gathered before anything is written."""

    postings: list[Posting] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    refused: list[RefusedTx] = field(default_factory=list)
    cancels: list[CancelRequest] = field(default_factory=list)
    inclusions: list[ProofInclusion] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)  # running balances of the accounts touched
    open_jobs: dict[bytes, int] = field(default_factory=dict)
    tiers: dict[bytes, int] = field(default_factory=dict)
    task_ids: set[bytes] = field(default_factory=set)
    proof_jobs: dict[bytes, Job] = field(default_factory=dict)  # the stored jobs the block's proofs name
    included: set[bytes] = field(default_factory=set)  # task ids with an inclusion: stored, or of `inclusions`
    results: list[ResultRecord] = field(default_factory=list)
    changes: list[OperatorChange] = field(default_factory=list)  # the block's applied operator transactions
    scheduled: Params | None = None  # the params scheduled for the next epoch, once a params change read them
    tee_kinds: tuple[str, ...] | None = None  # the TEE evidence kinds the policies in force admit (read once)


def refuse(work: BlockWork, block: Block, ctx: ChainTx, error: RequestError) -> None:
    work.refused.append(
        RefusedTx(
            height=block.height,
            tx_index=ctx.index,
            tx_hash=ctx.tx_hash,
            kind=ctx.kind.value,
            sender=ctx.sender,
            field=error.field,
            reason=error.reason,
        )
    )


def bytes32(body: Mapping[str, object], key: str) -> bytes:
    value = body.get(key)
    if not isinstance(value, bytes) or len(value) != 32:
        raise RequestError(key, "expected 32 bytes")
    return value


def balance(tx: Tx, work: BlockWork, account: str) -> int:
    if account not in work.balances:
        work.balances[account] = tx.balances([account])[account]
    return work.balances[account]
