"""`state_digest`: the one hash of everything a store holds that the chain decides (SPEC §11), which two
coordinators that ingested the same canonical chain agree on.

The digest is H("aicf/state/v1", tables) over every table's rows in a canonical order. Surrogate sequence
numbers are left out: they record when this coordinator happened to see a block (a coordinator that saw an
orphaned branch and rolled it back numbers its rows differently from one that never saw it), not what the
chain says. Ledger entries are hashed as a sorted multiset, transitions in their per-job order, balances
without the zero ones. Two stores that ingested the same canonical chain have the same digest, whatever
the backend and whatever reorgs or crashes each went through.
"""

from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.store.interface import Snapshot, Store

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
