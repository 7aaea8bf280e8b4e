"""The double-entry ledger of SPEC §11, as pure functions over balances.

Every movement is a `Posting`: `amount` leaves the `debit` account and arrives in the `credit` account,
with a reference (`ref_kind`, `ref`) naming why (a task_id, a payout_id, an evidence hash, a claim id, a
block hash, a deposit's tx hash). Accounts are strings: `external`, `treasury`, `fund`,
`provider:0x…`, `miner:0x…`, `stake:0x…`, `requester:0x…`, `escrow:0x<task_id>`.

`external` is the outside world: the only account allowed below zero, and the only one money can be
minted from. Money leaves the ledger to `external` only by a claim (a provider withdrawing its earnings).
So at every moment Σ balance(a ≠ external) == minted − withdrawn == −balance(external), and no other
account ever goes negative.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.core.types import MAX_AMOUNT, MicroAnm

EXTERNAL = "external"
WITHDRAWAL_KIND = "claim"  # the one posting that may credit external: a provider withdrawing its earnings
TREASURY = "treasury"
FUND = "fund"
_PREFIXES = ("provider", "miner", "stake", "requester", "escrow")


class LedgerError(AicfError):
    """A posting the ledger refuses. Subclasses name the reason."""


class NegativeBalanceError(LedgerError):
    def __init__(self, account: str, balance: int, amount: int) -> None:
        super().__init__(f"{account}: balance {balance} µANM is below the {amount} µANM to move (would go negative)")
        self.account, self.balance, self.amount = account, balance, amount


class BalanceOverflowError(LedgerError):
    """A posting that would take a balance to 2^63 µANM or beyond (or external to -2^63 or below): no column or
    CBOR integer of aicf holds it, so the ledger refuses it before anything is written (issue 15)."""

    def __init__(self, account: str, balance: int, delta: int) -> None:
        super().__init__(
            f"{account}: balance {balance} µANM {'+' if delta >= 0 else '-'} {abs(delta)} µANM would leave the "
            f"range -(2^63-1)..2^63-1"
        )
        self.account, self.balance, self.delta = account, balance, delta


def check_balances_fit(balances: Mapping[str, int], deltas: Mapping[str, int]) -> None:
    """Raises BalanceOverflowError for the first account (by name) whose balance plus delta leaves 64 bits."""
    for account in sorted(deltas):
        have, delta = balances.get(account, 0), deltas[account]
        if not -MAX_AMOUNT < have + delta < MAX_AMOUNT:
            raise BalanceOverflowError(account, have, delta)


class InvalidPostingError(LedgerError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid posting: {reason}")
        self.reason = reason


def requester_account(address: bytes) -> str:
    return "requester:" + to_hex(address)


def escrow_account(task_id: bytes) -> str:
    return "escrow:" + to_hex(task_id)


def provider_account(provider_id: bytes) -> str:
    return "provider:" + to_hex(provider_id)


def miner_account(miner_id: bytes) -> str:
    return "miner:" + to_hex(miner_id)


def stake_account(provider_id: bytes) -> str:
    return "stake:" + to_hex(provider_id)


def is_account(name: str) -> bool:
    if name in (EXTERNAL, TREASURY, FUND):
        return True
    prefix, sep, rest = name.partition(":")
    if not sep or prefix not in _PREFIXES or not rest.startswith("0x") or len(rest) < 4:
        return False
    try:
        bytes.fromhex(rest[2:])
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Posting:
    debit: str  # the account the amount leaves
    credit: str  # the account it arrives in
    amount: MicroAnm  # > 0
    ref_kind: str  # "escrow", "refund", "deposit", "treasury_income", "payout", "slash", "claim", …
    ref: bytes


def check_posting(p: Posting) -> None:
    """Raises InvalidPostingError for a posting no ledger state could accept."""
    if not 0 < p.amount < MAX_AMOUNT:
        raise InvalidPostingError(f"amount must be > 0 and < 2^63, got {p.amount}")
    if p.debit == p.credit:
        raise InvalidPostingError(f"debit and credit are the same account {p.debit}")
    for name in (p.debit, p.credit):
        if not is_account(name):
            raise InvalidPostingError(f"unknown account {name!r}")
    if p.credit == EXTERNAL and p.ref_kind != WITHDRAWAL_KIND:
        raise InvalidPostingError(
            f"only a claim pays out to external (got {p.ref_kind!r}): otherwise the supply changes only by mint"
        )
    if not p.ref_kind:
        raise InvalidPostingError("every posting needs a reference")


def deltas_of(postings: Iterable[Posting]) -> dict[str, int]:
    """The net change per account of a list of postings (accounts with a zero net change included)."""
    out: dict[str, int] = {}
    for p in postings:
        out[p.debit] = out.get(p.debit, 0) - p.amount
        out[p.credit] = out.get(p.credit, 0) + p.amount
    return out


def apply_postings(balances: Mapping[str, int], postings: Iterable[Posting]) -> dict[str, int]:
    """The balances after `postings`, applied in order; only the accounts they touch are returned.

    Raises InvalidPostingError for a malformed posting and NegativeBalanceError for the first posting that
    would take an account other than `external` below zero. `balances` is not changed.
    """
    out: dict[str, int] = {}
    for p in postings:
        check_posting(p)
        have = out[p.debit] if p.debit in out else balances.get(p.debit, 0)
        if p.debit != EXTERNAL and have < p.amount:
            raise NegativeBalanceError(p.debit, have, p.amount)
        out[p.debit] = have - p.amount
        credit = out[p.credit] if p.credit in out else balances.get(p.credit, 0)
        if credit + p.amount >= MAX_AMOUNT:
            raise InvalidPostingError(f"{p.credit} would exceed 2^63 µANM")
        out[p.credit] = credit + p.amount
    return out


def minted_of(postings: Iterable[Posting]) -> int:
    """Total supply created: every amount that left `external`."""
    return sum(p.amount for p in postings if p.debit == EXTERNAL)


def withdrawn_of(postings: Iterable[Posting]) -> int:
    """Total paid out of the ledger by claims (provider → external, SPEC §11 claimPayout)."""
    return sum(p.amount for p in postings if p.credit == EXTERNAL)


def balances_of(postings: Iterable[Posting]) -> dict[str, int]:
    """Every account's balance recomputed from the entries alone (zero balances left out)."""
    out: dict[str, int] = {}
    for p in postings:
        out[p.debit] = out.get(p.debit, 0) - p.amount
        out[p.credit] = out.get(p.credit, 0) + p.amount
    return {account: amount for account, amount in out.items() if amount != 0}


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """A stored posting: `block_height` is the block it belongs to (None for an off-chain movement such as a
    claim), `seq` the store's order (0 until stored)."""

    posting: Posting
    block_height: int | None
    time: int
    seq: int = 0
