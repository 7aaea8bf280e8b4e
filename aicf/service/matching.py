"""Matching (SPEC §5, §6): one matcher pass leases ready jobs in priority order to stake-weighted beacon draws."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from aicf.core.assignment import (
    AssignmentDecision,
    CandidatePool,
    Exclusion,
    JobNeeds,
    LiveState,
    ProviderProfile,
    assign_from_pool,
    make_pool,
    static_eligibility,
)
from aicf.core.chain import Job
from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.ids import lease_id
from aicf.core.jobs import JobStatus, check_move
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import TREASURY
from aicf.core.pricing import budget_throttled
from aicf.core.records import DecisionRecord, LeaseRecord, Provider
from aicf.core.registry import ProviderStatus
from aicf.service.context import Context, RegistryView, Work, unit_of_work
from aicf.service.live_states import LiveStates, live_state
from aicf.service.steps import update_provider
from aicf.store.interface import Tx

log = logging.getLogger("aicf.coordinator")

GRANT_TAG = "aicf/grant/v1"
_PASS_LONG_REFUSALS = frozenset({Exclusion.HEARTBEAT_STALE, Exclusion.AVAILABILITY_LOW})
_MAX_POOLS = 4096  # pools kept per registry version (retries with their own exclusions each add one)


def match(ctx: Context, limit: int = 500) -> list[AssignmentDecision]:
    """One matcher pass: lease ready jobs in priority order to stake-weighted beacon draws."""
    params = ctx.params
    decisions: list[AssignmentDecision] = []
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        head = tx.head_block()
        price = tx.get_meta("price_bps") or params.price_initial_bps
        treasury = tx.balances([TREASURY])[TREASURY]
        if head is None or budget_throttled(treasury, price, params):
            if head is not None:
                log.warning("budget throttle: treasury %d below a tenth of an epoch's outlay", treasury)
            return []
        jobs = tx.claim_ready_jobs(now, limit)
        if not jobs:
            return []
        registry = registry_view(ctx, tx)
        live_counts = tx.live_lease_counts()
        pass_ = _Pass(
            w=w,
            registry=registry,
            live_counts=live_counts,
            live_state=lambda provider: live_state(w, provider, live_counts),
            epoch=head.epoch,
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
                decision = _decide(pass_, job)
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
            update_provider(tx, winner, winner.status)
        tx.put_decisions(pass_.decisions)
        # last, so the gapless event counter (a row every writer takes) is held only for the commit
        tx.append_events([(topic, canonical_cbor(dict(data))) for topic, data in pass_.events], now)
        w.commit()
    return decisions


def registry_view(ctx: Context, tx: Tx) -> RegistryView:
    """The registry's profiles, reloaded only when the store's registry version moved since the last pass."""
    version = tx.registry_version()
    view = ctx.caches.registry
    if view is None or view.version != version:
        providers = tx.providers()
        view = RegistryView(
            version=version,
            profiles=tuple(_profile(p) for p in providers),
            slots={
                p.provider_id: p.max_leases
                for p in providers
                if p.status is ProviderStatus.ACTIVE and p.bonded >= ctx.params.min_stake
            },
        )
        ctx.caches.registry = view
    return view


def _pool(ctx: Context, registry: RegistryView, needs: JobNeeds, released: frozenset[bytes]) -> CandidatePool:
    """Static eligibility for `needs`, shared by every job with the same needs against this registry version."""
    key = (needs.kind, needs.model, needs.regions, needs.allowlist, needs.tee_required, released)
    pool = registry.pools.get(key)
    if pool is None:
        candidates, excluded = static_eligibility(
            needs, registry.profiles, ctx.params, ctx.operator_allowlist, released
        )
        pool = make_pool(candidates, excluded)
        if len(registry.pools) >= _MAX_POOLS:
            registry.pools.clear()
        registry.pools[key] = pool
    return pool


def _decide(p: "_Pass", job: Job) -> AssignmentDecision:
    w = p.w
    tx, now, ctx, params = w.tx, w.now, w.ctx, w.params
    attempt = job.attempts
    leases = p.leases.get(job.task_id, [])
    released = {lease.provider_id for lease in leases if lease.status is LeaseStatus.RELEASED}
    # A lease id is H(task, provider, attempt). A provider whose lease at this attempt was revoked by a jail may
    # take the attempt again once its jail is over: the store grants it on the revoked lease's row (same id, new
    # grant). Excluding it instead left a job whose only eligible provider it was QUEUED until its deadline (the
    # chaos kill loop, issue 15). Any other lease at this attempt means the attempt is over: excluded.
    released |= {x.provider_id for x in leases if x.attempt == attempt and x.status is not LeaseStatus.REVOKED}
    needs = JobNeeds(
        task_id=job.task_id,
        kind=job.kind,
        model=job.model or None,
        regions=job.regions,
        allowlist=job.allowlist,
        tee_required=job.tee_required,
        max_units_mu=job.max_units_mu,
    )
    pool = _pool(ctx, p.registry, needs, frozenset(released))
    decision = assign_from_pool(
        needs,
        attempt=attempt,
        beacon=p.beacon(job.enqueue_height + params.finality_depth),
        pool=pool,
        live=p.live,
        tried=frozenset(lease.provider_id for lease in leases),
        now=now,
        params=params,
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
        expires_at=now + params.lease_ttl_s,
        status=LeaseStatus.LIVE,
        epoch=p.epoch,
    )
    lease = replace(lease, grant_sig=ctx.operator_key.sign(tagged_hash(GRANT_TAG, lease.grant_map())))
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


class _Pass:
    """One matcher pass's unit of work and the state its decisions share."""

    def __init__(
        self,
        *,
        w: Work,
        registry: RegistryView,
        live_counts: dict[bytes, int],
        live_state: Callable[[Provider], LiveState],
        epoch: int,
        leases: dict[bytes, list[LeaseRecord]],
    ) -> None:
        self.w, self.registry, self.live_counts, self.epoch = w, registry, live_counts, epoch
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
            found = self.w.tx.lock_provider(pid)
            if found is None:
                raise _ProviderBusy(pid)
            self.providers[pid] = found
            self.live_counts[pid] = len(self.w.tx.live_leases_of(pid))
        return found

    def beacon(self, height: int) -> bytes:
        """The beacon of the block at `height` (SPEC §6: the block that made the job QUEUED)."""
        if height not in self._beacons:
            block = self.w.tx.block_at(height)
            self._beacons[height] = block.beacon if block is not None else bytes(32)
        return self._beacons[height]


class _ProviderBusy(Exception):  # noqa: N818  (control flow inside a pass, never leaves `match`)
    """A drawn provider's row is held by another replica's transaction: the job waits for the next pass."""

    def __init__(self, pid: bytes) -> None:
        super().__init__(f"provider 0x{pid.hex()} is held by another transaction")


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
