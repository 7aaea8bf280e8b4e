"""`verify` and `state_digest`: what an auditor recomputes from the store alone (SPEC §11).

The digest is H("aicf/state/v1", tables) over every table's rows in a canonical order. Surrogate sequence
numbers are left out: they record when this coordinator happened to see a block (a coordinator that saw an
orphaned branch and rolled it back numbers its rows differently from one that never saw it), not what the
chain says. Ledger entries are hashed as a sorted multiset, transitions in their per-job order, balances
without the zero ones. Two stores that ingested the same canonical chain have the same digest, whatever
the backend and whatever reorgs or crashes each went through.
"""

from dataclasses import dataclass, field

from aicf.core.assignment import POOL_TAG
from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.jobs import JobStatus, is_allowed
from aicf.core.ledger import EXTERNAL, balances_of, minted_of, stake_account, withdrawn_of
from aicf.core.settlement import Payout
from aicf.core.types import MAX_AMOUNT
from aicf.service.decisions import decision_pool
from aicf.store.interface import CorruptValueError, Snapshot, Store

STATE_TAG = "aicf/state/v1"


def _opt(value: int | None) -> int:
    return -1 if value is None else value


def _opt_bytes(value: bytes | None) -> list[bytes]:
    return [] if value is None else [value]


def digest_rows(snap: Snapshot) -> list[object]:
    """The canonical form of every table, as hashed by `state_digest`."""
    return _chain_rows(snap) + _coordinator_rows(snap)


def _coordinator_rows(snap: Snapshot) -> list[object]:
    """The coordinator's tables. Provider moves, like job transitions, in their per-provider order without the
    store's seq; slashes by subject; payouts in (epoch, admission) order; events by their seq, which is part of
    the state (clients resume from it)."""
    moves = sorted(snap.provider_moves, key=lambda m: (m.provider_id, m.seq))
    return [
        [
            "providers",
            [
                [
                    p.provider_id,
                    p.public_key,
                    p.status.value,
                    p.registered_at,
                    list(p.kinds),
                    list(p.models),
                    list(p.devices),
                    list(p.regions),
                    list(p.tee_classes),
                    p.max_leases,
                    p.bonded,
                    p.unbonding,
                    p.unbonding_until,
                    _opt(p.jailed_until),
                    _opt(p.last_heartbeat_at),
                    p.bucket_tokens_mu,
                    p.bucket_at,
                    p.strikes,
                    p.updated_at,
                    p.unit_burst_mu,
                    p.unit_rate_mu_per_day,
                ]
                for p in sorted(snap.providers, key=lambda p: p.provider_id)
            ],
        ],
        [
            "provider_transitions",
            [[m.provider_id, "" if m.frm is None else m.frm.value, m.to.value, m.reason, m.time] for m in moves],
        ],
        ["heartbeats", [[p, slot] for p, slot in sorted(snap.heartbeats)]],
        [
            "decisions",
            [
                [d.task_id, d.attempt, d.decision, _opt_bytes(d.winner), d.time]
                for d in sorted(snap.decisions, key=lambda d: (d.task_id, d.attempt))
            ],
        ],
        ["pools", [[pool_id, record] for pool_id, record in sorted(snap.pools)]],
        [
            "leases",
            [
                [
                    x.lease_id,
                    x.task_id,
                    x.provider_id,
                    x.attempt,
                    x.granted_at,
                    x.expires_at,
                    x.status.value,
                    x.epoch,
                    _opt(x.ended_at),
                    x.grant_sig,
                ]
                for x in sorted(snap.leases, key=lambda x: x.lease_id)
            ],
        ],
        [
            "proofs",
            [
                [
                    p.proof_id,
                    p.task_id,
                    p.lease_id,
                    p.provider_id,
                    p.kind,
                    p.envelope,
                    p.received_at,
                    p.latency_ms,
                    p.verdict,
                    p.message,
                    p.acceptance,
                    p.acceptance_sig,
                    p.units_mu,
                    p.output_digest,
                    dict(p.qos),
                ]
                for p in sorted(snap.proofs, key=lambda p: p.proof_id)
            ],
        ],
        [
            "results",
            [
                [
                    r.task_id,
                    r.proof_id,
                    r.kind,
                    r.output_digest,
                    r.units_mu,
                    dict(r.qos),
                    r.height,
                    r.tx_index,
                    r.miner_id,
                    r.provider_id,
                ]
                for r in sorted(snap.results, key=lambda r: r.task_id)
            ],
        ],
        [
            "batches",
            [
                [
                    b.epoch,
                    b.finalized_height,
                    b.params_hash,
                    b.price_bps,
                    b.next_price_bps,
                    b.root,
                    b.batch,
                    b.payouts,
                    b.carried,
                    b.reward,
                    b.units_mu,
                    b.treasury_before,
                    b.trap_seed,
                    b.time,
                ]
                for b in sorted(snap.batches, key=lambda b: b.epoch)
            ],
        ],
        ["payouts", [list(p) for p in snap.payouts]],
        [
            "slashes",
            [
                [
                    x.subject,
                    x.evidence_hash,
                    x.provider_id,
                    x.reason,
                    x.task_id,
                    x.amount,
                    x.evidence,
                    x.time,
                    _opt(x.jailed_until),
                ]
                for x in sorted(snap.slashes, key=lambda x: x.subject)
            ],
        ],
        ["events", [[e.seq, e.topic, e.data, e.time] for e in sorted(snap.events, key=lambda e: e.seq)]],
        [
            "rpc_nonces",
            [
                [n.provider_id, n.nonce, n.expires_at]
                for n in sorted(snap.nonces, key=lambda n: (n.provider_id, n.nonce))
            ],
        ],
    ]


def _chain_rows(snap: Snapshot) -> list[object]:
    transitions = sorted(snap.transitions, key=lambda t: (t.task_id, t.seq))
    entries = sorted(
        canonical_cbor(
            [
                e.posting.debit,
                e.posting.credit,
                e.posting.amount,
                e.posting.ref_kind,
                e.posting.ref,
                _opt(e.block_height),
                e.time,
            ]
        )
        for e in snap.entries
    )
    return [
        ["meta", [[k, v] for k, v in sorted(snap.meta)]],
        [
            "blocks",
            [
                [b.height, b.hash, b.parent, b.time, b.producer, b.beacon, b.issuance, b.fees, b.epoch, b.final]
                for b in snap.blocks
            ],
        ],
        [
            "jobs",
            [
                [
                    j.task_id,
                    j.chain_id,
                    j.tx_hash,
                    j.caller,
                    j.kind,
                    j.payload,
                    j.payload_hash,
                    j.model,
                    j.fee_per_unit,
                    j.tier,
                    j.max_units_mu,
                    j.escrow,
                    j.depth,
                    j.deadline_height,
                    list(j.regions),
                    list(j.allowlist),
                    j.tee_required,
                    j.enqueue_height,
                    j.enqueue_tx_index,
                    j.status.value,
                    j.attempts,
                    j.not_before,
                    j.carried_batches,
                    j.cancel_requested,
                ]
                for j in snap.jobs
            ],
        ],
        [
            "job_transitions",
            [[t.task_id, t.frm.value, t.to.value, t.reason, _opt(t.height), t.time] for t in transitions],
        ],
        ["ledger_entries", entries],
        ["balances", [[a, v] for a, v in sorted(snap.balances) if v != 0]],
        [
            "proof_inclusions",
            [
                [i.task_id, i.proof_id, i.provider_id, i.height, i.tx_index, i.tx_hash, i.producer]
                for i in snap.proof_inclusions
            ],
        ],
        [
            "refused_txs",
            [[r.height, r.tx_index, r.tx_hash, r.kind, r.sender, r.field, r.reason] for r in snap.refused],
        ],
        [
            "cancel_requests",
            [[c.height, c.tx_index, c.tx_hash, c.task_id, c.sender, c.outcome.value] for c in snap.cancels],
        ],
        ["claims", [[c.claim_id, c.provider_id, c.amount, c.time] for c in snap.claims]],
        ["idempotency_keys", [[r.key, r.fingerprint, r.result] for r in snap.idempotency]],
        ["requester_tiers", [[c, t] for c, t in snap.requester_tiers]],
        [
            "operator_changes",
            [
                [
                    c.height,
                    c.tx_index,
                    c.tx_hash,
                    c.sender,
                    c.op,
                    c.subject,
                    c.before,
                    c.after,
                    c.effective_epoch,
                    c.time,
                ]
                for c in snap.operator_changes
            ],
        ],
    ]


def digest_of(snap: Snapshot) -> bytes:
    return tagged_hash(STATE_TAG, digest_rows(snap))


def state_digest(store: Store) -> bytes:
    with store.transaction() as tx:
        return digest_of(tx.snapshot())


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
    for account, value in sorted(balances.items()):
        if account.startswith("stake:") and account not in stakes and value != 0:
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
