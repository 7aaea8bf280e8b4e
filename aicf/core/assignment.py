"""Stake-weighted beacon assignment with a full decision record (SPEC §6).

Static eligibility filters the registry as of the block that made the job QUEUED; every excluded provider
is recorded with its reason. The draw is `r_j = int(H("aicf/assign/v1", beacon, task_id, attempt[, j])) mod S`
over candidates sorted by provider_id; the winner is the first whose running stake total exceeds r. Live
checks on a drawn provider may refuse it (recorded with the reason) and the next r_j is drawn, up to
`max_draws` times. The decision is a pure function of its inputs, so anyone can recompute it.
"""

import hashlib
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate

from aicf.core.encoding import canonical_cbor, cbor_head, hash_int, tagged_hash
from aicf.core.errors import AssignmentError
from aicf.core.params import Params

ASSIGN_TAG = "aicf/assign/v1"
POOL_TAG = "aicf/pool/v1"


class Exclusion(StrEnum):
    # static: from the registry as of the block that made the job QUEUED
    KIND_UNSUPPORTED = "KIND_UNSUPPORTED"
    MODEL_UNSUPPORTED = "MODEL_UNSUPPORTED"
    NOT_ACTIVE = "NOT_ACTIVE"
    STAKE_BELOW_MIN = "STAKE_BELOW_MIN"
    REGION_MISMATCH = "REGION_MISMATCH"
    NOT_IN_JOB_ALLOWLIST = "NOT_IN_JOB_ALLOWLIST"
    NOT_IN_OPERATOR_ALLOWLIST = "NOT_IN_OPERATOR_ALLOWLIST"
    NO_TEE = "NO_TEE"
    RELEASED_TASK = "RELEASED_TASK"
    # live: checked on the drawn provider at assignment time
    HEARTBEAT_STALE = "HEARTBEAT_STALE"
    AVAILABILITY_LOW = "AVAILABILITY_LOW"
    MAX_LEASES = "MAX_LEASES"
    RATE_LIMITED = "RATE_LIMITED"
    ALREADY_TRIED = "ALREADY_TRIED"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderProfile:
    """What the registry says of a provider, as of one block."""

    provider_id: bytes
    active: bool
    bonded_stake: int
    kinds: frozenset[str]
    models: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    tee_classes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobNeeds:
    task_id: bytes
    kind: str
    model: str | None = None
    regions: tuple[str, ...] = ()
    allowlist: tuple[bytes, ...] = ()
    tee_required: bool = False
    max_units_mu: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    provider_id: bytes
    stake: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Excluded:
    provider_id: bytes
    reason: Exclusion


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitRate:
    """A provider's unit-rate token bucket: at most `burst_mu` tokens, refilled at `rate_mu_per_day`.

    SPEC §6's figures (`protocol_unit_rate`) are the cap: a provider may declare stricter limits at registration
    (`effective_unit_rate`), never looser ones.
    """

    burst_mu: int
    rate_mu_per_day: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveState:
    """A provider's live condition at assignment time, read by the caller from the store."""

    provider_id: bytes
    last_heartbeat_at: int | None
    availability_bps: int
    live_leases: int
    bucket_tokens_mu: int  # already refilled to `now` (see `refill_bucket`)
    unit_rate: UnitRate | None = None  # the provider's own bucket limits; None: SPEC's (`protocol_unit_rate`)


@dataclass(frozen=True, slots=True, kw_only=True)
class Draw:
    j: int
    r: int
    provider_id: bytes
    refused: Exclusion | None  # None: this draw won


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignmentDecision:
    task_id: bytes
    attempt: int
    beacon: bytes
    candidates: tuple[Candidate, ...]
    excluded: tuple[Excluded, ...]
    draws: tuple[Draw, ...]
    winner: bytes | None

    def to_map(self) -> dict[str, object]:
        """The whole decision record: what `expand_decision` rebuilds from the stored compact form."""
        return {**pool_map(self.candidates, self.excluded), **self.compact_map(None)}

    def compact_map(self, pool_id: bytes | None) -> dict[str, object]:
        """The stored form: the candidates and exclusions by reference to their pool (see `CandidatePool`).

        With `pool_id` None the reference is left out (the rest of `to_map`).
        """
        out: dict[str, object] = {
            "task_id": self.task_id,
            "attempt": self.attempt,
            "beacon": self.beacon,
            **({"pool": pool_id} if pool_id is not None else {}),
            "draws": [
                {
                    "j": d.j,
                    "r": d.r,
                    "provider_id": d.provider_id,
                    **({"refused": d.refused.value} if d.refused else {}),
                }
                for d in self.draws
            ],
        }
        if self.winner is not None:
            out["winner"] = self.winner
        return out


_STAKE_KEY = canonical_cbor("stake")
_PROVIDER_KEY = canonical_cbor("provider_id")
_REASON_KEY = canonical_cbor("reason")
_POOL_HEAD = b"\xa2" + canonical_cbor("excluded")  # canonical order: "excluded" sorts before "candidates"
_CANDIDATES_KEY = canonical_cbor("candidates")


def pool_record(candidates: Sequence[Candidate], excluded: Sequence[Excluded]) -> bytes:
    """canonical_cbor(pool_map(candidates, excluded)), written out directly (a registry of thousands is encoded
    after each change to it; a property test pins the two together)."""
    out = [_POOL_HEAD, cbor_head(4, len(excluded))]
    for e in excluded:
        out += (b"\xa2", _REASON_KEY, canonical_cbor(e.reason.value), _PROVIDER_KEY, canonical_cbor(e.provider_id))
    out += (_CANDIDATES_KEY, cbor_head(4, len(candidates)))
    for c in candidates:
        out += (b"\xa2", _STAKE_KEY, canonical_cbor(c.stake), _PROVIDER_KEY, canonical_cbor(c.provider_id))
    return b"".join(out)


def pool_map(candidates: Iterable[Candidate], excluded: Iterable[Excluded]) -> dict[str, object]:
    return {
        "candidates": [{"provider_id": c.provider_id, "stake": c.stake} for c in candidates],
        "excluded": [{"provider_id": e.provider_id, "reason": e.reason.value} for e in excluded],
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidatePool:
    """The static-eligibility outcome shared by every job with the same needs against one registry version.

    Stored once, content-addressed: `pool_id = H("aicf/pool/v1", record)` where `record` is the canonical CBOR of
    `{"candidates": [...], "excluded": [...]}`; a decision stores the id instead of repeating the lists (SPEC §6
    stores every decision in full: `expand_decision` rebuilds it, and anyone can check the id against the record).
    """

    candidates: tuple[Candidate, ...]  # sorted by provider_id
    excluded: tuple[Excluded, ...]
    running: tuple[int, ...]  # running stake totals over `candidates`
    ids: frozenset[bytes]
    record: bytes
    pool_id: bytes


def make_pool(candidates: Iterable[Candidate], excluded: Iterable[Excluded]) -> CandidatePool:
    """Raises AssignmentError if a provider appears twice among the candidates."""
    ordered, running = _prepare(candidates)
    out = tuple(sorted(excluded, key=lambda e: e.provider_id))
    record = pool_record(ordered, out)
    return CandidatePool(
        candidates=tuple(ordered),
        excluded=out,
        running=tuple(running),
        ids=frozenset(c.provider_id for c in ordered),
        record=record,
        pool_id=tagged_hash(POOL_TAG, record),
    )


def expand_decision(compact: Mapping[str, object], pool: Mapping[str, object]) -> dict[str, object]:
    """The whole decision record (`AssignmentDecision.to_map`, plus the pool id) from its stored form."""
    return {**pool, **compact}


def static_eligibility(
    job: JobNeeds,
    providers: Iterable[ProviderProfile],
    params: Params,
    operator_allowlist: Collection[bytes] = (),
    released_by: Collection[bytes] = (),
) -> tuple[list[Candidate], list[Excluded]]:
    """Split the registry into candidates (sorted by provider_id) and exclusions, each with its reason."""
    candidates: list[Candidate] = []
    excluded: list[Excluded] = []
    for p in providers:
        reason = _static_reason(job, p, params, operator_allowlist, released_by)
        if reason is None:
            candidates.append(Candidate(provider_id=p.provider_id, stake=p.bonded_stake))
        else:
            excluded.append(Excluded(provider_id=p.provider_id, reason=reason))
    candidates.sort(key=lambda c: c.provider_id)
    excluded.sort(key=lambda e: e.provider_id)
    return candidates, excluded


def _static_reason(
    job: JobNeeds,
    p: ProviderProfile,
    params: Params,
    operator_allowlist: Collection[bytes],
    released_by: Collection[bytes],
) -> Exclusion | None:
    if job.kind not in p.kinds:
        return Exclusion.KIND_UNSUPPORTED
    if job.model is not None and job.model not in p.models:
        return Exclusion.MODEL_UNSUPPORTED
    if not p.active:
        return Exclusion.NOT_ACTIVE
    if p.bonded_stake < max(params.min_stake, 1):
        return Exclusion.STAKE_BELOW_MIN
    if job.regions and not (p.regions & set(job.regions)):
        return Exclusion.REGION_MISMATCH
    if job.allowlist and p.provider_id not in job.allowlist:
        return Exclusion.NOT_IN_JOB_ALLOWLIST
    if operator_allowlist and p.provider_id not in operator_allowlist:
        return Exclusion.NOT_IN_OPERATOR_ALLOWLIST
    if job.tee_required and not p.tee_classes:
        return Exclusion.NO_TEE
    if p.provider_id in released_by:
        return Exclusion.RELEASED_TASK
    return None


def draw_r(beacon: bytes, task_id: bytes, attempt: int, j: int, total_stake: int) -> int:
    """r_0 = int(H(tag, beacon, task_id, attempt)) mod S; r_j = int(H(tag, beacon, task_id, attempt, j)) mod S."""
    return _DrawHash(beacon, task_id, attempt).r(j, total_stake)


_ASSIGN_HEAD = canonical_cbor(ASSIGN_TAG)


class _DrawHash:
    """The draws of one (beacon, task, attempt): the array's common items are encoded once, not per draw.

    canonical_cbor([tag, beacon, task, attempt]) is the array head 0x84 followed by each item's encoding, and
    with j appended the head is 0x85: so both are the shared item bytes behind their own head.
    """

    __slots__ = ("_items",)

    def __init__(self, beacon: bytes, task_id: bytes, attempt: int) -> None:
        self._items = _ASSIGN_HEAD + canonical_cbor(beacon) + canonical_cbor(task_id) + canonical_cbor(attempt)

    def r(self, j: int, total_stake: int) -> int:
        if j == 0:
            h = hashlib.sha3_256(b"\x84" + self._items).digest()
        else:
            h = hashlib.sha3_256(b"\x85" + self._items + canonical_cbor(j)).digest()
        return hash_int(h) % total_stake


def _prepare(candidates: Iterable[Candidate]) -> tuple[list[Candidate], list[int]]:
    ordered = sorted(candidates, key=lambda c: c.provider_id)
    if len({c.provider_id for c in ordered}) != len(ordered):
        raise AssignmentError(b"", "a provider appears twice among the candidates")
    return ordered, list(accumulate(c.stake for c in ordered))


def winner_of(r: int, ordered: Sequence[Candidate], running: Sequence[int]) -> Candidate:
    """The first candidate whose running stake total is > r."""
    return ordered[bisect_right(running, r)]


def draw_winner(beacon: bytes, task_id: bytes, attempt: int, candidates: Iterable[Candidate]) -> bytes:
    """The r_0 winner among `candidates` in any order (what the `assignment` vectors check)."""
    ordered, running = _prepare(candidates)
    if not ordered or running[-1] <= 0:
        raise AssignmentError(task_id, "no candidate with stake")
    return winner_of(draw_r(beacon, task_id, attempt, 0, running[-1]), ordered, running).provider_id


def bucket_burst_mu(params: Params) -> int:
    """SPEC §6: burst 10 × Γ/1000 mu."""
    return params.bucket_burst_factor * params.gamma_units // 1000


def bucket_rate_mu_per_day(params: Params) -> int:
    """SPEC §6: refill Γ × 1000 mu per day (Γ × 1000 / 86400 per second)."""
    return params.gamma_units * 1000


def protocol_unit_rate(params: Params) -> UnitRate:
    """SPEC §6's bucket: what a provider that declared no limits gets, and the cap on declared ones."""
    return UnitRate(burst_mu=bucket_burst_mu(params), rate_mu_per_day=bucket_rate_mu_per_day(params))


def effective_unit_rate(declared_burst_mu: int, declared_rate_mu_per_day: int, params: Params) -> UnitRate:
    """The limits a provider's bucket runs with: each declared figure, or SPEC's where it declared 0.

    A declared figure above SPEC's (registration refuses one, but Γ may have been lowered since) counts as SPEC's:
    the protocol's figures stay the cap.
    """
    burst, rate = bucket_burst_mu(params), bucket_rate_mu_per_day(params)
    return UnitRate(
        burst_mu=min(declared_burst_mu, burst) if declared_burst_mu > 0 else burst,
        rate_mu_per_day=min(declared_rate_mu_per_day, rate) if declared_rate_mu_per_day > 0 else rate,
    )


def refill_bucket(tokens_mu: int, last_refill_at: int, now: int, params: Params, rate: UnitRate | None = None) -> int:
    """Token bucket level at `now`: refills `rate.rate_mu_per_day`, capped at `rate.burst_mu` (with `rate` None,
    SPEC's Γ × 1000 mu per day capped at 10 × Γ/1000 mu).

    The level may be negative: a lease bigger than the burst is granted from a full bucket and leaves the
    bucket in debt (see `needed_tokens`), which the refill pays back before the next lease.
    """
    limits = protocol_unit_rate(params) if rate is None else rate
    elapsed = max(0, now - last_refill_at)
    return min(limits.burst_mu, tokens_mu + elapsed * limits.rate_mu_per_day // 86400)


def needed_tokens(max_units_mu: int, params: Params, rate: UnitRate | None = None) -> int:
    """What the bucket must hold to grant a lease of `max_units_mu`: the job's size, at most a full bucket
    (the provider's own burst, or SPEC's with `rate` None).

    SPEC §6's burst (10 × Γ/1000 mu, 10 units by default) is smaller than many single jobs (8 s of llama3-8b),
    so requiring the whole size would refuse such jobs forever. A full bucket admits one oversized job and the
    debt it leaves keeps the sustained rate at the refill rate: the limit stays a rate limit, not a size cap.
    """
    return min(max_units_mu, (protocol_unit_rate(params) if rate is None else rate).burst_mu)


def live_refusal(
    live: LiveState | None, job: JobNeeds, now: int, params: Params, tried: bool, untried_left: bool
) -> Exclusion | None:
    """Why a drawn provider cannot take the job now, or None if it can (SPEC §6 live checks, in order)."""
    if live is None or live.last_heartbeat_at is None:
        return Exclusion.HEARTBEAT_STALE
    if now - live.last_heartbeat_at > params.heartbeat_grace_intervals * params.heartbeat_interval_s:
        return Exclusion.HEARTBEAT_STALE
    if live.availability_bps < params.min_availability_bps:
        return Exclusion.AVAILABILITY_LOW
    if live.live_leases >= params.max_leases:
        return Exclusion.MAX_LEASES
    if live.bucket_tokens_mu < needed_tokens(job.max_units_mu, params, live.unit_rate):
        return Exclusion.RATE_LIMITED
    if tried and untried_left:
        return Exclusion.ALREADY_TRIED
    return None


def assign(
    job: JobNeeds,
    *,
    attempt: int,
    beacon: bytes,
    candidates: Sequence[Candidate],
    excluded: Sequence[Excluded],
    live: Mapping[bytes, LiveState],
    tried: Collection[bytes],
    now: int,
    params: Params,
) -> AssignmentDecision:
    """Draw up to `max_draws` times; the first drawn provider that passes the live checks wins.

    With no candidate (or no stake) the decision has no draws and no winner: the job waits for the next pass.
    """
    pool = make_pool(candidates, excluded)
    return assign_from_pool(
        job, attempt=attempt, beacon=beacon, pool=pool, live=live, tried=tried, now=now, params=params
    )


def assign_from_pool(
    job: JobNeeds,
    *,
    attempt: int,
    beacon: bytes,
    pool: CandidatePool,
    live: Mapping[bytes, LiveState],
    tried: Collection[bytes],
    now: int,
    params: Params,
) -> AssignmentDecision:
    """`assign` over a pool already built (the matcher shares one pool between the jobs with the same needs)."""
    ordered, running = pool.candidates, pool.running
    draws: list[Draw] = []
    winner: bytes | None = None
    total = running[-1] if running else 0
    if total > 0:
        untried_left = any(pid not in tried for pid in pool.ids) if tried else bool(ordered)
        hashes = _DrawHash(beacon, job.task_id, attempt)
        for j in range(params.max_draws):
            r = hashes.r(j, total)
            pick = winner_of(r, ordered, running).provider_id
            was_tried = pick in tried
            refused = live_refusal(live.get(pick), job, now, params, was_tried, untried_left)
            draws.append(Draw(j=j, r=r, provider_id=pick, refused=refused))
            if refused is None:
                winner = pick
                break
    return AssignmentDecision(
        task_id=job.task_id,
        attempt=attempt,
        beacon=beacon,
        candidates=ordered,
        excluded=pool.excluded,
        draws=tuple(draws),
        winner=winner,
    )
