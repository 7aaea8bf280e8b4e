"""Attestation policy in the registry (SPEC §8; docs/ROOTS.md): a policy per evidence kind, versioned, each in force
from its activation height; the operator's use-case that sets one, and the read of them all."""

from dataclasses import dataclass

from aicf.core.clock import Clock
from aicf.core.trust import POLICY, PolicyRecord, TrustChange
from aicf.proofs.attestation.registry import PolicyFormatError, decode_policy, encode_policy
from aicf.proofs.attestation.result import Policy, SnpTcb
from aicf.proofs.attestation.verify import VERIFIERS
from aicf.service.errors import InvalidPolicyError
from aicf.service.trust_steps import check_activation, head_height
from aicf.store.interface import Store, read_transaction

EVIDENCE_KINDS = tuple(sorted(VERIFIERS))


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySpec:
    """A policy in plain values, for the transports (they do not see aicf.proofs); see Policy for the meaning.
    `allowed_measurements` None: not checked; `min_snp_tcb`: (bootloader, tee, snp, microcode) or None."""

    allow_debug: bool = False
    allowed_measurements: tuple[bytes, ...] | None = None
    accepted_tcb_statuses: tuple[str, ...] = ("UpToDate",)
    min_snp_tcb: tuple[int, int, int, int] | None = None
    max_vmpl: int = 3

    def to_policy(self) -> Policy:
        tcb = self.min_snp_tcb
        return Policy(
            allow_debug=self.allow_debug,
            allowed_measurements=None if self.allowed_measurements is None else frozenset(self.allowed_measurements),
            accepted_tcb_statuses=frozenset(self.accepted_tcb_statuses),
            min_snp_tcb=None if tcb is None else SnpTcb(bootloader=tcb[0], tee=tcb[1], snp=tcb[2], microcode=tcb[3]),
            max_vmpl=self.max_vmpl,
        )


def policy_spec(policy: Policy) -> PolicySpec:
    tcb = policy.min_snp_tcb
    return PolicySpec(
        allow_debug=policy.allow_debug,
        allowed_measurements=None
        if policy.allowed_measurements is None
        else tuple(sorted(policy.allowed_measurements)),
        accepted_tcb_statuses=tuple(sorted(policy.accepted_tcb_statuses)),
        min_snp_tcb=None if tcb is None else (tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode),
        max_vmpl=policy.max_vmpl,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyVersion:
    record: PolicyRecord
    policy: Policy

    @property
    def spec(self) -> PolicySpec:
        return policy_spec(self.policy)


def set_policy(
    store: Store, clock: Clock, *, kind: str, activation_height: int, policy: Policy | PolicySpec
) -> PolicyRecord:
    """Store the next policy version of evidence kind `kind`, in force from `activation_height` (proofs
    verified for lower heights keep the earlier version). Raises InvalidPolicyError (nothing stored)."""
    now = clock.now()
    if isinstance(policy, PolicySpec):
        policy = policy.to_policy()
    if kind not in VERIFIERS:
        raise InvalidPolicyError("kind", f"unknown evidence kind {kind!r}, expected one of {list(EVIDENCE_KINDS)}")
    try:
        encoded = encode_policy(policy)
    except PolicyFormatError as exc:
        raise InvalidPolicyError(exc.field, exc.reason) from exc
    with store.transaction() as tx:
        head = head_height(tx)
        check_activation(activation_height, head, InvalidPolicyError)
        versions = [p.version for p in tx.attestation_policies() if p.kind == kind]
        record = PolicyRecord(
            kind=kind,
            version=max(versions, default=0) + 1,
            activation_height=activation_height,
            policy=encoded,
            added_height=head,
            added_at=now,
        )
        if not tx.insert_policy(record):  # another writer took the version first
            raise InvalidPolicyError("kind", f"{kind} v{record.version} was stored meanwhile; retry")
        tx.record_trust_change(
            TrustChange(
                what=POLICY,
                action="set",
                subject=f"{kind} v{record.version}",
                detail=f"in force from height {activation_height}",
                height=head,
                time=now,
            )
        )
        tx.commit()
    return record


def policies(store: Store) -> list[PolicyVersion]:
    with read_transaction(store) as tx:
        return [PolicyVersion(record=p, policy=decode_policy(p.policy)) for p in tx.attestation_policies()]
