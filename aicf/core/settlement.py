"""Epoch settlement as a pure function (SPEC §5): verified jobs, treasury and params in; a batch out.

Eligible jobs are ordered by priority class (descending), proof inclusion height, tx index and task_id,
and admitted in that order while Σ units_mu ≤ Γ × 1000 and Σ reward ≤ T. At the first job that does not
fit, it and every later job carry to the next batch unchanged. The batch's `root` is the Merkle root of
the payouts' canonical CBOR in admission order, so anyone holding the chain and the params recomputes
the same bytes.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from aicf.core.encoding import canonical_cbor, cbor_head, encode_fast_int, tagged_hash
from aicf.core.errors import EscrowShortfallError, SettlementInputError
from aicf.core.ids import payout_id, payout_id_prefix
from aicf.core.ledger import (
    EXTERNAL,
    FUND,
    TREASURY,
    WITHDRAWAL_KIND,
    Posting,
    escrow_account,
    miner_account,
    provider_account,
    requester_account,
)
from aicf.core.merkle import LEAF_PREFIX, leaf_hash, root_of_leaf_hashes
from aicf.core.params import Params, params_hash
from aicf.core.pricing import next_price
from aicf.core.types import BPS, MAX_AMOUNT, MicroAnm

PROMOTED_CLASS = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedJob:
    """A ResultRecord eligible for settlement, with what settlement needs to price and order it."""

    task_id: bytes
    provider_id: bytes
    miner_id: bytes
    proof_id: bytes
    kind: str  # "ai" | "quantum"
    priority_class: int  # the tier, or 4 once carried by `carry_promote_batches` batches (see `priority_class`)
    proof_height: int
    tx_index: int
    units_mu: int
    fee_per_unit: int


class Payout(NamedTuple):
    """One payout of a batch (SPEC §5 payout map).

    A NamedTuple rather than a frozen dataclass: settlement builds one per verified job (a million per epoch
    in the benchmark) and a frozen dataclass costs several times more to construct. It is just as immutable.
    """

    payout_id: bytes
    epoch: int
    task_id: bytes
    provider_id: bytes
    miner_id: bytes
    proof_id: bytes
    units_mu: int
    base_rate: int
    price_bps: int
    reward: int
    provider: int
    miner: int
    fund: int
    charged: int
    params_hash: bytes

    def to_map(self) -> dict[str, object]:
        return dict(self._asdict())

    def encode(self) -> bytes:
        """canonical_cbor(self.to_map()), written out in canonical key order (a test pins the two together).

        Settlement encodes every payout of an epoch (a million in the benchmark), so the generic walk is
        too slow here; `PAYOUT_KEY_ORDER` is checked against the canonical order when this module loads.
        """
        if not (
            len(self.task_id)
            == len(self.miner_id)
            == len(self.proof_id)
            == len(self.payout_id)
            == len(self.params_hash)
            == len(self.provider_id)
            == 32
        ):
            return canonical_cbor(self.to_map())  # an id of another length (a 20-byte miner address): the generic walk
        k = _PAYOUT_KEYS
        return b"".join(
            (
                _PAYOUT_HEAD,
                k[0], _uint(self.fund),
                k[1], _uint(self.epoch),
                k[2], _uint(self.miner),
                k[3], _uint(self.reward),
                k[4], _uint(self.charged),
                k[5], _B32, self.task_id,
                k[6], _B32, self.miner_id,
                k[7], _B32, self.proof_id,
                k[8], _uint(self.provider),
                k[9], _uint(self.units_mu),
                k[10], _uint(self.base_rate),
                k[11], _B32, self.payout_id,
                k[12], _uint(self.price_bps),
                k[13], _B32, self.params_hash,
                k[14], _B32, self.provider_id,
            )
        )  # fmt: skip


_PAYOUT_FIELDS = Payout._fields
PAYOUT_KEY_ORDER = (
    "fund", "epoch", "miner", "reward", "charged", "task_id", "miner_id", "proof_id", "provider", "units_mu",
    "base_rate", "payout_id", "price_bps", "params_hash", "provider_id",
)  # fmt: skip
if tuple(sorted(_PAYOUT_FIELDS, key=canonical_cbor)) != PAYOUT_KEY_ORDER:  # pragma: no cover - a code edit broke it
    raise ImportError("Payout fields changed: update PAYOUT_KEY_ORDER and Payout.encode to the canonical order")
_PAYOUT_KEYS = tuple(canonical_cbor(name) for name in PAYOUT_KEY_ORDER)
_PAYOUT_HEAD = cbor_head(5, len(_PAYOUT_FIELDS))
_B32 = b"\x58\x20"  # the head of a 32-byte string: the fast path is taken only when every id is 32 bytes
_uint = encode_fast_int


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    reward: int = 0
    provider: int = 0
    miner: int = 0
    fund: int = 0
    charged: int = 0
    units_mu: int = 0

    def to_map(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in Totals.__dataclass_fields__}


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementBatch:
    epoch: int
    finalized_height: int
    params_hash: bytes
    price_bps: int
    payouts: tuple[Payout, ...]
    carried: tuple[bytes, ...]
    totals: Totals
    root: bytes
    next_price_bps: int
    demand_mu: int

    def to_map(self) -> dict[str, object]:
        return {
            "epoch": self.epoch,
            "finalized_height": self.finalized_height,
            "params_hash": self.params_hash,
            "price_bps": self.price_bps,
            "payouts": [p.to_map() for p in self.payouts],
            "carried": list(self.carried),
            "totals": self.totals.to_map(),
            "root": self.root,
        }


def priority_class(tier: int, carried_batches: int, params: Params) -> int:
    """The job's tier, or class 4 (above every tier) once it has been carried by 7 or more batches."""
    return PROMOTED_CLASS if carried_batches >= params.carry_promote_batches else tier


def settlement_order(job: VerifiedJob) -> tuple[int, int, int, bytes]:
    return (-job.priority_class, job.proof_height, job.tx_index, job.task_id)


_BY_INCLUSION = attrgetter("proof_height", "tx_index", "task_id")
_BY_CLASS = attrgetter("priority_class")


def in_settlement_order(jobs: Iterable[VerifiedJob]) -> list[VerifiedJob]:
    """Sorted by `settlement_order`: two stable C-level sorts instead of a Python key per job."""
    ordered = sorted(jobs, key=_BY_INCLUSION)
    ordered.sort(key=_BY_CLASS, reverse=True)  # stable: equal classes keep their inclusion order
    return ordered


_CHECKED_FIELDS = ("units_mu", "fee_per_unit", "proof_height", "tx_index", "priority_class")


def _check_inputs(jobs: list[VerifiedJob], treasury: int, price_bps: int) -> None:
    if not 0 <= treasury < MAX_AMOUNT:
        raise SettlementInputError(f"treasury must be >= 0 and < 2^63, got {treasury}")
    if not 0 < price_bps < MAX_AMOUNT:
        raise SettlementInputError(f"price_bps must be positive and < 2^63, got {price_bps}")
    if len({job.task_id for job in jobs}) != len(jobs):
        seen: set[bytes] = set()
        for job in jobs:
            if job.task_id in seen:
                raise SettlementInputError(f"task 0x{job.task_id.hex()} appears twice: a task is settled at most once")
            seen.add(job.task_id)
    for job in jobs:
        if job.kind not in _KINDS or not (
            0 <= job.units_mu < MAX_AMOUNT
            and 0 <= job.fee_per_unit < MAX_AMOUNT
            and 0 <= job.proof_height < MAX_AMOUNT
            and 0 <= job.tx_index < MAX_AMOUNT
            and 0 <= job.priority_class < MAX_AMOUNT
            and job.fee_per_unit * job.units_mu < _CHARGED_LIMIT
        ):
            _explain_bad_job(job)


_KINDS = frozenset({"ai", "quantum"})
_CHARGED_LIMIT = 1000 * MAX_AMOUNT  # charged = fee_per_unit × units_mu // 1000 is stored, so < 2^63 (SPEC §1)


def _explain_bad_job(job: VerifiedJob) -> None:
    if job.kind not in _KINDS:
        raise SettlementInputError(f"task 0x{job.task_id.hex()}: unknown kind {job.kind!r}")
    for name in _CHECKED_FIELDS:
        value = getattr(job, name)
        if not 0 <= value < MAX_AMOUNT:
            raise SettlementInputError(f"task 0x{job.task_id.hex()}: {name} must be >= 0 and < 2^63, got {value}")
    charged = job.fee_per_unit * job.units_mu // 1000
    raise SettlementInputError(
        f"task 0x{job.task_id.hex()}: charged = fee_per_unit × units_mu // 1000 = {charged} is not < 2^63"
    )


def settle_epoch(
    *,
    epoch: int,
    finalized_height: int,
    jobs: Iterable[VerifiedJob],
    treasury: int,
    price_bps: int,
    params: Params,
    params_digest: bytes | None = None,
) -> SettlementBatch:
    """Build batch `epoch` (SPEC §5). Raises SettlementInputError for a duplicate task or a negative amount.

    `params_digest` may be passed by a caller that already holds `params_hash(params)`.
    """
    ordered = in_settlement_order(jobs)
    _check_inputs(ordered, treasury, price_bps)
    if not 0 <= epoch < MAX_AMOUNT:
        raise SettlementInputError(f"epoch must be >= 0 and < 2^63, got {epoch}")
    p_hash = params_digest if params_digest is not None else params_hash(params)
    cap_mu = params.gamma_mu
    provider_bps, miner_bps = params.provider_bps, params.miner_bps
    rates: Mapping[str, int] = {"ai": params.base_rate_ai, "quantum": params.base_rate_quantum}
    payouts: list[Payout] = []
    leaves: list[bytes] = []
    t_reward = t_provider = t_miner = t_fund = t_charged = t_units = 0
    broke_cap = False
    stop = len(ordered)
    # Everything of a payout's canonical CBOR that is the same for the whole batch is encoded once here; the
    # loop joins the per-payout parts in PAYOUT_KEY_ORDER (tests pin the bytes to canonical_cbor).
    k, u, sha3 = _PAYOUT_KEYS, _uint, hashlib.sha3_256
    head = _PAYOUT_HEAD + k[0]
    seg_epoch = k[1] + u(epoch) + k[2]
    k3, k4, k5, k6, k7, k8, k9 = k[3], k[4], k[5] + _B32, k[6] + _B32, k[7] + _B32, k[8], k[9]
    seg_rate = {kind: k[10] + u(rate) + k[11] + _B32 for kind, rate in rates.items()}
    tail = k[12] + u(price_bps) + k[13] + _B32 + p_hash + k[14] + _B32
    id_prefix = payout_id_prefix(epoch)
    leaf_prefix = LEAF_PREFIX
    for index, job in enumerate(ordered):
        base_rate = rates[job.kind]
        units = job.units_mu
        reward = units * base_rate * price_bps // (1000 * BPS)
        over_cap = t_units + units > cap_mu
        if over_cap or t_reward + reward > treasury:
            broke_cap = over_cap
            stop = index
            break
        provider = reward * provider_bps // BPS
        miner = reward * miner_bps // BPS
        fund = reward - provider - miner  # the fund takes every rounding remainder
        charged = job.fee_per_unit * units // 1000
        task = job.task_id
        pid = sha3(id_prefix + task).digest() if len(task) == 32 else payout_id(epoch, task)
        payout = Payout(
            pid, epoch, task, job.provider_id, job.miner_id, job.proof_id, units, base_rate, price_bps, reward,
            provider, miner, fund, charged, p_hash,
        )  # fmt: skip
        if len(task) == len(job.miner_id) == len(job.proof_id) == len(job.provider_id) == 32:
            encoded = b"".join(
                (
                    head, u(fund), seg_epoch, u(miner), k3, u(reward), k4, u(charged), k5, task, k6, job.miner_id,
                    k7, job.proof_id, k8, u(provider), k9, u(units), seg_rate[job.kind], pid, tail, job.provider_id,
                )
            )  # fmt: skip
        else:
            encoded = payout.encode()
        payouts.append(payout)
        size = len(encoded)
        if 256 <= size < 65536:  # every 32-byte-id payout: a two-byte length head
            leaves.append(sha3(leaf_prefix + b"\x59" + size.to_bytes(2, "big") + encoded).digest())
        else:
            leaves.append(leaf_hash(encoded))
        t_reward += reward
        t_provider += provider
        t_miner += miner
        t_fund += fund
        t_charged += charged
        t_units += units
    carried = ordered[stop:]
    demand = t_units + (sum(j.units_mu for j in carried) if broke_cap else 0)
    return SettlementBatch(
        epoch=epoch,
        finalized_height=finalized_height,
        params_hash=p_hash,
        price_bps=price_bps,
        payouts=tuple(payouts),
        carried=tuple(j.task_id for j in carried),
        totals=Totals(
            reward=t_reward, provider=t_provider, miner=t_miner, fund=t_fund, charged=t_charged, units_mu=t_units
        ),
        root=root_of_leaf_hashes(leaves),
        next_price_bps=next_price(price_bps, demand, params.gamma_units, params),
        demand_mu=demand,
    )


class PayoutEscrow(NamedTuple):
    """What a payout's postings need besides the payout: the task's escrow balance and its requester."""

    held: int  # µANM in escrow:<task_id> before the batch
    caller: bytes  # the requester the unused escrow is refunded to


def settlement_postings(payouts: Iterable[Payout], escrows: Mapping[bytes, PayoutEscrow]) -> list[Posting]:
    """The ledger postings a batch makes (SPEC §5, §11), payout by payout in admission order:
    1. treasury → provider:<id>, miner:<id>, fund: the reward's three parts (parts of 0 are not posted);
    2. escrow:<task> → treasury: the charge, `units_mu × fee_per_unit // 1000` as settled;
    3. escrow:<task> → requester:<caller>: what the escrow holds beyond the charge.
    Every posting's ref is the payout id. Raises EscrowShortfallError when a charge exceeds its escrow (the
    escrow at enqueue covers max_units_mu, so only a broken store gets there) and SettlementInputError for a
    payout whose task has no escrow entry."""
    postings: list[Posting] = []
    for p in payouts:
        for credit, amount in (
            (provider_account(p.provider_id), p.provider),
            (miner_account(p.miner_id), p.miner),
            (FUND, p.fund),
        ):
            if amount > 0:
                postings.append(
                    Posting(debit=TREASURY, credit=credit, amount=MicroAnm(amount), ref_kind="payout", ref=p.payout_id)
                )
        escrow = escrows.get(p.task_id)
        if escrow is None:
            raise SettlementInputError(f"payout of task 0x{p.task_id.hex()} has no escrow entry")
        if p.charged > escrow.held:
            raise EscrowShortfallError(p.task_id, p.charged, escrow.held)
        account = escrow_account(p.task_id)
        if p.charged > 0:
            postings.append(
                Posting(debit=account, credit=TREASURY, amount=MicroAnm(p.charged), ref_kind="fee", ref=p.payout_id)
            )
        if escrow.held - p.charged > 0:
            postings.append(
                Posting(
                    debit=account,
                    credit=requester_account(escrow.caller),
                    amount=MicroAnm(escrow.held - p.charged),
                    ref_kind="refund",
                    ref=p.payout_id,
                )
            )
    return postings


REFUND_CLAIMS_TAG = "aicf/evm/refunds/v1"
REQUESTER_PREFIX = "requester:"


def refund_claims_ref(epoch: int) -> bytes:
    """The reference of batch `epoch`'s refund claims on an EVM chain: H("aicf/evm/refunds/v1", epoch)."""
    return tagged_hash(REFUND_CLAIMS_TAG, epoch)


def refund_claim_postings(epoch: int, owed: Mapping[str, int]) -> list[Posting]:
    """On an EVM chain (docs/EVM.md, "Refunds"), batch `epoch` hands every requester what the ledger owes it
    (`owed`: requester account → µANM, final money only) as a leaf of the batch's claim tree: requester:<addr> →
    external, kind `claim` (the tokens leave the coordinator's custody for the contract's claim), ref
    `refund_claims_ref(epoch)`. In account order; amounts of 0 are not posted. Raises SettlementInputError for an
    account that is not a requester's or an amount outside 0..2^63-1."""
    ref = refund_claims_ref(epoch)
    postings: list[Posting] = []
    for account in sorted(owed):
        amount = owed[account]
        if not account.startswith(REQUESTER_PREFIX):
            raise SettlementInputError(f"refund claim of {account!r}: not a requester account")
        if not 0 <= amount < MAX_AMOUNT:
            raise SettlementInputError(f"refund claim of {account}: {amount} is outside 0..{MAX_AMOUNT - 1}")
        if amount > 0:
            postings.append(
                Posting(debit=account, credit=EXTERNAL, amount=MicroAnm(amount), ref_kind=WITHDRAWAL_KIND, ref=ref)
            )
    return postings
