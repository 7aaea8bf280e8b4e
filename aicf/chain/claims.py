"""The EVM claim tree of a settlement batch (docs/EVM.md, "The claim tree").

SPEC's batch root is SHA3-256 over canonical CBOR, which the EVM cannot check cheaply. So each batch is also
posted with a second root that the `Aicf` contract's `claim` verifies:

- one leaf per paid account: `keccak256(abi.encode(uint256 epoch, address account, uint256 amount))`, the
  amounts of one account in the batch added up (provider shares to the provider's staking address, miner
  shares to the inclusion block's fee recipient, the fund's shares to the fund address, refunds to requesters);
- leaves sorted by account bytes; pairs hashed left to right with sorted-pair hashing
  `keccak256(min(a, b) ‖ max(a, b))`, an odd last node carried up unchanged; an empty batch has root 32 zero
  bytes, which no leaf can reach;
- a proof is the list of siblings from the leaf up (levels where the node was carried add none), so a claim
  costs gas in proportion to log2(number of accounts) and the batch root is one transaction whatever its size.

Everything here is a pure function of its arguments (keccak from eth-hash, which the `evm` extra brings).
"""

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter

from eth_hash.auto import keccak

from aicf.core.encoding import from_hex
from aicf.core.errors import AicfError, EncodingError
from aicf.core.ledger import EXTERNAL, WITHDRAWAL_KIND, Posting
from aicf.core.settlement import REQUESTER_PREFIX, SettlementBatch
from aicf.core.types import MAX_AMOUNT

ACCOUNT_BYTES = 20
EMPTY_ROOT = bytes(32)


class ClaimTreeError(AicfError):
    """A claim tree cannot be built from these inputs; the message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    epoch: int
    account: bytes  # 20-byte EVM address
    amount: int  # token units (µANM)
    leaf: bytes
    proof: tuple[bytes, ...]  # siblings from the leaf up


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimTree:
    epoch: int
    root: bytes
    total: int
    claims: tuple[Claim, ...]  # sorted by account

    def claim_for(self, account: bytes) -> Claim:
        """The claim of `account` (a binary search: claims are sorted by account)."""
        at = bisect_left(self.claims, account, key=attrgetter("account"))
        if at < len(self.claims) and self.claims[at].account == account:
            return self.claims[at]
        raise ClaimTreeError(f"account 0x{account.hex()} has no claim in epoch {self.epoch}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPost:
    """The arguments of `Aicf.postBatch` for one batch, in its order."""

    epoch: int
    spec_root: bytes
    totals: tuple[int, int, int, int, int, int]  # reward, provider, miner, fund, charged, units_mu
    escrow_released: int
    claim_root: bytes
    claim_total: int


def claim_leaf(epoch: int, account: bytes, amount: int) -> bytes:
    """keccak256(abi.encode(uint256 epoch, address account, uint256 amount)): three 32-byte words."""
    _check_account("account", account)
    _check_amount("epoch", epoch)
    _check_amount("amount", amount)
    return keccak(epoch.to_bytes(32, "big") + bytes(12) + account + amount.to_bytes(32, "big"))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Sorted-pair node: keccak256 of the smaller 32-byte node followed by the larger (`Aicf._hashPair`)."""
    return keccak(a + b) if a <= b else keccak(b + a)


def build_claim_tree(epoch: int, amounts: Mapping[bytes, int]) -> ClaimTree:
    """The claim tree of one epoch: a leaf per account with a non-zero amount, sorted by account.

    Raises ClaimTreeError on an account that is not 20 bytes or an amount outside 0..2^63-1.
    """
    _check_amount("epoch", epoch)
    for account, amount in amounts.items():
        _check_account("account", account)
        _check_amount(f"amount of 0x{account.hex()}", amount)
    paid = sorted((account, amount) for account, amount in amounts.items() if amount != 0)
    total = sum(amount for _, amount in paid)
    _check_amount("claim total", total)
    leaves = [claim_leaf(epoch, account, amount) for account, amount in paid]
    proofs: list[list[bytes]] = [[] for _ in leaves]
    positions = list(range(len(leaves)))  # each leaf's index in the current level
    level = leaves
    while len(level) > 1:
        for leaf_index, at in enumerate(positions):
            sibling = at ^ 1
            if sibling < len(level):
                proofs[leaf_index].append(level[sibling])
            positions[leaf_index] = at // 2
        level = [hash_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    root = level[0] if level else EMPTY_ROOT
    claims = tuple(
        Claim(epoch=epoch, account=account, amount=amount, leaf=leaf, proof=tuple(proof))
        for (account, amount), leaf, proof in zip(paid, leaves, proofs, strict=True)
    )
    return ClaimTree(epoch=epoch, root=root, total=total, claims=claims)


def verify_claim(root: bytes, claim: Claim) -> bool:
    """What `Aicf.claim` checks: the leaf of (epoch, account, amount) hashed up the proof reaches `root`."""
    node = claim_leaf(claim.epoch, claim.account, claim.amount)
    for sibling in claim.proof:
        node = hash_pair(node, sibling)
    return node == root


def batch_claim_amounts(
    batch: SettlementBatch,
    *,
    payees: Mapping[bytes, bytes],
    fund_account: bytes,
    refunds: Mapping[bytes, int] | None = None,
) -> dict[bytes, int]:
    """Each account's total in `batch`: provider shares to `payees[provider_id]` (the provider's staking
    address), miner shares to the payout's miner_id (the inclusion block's 20-byte fee recipient), fund shares
    to `fund_account`, and `refunds` (requester address -> what the ledger hands back, `refunds_of`) as given.
    A provider with no payee (no on-chain owner by the batch's finalized height) cannot be paid: its share goes
    to `fund_account` with the fund's own, so it never holds up the batch (docs/EVM.md, "Unowned providers").

    Raises ClaimTreeError naming the payout and field when a payee or miner id is no address.
    """
    _check_account("fund_account", fund_account)
    amounts: dict[bytes, int] = {}

    def add(account: bytes, amount: int) -> None:
        amounts[account] = amounts.get(account, 0) + amount

    for payout in batch.payouts:
        payee = payees.get(payout.provider_id, fund_account)
        _check_account(f"payee of provider 0x{payout.provider_id.hex()}", payee)
        _check_account(f"miner_id of payout 0x{payout.payout_id.hex()}", payout.miner_id)
        add(payee, payout.provider)
        add(payout.miner_id, payout.miner)
        add(fund_account, payout.fund)
    for account, amount in (refunds or {}).items():
        _check_account("refund account", account)
        _check_amount(f"refund of 0x{account.hex()}", amount)
        add(account, amount)
    return amounts


def refunds_of(postings: Iterable[Posting]) -> dict[bytes, int]:
    """Requester address -> amount of a batch's refund claims (aicf.core.settlement.refund_claim_postings:
    requester:<addr> → external), added up per address. Raises ClaimTreeError for a posting that is not a
    requester's refund claim or whose address is not 20 bytes."""
    out: dict[bytes, int] = {}
    for p in postings:
        if not p.debit.startswith(REQUESTER_PREFIX) or p.credit != EXTERNAL or p.ref_kind != WITHDRAWAL_KIND:
            raise ClaimTreeError(f"posting {p.debit} -> {p.credit} ({p.ref_kind}) is not a requester's refund claim")
        try:
            account = from_hex(p.debit.removeprefix(REQUESTER_PREFIX), "refund account")
        except EncodingError as exc:
            raise ClaimTreeError(str(exc)) from exc
        _check_account(f"refund account {p.debit}", account)
        out[account] = out.get(account, 0) + p.amount
    return out


def claim_tree_for_batch(
    batch: SettlementBatch,
    *,
    payees: Mapping[bytes, bytes],
    fund_account: bytes,
    refunds: Mapping[bytes, int] | None = None,
) -> ClaimTree:
    return build_claim_tree(
        batch.epoch, batch_claim_amounts(batch, payees=payees, fund_account=fund_account, refunds=refunds)
    )


def batch_post(batch: SettlementBatch, tree: ClaimTree) -> BatchPost:
    """`postBatch`'s arguments for `batch` and its claim tree (from `claim_tree_for_batch`).

    The tree pays the batch's reward plus the refunds, so the escrow released is the fees charged plus
    `tree.total − reward`, and the contract's check `claimTotal = reward + escrowReleased − charged` holds.
    Raises ClaimTreeError for a tree of another epoch or one that pays less than the batch's reward.
    """
    if tree.epoch != batch.epoch:
        raise ClaimTreeError(f"claim tree is for epoch {tree.epoch}, batch for epoch {batch.epoch}")
    t = batch.totals
    if tree.total < t.reward:
        raise ClaimTreeError(f"claim tree pays {tree.total}, less than the batch's reward {t.reward}")
    return BatchPost(
        epoch=batch.epoch,
        spec_root=batch.root,
        totals=(t.reward, t.provider, t.miner, t.fund, t.charged, t.units_mu),
        escrow_released=t.charged + tree.total - t.reward,
        claim_root=tree.root,
        claim_total=tree.total,
    )


def _check_account(field: str, account: bytes) -> None:
    if len(account) != ACCOUNT_BYTES:
        raise ClaimTreeError(f"{field}: expected a {ACCOUNT_BYTES}-byte address, got {len(account)} bytes")


def _check_amount(field: str, value: int) -> None:
    if not 0 <= value < MAX_AMOUNT:
        raise ClaimTreeError(f"{field}: {value} is outside 0..{MAX_AMOUNT - 1}")
