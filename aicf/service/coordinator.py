"""The coordinator's facade (issue 16): one object with the use-cases as methods, for the composition root and
the tests that build one. Each method delegates to a use-case module of plain functions (registry, leases,
matching, proofs, slashing, sweep, trap_duties, claims) over a `Context` built from this object's attributes,
so reassigning an attribute (a test swapping the chain writer or the oracle) takes effect on the next call.
The per-process caches live in one `Caches` the bootstrap builds and hands in (aicf.bootstrap.coordinator).
"""

from collections.abc import Iterable, Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.core.assignment import AssignmentDecision
from aicf.core.chain import Claim, Job
from aicf.core.clock import Clock
from aicf.core.errors import AicfError
from aicf.core.params import Params
from aicf.core.records import GrantRecord, LeaseRecord, Provider
from aicf.core.slashing import SlashReason
from aicf.core.txs import SignedTx
from aicf.proofs.quantum import derive_batch
from aicf.service import (
    claims,
    grants,
    leases,
    matching,
    operator_ops,
    proof_groups,
    proofs,
    registry,
    slashing,
    sweep,
    trap_duties,
)
from aicf.service.context import TRAP_WARNING_EVERY_S, Caches, ChainWriter, Context, DeriveBatch, TrapShortfall, Work
from aicf.service.leases import LeaseWork
from aicf.service.matching import GRANT_TAG
from aicf.service.proof_verdicts import ProofOutcome
from aicf.service.registry import KINDS, MAX_DEVICES, MAX_MODELS, MAX_NAME_CHARS, TEE_CLASSES, Capabilities
from aicf.service.steps import decode_request
from aicf.service.sweep import QOS_WINDOW_TAG, SweepReport
from aicf.service.trap_duties import TrapPassReport
from aicf.service.traps import TrapOracle, TrapPrompt, derive_seed
from aicf.service.trust import TrustRegistry
from aicf.service.verifier import ProofVerifier
from aicf.store.interface import Store, Tx

__all__ = [
    "GRANT_TAG",
    "KINDS",
    "MAX_DEVICES",
    "MAX_MODELS",
    "MAX_NAME_CHARS",
    "QOS_WINDOW_TAG",
    "TEE_CLASSES",
    "TRAP_WARNING_EVERY_S",
    "Capabilities",
    "ChainWriter",
    "Coordinator",
    "LeaseWork",
    "ProofOutcome",
    "SweepReport",
    "TrapPassReport",
    "TrapShortfall",
    "decode_request",
]


class Coordinator:
    """The use-cases, wired to one store, clock, params, operator key and verifier (see aicf.bootstrap)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        params: Params,
        operator_key: Ed25519PrivateKey,
        verifier: ProofVerifier,
        caches: Caches,
        chain_writer: ChainWriter | None = None,
        trap_secret: bytes = b"",
        operator_allowlist: Iterable[bytes] = (),
        trap_oracle: TrapOracle | None = None,
        trap_corpus: Sequence[TrapPrompt] = (),
        trust: TrustRegistry | None = None,
    ) -> None:
        self.store, self.clock, self.params = store, clock, params
        self.operator_key = operator_key
        self.verifier = verifier
        self.chain_writer = chain_writer
        self.trap_secret = trap_secret
        self.operator_allowlist = frozenset(operator_allowlist)
        # What the node was configured with; the operator's transactions on chain change both (follow_chain).
        self.base_params, self.base_allowlist = params, self.operator_allowlist
        self.trap_oracle = trap_oracle
        self.trap_corpus = tuple(trap_corpus)
        self.trust = trust if trust is not None else TrustRegistry(store, clock)  # vendor roots and policy
        self.caches = caches
        self.derive_batch: DeriveBatch = derive_batch  # tests count the batches built

    @property
    def trap_shortfalls(self) -> dict[str, TrapShortfall]:
        """Model → traps the fund could not pay since start (issue 17): /metrics, getStatus, alarms."""
        return self.caches.trap_shortfalls

    @property
    def trap_throttles(self) -> dict[str, TrapShortfall]:
        """Model → traps held back by the trap budget since start: /metrics, getStatus, alarms."""
        return self.caches.trap_throttles

    def context(self) -> Context:
        """The use-cases' wiring as this facade holds it now."""
        return Context(
            store=self.store,
            clock=self.clock,
            params=self.params,
            operator_key=self.operator_key,
            verifier=self.verifier,
            trust=self.trust,
            caches=self.caches,
            chain_writer=self.chain_writer,
            trap_secret=self.trap_secret,
            operator_allowlist=self.operator_allowlist,
            trap_oracle=self.trap_oracle,
            trap_corpus=self.trap_corpus,
            derive_batch=self.derive_batch,
            base_params=self.base_params,
        )

    def follow_chain(self) -> None:
        """Take the params in force in the ingested head's epoch and the operator allowlist as the operator's
        transactions on chain left them (aicf.service.operator_ops); run after each ingest."""
        self.params, self.operator_allowlist = operator_ops.follow_chain(
            self.store, self.caches, (self.base_params, self.base_allowlist), (self.params, self.operator_allowlist)
        )

    # -- trap seeds and AI traps (SPEC §8) ------------------------------------------------------------------
    def trap_seed(self, epoch: int) -> bytes:
        """s_E: secret until batch E reveals it; its commitment H("aicf/trapseed/v1", s_E) is public before E."""
        return derive_seed(self.trap_secret, epoch)

    def trap_pass(self) -> TrapPassReport:
        return trap_duties.trap_pass(self.context())

    def request_grant(self, tx: SignedTx, chain_id: int) -> GrantRecord:
        """A requester's job the fund sponsors from its grant allowance (aicf.service.grants)."""
        return grants.request_grant(self.context(), tx, chain_id)

    # -- registry and stake (SPEC §9) -----------------------------------------------------------------------
    def register(self, public_key: bytes, caps: Capabilities) -> Provider:
        """Register with nothing bonded (in-process setups that bond right after: tests, the replica harness).
        Outside callers go through `register_staked`."""
        return registry.register(self.context(), public_key, caps, bond=False, stake=None)

    def register_staked(self, public_key: bytes, caps: Capabilities, stake: int | None = None) -> Provider:
        """aicf.register (issue 15: registration is not free): bond `stake` µANM, or the whole balance when None,
        from provider:<id> in the registration's transaction (devnet: aicf.fundProvider funds it first)."""
        return registry.register(self.context(), public_key, caps, bond=True, stake=stake)

    def deposit_stake(self, pid: bytes, amount: int, *, source: str = "provider") -> Provider:
        return registry.deposit_stake(self.context(), pid, amount, source=source)

    def fund_unregistered(self, pid: bytes, amount: int) -> int:
        return registry.fund_unregistered(self.context(), pid, amount)

    def withdraw_stake(self, pid: bytes, amount: int) -> Provider:
        return registry.withdraw_stake(self.context(), pid, amount)

    # -- heartbeats and leases (SPEC §7) --------------------------------------------------------------------
    def heartbeat(self, pid: bytes, lease_ids: Sequence[bytes] = ()) -> list[LeaseRecord]:
        return leases.heartbeat(self.context(), pid, lease_ids)

    def leases_for(self, pid: bytes) -> list[LeaseWork]:
        return leases.leases_for(self.context(), pid)

    def release(self, pid: bytes, lid: bytes) -> LeaseRecord:
        return leases.release(self.context(), pid, lid)

    # -- matching, proofs, sweeps, claims -------------------------------------------------------------------
    def match(self, limit: int = 500) -> list[AssignmentDecision]:
        return matching.match(self.context(), limit)

    def submit_proof(self, raw: Mapping[str, object]) -> ProofOutcome:
        return proofs.submit_proof(self.context(), raw)

    def submit_proofs(self, raws: Sequence[Mapping[str, object]]) -> list[ProofOutcome | AicfError]:
        return proof_groups.submit_proofs(self.context(), raws)

    def sweep(self, limit: int = 500) -> SweepReport:
        return sweep.sweep(self.context(), limit)

    def runtime_budget_s(self, job: Job) -> int:
        return sweep.runtime_budget_s(self.params, job)

    def claim_payout(self, pid: bytes, nonce: int) -> Claim:
        return claims.claim_payout(self.context(), pid, nonce)

    def _slash(
        self,
        tx: Tx,
        provider: Provider,
        reason: SlashReason,
        task_id: bytes,
        subject: bytes,
        evidence: Mapping[str, object],
        now: int,
    ) -> int:
        """A slash inside the caller's transaction (tests that stage a misbehaviour directly)."""
        return slashing.slash(Work(tx, now, self.context()), provider, reason, task_id, subject, evidence)
