"""The result shapes of the coordinator's methods, as pydantic models (issue 15: OpenRPC result schemas).

`aicf.transports.openrpc` publishes each model's JSON schema as the method's result schema, and
tests/transports/test_results.py validates real responses against the same models, so a render function that
changes shape without its model fails a test. Models are strict and refuse unknown fields.
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

HexStr = Annotated[str, Field(pattern=r"^0x([0-9a-fA-F]{2})*$", description="bytes as 0x-prefixed hex")]
Hex32Str = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="32 bytes as 0x-prefixed hex")]
Int = Annotated[int, Field(ge=-(2**63), lt=2**63)]
UInt = Annotated[int, Field(ge=0, lt=2**63)]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProviderRecordOut(Out):
    provider_id: Hex32Str
    status: str
    bonded_stake: UInt
    unbonding_stake: UInt
    kinds: list[str]
    models: list[str]
    max_leases: UInt
    unit_burst_mu: UInt
    unit_rate_mu_per_day: UInt


class UnregisteredFundOut(Out):
    """aicf.fundProvider of a provider not registered yet: the balance its registration will bond."""

    provider_id: Hex32Str
    status: str = Field(pattern="^UNREGISTERED$")
    balance: UInt
    bonded_stake: UInt
    unbonding_stake: UInt


class ProviderViewOut(Out):
    provider_id: Hex32Str
    status: str
    kinds: list[str]
    models: list[str]
    regions: list[str]
    tee_classes: list[str]
    devices: list[str]
    bonded_stake: UInt
    unbonding_stake: UInt
    max_leases: UInt
    unit_burst_mu: UInt
    unit_rate_mu_per_day: UInt
    live_leases: UInt
    proofs_accepted: UInt
    slashes: UInt
    latency_p50_ms: UInt | None
    latency_p95_ms: UInt | None
    availability_bps: UInt
    last_heartbeat_at: Int | None
    jailed_until: Int | None
    registered_at: Int


class ProviderPageOut(Out):
    items: list[ProviderViewOut]
    next_cursor: str | None


class JobOut(Out):
    task_id: Hex32Str
    kind: str
    model: str | None
    status: str
    tier: UInt
    attempts: UInt
    caller: HexStr
    enqueue_height: Int
    fee_per_unit: UInt
    max_units_mu: UInt
    escrow: UInt
    deadline_height: Int
    not_before: Int
    payload_hash: HexStr
    provider_id: Hex32Str | None = None  # the latest lease's provider (issue 17); null while PENDING or QUEUED


class JobPageOut(Out):
    items: list[JobOut]
    next_cursor: str | None


class TransitionOut(Out):
    from_: str | None = Field(alias="from")
    to: str
    reason: str
    height: Int | None
    time: Int


class LeaseOut(Out):
    lease_id: Hex32Str
    task_id: Hex32Str
    provider_id: Hex32Str
    attempt: UInt
    granted_at: Int
    expires_at: Int
    status: str
    ended_at: Int | None


class ProofOut(Out):
    proof_id: Hex32Str
    lease_id: Hex32Str
    provider_id: Hex32Str
    kind: str
    verdict: str
    message: str | None
    units_mu: UInt
    latency_ms: UInt | None
    received_at: Int


class ResultOut(Out):
    task_id: Hex32Str
    proof_id: Hex32Str
    kind: str
    output_digest: HexStr
    units_mu: UInt
    qos: dict[str, Any]
    height: Int
    miner_id: HexStr
    provider_id: Hex32Str


class JobStoryOut(JobOut):
    transitions: list[TransitionOut]
    decisions: list[dict[str, Any]]
    leases: list[LeaseOut]
    proofs: list[ProofOut]
    result: ResultOut | None
    payout: dict[str, Any] | None


class BalanceOut(Out):
    account: str
    balance: Int


class EpochOut(Out):
    epoch: UInt
    finalized_height: Int
    price_bps: UInt
    next_price_bps: UInt
    root: HexStr
    params_hash: HexStr
    payout_count: UInt
    carried_count: UInt
    totals: dict[str, Any]
    treasury_before: Int
    payouts: list[dict[str, Any]]
    cap_use_bps: UInt | None = None  # Σ units_mu of the batch over Γ × 1000, as /metrics reports it


class KindQueueOut(Out):
    kind: str
    depth: UInt
    oldest_age_s: UInt
    depth_limit: UInt
    age_limit_s: UInt
    capacity_mu_per_day: UInt


class QueueOut(Out):
    by_status: dict[str, UInt]
    oldest_queued_age_s: UInt
    by_kind: list[KindQueueOut] = []


class TreasuryOut(Out):
    treasury_balance: Int
    fund_balance: Int
    budget_throttle_active: bool
    cap_use_bps: UInt
    price_bps: UInt


class AlarmOut(Out):
    name: str
    severity: str
    message: str
    kind: str | None = None  # queue_depth, queue_age
    model: str | None = None  # trap_escrow_unfunded
    provider_id: Hex32Str | None = None  # provider_over_budget


class SlashOut(Out):
    provider_id: Hex32Str
    reason: str
    amount: UInt
    task_id: HexStr
    evidence_hash: HexStr
    time: Int
    jailed_until: Int | None


class OperatorChangeOut(Out):
    """One applied operator transaction (aicf.core.operator): who, what, from → to, effective epoch."""

    op: str
    tx_hash: Hex32Str
    sender: HexStr
    subject: str
    before: Any
    after: Any
    height: UInt
    effective_epoch: UInt
    state: str


class OperatorStatusOut(Out):
    epoch: UInt
    params_version: UInt
    params_hash: Hex32Str
    next_params_version: UInt
    next_params_hash: Hex32Str
    pending: list[OperatorChangeOut]
    applied: list[OperatorChangeOut]


class OutageOut(Out):
    started_at: Int
    ended_at: Int
    gap_s: UInt


class OutagesOut(Out):
    """Coordinator outages credited to the providers (time it could not act is not counted against them)."""

    count: UInt
    credited_s: UInt
    recent: list[OutageOut]  # the last ten, oldest first


class StatusOut(Out):
    now: Int
    head_height: Int
    finalized_height: Int
    current_epoch: UInt
    last_settled_epoch: UInt | None
    queue: QueueOut
    treasury: TreasuryOut
    alarms: list[AlarmOut]
    recent_slashes: list[SlashOut]
    latest_seq: UInt
    assignments_total: UInt
    retries_total: UInt
    operator: OperatorStatusOut
    outages: OutagesOut | None = None


class DeploymentOut(Out):
    chain_id: UInt
    coordinator_key: Hex32Str
    deployment_id: Hex32Str


class HeartbeatOut(Out):
    now: Int
    leases: list[Hex32Str]


class WorkOut(Out):
    """One live lease with its work: AI leases carry prompt, max_tokens and max_runtime_ms; quantum leases
    circuit, circuit_digest, shots, batch and batch_shots."""

    lease_id: Hex32Str
    task_id: Hex32Str
    attempt: UInt
    expires_at: Int
    kind: str
    model: str | None
    prompt: HexStr | None = None
    max_tokens: UInt | None = None
    max_runtime_ms: UInt | None = None
    circuit: HexStr | None = None
    circuit_digest: HexStr | None = None
    shots: UInt | None = None
    batch: list[HexStr] | None = None
    batch_shots: list[UInt] | None = None


class WorkPageOut(Out):
    items: list[WorkOut]
    next_cursor: None


class OutcomeOut(Out):
    proof_id: HexStr
    accepted: bool
    code: str
    message: str
    units_mu: UInt
    slashed: UInt
    dropped: bool


class ProofErrorOut(Out):
    code: int
    message: str


class GroupErrorOut(Out):
    error: ProofErrorOut  # the AicfError this proof alone met (its writes undone); the group's others stand


class OutcomeGroupOut(Out):
    items: list[OutcomeOut | GroupErrorOut]  # one per envelope, in the order sent


class ClaimOut(Out):
    claim_id: Hex32Str
    amount: UInt
    provider_id: Hex32Str


class RootOut(Out):
    vendor: str
    name: str
    version: UInt
    sha256: Hex32Str
    activation_height: UInt
    expiry_height: UInt | None
    in_force_next_block: bool
    not_after: Int | None
    added_height: Int
    added_at: Int
    der: HexStr


class TrustChangeOut(Out):
    seq: UInt
    what: str
    action: str
    subject: str
    detail: str
    height: Int
    time: Int


class RootListOut(Out):
    items: list[RootOut]
    changes: list[TrustChangeOut]


class RootRecordOut(Out):
    vendor: str
    name: str
    version: UInt
    sha256: Hex32Str
    activation_height: UInt
    expiry_height: UInt | None


class DeviceKeyOut(Out):
    device: str
    device_class: str
    version: UInt
    public_key: Hex32Str
    activation_height: UInt
    added_height: UInt
    added_at: UInt


class DeviceKeyListOut(Out):
    items: list[DeviceKeyOut]


class RotationOut(Out):
    new: RootRecordOut
    retired: list[RootRecordOut]


class SnpTcbOut(Out):
    bootloader: UInt
    tee: UInt
    snp: UInt
    microcode: UInt


class PolicyOut(Out):
    kind: str
    version: UInt
    activation_height: UInt
    allow_debug: bool
    allowed_measurements: list[HexStr] | None
    accepted_tcb_statuses: list[str]
    min_snp_tcb: SnpTcbOut | None
    max_vmpl: UInt
    added_height: Int
    added_at: Int


class PolicyListOut(Out):
    items: list[PolicyOut]


class PolicySetOut(Out):
    kind: str
    version: UInt
    activation_height: UInt


class ReorgOut(Out):
    depth: UInt
    head_height: Int
    head_hash: Hex32Str
    orphaned: list[Hex32Str]
    branch: list[Hex32Str]


class DiscoverOut(BaseModel):
    """The OpenRPC document itself (its own schema is the OpenRPC 1.2 meta-schema)."""

    model_config = ConfigDict(extra="allow")
    openrpc: str
    info: dict[str, Any]
    methods: list[dict[str, Any]]
