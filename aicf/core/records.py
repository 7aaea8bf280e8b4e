"""The coordinator's records beyond the chain view (issue 5): providers, leases, proofs, results, batches,
slashes and events. Frozen data; the store makes them durable, the service decides every change."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from aicf.core.leases import LeaseStatus
from aicf.core.registry import ProviderStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    provider_id: bytes
    public_key: bytes  # Ed25519, 32 bytes; provider_id = H("aicf/provider/v1", public_key)
    status: ProviderStatus
    registered_at: int
    kinds: tuple[str, ...]
    models: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tee_classes: tuple[str, ...] = ()
    max_leases: int = 4  # at most params.max_leases
    bonded: int = 0  # µANM; stake:<id> holds bonded + unbonding
    unbonding: int = 0
    unbonding_until: int = 0  # when the unbonding amount is released to provider:<id>
    jailed_until: int | None = None  # None: not jailed; 0: permanently (with status BANNED or JAILED)
    last_heartbeat_at: int | None = None
    bucket_tokens_mu: int = 0
    bucket_at: int = 0
    strikes: int = 0
    updated_at: int = 0
    # the provider's own unit-rate limits, declared at registration; 0: SPEC §6's figure, which caps both
    unit_burst_mu: int = 0
    unit_rate_mu_per_day: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRecord:
    lease_id: bytes
    task_id: bytes
    provider_id: bytes
    attempt: int
    granted_at: int
    expires_at: int
    status: LeaseStatus
    epoch: int  # the epoch of the head at grant time: its trap seed s_E derives the quantum traps
    ended_at: int | None = None
    grant_sig: bytes = b""  # the operator's signature over the grant (the evidence of a MISSED_LEASE slash)

    def grant_map(self) -> dict[str, object]:
        """The signed lease grant (SPEC §9 evidence)."""
        return {
            "lease_id": self.lease_id,
            "task_id": self.task_id,
            "provider_id": self.provider_id,
            "attempt": self.attempt,
            "granted_at": self.granted_at,
            "expires_at": self.expires_at,
            "epoch": self.epoch,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """The assignment decision of one pass for (task, attempt), winner or not (SPEC §6: every decision is
    stored). A later pass for the same attempt replaces a decision without a winner."""

    task_id: bytes
    attempt: int
    decision: bytes  # canonical CBOR of AssignmentDecision.to_map()
    winner: bytes | None
    time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofRecord:
    """An envelope that reached a live lease (drops are not stored: they change nothing)."""

    proof_id: bytes
    task_id: bytes
    lease_id: bytes
    provider_id: bytes
    kind: str
    envelope: bytes  # canonical CBOR of the envelope map
    received_at: int
    latency_ms: int  # proof received − lease granted, measured by the coordinator (SPEC §3)
    verdict: str  # "ACCEPT" or a reject code
    message: str = ""
    acceptance: bytes = b""  # canonical CBOR of acc, when accepted
    acceptance_sig: bytes = b""
    units_mu: int = 0
    output_digest: bytes = b""
    qos: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultRecord:
    """SPEC §8: written when an accepted proof is included; `height` is the inclusion height."""

    task_id: bytes
    proof_id: bytes
    kind: str
    output_digest: bytes
    units_mu: int
    qos: Mapping[str, int]
    height: int
    tx_index: int
    miner_id: bytes
    provider_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SlashRecord:
    evidence_hash: bytes
    provider_id: bytes
    reason: str
    subject: bytes  # the lease_id or proof_id: at most one slash per lease or proof
    task_id: bytes
    amount: int
    evidence: bytes  # canonical CBOR of the evidence map
    time: int
    jailed_until: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRecord:
    epoch: int
    finalized_height: int
    params_hash: bytes
    price_bps: int
    next_price_bps: int
    root: bytes
    batch: bytes  # canonical CBOR of the batch map (SPEC §5)
    payouts: int
    carried: int
    reward: int
    units_mu: int
    treasury_before: int
    trap_seed: bytes = b""  # s_E, revealed by the batch
    time: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    seq: int  # gapless, assigned by the store in the transaction that made the change
    topic: str  # jobAssigned | jobCompleted | providerSlashed | epochSettled
    data: bytes  # canonical CBOR of the event's map
    time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapSeedRecord:
    """The trap seed of one epoch (SPEC §8): its commitment H("aicf/trapseed/v1", s_E) is posted before epoch E
    starts, and s_E is revealed once batch E is built, so anyone checks H(seed) == commitment. Off-chain and
    outside the SPEC batch map: settlement stays a pure function of the chain."""

    epoch: int
    commitment: bytes
    committed_at: int  # coordinator time the commitment was posted
    committed_height: int  # the head height when it was posted (blocks of epoch E come after it)
    seed: bytes = b""  # s_E once revealed
    revealed_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRecord:
    """A requester's AI job the fund sponsors (issue 14 item 2, docs/TRAPS.md "Grants"): enqueued from a fresh
    fund-funded caller exactly like a trap, so fund-funded callers are not all traps. Off-chain, the operator's."""

    caller: bytes  # H("aicf/grantcaller/v1", s_E, m)[:20]
    m: int  # the grant's number, 0, 1, 2… (unique)
    epoch: int  # s_E of this epoch derived the caller
    requester: bytes  # the 20-byte address whose on-chain allowance pays it
    request_hash: bytes  # the signed request's hash: a replay gets the first answer (unique)
    model: str
    body: bytes  # canonical CBOR of the ai_enqueue body sent from `caller`
    funded: int  # µANM of escrow the fund pays the caller (trap_fund)
    created_at: int
    sent_at: int | None = None  # when its trap_fund and enqueue were sent
    task_id: bytes = b""  # once its enqueue is ingested
    reclaimed: int = 0  # µANM its trap_reclaim took back
    closed_at: int | None = None  # its job final and its refund reclaimed


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapRecord:
    """An AI trap job (SPEC §8): enqueued by the coordinator from a fresh caller funded by the fund. The expected
    answer is never stored ahead: the coordinator re-executes the prompt when the proof arrives."""

    caller: bytes  # H("aicf/trapcaller/v1", s_E, n)[:20]
    n: int  # the trap's number, 0, 1, 2… over the coordinator's lifetime (unique)
    epoch: int  # s_E of this epoch derived the caller and the pick
    model: str
    prompt: bytes
    max_tokens: int
    funded: int  # µANM moved fund → requester:<caller>
    created_at: int
    task_id: bytes = b""  # once its enqueue is ingested
    log_hash: bytes = b""  # H("aicf/trap/v1", s_E, task_id), logged at enqueue
    answer_digest: bytes = b""  # output digest of the coordinator's own answer, revealed once the proof is final
    revealed_at: int | None = None
