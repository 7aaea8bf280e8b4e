"""The coordinator's use-cases (issue 5): registry and stake, matching, leases and heartbeats, proofs,
slashing, sweeps and claims. Each public method is one use-case: it reads the clock once, runs in one store
transaction, applies core rules, writes, and returns core records. Events are appended in the same
transaction, so a WebSocket client sees exactly what was committed, in order.
"""

import logging
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Final, Protocol

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.core.assignment import (
    AssignmentDecision,
    CandidatePool,
    Exclusion,
    JobNeeds,
    LiveState,
    ProviderProfile,
    assign_from_pool,
    effective_unit_rate,
    make_pool,
    protocol_unit_rate,
    refill_bucket,
    static_eligibility,
)
from aicf.core.chain import Claim, Job, TxKind
from aicf.core.clock import Clock
from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.errors import AicfError, RequestError
from aicf.core.ids import claim_id, lease_id, output_digest, provider_id, trap_seed_commitment
from aicf.core.jobs import JobStatus, check_move
from aicf.core.leases import Lease, LeaseEnd, LeaseStatus, end_attempt, lease_end_status
from aicf.core.ledger import (
    EXTERNAL,
    FUND,
    TREASURY,
    Posting,
    provider_account,
    requester_account,
    stake_account,
)
from aicf.core.merkle import merkle_root
from aicf.core.params import Params
from aicf.core.pricing import (
    ai_units,
    availability_multiplier_bps,
    budget_throttled,
    latency_bps,
    reserve_fee,
)
from aicf.core.qos import availability_bps, p95_ms, qos_chronic, window_slots
from aicf.core.records import (
    DecisionRecord,
    LeaseRecord,
    ProofRecord,
    Provider,
    SlashRecord,
    TrapRecord,
    TrapSeedRecord,
)
from aicf.core.registry import ProviderStatus, check_provider_move
from aicf.core.requests import validate_request
from aicf.core.slashing import SlashReason, evidence_ref, is_banned, jail_until, slash_amount, slash_evidence
from aicf.core.types import MAX_AMOUNT, MicroAnm
from aicf.proofs.ai_v1 import check_runtime_claim
from aicf.proofs.envelope import Acceptance, ProofEnvelope, check_envelope, parse_envelope, sign_acceptance
from aicf.proofs.quantum import QuantumBatch, derive_batch
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.errors import (
    InvalidRegistrationError,
    LeaseNotFoundError,
    NotLeaseHolderError,
    ProviderBannedError,
    StakeError,
    UnknownProviderError,
)
from aicf.service.escrow import refund_escrow
from aicf.service.traps import (
    ExpectedAnswer,
    TrapOracle,
    TrapPrompt,
    check_trap_answer,
    derive_seed,
    is_audited,
    pick_prompt,
    trap_caller,
    trap_log_hash,
    trap_needs,
)
from aicf.service.trust import TrustRegistry
from aicf.service.verifier import BodyAccepted, ProofVerifier
from aicf.store.interface import META_GENESIS_TIME, ConcurrentUpdateError, ProofContext, QosRange, Store, Tx

log = logging.getLogger("aicf.coordinator")

KINDS = ("ai", "quantum")
TEE_CLASSES = ("sev-snp", "tdx", "sgx", "nitro", "nvidia-gpu", "cca")
MAX_NAME_CHARS = 64  # a model, device, region or TEE class name (issue 15: text from outside is bounded)
MAX_MODELS = 32
MAX_DEVICES = 16
GRANT_TAG = "aicf/grant/v1"
QOS_WINDOW_TAG = "aicf/qoswindow/v1"  # names the window that ends a QOS_CHRONIC run: one slash per such window
TRAP_FINAL_STATUSES = (JobStatus.SETTLED, JobStatus.REJECTED, JobStatus.FAILED, JobStatus.CANCELLED)
MAX_TRAPS_PER_PASS = 16
MAX_AUDIT_ANSWERS = 256  # re-executions of sampled jobs kept, so a resubmission does not run the model again
MAX_CACHED_BATCH_BYTES = 64 << 20  # the circuits of the quantum trap batches kept for aicf.nextLease
META_TRAP_REVEAL_NEXT = "trap_reveal_next"  # the first epoch whose trap seed is not revealed yet


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    kinds: tuple[str, ...]
    models: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tee_classes: tuple[str, ...] = ()
    max_leases: int = 4
    # the provider's own unit-rate limits (SPEC §6's bucket, stricter only); 0: the protocol's figure
    unit_burst_mu: int = 0
    unit_rate_mu_per_day: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseWork:
    """A live lease with what its holder needs to run it."""

    lease: LeaseRecord
    job: Job
    request: Mapping[str, object]  # the decoded request map (prompt or circuit inside)
    batch: tuple[bytes, ...] = ()  # quantum: the circuits to run, job and traps shuffled (SPEC §8)
    batch_shots: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofOutcome:
    proof_id: bytes
    accepted: bool
    code: str  # "ACCEPT" or the reject code
    message: str
    units_mu: int = 0
    slashed: int = 0
    dropped: bool = False  # a drop changed no state at all


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapPassReport:
    committed: tuple[int, ...] = ()  # epochs whose seed commitment this pass posted
    revealed: tuple[int, ...] = ()  # epochs whose seed this pass revealed
    enqueued: tuple[bytes, ...] = ()  # callers of the new trap jobs
    linked: int = 0  # trap jobs seen ingested (their H("aicf/trap/v1", s_E, task_id) logged)
    answers_revealed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepReport:
    expired: int = 0
    unjailed: int = 0
    released_stake: int = 0
    resent: int = 0  # accepted proofs sent to the chain again (see `_resend_inclusions`)


TRAP_WARNING_EVERY_S: Final = 300  # one "the fund cannot pay" line per model per five minutes, the rest counted


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapShortfall:
    """Traps of one model the fund could not pay, since start (this process): an operator alarm, not state."""

    count: int  # lifetime count: aicf_trap_escrow_shortfalls_total
    escrow: int  # µANM the last one needed
    warned_at: int  # when the last warning was logged
    warned_count: int  # `count` at that warning


def decode_request(job: Job) -> dict[str, object]:
    """The request map a job was enqueued with (its payload is the canonical CBOR of it)."""
    value = cbor2.loads(job.payload)
    return dict(value) if isinstance(value, dict) else {}


def _event(tx: Tx, topic: str, data: Mapping[str, object], time: int) -> int:
    return tx.append_event(topic, canonical_cbor(dict(data)), time)


class Coordinator:
    """The use-cases, wired to one store, clock, params, operator key and verifier (see aicf.app)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        params: Params,
        operator_key: Ed25519PrivateKey,
        verifier: ProofVerifier,
        chain_writer: "ChainWriter | None" = None,
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
        self.trap_oracle = trap_oracle
        self.trap_corpus = tuple(trap_corpus)
        self._expected: dict[tuple[str, bytes, int], ExpectedAnswer] = {}  # bounded by the corpus
        self._audit_answers: dict[bytes, ExpectedAnswer] = {}  # task → re-execution, at most MAX_AUDIT_ANSWERS
        self._registry: _RegistryView | None = None  # the matcher's profiles, per registry version
        self._qos_evaluated: dict[bytes, int] = {}  # provider → the QoS window its QOS_CHRONIC was evaluated in
        self.trust = trust if trust is not None else TrustRegistry(store, clock)  # vendor roots and policy
        self.trap_shortfalls: dict[str, TrapShortfall] = {}  # model → traps the fund could not pay (issue 17)
        # aicf.nextLease: a quantum lease's trap batch is built once per lease (issue 15: it costs about a second
        # of CPU and a provider can poll), then kept while the lease may live; bounded, oldest dropped first.
        self.derive_batch: Callable[[bytes, int, bytes, bytes, Params], QuantumBatch] = derive_batch
        self._batches: OrderedDict[bytes, QuantumBatch] = OrderedDict()
        self._batch_bytes = 0
        self._batches_lock = threading.Lock()

    # -- trap seeds and AI traps (SPEC §8; aicf.service.traps) --------------------------------------------
    def trap_seed(self, epoch: int) -> bytes:
        """s_E: secret until batch E reveals it; its commitment H("aicf/trapseed/v1", s_E) is public before E."""
        return derive_seed(self.trap_secret, epoch)

    def trap_pass(self) -> TrapPassReport:
        """One pass of the trap duties, run before matching each coordinator pass:
        1. post the seed commitment of the current epoch (the first pass only) and of the next one, so each is
           public before its epoch's first lease;
        2. reveal s_E for every epoch that has a batch;
        3. log H("aicf/trap/v1", s_E, task_id) for trap jobs now ingested, and reveal the answer digest of
           traps whose job is final;
        4. enqueue the traps each corpus model is due (fund → requester:<caller>, then an ai_enqueue).
        """
        now = self.clock.now()
        committed: list[int] = []
        revealed: list[int] = []
        linked = answers = 0
        enqueues: list[tuple[bytes, dict[str, object]]] = []
        with self.store.transaction() as tx:
            head = tx.head_block()
            if head is None:
                return TrapPassReport()
            for epoch in (head.epoch, head.epoch + 1):  # (1)
                if tx.get_trap_seed(epoch) is None:
                    record = TrapSeedRecord(
                        epoch=epoch,
                        commitment=trap_seed_commitment(self.trap_seed(epoch)),
                        committed_at=now,
                        committed_height=head.height,
                    )
                    if tx.insert_trap_seed(record):
                        committed.append(epoch)
            last = tx.last_batch_epoch()  # (2)
            first = tx.get_meta(META_TRAP_REVEAL_NEXT) or 0
            if last is not None and first <= last:
                for epoch in range(first, last + 1):
                    if tx.reveal_trap_seed(epoch, self.trap_seed(epoch), now):
                        revealed.append(epoch)
                tx.set_meta(META_TRAP_REVEAL_NEXT, last + 1)
            for trap in tx.open_traps(1000):  # (3)
                linked_now, answered = self._follow_trap(tx, trap, now)
                linked += linked_now
                answers += answered
            if self.trap_oracle is not None and self.trap_corpus and self.chain_writer is not None:  # (4)
                enqueues = self._new_traps(tx, head.epoch, now)
            tx.commit()
        for caller, body in enqueues:
            if self.chain_writer is not None:
                self.chain_writer.submit(TxKind.AI_ENQUEUE, body, caller)
        if enqueues:
            log.info("enqueued %d AI trap jobs", len(enqueues))
        return TrapPassReport(
            committed=tuple(committed),
            revealed=tuple(revealed),
            enqueued=tuple(c for c, _ in enqueues),
            linked=linked,
            answers_revealed=answers,
        )

    def _follow_trap(self, tx: Tx, trap: TrapRecord, now: int) -> tuple[int, int]:
        jobs = tx.jobs_of_caller(trap.caller)
        job = jobs[-1] if jobs else None
        if job is None:
            if trap.task_id:  # its enqueue block was orphaned: wait for the transaction to land again
                tx.update_trap(replace(trap, task_id=b"", log_hash=b""))
            return 0, 0
        linked = 0
        if job.task_id != trap.task_id:
            trap = replace(trap, task_id=job.task_id, log_hash=trap_log_hash(self.trap_seed(trap.epoch), job.task_id))
            tx.update_trap(trap)
            linked = 1
        if job.status not in TRAP_FINAL_STATUSES or self.trap_oracle is None:
            return linked, 0
        expected = self._expected_answer(trap)
        digest = output_digest(expected.output) if isinstance(expected, ExpectedAnswer) else b""
        tx.update_trap(replace(trap, answer_digest=digest, revealed_at=now))
        return linked, 1

    def _new_traps(self, tx: Tx, epoch: int, now: int) -> list[tuple[bytes, dict[str, object]]]:
        models = {c.model for c in self.trap_corpus}
        open_traps = tx.open_traps(10_000)
        unlinked: dict[str, int] = {}
        for t in open_traps:
            if not t.task_id:
                unlinked[t.model] = unlinked.get(t.model, 0) + 1
        counts = {m: n for m, n in tx.ai_job_counts().items() if m in models}
        needs = trap_needs(counts, tx.trap_counts(), unlinked, self.params)
        if not needs:
            return []
        seed = self.trap_seed(epoch)
        n = sum(tx.trap_counts().values())
        price = tx.get_meta("price_bps") or self.params.price_initial_bps
        open_jobs = tx.list_jobs([JobStatus.PENDING, JobStatus.QUEUED], None, 500)
        queued = [j for j in open_jobs if j.kind == "ai" and tx.get_trap(j.caller) is None]  # ordinary ones only
        out: list[tuple[bytes, dict[str, object]]] = []
        for model, count in needs.items():
            for _ in range(min(count, MAX_TRAPS_PER_PASS - len(out))):
                case = pick_prompt(self.trap_corpus, model, seed, n)
                if case is None:
                    break
                body = self._trap_body(tx, case, [j for j in queued if j.model == model], price)
                caller = trap_caller(seed, n)
                try:
                    valid = validate_request({"kind": "ai", **body}, self.params, price, lambda _: 1)
                except RequestError as exc:
                    log.warning("trap for %s not enqueued: %s", model, exc)
                    break
                if (fund := tx.balances([FUND])[FUND]) < valid.escrow:
                    self._note_unfunded_trap(model, valid.escrow, fund, now)
                    return out
                trap = TrapRecord(
                    caller=caller,
                    n=n,
                    epoch=epoch,
                    model=model,
                    prompt=case.prompt,
                    max_tokens=case.max_tokens,
                    funded=valid.escrow,
                    created_at=now,
                )
                if not tx.insert_trap(trap):
                    return out  # another replica took this number
                if valid.escrow > 0:
                    posting = Posting(
                        debit=FUND,
                        credit=requester_account(caller),
                        amount=MicroAnm(valid.escrow),
                        ref_kind="trap_funding",
                        ref=caller,
                    )
                    tx.post([posting], None, now)
                out.append((caller, body))
                n += 1
        return out

    def _note_unfunded_trap(self, model: str, escrow: int, fund: int, now: int) -> None:
        """Count a trap the fund could not pay (/metrics, getStatus); warn at most once per TRAP_WARNING_EVERY_S
        per model, saying how many were counted since the last warning."""
        last = self.trap_shortfalls.get(model)
        count = (last.count if last else 0) + 1
        if last is None or now - last.warned_at >= TRAP_WARNING_EVERY_S:
            since = f"; {count - last.warned_count} since the last warning" if last else ""
            log.warning("the fund (%d µANM) cannot pay the escrow of a %s trap (%d µANM)%s", fund, model, escrow, since)
            self.trap_shortfalls[model] = TrapShortfall(count=count, escrow=escrow, warned_at=now, warned_count=count)
        else:
            self.trap_shortfalls[model] = replace(last, count=count, escrow=escrow)

    def _trap_body(self, tx: Tx, case: TrapPrompt, queued: Sequence[Job], price: int) -> dict[str, object]:
        """An ai_enqueue body that looks like the model's open jobs (pending or queued): their median fee and
        runtime budget, tier 0, the default deadline; the prompt and token budget from the corpus."""
        fees = sorted(j.fee_per_unit for j in queued)
        runtimes = sorted(_int(decode_request(j).get("max_runtime_ms")) for j in queued)
        floor = reserve_fee(self.params.base_rate_ai, price, self.params)  # what ingest accepts at this price
        fee = max(fees[len(fees) // 2], floor) if fees else 2 * floor
        runtime = runtimes[len(runtimes) // 2] if runtimes and runtimes[len(runtimes) // 2] > 0 else 20_000
        return {
            "model": case.model,
            "prompt": case.prompt,
            "max_tokens": case.max_tokens,
            "max_runtime_ms": runtime,
            "fee_per_unit": fee,
            "tier": 0,
        }

    def _expected_answer(self, trap: TrapRecord) -> ExpectedAnswer | Reject:
        """The oracle's answer to a trap, computed once per corpus entry; an oracle that cannot run the model
        gives UNVERIFIABLE (no slash, the job requeues)."""
        key = (trap.model, trap.prompt, trap.max_tokens)
        found = self._expected.get(key)
        if found is not None:
            return found
        if self.trap_oracle is None:
            return Reject(code=RejectCode.UNVERIFIABLE, message="trap: no trap oracle configured")
        try:
            found = self.trap_oracle.expected(trap.model, trap.prompt, trap.max_tokens)
        except AicfError as exc:
            log.warning("trap re-execution of %s failed: %s", trap.model, exc)
            return Reject(code=RejectCode.UNVERIFIABLE, message=f"trap: cannot re-execute {trap.model}: {exc}")
        self._expected[key] = found
        return found

    # -- registry and stake (SPEC §9) ----------------------------------------------------------------------
    def register(self, public_key: bytes, caps: Capabilities) -> Provider:
        """Register a provider with nothing bonded (in-process setups that bond right after: tests, the replica
        harness). Outside callers go through `register_staked`. Registering the same key again returns the
        first registration unchanged."""
        return self._register(public_key, caps, bond=False, stake=None)

    def register_staked(self, public_key: bytes, caps: Capabilities, stake: int | None = None) -> Provider:
        """aicf.register (issue 15: registration is not free): bond `stake` µANM, or the provider's whole balance
        when None, from provider:<id> in the registration's transaction. Raises InvalidRegistrationError naming
        `stake` (nothing stored) when that is below params.min_stake or more than the balance holds; the balance
        is funded before registering (devnet: aicf.fundProvider on the provider id)."""
        return self._register(public_key, caps, bond=True, stake=stake)

    def _register(self, public_key: bytes, caps: Capabilities, *, bond: bool, stake: int | None) -> Provider:
        _check_caps(caps, self.params)
        if len(public_key) != 32:
            raise InvalidRegistrationError("public_key", f"expected a 32-byte Ed25519 key, got {len(public_key)}")
        floor = max(self.params.min_stake, 1)
        if stake is not None and (isinstance(stake, bool) or not floor <= stake < MAX_AMOUNT):
            raise InvalidRegistrationError("stake", f"must be {floor}..2^63-1 µANM (params.min_stake), got {stake}")
        pid = provider_id(public_key)
        now = self.clock.now()
        with self.store.transaction() as tx:
            existing = tx.get_provider(pid)
            if existing is not None:
                return existing
            account = provider_account(pid)
            balance = tx.balances([account])[account] if bond else 0
            bonded = (balance if stake is None else stake) if bond else 0
            if bond and not floor <= bonded <= balance:
                raise InvalidRegistrationError(
                    "stake",
                    f"registration bonds {floor if stake is None else stake} µANM or more (params.min_stake "
                    f"{floor}) from {account}, which holds {balance}; fund it first",
                )
            provider = Provider(
                provider_id=pid,
                public_key=public_key,
                status=ProviderStatus.ACTIVE,
                registered_at=now,
                kinds=tuple(sorted(set(caps.kinds))),
                models=tuple(sorted(set(caps.models))),
                devices=tuple(sorted(set(caps.devices))),
                regions=tuple(sorted(set(caps.regions))),
                tee_classes=tuple(sorted(set(caps.tee_classes))),
                max_leases=caps.max_leases,
                bucket_tokens_mu=effective_unit_rate(
                    caps.unit_burst_mu, caps.unit_rate_mu_per_day, self.params
                ).burst_mu,
                bucket_at=now,
                updated_at=now,
                unit_burst_mu=caps.unit_burst_mu,
                unit_rate_mu_per_day=caps.unit_rate_mu_per_day,
                bonded=bonded,
            )
            tx.insert_provider(provider)
            tx.record_provider_move(pid, None, ProviderStatus.ACTIVE, "registered", now)
            if bonded:
                posting = Posting(debit=account, credit=stake_account(pid), amount=MicroAnm(bonded), ref_kind="stake",
                                  ref=pid)  # fmt: skip
                tx.post([posting], None, now)
            tx.commit()
        log.info("provider 0x%s registered: %s", pid.hex()[:12], ",".join(provider.kinds))
        return provider

    def deposit_stake(self, pid: bytes, amount: int, *, source: str = "provider") -> Provider:
        """Bond `amount` µANM from the provider's earnings (`provider`) or, for an operator funding a devnet
        provider, from `external` (a mint). Raises StakeError for an amount out of range or a short balance."""
        if isinstance(amount, bool) or not 0 < amount < MAX_AMOUNT:
            raise StakeError(f"stake amount must be > 0 and < 2^63, got {amount}")
        if source not in ("provider", "external"):
            raise StakeError(f"stake source must be 'provider' or 'external', got {source!r}")
        now = self.clock.now()
        with self.store.transaction() as tx:
            provider = _require_provider(tx, pid)
            if provider.status is ProviderStatus.BANNED:
                raise StakeError(f"provider 0x{pid.hex()} is banned and cannot stake")
            debit = EXTERNAL if source == "external" else provider_account(pid)
            tx.post(
                [Posting(debit=debit, credit=stake_account(pid), amount=MicroAnm(amount), ref_kind="stake", ref=pid)],
                None,
                now,
            )
            updated = replace(provider, bonded=provider.bonded + amount, updated_at=now)
            if provider.status is ProviderStatus.UNBONDING:
                updated = replace(updated, status=check_provider_move(pid, provider.status, ProviderStatus.ACTIVE))
                tx.record_provider_move(pid, provider.status, ProviderStatus.ACTIVE, "restaked", now)
            _update_provider(tx, updated, provider.status)
            tx.commit()
        return updated

    def fund_unregistered(self, pid: bytes, amount: int) -> int:
        """Devnet operator mint into provider:<id> of a provider not registered yet, which registration then bonds
        (`register_staked`); returns the new balance. Raises StakeError for an amount out of range and
        BalanceOverflowError (nothing stored) for a balance that would pass 2^63."""
        if isinstance(amount, bool) or not 0 < amount < MAX_AMOUNT:
            raise StakeError(f"fund amount must be > 0 and < 2^63, got {amount}")
        now = self.clock.now()
        account = provider_account(pid)
        with self.store.transaction() as tx:
            if tx.get_provider(pid) is not None:
                raise StakeError(f"provider 0x{pid.hex()} is registered: fund its stake instead")
            tx.post([Posting(debit=EXTERNAL, credit=account, amount=MicroAnm(amount), ref_kind="deposit", ref=pid)],
                    None, now)  # fmt: skip
            balance = tx.balances([account])[account]
            tx.commit()
        return balance

    def withdraw_stake(self, pid: bytes, amount: int) -> Provider:
        """Start unbonding `amount`: it stays slashable for params.unbonding_s, then returns to provider:<id>."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            provider = _require_provider(tx, pid)
            if isinstance(amount, bool) or not 0 < amount <= provider.bonded:
                raise StakeError(f"can withdraw 1..{provider.bonded} µANM (the bonded stake), asked {amount}")
            updated = replace(
                provider,
                bonded=provider.bonded - amount,
                unbonding=provider.unbonding + amount,
                unbonding_until=now + self.params.unbonding_s,
                updated_at=now,
            )
            if updated.bonded == 0 and provider.status is ProviderStatus.ACTIVE:
                updated = replace(updated, status=check_provider_move(pid, provider.status, ProviderStatus.UNBONDING))
                tx.record_provider_move(pid, provider.status, ProviderStatus.UNBONDING, "withdrew all stake", now)
            _update_provider(tx, updated, provider.status)
            tx.commit()
        return updated

    # -- heartbeats and leases (SPEC §7) -------------------------------------------------------------------
    def heartbeat(self, pid: bytes, lease_ids: Sequence[bytes] = ()) -> list[LeaseRecord]:
        """Mark this slot live and extend every live lease of the provider to now + TTL.

        `lease_ids`, the leases the provider says it is working on, are checked first: one that is unknown,
        held by another provider, or no longer live (ended, or past its expiry) refuses the whole heartbeat
        with LeaseNotFoundError or NotLeaseHolderError, and nothing is written."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            if _require_provider(tx, pid).status is ProviderStatus.BANNED:
                raise ProviderBannedError(pid, "heartbeat")
            for lid in lease_ids:
                lease = _require_lease(tx, lid)
                if lease.provider_id != pid:
                    raise NotLeaseHolderError(lid, pid)
                if lease.status is not LeaseStatus.LIVE:
                    raise LeaseNotFoundError(lid, f"is {lease.status.value}, not live")
                if lease.expires_at <= now:
                    raise LeaseNotFoundError(lid, f"expired at {lease.expires_at} (now {now}); its job is requeued")
            leases = tx.record_heartbeat(
                pid, now // self.params.heartbeat_interval_s, now, now + self.params.lease_ttl_s
            )
            if leases is None:
                raise UnknownProviderError(pid)
            tx.commit()
        return leases

    def leases_for(self, pid: bytes) -> list[LeaseWork]:
        """The provider's live leases with what it needs to run them (aicf.nextLease)."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            if _require_provider(tx, pid).status is ProviderStatus.BANNED:
                raise ProviderBannedError(pid, "leases")
            work: list[LeaseWork] = []
            for lease in tx.live_leases_of(pid):
                if lease.expires_at <= now:
                    continue
                job = tx.get_job(lease.task_id)
                if job is None:
                    continue
                request = decode_request(job)
                if job.kind == "quantum":
                    circuit, shots = request.get("circuit"), request.get("shots")
                    if isinstance(circuit, bytes) and isinstance(shots, int):
                        batch = self._batch_of(lease, job, circuit, shots)
                        work.append(
                            LeaseWork(
                                lease=lease, job=job, request=request, batch=batch.circuits, batch_shots=batch.shots
                            )
                        )
                        continue
                work.append(LeaseWork(lease=lease, job=job, request=request))
        return work

    def _batch_of(self, lease: LeaseRecord, job: Job, circuit: bytes, shots: int) -> QuantumBatch:
        """The lease's trap batch: derived from the lease's epoch seed and the task, so the same on every call."""
        with self._batches_lock:
            found = self._batches.get(lease.lease_id)
        if found is not None:
            return found
        built = self.derive_batch(circuit, shots, self.trap_seed(lease.epoch), job.task_id, self.params)
        with self._batches_lock:
            if lease.lease_id not in self._batches:
                self._batches[lease.lease_id] = built
                self._batch_bytes += _batch_size(built)
            while self._batch_bytes > MAX_CACHED_BATCH_BYTES and len(self._batches) > 1:
                self._batch_bytes -= _batch_size(self._batches.popitem(last=False)[1])
        return built

    def release(self, pid: bytes, lid: bytes) -> LeaseRecord:
        """The holder hands a lease back: it is excluded for the task, with no strike (SPEC §7)."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            lease = _require_lease(tx, lid)
            if lease.provider_id != pid:
                raise NotLeaseHolderError(lid, pid)
            if lease.status is not LeaseStatus.LIVE or lease.expires_at <= now:
                raise LeaseNotFoundError(lid, f"is {lease.status.value}, not live")
            self._end_lease(tx, lease, LeaseEnd.RELEASED, now)
            tx.commit()
        return replace(lease, status=LeaseStatus.RELEASED, ended_at=now)

    # -- matching (SPEC §5, §6) ----------------------------------------------------------------------------
    def match(self, limit: int = 500) -> list[AssignmentDecision]:
        """One matcher pass: lease ready jobs in priority order to stake-weighted beacon draws."""
        now = self.clock.now()
        decisions: list[AssignmentDecision] = []
        with self.store.transaction() as tx:
            head = tx.head_block()
            price = tx.get_meta("price_bps") or self.params.price_initial_bps
            treasury = tx.balances([TREASURY])[TREASURY]
            if head is None or budget_throttled(treasury, price, self.params):
                if head is not None:
                    log.warning("budget throttle: treasury %d below a tenth of an epoch's outlay", treasury)
                return []
            jobs = tx.claim_ready_jobs(now, limit)
            if not jobs:
                return []
            registry = self._registry_view(tx)
            live_counts = tx.live_lease_counts()
            pass_ = _Pass(
                tx=tx,
                registry=registry,
                live_counts=live_counts,
                live_state=lambda provider: self._live_state(tx, provider, live_counts, now),
                epoch=head.epoch,
                now=now,
                leases=tx.leases_of_tasks([job.task_id for job in jobs]),
            )
            # Leases the active providers can still take this pass: at zero every further decision would only
            # record refusals, so the pass ends (the jobs wait for the next one, as after 16 failed draws). A
            # provider refused for a stale heartbeat or low availability takes nothing more this pass either.
            free = {pid: max(0, slots - live_counts.get(pid, 0)) for pid, slots in registry.slots.items()}
            capacity = sum(free.values())
            for job in jobs:
                if capacity <= 0:
                    break
                try:
                    decision = self._decide(pass_, job)
                except _ProviderBusy as busy:
                    log.debug("job 0x%s waits for the next pass: %s", job.task_id.hex(), busy)
                    continue
                decisions.append(decision)
                capacity -= decision.winner is not None
                for draw in decision.draws:
                    if draw.refused in _PASS_LONG_REFUSALS:
                        capacity -= free.pop(draw.provider_id, 0)
            for pid in pass_.granted_to:  # each winner's bucket once per pass, not once per lease
                winner = pass_.providers[pid]
                _update_provider(tx, winner, winner.status)
            tx.put_decisions(pass_.decisions)
            # last, so the gapless event counter (a row every writer takes) is held only for the commit
            tx.append_events([(topic, canonical_cbor(dict(data))) for topic, data in pass_.events], now)
            tx.commit()
        return decisions

    def _registry_view(self, tx: Tx) -> "_RegistryView":
        """The registry's profiles, reloaded only when the store's registry version moved since the last pass."""
        version = tx.registry_version()
        view = self._registry
        if view is None or view.version != version:
            providers = tx.providers()
            view = _RegistryView(
                version=version,
                profiles=tuple(_profile(p) for p in providers),
                slots={
                    p.provider_id: p.max_leases
                    for p in providers
                    if p.status is ProviderStatus.ACTIVE and p.bonded >= self.params.min_stake
                },
            )
            self._registry = view
        return view

    def _pool(self, registry: "_RegistryView", needs: JobNeeds, released: frozenset[bytes]) -> CandidatePool:
        """Static eligibility for `needs`, shared by every job with the same needs against this registry version."""
        key = (needs.kind, needs.model, needs.regions, needs.allowlist, needs.tee_required, released)
        pool = registry.pools.get(key)
        if pool is None:
            candidates, excluded = static_eligibility(
                needs, registry.profiles, self.params, self.operator_allowlist, released
            )
            pool = make_pool(candidates, excluded)
            if len(registry.pools) >= _MAX_POOLS:
                registry.pools.clear()
            registry.pools[key] = pool
        return pool

    def _decide(self, p: "_Pass", job: Job) -> AssignmentDecision:
        tx, now = p.tx, p.now
        attempt = job.attempts
        leases = p.leases.get(job.task_id, [])
        released = {lease.provider_id for lease in leases if lease.status is LeaseStatus.RELEASED}
        # A lease id is H(task, provider, attempt): a provider whose lease at this attempt was revoked by a jail
        # cannot take the same attempt again (its id is taken), so it is excluded like a release.
        released |= {lease.provider_id for lease in leases if lease.attempt == attempt}
        needs = JobNeeds(
            task_id=job.task_id,
            kind=job.kind,
            model=job.model or None,
            regions=job.regions,
            allowlist=job.allowlist,
            tee_required=job.tee_required,
            max_units_mu=job.max_units_mu,
        )
        pool = self._pool(p.registry, needs, frozenset(released))
        decision = assign_from_pool(
            needs,
            attempt=attempt,
            beacon=p.beacon(job.enqueue_height + self.params.finality_depth),
            pool=pool,
            live=p.live,
            tried=frozenset(lease.provider_id for lease in leases),
            now=now,
            params=self.params,
        )
        if pool.pool_id not in p.pools_written:
            tx.put_pool(pool.pool_id, pool.record)
            p.pools_written.add(pool.pool_id)
        record = canonical_cbor(decision.compact_map(pool.pool_id))
        p.decisions.append(  # written with the pass's others at its end
            DecisionRecord(task_id=job.task_id, attempt=attempt, decision=record, winner=decision.winner, time=now)
        )
        if decision.winner is None:
            return decision
        winner = decision.winner
        lease = LeaseRecord(
            lease_id=lease_id(job.task_id, winner, attempt),
            task_id=job.task_id,
            provider_id=winner,
            attempt=attempt,
            granted_at=now,
            expires_at=now + self.params.lease_ttl_s,
            status=LeaseStatus.LIVE,
            epoch=p.epoch,
        )
        lease = replace(lease, grant_sig=self.operator_key.sign(tagged_hash(GRANT_TAG, lease.grant_map())))
        check_move(job.task_id, job.status, JobStatus.LEASED)
        if not tx.lease_job(lease, now):
            return replace(decision, winner=None)  # another replica leased it first
        provider = p.provider(winner)
        state = p.live[winner]
        tokens = state.bucket_tokens_mu - job.max_units_mu
        p.live.update(winner, replace(state, live_leases=state.live_leases + 1, bucket_tokens_mu=tokens))
        p.live_counts[winner] = p.live_counts.get(winner, 0) + 1
        p.providers[winner] = replace(provider, bucket_tokens_mu=tokens, bucket_at=now, updated_at=now)
        p.granted_to.add(winner)
        p.events.append(
            (
                "jobAssigned",
                {"task_id": job.task_id, "provider_id": winner, "lease_id": lease.lease_id, "attempt": attempt},
            )
        )
        return decision

    def _live_state(self, tx: Tx, provider: Provider, counts: Mapping[bytes, int], now: int) -> LiveState:
        rate = effective_unit_rate(provider.unit_burst_mu, provider.unit_rate_mu_per_day, self.params)
        first, last = window_slots(now, provider.registered_at, self.params)
        slots = tx.heartbeat_slots(provider.provider_id, first, last)
        interval = self.params.heartbeat_interval_s
        return LiveState(
            provider_id=provider.provider_id,
            last_heartbeat_at=provider.last_heartbeat_at,
            availability_bps=availability_bps((s * interval for s in slots), now, provider.registered_at, self.params),
            # the provider's own limit (at most SPEC's max_leases) counts as reaching SPEC's
            live_leases=count
            if (count := counts.get(provider.provider_id, 0)) < provider.max_leases
            else self.params.max_leases,
            bucket_tokens_mu=refill_bucket(provider.bucket_tokens_mu, provider.bucket_at, now, self.params, rate),
            unit_rate=rate,
        )

    # -- proofs (SPEC §8) ----------------------------------------------------------------------------------
    def submit_proof(self, raw: Mapping[str, object]) -> ProofOutcome:
        """Check the envelope, verify the body, then accept (signed acc, inclusion on chain) or reject
        (requeue or REJECTED, and a slash when the code earns one). A drop changes nothing."""
        received_ms = self.clock.now_ms()
        env = parse_envelope(raw)
        if isinstance(env, Reject):
            return ProofOutcome(proof_id=b"", accepted=False, code=env.code.value, message=env.message, dropped=True)
        answer: ExpectedAnswer | Reject | None = None
        for _ in range(3):
            outcome = self._submit(env, received_ms, answer)
            if isinstance(outcome, ProofOutcome):
                return outcome
            if isinstance(outcome, TrapRecord):  # a trap whose answer is not known yet: run the model outside any tx
                answer = self._expected_answer(outcome)
            elif isinstance(outcome, _Audit):  # a sampled ordinary job: re-execute it outside any tx
                answer = self._reexecute(outcome)
            # _RACED: another replica moved the job meanwhile; the next look answers as it finds it
        raise ConcurrentUpdateError(f"proof 0x{env.proof_id.hex()[:12]}: the job kept moving under it")

    def _submit(
        self, env: ProofEnvelope, received_ms: int, answer: ExpectedAnswer | Reject | None
    ) -> "ProofOutcome | TrapRecord | _Audit | _Raced":
        """One submission in one transaction. For a trap job whose answer this process has not computed yet it
        writes nothing and returns the trap, and for a sampled ordinary job whose body passed the checks an
        `_Audit`: the caller computes the answer (a model run, outside any transaction) and calls again with it.
        `_RACED` (nothing written) when the job left LEASED between the read and the write."""
        now = received_ms // 1000
        pid = env.proof_id
        interval = self.params.heartbeat_interval_s
        # the widest QoS window (registration can only shorten it): _accepted_record filters to the provider's own
        qos = QosRange(
            since=now - self.params.qos_window_s,
            first_slot=(now - self.params.qos_window_s) // interval,
            last_slot=now // interval,
        )
        with self.store.transaction() as tx:
            ctx = tx.proof_context(env.provider_id, env.lease_id, env.task_id, pid, qos)
            provider, stored = ctx.provider, ctx.lease
            lease = _core_lease(stored) if stored is not None else None
            drop = check_envelope(
                env,
                provider_key=provider.public_key if provider is not None else None,
                lease=lease,
                received_at=now,
                seen_proof=lambda asked: ctx.seen if asked == pid else tx.proof_seen(asked),
            )
            if drop is not None:
                if drop.code is RejectCode.DUPLICATE:
                    first = tx.get_proof(pid)
                    if first is not None:  # replaying a message returns the first answer
                        return _outcome_of(first)
                return ProofOutcome(
                    proof_id=pid, accepted=False, code=drop.code.value, message=drop.message, dropped=True
                )
            if provider is None or stored is None:  # unreachable: check_envelope dropped these
                raise LeaseNotFoundError(env.lease_id, "is unknown")
            job = ctx.job
            if job is None or job.status is not JobStatus.LEASED:
                return ProofOutcome(
                    proof_id=pid,
                    accepted=False,
                    code=RejectCode.UNKNOWN_LEASE.value,
                    message="the task is not leased",
                    dropped=True,
                )
            expected = answer
            audited = ctx.trap is None and job.kind == "ai" and self._audited(job, stored)
            trap = ctx.trap if answer is None and job.kind == "ai" else None
            if trap is not None:
                expected = self._expected.get((trap.model, trap.prompt, trap.max_tokens))
                if expected is None:
                    return trap
            head = ctx.head
            height = head.height if head is not None else 0
            latency = max(0, received_ms - stored.granted_at * 1000)
            # judged by the roots and policy in force at the earliest inclusion height: the acceptance goes on
            # chain with the envelope at the next block at the earliest (aicf.service.trust, docs/ROOTS.md)
            inclusion = height + 1 if head is not None else 0
            trust = self.trust.anchors_at(tx, inclusion, ctx.trust_version)
            verdict = self.verifier.verify(env, job, decode_request(job), stored, now, inclusion, trust)
            if isinstance(verdict, Reject) and verdict.is_drop:  # SPEC §8: a malformed body uses no attempt
                return ProofOutcome(
                    proof_id=pid, accepted=False, code=verdict.code.value, message=verdict.message, dropped=True
                )
            if not isinstance(verdict, Reject) and verdict.units_mu is None:  # AI: pay only for time observed
                verdict = _measured_runtime(env, verdict, latency)
            reference: bytes | None = None
            if audited and not isinstance(verdict, Reject):  # a sampled ordinary job: compare with a re-execution
                if answer is None:
                    request = decode_request(job)
                    prompt = request.get("prompt")
                    return _Audit(
                        task_id=job.task_id,
                        model=job.model,
                        prompt=prompt if isinstance(prompt, bytes) else b"",
                        max_tokens=_int(request.get("max_tokens")),
                    )
                verdict, reference = self._audit_verdict(answer, env, verdict)
            elif expected is not None and not isinstance(verdict, Reject):  # a trap job: compare with our answer
                verdict = expected if isinstance(expected, Reject) else self._trap_verdict(expected, env, verdict)
            check_move(job.task_id, JobStatus.LEASED, JobStatus.SUBMITTED)
            envelope_bytes = canonical_cbor(env.to_map())
            received = ProofRecord(  # what both verdicts record; each adds its own outcome
                proof_id=pid,
                task_id=env.task_id,
                lease_id=env.lease_id,
                provider_id=env.provider_id,
                kind=env.kind,
                envelope=envelope_bytes,
                received_at=now,
                latency_ms=latency,
                verdict="",
            )
            accepted: ProofRecord | None = None
            if isinstance(verdict, Reject):
                if not tx.move_job(job.task_id, JobStatus.LEASED, JobStatus.SUBMITTED, "proof submitted", None, now):
                    return _RACED
                outcome = self._reject_proof(
                    tx, env, job, stored, provider, verdict, received, now, height, reference=reference
                )
            else:
                accepted = self._accepted_record(env, job, provider, verdict, received, now, ctx)
                if not tx.accept_proof(accepted, now):
                    return _RACED
                outcome = _outcome_of(accepted)
            tx.commit()
        if accepted is not None:
            self._send_inclusion(accepted)
        return outcome

    def _audited(self, job: Job, lease: LeaseRecord) -> bool:
        """Whether this ordinary AI job is in its epoch's re-execution sample (issue 14; docs/TRAPS.md)."""
        if self.trap_oracle is None or self.params.audit_bps <= 0:
            return False
        return is_audited(self.trap_seed(lease.epoch), job.task_id, self.params.audit_bps)

    def _reexecute(self, audit: "_Audit") -> ExpectedAnswer | Reject:
        """The oracle's answer for a sampled job, kept per task (bounded) so resubmissions do not run it again."""
        found = self._audit_answers.get(audit.task_id)
        if found is not None:
            return found
        if self.trap_oracle is None:
            return Reject(code=RejectCode.UNVERIFIABLE, message="audit: no oracle configured")
        try:
            found = self.trap_oracle.expected(audit.model, audit.prompt, audit.max_tokens)
        except AicfError as exc:
            log.warning("audit re-execution of %s failed: %s", audit.model, exc)
            return Reject(code=RejectCode.UNVERIFIABLE, message=f"audit: cannot re-execute {audit.model}: {exc}")
        if len(self._audit_answers) >= MAX_AUDIT_ANSWERS:
            self._audit_answers.pop(next(iter(self._audit_answers)))
        self._audit_answers[audit.task_id] = found
        return found

    def _audit_verdict(
        self, answer: ExpectedAnswer | Reject, env: ProofEnvelope, body: BodyAccepted
    ) -> tuple[BodyAccepted | Reject, bytes | None]:
        """Compare a sampled job's output with the re-execution, as a trap's is; a mismatch is AUDIT_MISMATCH with
        the reference output for the evidence. A re-execution that could not run leaves the proof unaudited."""
        if isinstance(answer, Reject):
            log.warning("proof 0x%s left unaudited: %s", env.proof_id.hex()[:12], answer.message)
            return body, None
        failed = check_trap_answer(answer, env.body.get("output"), self.params)
        if failed is None:
            return body, None
        log.warning("audit failed by provider 0x%s: %s", env.provider_id.hex()[:12], failed.message)
        message = failed.message.removeprefix("trap: ")
        return Reject(code=RejectCode.AUDIT_MISMATCH, message=f"audit: {message}"), answer.output

    def _trap_verdict(self, expected: ExpectedAnswer, env: ProofEnvelope, body: BodyAccepted) -> BodyAccepted | Reject:
        failed = check_trap_answer(expected, env.body.get("output"), self.params)
        if failed is not None:
            log.warning("trap failed by provider 0x%s: %s", env.provider_id.hex()[:12], failed.message)
        return body if failed is None else failed

    def _accepted_record(
        self,
        env: ProofEnvelope,
        job: Job,
        provider: Provider,
        body: BodyAccepted,
        received: ProofRecord,
        now: int,
        ctx: ProofContext,
    ) -> ProofRecord:
        """The proof's record with its signed acceptance: units from the body, QoS from the provider's window."""
        lat = latency_bps(p95_ms([*ctx.latencies, received.latency_ms]), self.params)
        first, last = window_slots(now, provider.registered_at, self.params)
        slots = [s for s in ctx.slots if first <= s <= last]
        interval = self.params.heartbeat_interval_s
        availability = availability_bps((s * interval for s in slots), now, provider.registered_at, self.params)
        avail = availability_multiplier_bps(availability, self.params)
        if body.units_mu is not None:
            units = min(body.units_mu, job.max_units_mu)
        else:
            weight = self.params.weight_milli(job.model) or 0
            units = min(ai_units(body.runtime_ms, weight, lat, avail), job.max_units_mu)
        acc = Acceptance(proof_id=env.proof_id, units_mu=units, lat_bps=lat, avail_bps=avail, accepted_at=now)
        sig = sign_acceptance(self.operator_key, acc)
        return replace(
            received,
            verdict="ACCEPT",
            acceptance=canonical_cbor(acc.to_map()),
            acceptance_sig=sig,
            units_mu=units,
            output_digest=body.output_digest,
            qos={"runtime_ms": body.runtime_ms, "tokens": body.tokens, "quality_bps": body.quality_bps},
        )

    def _reject_proof(
        self,
        tx: Tx,
        env: ProofEnvelope,
        job: Job,
        lease: LeaseRecord,
        provider: Provider,
        verdict: Reject,
        received: ProofRecord,
        now: int,
        height: int,
        *,
        reference: bytes | None = None,
    ) -> ProofOutcome:
        tx.insert_proof(replace(received, verdict=verdict.code.value, message=verdict.message))
        submitted = replace(job, status=JobStatus.SUBMITTED)
        self._end_attempt(tx, submitted, lease, LeaseEnd.REJECTED, now)
        slashed = 0
        reason = verdict.slash_reason
        if reason is not None:
            evidence = slash_evidence(
                reason=SlashReason(reason),
                task_id=env.task_id,
                subject_kind="proof_id",
                subject_id=env.proof_id,
                record=env.to_map(),
                height=height,
                reference_output=reference,
            )
            slashed = self._slash(tx, provider, SlashReason(reason), env.task_id, env.proof_id, evidence, now)
        log.info("proof 0x%s rejected: %s", env.proof_id.hex()[:12], verdict.code.value)
        return ProofOutcome(
            proof_id=env.proof_id, accepted=False, code=verdict.code.value, message=verdict.message, slashed=slashed
        )

    def _send_inclusion(self, record: ProofRecord) -> None:
        """The accepted envelope and the signed acceptance, as one transaction for the chain (SPEC §8)."""
        if self.chain_writer is None:
            return
        self.chain_writer.include_proof(
            {
                "task_id": record.task_id,
                "proof_id": record.proof_id,
                "provider_id": record.provider_id,
                "envelope": record.envelope,
                "acc": record.acceptance,
                "acc_sig": record.acceptance_sig,
            }
        )

    def _resend_inclusions(self, now: int, limit: int) -> int:
        """Send again the accepted proofs of SUBMITTED jobs that are still not on chain a lease TTL later.

        The inclusion is sent after the acceptance commits, so a coordinator that stops between the two (or a
        chain that drops the transaction) would leave the job SUBMITTED for ever. Sending it twice is harmless:
        the first inclusion of a task wins and ingest refuses a second one."""
        with self.store.transaction() as tx:
            stranded = tx.accepted_proofs_not_included(now - self.params.lease_ttl_s, limit)
        for record in stranded:
            log.info("proof 0x%s of job 0x%s is not on chain yet: sending it again", record.proof_id.hex()[:12],
                     record.task_id.hex()[:12])  # fmt: skip
            self._send_inclusion(record)
        return len(stranded)

    # -- sweeps (SPEC §7, §9) ------------------------------------------------------------------------------
    def sweep(self, limit: int = 500) -> SweepReport:
        """Expire leases past their TTL (strike, MISSED_LEASE slash, requeue or fail), end jails that are
        over, and release unbonded stake whose unbonding period has passed."""
        now = self.clock.now()
        expired = unjailed = released = 0
        with self.store.transaction() as tx:
            head = tx.head_block()
            height = head.height if head is not None else 0
            for listed, ended_at in self._leases_to_expire(tx, now, limit):
                # Read again: a slash earlier in this loop jails its provider, which revokes its other leases.
                lease, job = tx.get_lease(listed.lease_id), tx.get_job(listed.task_id)
                if lease is None or lease.status is not LeaseStatus.LIVE or job is None:
                    continue
                if job.status is not JobStatus.LEASED:
                    continue
                self._end_attempt(tx, job, lease, LeaseEnd.EXPIRED, ended_at)
                provider = _require_provider(tx, lease.provider_id)
                _update_provider(tx, replace(provider, strikes=provider.strikes + 1, updated_at=now), provider.status)
                provider = _require_provider(tx, lease.provider_id)
                evidence = slash_evidence(
                    reason=SlashReason.MISSED_LEASE,
                    task_id=lease.task_id,
                    subject_kind="lease_id",
                    subject_id=lease.lease_id,
                    record={**lease.grant_map(), "grant_sig": lease.grant_sig},
                    height=height,
                    heartbeat_root=_heartbeat_root(tx, provider, now, self.params),
                )
                self._slash(tx, provider, SlashReason.MISSED_LEASE, lease.task_id, lease.lease_id, evidence, now)
                expired += 1
            genesis = tx.get_meta(META_GENESIS_TIME)
            evaluated = self._qos_chronic_pass(tx, now, genesis, height) if genesis is not None else {}
            for provider in tx.providers_due(now):
                changed = provider
                if provider.status is ProviderStatus.JAILED and provider.jailed_until and provider.jailed_until <= now:
                    to = ProviderStatus.ACTIVE if provider.bonded > 0 else ProviderStatus.UNBONDING
                    changed = replace(changed, status=check_provider_move(provider.provider_id, provider.status, to))
                    changed = replace(changed, jailed_until=None)
                    tx.record_provider_move(provider.provider_id, provider.status, to, "jail ended", now)
                    unjailed += 1
                if changed.unbonding > 0 and changed.unbonding_until <= now:
                    amount = changed.unbonding
                    tx.post(
                        [
                            Posting(
                                debit=stake_account(provider.provider_id),
                                credit=provider_account(provider.provider_id),
                                amount=MicroAnm(amount),
                                ref_kind="unbonded",
                                ref=provider.provider_id,
                            )
                        ],
                        None,
                        now,
                    )
                    changed = replace(changed, unbonding=0)
                    released += amount
                if changed != provider:
                    _update_provider(tx, replace(changed, updated_at=now), provider.status)
            tx.commit()
        self._qos_evaluated.update(evaluated)  # only once committed: a pass rolled back is evaluated again
        resent = self._resend_inclusions(now, limit)
        return SweepReport(expired=expired, unjailed=unjailed, released_stake=released, resent=resent)

    def _qos_chronic_pass(self, tx: Tx, now: int, genesis: int, height: int) -> dict[bytes, int]:
        """QOS_CHRONIC for the ACTIVE providers not yet evaluated in the window `now` is in; returns those
        evaluated, with that window, for `_qos_evaluated` once the sweep commits.

        A verdict changes only when a window completes: the slots of complete windows are fixed (a late
        heartbeat from a replica whose clock lags could only add a slot, which never makes a run chronic), and
        the slash names its window, so `_slash` refuses a second one. A provider that is not ACTIVE now is not
        remembered: it is evaluated when it becomes ACTIVE again in the same window (a jail that ends)."""
        p, window = self.params, self.params.qos_window_s
        current = (now - genesis) // window  # the window `now` is in, not complete yet
        first = current - p.qos_chronic_windows
        if first < 0:
            return {}
        # a provider registered after the first window began is not judged on it (SPEC §9: all after registration)
        due = [
            pid for pid in tx.active_provider_ids(genesis + first * window) if self._qos_evaluated.get(pid) != current
        ]
        if not due:
            return {}
        interval = p.heartbeat_interval_s
        live = tx.heartbeat_slots_of(
            due, (genesis + first * window) // interval, (genesis + current * window - 1) // interval
        )
        for pid in due:
            self._qos_chronic(tx, pid, live[pid], first, current, genesis, now, height)
        return dict.fromkeys(due, current)

    def _qos_chronic(
        self, tx: Tx, pid: bytes, live: Sequence[int], first: int, current: int, genesis: int, now: int, height: int
    ) -> bool:
        """QOS_CHRONIC (SPEC §9): availability below the minimum in the complete windows `first` .. `current` − 1
        aligned to genesis, all after registration (`_qos_chronic_pass` picks the providers, the windows, and reads
        `live`, their live slots in those windows, ascending). Slashed at most once per window that ends the run."""
        p, interval, window = self.params, self.params.heartbeat_interval_s, self.params.qos_window_s
        values: list[int] = []
        slots: list[int] = []
        for index in range(first, current):
            lo, hi = (genesis + index * window) // interval, (genesis + (index + 1) * window - 1) // interval
            in_window = live[bisect_left(live, lo) : bisect_right(live, hi)]
            slots.extend(in_window)
            values.append(len(in_window) * 10_000 // (hi - lo + 1))
        if not qos_chronic(values, p):
            return False
        provider = _require_provider(tx, pid)
        subject = tagged_hash(QOS_WINDOW_TAG, provider.provider_id, current - 1)
        evidence = slash_evidence(
            reason=SlashReason.QOS_CHRONIC,
            task_id=bytes(32),
            subject_kind="window_id",
            subject_id=subject,
            record={"provider_id": provider.provider_id, "first_window": first, "availability_bps": values},
            height=height,
            heartbeat_root=merkle_root(slot.to_bytes(8, "big") for slot in slots),
        )
        return self._slash(tx, provider, SlashReason.QOS_CHRONIC, bytes(32), subject, evidence, now) > 0

    def runtime_budget_s(self, job: Job) -> int:
        """How long a lease may be kept alive by heartbeats: the job's own runtime cap (quantum: SPEC's largest
        max_runtime_ms) plus two TTLs of slack (a provider may queue its leases, or wait on a cancel).

        SPEC §7 has heartbeats extend every live lease; without this bound a holder that never answers (or
        answers with a drop, e.g. a replayed envelope) but keeps heartbeating would hold the job for ever and
        never be slashed."""
        runtime_ms = decode_request(job).get("max_runtime_ms")
        if not isinstance(runtime_ms, int) or isinstance(runtime_ms, bool):
            runtime_ms = self.params.max_runtime_ms
        return -(-runtime_ms // 1000) + 2 * self.params.lease_ttl_s

    def _leases_to_expire(self, tx: Tx, now: int, limit: int) -> list[tuple[LeaseRecord, int]]:
        """LIVE leases past their expiry, then LIVE leases past their runtime budget, with when each ended."""
        out: list[tuple[LeaseRecord, int]] = []
        seen: set[bytes] = set()
        for lease in tx.expired_leases(now, limit):
            job = tx.get_job(lease.task_id)
            if job is not None and job.status is JobStatus.LEASED and tx.get_provider(lease.provider_id) is not None:
                out.append((lease, lease.expires_at))
                seen.add(lease.lease_id)
        # a runtime budget is at least two TTLs: only leases granted that long ago can be overdue
        for lease in tx.live_leases_granted_by(now - 2 * self.params.lease_ttl_s, limit):
            if lease.lease_id in seen:
                continue
            job = tx.get_job(lease.task_id)
            if job is None or job.status is not JobStatus.LEASED:
                continue
            overdue_at = lease.granted_at + self.runtime_budget_s(job)
            if now >= overdue_at:
                out.append((lease, overdue_at))
        return out

    # -- payouts (SPEC §11) --------------------------------------------------------------------------------
    def claim_payout(self, pid: bytes, nonce: int) -> Claim:
        """Withdraw the provider's whole balance; idempotent on claim_id = H("aicf/claim/v1", provider, nonce).
        A new claim of an empty balance raises StakeError and stores nothing. A BANNED provider may still claim
        what its released stake and earnings left in its account."""
        if isinstance(nonce, bool) or not 0 <= nonce < MAX_AMOUNT:
            raise StakeError(f"claim nonce must be >= 0 and < 2^63, got {nonce}")
        cid = claim_id(pid, nonce)
        now = self.clock.now()
        with self.store.transaction() as tx:
            _require_provider(tx, pid)
            first = tx.get_claim(cid)
            if first is not None:
                return first
            account = provider_account(pid)
            amount = tx.balances([account])[account]
            if amount <= 0:  # issue 15: an empty claim would only add a record per call
                raise StakeError(f"nothing to claim: {account} holds 0 µANM (no claim was made)")
            claim = Claim(claim_id=cid, provider_id=pid, amount=MicroAnm(amount), time=now)
            tx.insert_claim(claim)
            tx.post(
                [Posting(debit=account, credit=EXTERNAL, amount=MicroAnm(amount), ref_kind="claim", ref=cid)],
                None,
                now,
            )
            tx.commit()
        return claim

    # -- shared steps --------------------------------------------------------------------------------------
    def _end_lease(self, tx: Tx, lease: LeaseRecord, how: LeaseEnd, now: int) -> None:
        job = tx.get_job(lease.task_id)
        if job is None:
            raise LeaseNotFoundError(lease.lease_id, "has no job")
        self._end_attempt(tx, job, lease, how, now)

    def _end_attempt(self, tx: Tx, job: Job, lease: LeaseRecord, how: LeaseEnd, ended_at: int) -> None:
        """The lease ends without an accepted proof: requeue with backoff, or FAILED/REJECTED with a refund;
        a cancel or deadline that arrived meanwhile takes effect now (LEASED → QUEUED → CANCELLED)."""
        outcome = end_attempt(_core_lease(lease), how, ended_at, self.params)
        # Every end closes the lease, a rejected proof's included: a lease left LIVE would count against its
        # holder's max_leases, be extended by heartbeats, and accept a second proof after the task moved on.
        tx.end_lease(lease.lease_id, lease_end_status(how), ended_at)
        check_move(job.task_id, job.status, outcome.status)
        if not tx.move_job(job.task_id, job.status, outcome.status, f"lease {how.value.lower()}", None, ended_at):
            raise AicfError(f"task 0x{job.task_id.hex()} moved while its lease ended")
        tx.set_job_schedule(job.task_id, outcome.attempts_used, outcome.not_before)
        if outcome.status in (JobStatus.FAILED, JobStatus.REJECTED):
            refund_escrow(tx, job, outcome.status.value.lower(), None, ended_at)
            return
        final = tx.get_meta("final_height")
        past_deadline = final is not None and job.deadline_height <= final
        if job.cancel_requested or past_deadline:
            check_move(job.task_id, JobStatus.QUEUED, JobStatus.CANCELLED)
            tx.move_job(job.task_id, JobStatus.QUEUED, JobStatus.CANCELLED, "cancelled after lease", None, ended_at)
            refund_escrow(tx, job, "refund", None, ended_at)

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
        """Slash at most once per lease or proof; jail or ban; revoke the provider's live leases."""
        amount = slash_amount(provider.bonded, provider.unbonding, reason, self.params)
        ref = evidence_ref(evidence)
        until = jail_until(reason, now, self.params)
        record = SlashRecord(
            evidence_hash=ref,
            provider_id=provider.provider_id,
            reason=reason.value,
            subject=subject,
            task_id=task_id,
            amount=amount.total,
            evidence=canonical_cbor(dict(evidence)),
            time=now,
            jailed_until=until,
        )
        if not tx.insert_slash(record):
            return 0
        if amount.total > 0:
            tx.post(
                [
                    Posting(
                        debit=stake_account(provider.provider_id),
                        credit=FUND,
                        amount=MicroAnm(amount.total),
                        ref_kind="slash",
                        ref=ref,
                    )
                ],
                None,
                now,
            )
        times = [s.time for s in tx.slashes_of(provider.provider_id)]
        banned = until is None or is_banned(times, now, self.params)
        to = ProviderStatus.BANNED if banned else ProviderStatus.JAILED
        updated = replace(
            provider,
            bonded=provider.bonded - amount.from_bonded,
            unbonding=provider.unbonding - amount.from_unbonding,
            jailed_until=0 if banned else until,
            updated_at=now,
        )
        if provider.status is not to and provider.status is not ProviderStatus.BANNED:
            updated = replace(updated, status=check_provider_move(provider.provider_id, provider.status, to))
            tx.record_provider_move(provider.provider_id, provider.status, to, f"slashed: {reason.value}", now)
            if to is ProviderStatus.BANNED and updated.bonded > 0:  # issue 15: what is left unbonds, still
                # slashable for unbonding_s; the sweep then releases it to provider:<id>, where a claim takes it
                updated = replace(updated, bonded=0, unbonding=updated.unbonding + updated.bonded,
                                  unbonding_until=now + self.params.unbonding_s)  # fmt: skip
        elif provider.status is ProviderStatus.JAILED and until is not None:
            updated = replace(updated, jailed_until=max(until, provider.jailed_until or 0))
        _update_provider(tx, updated, provider.status)
        for lease in tx.live_leases_of(provider.provider_id):
            job = tx.get_job(lease.task_id)
            if job is not None and job.status is JobStatus.LEASED:
                self._end_attempt(tx, job, lease, LeaseEnd.REVOKED, now)
        _event(
            tx,
            "providerSlashed",
            {
                "provider_id": provider.provider_id,
                "reason": reason.value,
                "amount": amount.total,
                "task_id": task_id,
                "evidence_hash": ref,
                "status": updated.status.value,
            },
            now,
        )
        log.warning("provider 0x%s slashed %d µANM for %s", provider.provider_id.hex()[:12], amount.total, reason)
        return amount.total


_PASS_LONG_REFUSALS = frozenset({Exclusion.HEARTBEAT_STALE, Exclusion.AVAILABILITY_LOW})
_MAX_POOLS = 4096  # pools kept per registry version (retries with their own exclusions each add one)


@dataclass(frozen=True, slots=True, kw_only=True)
class _RegistryView:
    """What matching reads of the registry, valid while the store's registry version stays `version`."""

    version: int
    profiles: tuple[ProviderProfile, ...]
    slots: dict[bytes, int]  # the matchable providers' own lease limits
    pools: dict[tuple[object, ...], CandidatePool] = field(default_factory=dict)


class _Pass:
    """One matcher pass's transaction and the state its decisions share."""

    def __init__(
        self,
        *,
        tx: Tx,
        registry: _RegistryView,
        live_counts: dict[bytes, int],
        live_state: Callable[[Provider], LiveState],
        epoch: int,
        now: int,
        leases: dict[bytes, list[LeaseRecord]],
    ) -> None:
        self.tx, self.registry, self.live_counts, self.epoch, self.now = tx, registry, live_counts, epoch, now
        self.leases = leases  # the pass's jobs' leases, read at once (the pass holds those job rows)
        self.granted_to: set[bytes] = set()  # providers whose bucket this pass spent: written before the commit
        self.providers: dict[bytes, Provider] = {}  # current rows of the providers drawn so far
        self.live = LiveStates(lambda pid: live_state(self.provider(pid)))
        self.pools_written: set[bytes] = set()
        self.events: list[tuple[str, Mapping[str, object]]] = []  # appended just before the pass commits
        self.decisions: list[DecisionRecord] = []  # every decision of the pass, written together before the commit
        self._beacons: dict[int, bytes] = {}

    def provider(self, pid: bytes) -> Provider:
        """The drawn provider's current row, held for the rest of the pass, with its live lease count re-read
        under that hold (another replica may have leased to it since the pass began)."""
        found = self.providers.get(pid)
        if found is None:
            found = self.tx.lock_provider(pid)
            if found is None:
                raise _ProviderBusy(pid)
            self.providers[pid] = found
            self.live_counts[pid] = len(self.tx.live_leases_of(pid))
        return found

    def beacon(self, height: int) -> bytes:
        """The beacon of the block at `height` (SPEC §6: the block that made the job QUEUED)."""
        if height not in self._beacons:
            block = self.tx.block_at(height)
            self._beacons[height] = block.beacon if block is not None else bytes(32)
        return self._beacons[height]


class _ProviderBusy(Exception):  # noqa: N818  (control flow inside a pass, never leaves `match`)
    """A drawn provider's row is held by another replica's transaction: the job waits for the next pass."""

    def __init__(self, pid: bytes) -> None:
        super().__init__(f"provider 0x{pid.hex()} is held by another transaction")


class LiveStates(Mapping[bytes, LiveState]):
    """Providers' live states for one matcher pass, computed only for the providers a draw actually picks
    (each costs a heartbeat-window query) and kept for the rest of the pass."""

    def __init__(self, compute: Callable[[bytes], LiveState]) -> None:
        self._compute = compute
        self._states: dict[bytes, LiveState] = {}

    def __getitem__(self, pid: bytes) -> LiveState:
        if pid not in self._states:
            self._states[pid] = self._compute(pid)
        return self._states[pid]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def update(self, pid: bytes, state: LiveState) -> None:
        self._states[pid] = state


class ChainWriter(Protocol):
    """Where accepted proofs go to be included on chain (the devnet's mempool, or a real chain's client)."""

    def include_proof(self, body: Mapping[str, object]) -> None: ...
    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        """Send a transaction from `sender` (the coordinator's trap callers; on a devnet, no signature)."""


def _batch_size(batch: QuantumBatch) -> int:
    return sum(len(c) for c in batch.circuits) + 64 * len(batch.circuits)


def _check_names(field: str, names: Sequence[str], most: int) -> None:
    """Issue 15: every text list from outside has a count cap and names of 1..MAX_NAME_CHARS printable characters."""
    if len(names) > most:
        raise InvalidRegistrationError(field, f"at most {most} names, got {len(names)}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
            shown = repr(name[:40]) + ("…" if isinstance(name, str) and len(name) > 40 else "")
            raise InvalidRegistrationError(
                f"{field}[{i}]", f"a name is 1..{MAX_NAME_CHARS} printable characters, got {shown}"
            )


def _check_caps(caps: Capabilities, params: Params) -> None:
    for field_name, names, most in (
        ("kinds", caps.kinds, len(KINDS)),
        ("models", caps.models, MAX_MODELS),
        ("devices", caps.devices, MAX_DEVICES),
        ("regions", caps.regions, params.max_regions),
        ("tee_classes", caps.tee_classes, len(TEE_CLASSES)),
    ):
        _check_names(field_name, names, most)
    if not caps.kinds or any(k not in KINDS for k in caps.kinds):
        raise InvalidRegistrationError("kinds", f"expected a non-empty subset of {KINDS}, got {list(caps.kinds)}")
    unknown = [m for m in caps.models if params.weight_milli(m) is None]
    if unknown:
        raise InvalidRegistrationError("models", f"unknown model {unknown[0]!r}; known: {sorted(params.model_weights)}")
    if "ai" in caps.kinds and not caps.models:
        raise InvalidRegistrationError("models", "an AI provider must serve at least one model")
    bad_tee = [t for t in caps.tee_classes if t not in TEE_CLASSES]
    if bad_tee:
        raise InvalidRegistrationError("tee_classes", f"unknown TEE class {bad_tee[0]!r}; known: {TEE_CLASSES}")
    if isinstance(caps.max_leases, bool) or not 1 <= caps.max_leases <= params.max_leases:
        raise InvalidRegistrationError("max_leases", f"must be 1..{params.max_leases}, got {caps.max_leases}")
    if len(caps.regions) > params.max_regions or any(not r or len(r) > 64 for r in caps.regions):
        raise InvalidRegistrationError("regions", f"at most {params.max_regions} names of 1..64 characters")
    cap = protocol_unit_rate(params)  # SPEC §6's figures cap the declared ones: a provider can only be stricter
    for name, value, most in (
        ("unit_burst_mu", caps.unit_burst_mu, cap.burst_mu),
        ("unit_rate_mu_per_day", caps.unit_rate_mu_per_day, cap.rate_mu_per_day),
    ):
        if type(value) is not int or not 0 <= value <= most:
            raise InvalidRegistrationError(
                name, f"must be an integer 0..{most} (0: the protocol's {most}), got {value!r}"
            )


def _profile(p: Provider) -> ProviderProfile:
    return ProviderProfile(
        provider_id=p.provider_id,
        active=p.status is ProviderStatus.ACTIVE,
        bonded_stake=p.bonded,
        kinds=frozenset(p.kinds),
        models=frozenset(p.models),
        regions=frozenset(p.regions),
        tee_classes=frozenset(p.tee_classes),
    )


def _core_lease(r: LeaseRecord) -> Lease:
    return Lease(
        lease_id=r.lease_id,
        task_id=r.task_id,
        provider_id=r.provider_id,
        attempt=r.attempt,
        granted_at=r.granted_at,
        expires_at=r.expires_at,
        status=r.status,
    )


class _Raced(Enum):
    """`_submit`'s answer when another replica moved the job between its read and its write."""

    RACED = "raced"


_RACED = _Raced.RACED


@dataclass(frozen=True, slots=True, kw_only=True)
class _Audit:
    """`_submit`'s answer for a sampled ordinary AI job whose re-execution is not known yet (nothing written)."""

    task_id: bytes
    model: str
    prompt: bytes
    max_tokens: int


def _outcome_of(record: ProofRecord) -> ProofOutcome:
    return ProofOutcome(
        proof_id=record.proof_id,
        accepted=record.verdict == "ACCEPT",
        code=record.verdict,
        message=record.message or ("accepted" if record.verdict == "ACCEPT" else record.verdict),
        units_mu=record.units_mu,
    )


def _require_provider(tx: Tx, pid: bytes) -> Provider:
    provider = tx.get_provider(pid)
    if provider is None:
        raise UnknownProviderError(pid)
    return provider


def _require_lease(tx: Tx, lid: bytes) -> LeaseRecord:
    lease = tx.get_lease(lid)
    if lease is None:
        raise LeaseNotFoundError(lid, "is unknown")
    return lease


def _update_provider(tx: Tx, provider: Provider, expected: ProviderStatus) -> None:
    if not tx.update_provider(provider, expected):
        raise AicfError(f"provider 0x{provider.provider_id.hex()} changed concurrently; retry")


def _heartbeat_root(tx: Tx, provider: Provider, now: int, params: Params) -> bytes:
    """The Merkle root of the provider's live heartbeat slots in its QoS window (MISSED_LEASE evidence)."""
    first, last = window_slots(now, provider.registered_at, params)
    return merkle_root(slot.to_bytes(8, "big") for slot in tx.heartbeat_slots(provider.provider_id, first, last))


def _measured_runtime(env: ProofEnvelope, body: BodyAccepted, observed_ms: int) -> BodyAccepted | Reject:
    """AI pay follows min(claimed runtime_ms, the ms observed from lease grant to proof receipt); a claim above
    the observed span plus RUNTIME_SLACK_MS is refused (docs/DECISIONS.md)."""
    qos = env.body.get("qos")
    claimed = _int(qos.get("runtime_ms")) if isinstance(qos, Mapping) else 0  # the verifier checked its shape
    refused = check_runtime_claim(claimed, observed_ms)
    if refused is not None:
        return refused
    return replace(body, runtime_ms=min(body.runtime_ms, observed_ms))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
