"""The chain as the coordinator sees it (SPEC §10), and the records it derives from blocks.

Pure data and hashes: a `Block` with its `ChainTx`s, the tagged hashes that name them, the epoch rule of
SPEC §5, and the records ingestion writes (`IngestedBlock`, `Job`, `Transition`, `ProofInclusion`,
`RefusedTx`, `CancelRequest`). No I/O: the devnet and the ingester live outside the core.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from aicf.core.encoding import tagged_hash
from aicf.core.jobs import JobStatus
from aicf.core.requests import JobReceipt
from aicf.core.types import MicroAnm, MilliUnits

BLOCK_TAG = "aicf/block/v1"
TX_TAG = "aicf/tx/v1"
ZERO_HASH = bytes(32)  # the genesis block's parent and its parent beacon (SPEC §10)


class TxKind(StrEnum):
    DEPOSIT = "deposit"  # external → requester funding: the devnet faucet, a bridge in production
    AI_ENQUEUE = "ai_enqueue"
    QUANTUM_ENQUEUE = "quantum_enqueue"
    CANCEL = "cancel"  # the requester cancels one of its jobs
    PROOF = "proof"  # an accepted proof envelope with the coordinator's acceptance record (SPEC §8)
    OPERATOR = "operator"  # an operator decision that moves money (aicf.core.operator; docs/OPERATOR.md)
    TREASURY_DEPOSIT = "treasury_deposit"  # external → treasury: an EVM chain's Aicf.deposit log (docs/EVM.md)
    STAKE_SYNC = "stake_sync"  # a provider's stake on an EVM contract after a final stake log (docs/EVM.md)


ENQUEUE_KINDS: Mapping[TxKind, str] = {TxKind.AI_ENQUEUE: "ai", TxKind.QUANTUM_ENQUEUE: "quantum"}


def tx_hash_of(chain_id: int, sender: bytes, kind: str, nonce: int, body: Mapping[str, object]) -> bytes:
    """H("aicf/tx/v1", chain_id, sender, kind, nonce, body): independent of the block, so a transaction
    re-included at another height after a reorg keeps its hash (and gets a fresh task_id, SPEC §4)."""
    return tagged_hash(TX_TAG, chain_id, sender, kind, nonce, dict(body))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainTx:
    tx_hash: bytes
    index: int  # position in its block, from 0
    sender: bytes  # raw address bytes (the `caller` of SPEC §1)
    kind: TxKind
    body: Mapping[str, object]  # the kind's arguments, canonical-CBOR encodable


def block_hash_of(
    *,
    chain_id: int,
    height: int,
    parent: bytes,
    time: int,
    producer: bytes,
    beacon: bytes,
    issuance: int,
    fees: int,
    tx_hashes: Sequence[bytes],
) -> bytes:
    """H("aicf/block/v1", chain_id, height, parent, time, producer, beacon, issuance, fees, [tx_hash…])."""
    return tagged_hash(BLOCK_TAG, chain_id, height, parent, time, producer, beacon, issuance, fees, list(tx_hashes))


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    height: int
    hash: bytes
    parent: bytes
    time: int  # integer unix seconds
    producer: bytes  # the miner id
    beacon: bytes
    issuance: MicroAnm
    fees: MicroAnm
    txs: tuple[ChainTx, ...] = ()


def epoch_of(parent_epoch: int, time: int, genesis_time: int, epoch_seconds: int) -> int:
    """SPEC §5: max(epoch(parent), (time − genesis_time) // epoch_seconds); block 0 has epoch 0.

    The max keeps epochs monotone when a block's time runs behind its parent's.
    """
    return max(parent_epoch, (time - genesis_time) // epoch_seconds)


def is_final(height: int, head: int, finality_depth: int) -> bool:
    """Height h is final when head ≥ h + finality_depth (SPEC §10)."""
    return head >= height + finality_depth


def finalized_height(head: int, finality_depth: int) -> int:
    """The highest final height under `head`; -1 while no block is final."""
    return max(head - finality_depth, -1)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestedBlock:
    """A block as the store keeps it: the header, its epoch and whether it is final (no transactions)."""

    height: int
    hash: bytes
    parent: bytes
    time: int
    producer: bytes
    beacon: bytes
    issuance: MicroAnm
    fees: MicroAnm
    epoch: int
    final: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A job as enqueued on chain (its JobReceipt and the request fields later stages need) and its state."""

    task_id: bytes
    chain_id: int
    tx_hash: bytes
    caller: bytes
    kind: str  # "ai" | "quantum"
    payload: bytes  # canonical CBOR of the request map (SPEC §2): the prompt or circuit travels in it
    payload_hash: bytes
    model: str  # "" for quantum
    fee_per_unit: int
    tier: int
    max_units_mu: MilliUnits
    escrow: MicroAnm
    depth: int  # quantum circuit depth, 0 for AI
    deadline_height: int  # enqueue height + deadline_blocks
    regions: tuple[str, ...] = ()
    allowlist: tuple[bytes, ...] = ()
    tee_required: bool = False
    enqueue_height: int
    enqueue_tx_index: int
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    not_before: int = 0  # unix seconds before which the job cannot be leased again (SPEC §7)
    carried_batches: int = 0
    cancel_requested: bool = False  # a cancel that arrived while the job was leased (SPEC §4, last row)

    def receipt(self) -> JobReceipt:
        return JobReceipt(
            task_id=self.task_id,
            chain_id=self.chain_id,
            height=self.enqueue_height,
            tx_hash=self.tx_hash,
            caller=self.caller,
            kind=self.kind,
            payload_hash=self.payload_hash,
            max_units_mu=self.max_units_mu,
            escrow=self.escrow,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One status change of one job. A job is born PENDING with its enqueue block (the job row says when);
    that is not a change, so it has no transition row.

    `height` is the chain height the change belongs to (the enqueue block, the block that became final);
    `time` is the coordinator's clock for off-chain moves (0 for chain-driven ones).
    """

    task_id: bytes
    frm: JobStatus
    to: JobStatus
    reason: str
    height: int | None = None
    time: int = 0
    seq: int = 0  # the store's order; 0 until stored


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofInclusion:
    """A proof envelope and its acceptance record included on chain; the first inclusion per task wins."""

    task_id: bytes
    proof_id: bytes
    provider_id: bytes
    height: int
    tx_index: int
    tx_hash: bytes
    producer: bytes  # the miner paid for including it (SPEC §3)


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusedTx:
    """A transaction the coordinator refused at ingestion, with the reason (no money moved for it)."""

    height: int
    tx_index: int
    tx_hash: bytes
    kind: str
    sender: bytes
    field: str
    reason: str


class CancelOutcome(StrEnum):
    WAITING = "WAITING"  # its block is not final yet
    CANCELLED = "CANCELLED"  # QUEUED → CANCELLED, escrow refunded
    DEFERRED = "DEFERRED"  # the job was leased: it takes effect if the lease ends without a proof
    IGNORED = "IGNORED"  # unknown task, not the caller's, or already final


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequest:
    height: int
    tx_index: int
    tx_hash: bytes
    task_id: bytes
    sender: bytes
    outcome: CancelOutcome = CancelOutcome.WAITING


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A payout claim (SPEC §11): unique on claim_id = H("aicf/claim/v1", provider_id, nonce)."""

    claim_id: bytes
    provider_id: bytes
    amount: MicroAnm
    time: int
