"""`verify`: what an auditor recomputes from the store alone (SPEC §11): every stored balance from the ledger
entries, the supply, every job's status from its transitions, the chain, the stake accounts, the batches' splits,
the events' numbering and the decisions' pools, each problem listed by name; and the store's digest
(aicf.service.state_digest).
"""

from dataclasses import dataclass, field

from aicf.core.assignment import POOL_TAG
from aicf.core.encoding import tagged_hash
from aicf.core.jobs import JobStatus, is_allowed
from aicf.core.ledger import EXTERNAL, balances_of, minted_of, stake_account, withdrawn_of
from aicf.core.settlement import Payout
from aicf.core.types import MAX_AMOUNT
from aicf.service.decisions import decision_pool
from aicf.service.state_digest import digest_of
from aicf.store.interface import META_EVM_MONEY, CorruptValueError, Snapshot, Store


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    problems: tuple[str, ...]
    checks: tuple[str, ...]
    minted: int
    accounts: int
    entries: int
    jobs: int
    balances: dict[str, int] = field(default_factory=dict)  # by account kind (the part before ':')
    digest: bytes = b""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_snapshot(snap: Snapshot) -> VerifyReport:
    """Recompute what the store keeps derived and check SPEC §4 and §11's invariants; list every problem."""
    problems: list[str] = []
    postings = [e.posting for e in snap.entries]
    # (1) every stored balance equals the one recomputed from the entries
    recomputed = balances_of(postings)
    stored = {a: v for a, v in snap.balances if v != 0}
    for account in sorted(set(recomputed) | set(stored)):
        want, got = recomputed.get(account, 0), stored.get(account, 0)
        if want != got:
            problems.append(f"balance of {account}: entries give {want}, stored {got}")
    # (2) no balance below zero but external's
    for account, value in sorted(recomputed.items()):
        if value < 0 and account != EXTERNAL:
            problems.append(f"balance of {account} is negative: {value}")
    # (2b) every balance, stored or recomputed, fits in 64 bits (SPEC §1: amounts < 2^63)
    for account, value in sorted(set(recomputed.items()) | set(stored.items())):
        if not -MAX_AMOUNT < value < MAX_AMOUNT:
            problems.append(f"balance of {account} is {value}, outside -(2^63-1)..2^63-1")
    # (3) the supply changes only by mint (and claims paid out): Σ balances (external excluded) == minted − withdrawn
    minted = minted_of(postings)
    withdrawn = withdrawn_of(postings)
    total = sum(v for a, v in recomputed.items() if a != EXTERNAL)
    if total != minted - withdrawn:
        problems.append(f"Σ balances is {total}, but {minted} was minted and {withdrawn} withdrawn by claims")
    # (4) every job's status is reached from PENDING (its status at birth) by legal moves, as its transitions say
    by_task: dict[bytes, list[tuple[int, JobStatus, JobStatus]]] = {}
    for t in snap.transitions:
        by_task.setdefault(t.task_id, []).append((t.seq, t.frm, t.to))
    jobs = {j.task_id: j for j in snap.jobs}
    for task in sorted(by_task):
        if task not in jobs:
            problems.append(f"transitions of unknown job 0x{task.hex()}")
    for task, job in sorted(jobs.items()):
        status = JobStatus.PENDING
        for _, frm, to in sorted(by_task.get(task, []), key=lambda m: m[0]):
            if frm != status:
                problems.append(f"job 0x{task.hex()}: transition from {frm} but the job was {status}")
            elif not is_allowed(frm, to):
                problems.append(f"job 0x{task.hex()}: {frm} -> {to} is not an allowed move")
            status = to
        if status != job.status:
            problems.append(f"job 0x{task.hex()}: status {job.status} but its transitions end at {status}")
    # (5) the blocks form one chain
    for prev, block in zip(snap.blocks, snap.blocks[1:], strict=False):
        if block.height != prev.height + 1 or block.parent != prev.hash:
            problems.append(f"block {block.height} does not follow block {prev.height}")
    problems += _coordinator_problems(snap, recomputed)
    kinds: dict[str, int] = {}
    for account, value in recomputed.items():
        kind = account.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + value
    return VerifyReport(
        problems=tuple(problems),
        checks=(
            "every balance equals the sum of its entries",
            "no balance is negative (external excepted)",
            "every balance fits in 64 bits",
            "Σ balances == minted − withdrawn by claims",
            "every job's status follows from its transitions by allowed moves",
            "the stored blocks form one chain",
            "every stake:<id> balance == the provider's bonded + unbonding",
            "no task is paid twice",
            "every batch: Σ payout provider + miner + fund == Σ payout reward == the batch's reward",
            "event sequence numbers run 1..N without a gap",
            "every decision's candidate pool is stored under the hash of its record",
        ),
        minted=minted,
        accounts=len(recomputed),
        entries=len(postings),
        jobs=len(jobs),
        balances=dict(sorted(kinds.items())),
        digest=digest_of(snap),
    )


def _coordinator_problems(snap: Snapshot, balances: dict[str, int]) -> list[str]:
    problems: list[str] = []
    # (6) the stake account holds exactly the bonded and unbonding stake
    providers = {p.provider_id: p for p in snap.providers}
    for pid, p in sorted(providers.items()):
        have = balances.get(stake_account(pid), 0)
        if have != p.bonded + p.unbonding:
            problems.append(
                f"{stake_account(pid)} holds {have}, but the provider has {p.bonded} bonded + {p.unbonding} unbonding"
            )
    stakes = {stake_account(pid) for pid in providers}
    mirrored = dict(snap.meta).get(META_EVM_MONEY) == 1  # an EVM contract's stake: staked before registering
    for account, value in sorted(balances.items()):
        if account.startswith("stake:") and account not in stakes and value != 0 and not mirrored:
            problems.append(f"{account} holds {value} but no such provider is registered")
    # (7) a task is paid at most once
    by_epoch: dict[int, list[Payout]] = {}
    paid: set[bytes] = set()
    for payout in snap.payouts:
        if payout.task_id in paid:
            problems.append(f"task 0x{payout.task_id.hex()} is paid twice")
        paid.add(payout.task_id)
        by_epoch.setdefault(payout.epoch, []).append(payout)
    # (8) every batch's split adds up to its rewards
    batches = {b.epoch: b for b in snap.batches}
    for epoch in sorted(set(by_epoch) - set(batches)):
        problems.append(f"payouts of epoch {epoch} have no batch")
    for epoch, batch in sorted(batches.items()):
        payouts = by_epoch.get(epoch, [])
        split = sum(p.provider + p.miner + p.fund for p in payouts)
        reward = sum(p.reward for p in payouts)
        if split != reward or reward != batch.reward:
            problems.append(
                f"batch {epoch}: Σ provider + miner + fund is {split}, Σ reward is {reward}, "
                f"the batch says {batch.reward}"
            )
    # (9) events are numbered 1..N
    seqs = sorted(e.seq for e in snap.events)
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"event sequence numbers are not 1..{len(seqs)} without a gap")
    # (10) every decision's pool is stored, under the hash of its record
    pools = dict(snap.pools)
    for pool_id, record in sorted(pools.items()):
        if tagged_hash(POOL_TAG, record) != pool_id:
            problems.append(f"pool 0x{pool_id.hex()} does not hash to its id")
    for d in snap.decisions:
        ref = decision_pool(d.decision)
        if ref is not None and ref not in pools:
            problems.append(
                f"decision of job 0x{d.task_id.hex()} attempt {d.attempt} names pool 0x{ref.hex()}, which is not stored"
            )
    return problems


def verify(store: Store) -> VerifyReport:
    """verify_snapshot of the store; a stored value of the wrong type (a balance stored as a float) is reported
    as a violation, not raised."""
    with store.transaction() as tx:
        try:
            snap = tx.snapshot()
        except CorruptValueError as exc:
            return VerifyReport(
                problems=(str(exc),), checks=("every stored value has its column's type",), minted=0, accounts=0,
                entries=0, jobs=0,
            )  # fmt: skip
    return verify_snapshot(snap)
