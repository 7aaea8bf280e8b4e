"""Stake-weighted beacon assignment (SPEC §6), checked against a naive reimplementation and for fairness.

The reference draw below is SPEC's text taken literally: sort by provider_id, r = int(H(...)) mod S,
walk the running stake total and take the first candidate whose total is > r.
"""

import hashlib
import random
from collections import Counter
from dataclasses import replace

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.assignment import (
    POOL_TAG,
    AssignmentDecision,
    Candidate,
    Excluded,
    Exclusion,
    JobNeeds,
    LiveState,
    ProviderProfile,
    UnitRate,
    assign,
    assign_from_pool,
    bucket_burst_mu,
    draw_r,
    draw_winner,
    effective_unit_rate,
    expand_decision,
    live_refusal,
    make_pool,
    needed_tokens,
    pool_map,
    protocol_unit_rate,
    refill_bucket,
    static_eligibility,
)
from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.errors import AssignmentError
from aicf.core.params import Params, params_from_mapping

P = Params.default()
NOW = 1_000_000


def ref_r(beacon: bytes, task_id: bytes, attempt: int, j: int, total: int) -> int:
    fields: list[object] = ["aicf/assign/v1", beacon, task_id, attempt] + ([j] if j else [])
    return int.from_bytes(hashlib.sha3_256(cbor2.dumps(fields, canonical=True)).digest(), "big") % total


def ref_winner(r: int, candidates: list[Candidate]) -> bytes:
    running = 0
    for c in sorted(candidates, key=lambda c: c.provider_id):
        running += c.stake
        if running > r:
            return c.provider_id
    raise AssertionError("r is below the total stake, so some candidate must win")


B32 = st.binary(min_size=32, max_size=32)
CANDIDATES = st.lists(
    st.builds(Candidate, provider_id=B32, stake=st.integers(0, 10**6)),
    min_size=1,
    max_size=12,
    unique_by=lambda c: c.provider_id,
).filter(lambda cs: sum(c.stake for c in cs) > 0)


@given(B32, B32, st.integers(0, 2), CANDIDATES)
def test_winner_is_the_first_candidate_whose_running_stake_exceeds_r(
    beacon: bytes, task_id: bytes, attempt: int, candidates: list[Candidate]
) -> None:
    total = sum(c.stake for c in candidates)
    r = ref_r(beacon, task_id, attempt, 0, total)
    assert draw_r(beacon, task_id, attempt, 0, total) == r
    assert draw_winner(beacon, task_id, attempt, candidates) == ref_winner(r, candidates)


@given(B32, B32, st.integers(0, 2), st.integers(1, 40), st.integers(1, 10**9))
def test_redraws_hash_the_draw_index_after_the_attempt(
    beacon: bytes, task_id: bytes, attempt: int, j: int, total: int
) -> None:
    assert draw_r(beacon, task_id, attempt, j, total) == ref_r(beacon, task_id, attempt, j, total)


@given(B32, B32, CANDIDATES, st.randoms(use_true_random=False))
def test_the_decision_is_independent_of_candidate_input_order(
    beacon: bytes, task_id: bytes, candidates: list[Candidate], rnd: object
) -> None:
    shuffled = list(candidates)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert draw_winner(beacon, task_id, 0, candidates) == draw_winner(beacon, task_id, 0, shuffled)
    live = {c.provider_id: healthy(c.provider_id) for c in candidates[::2]}
    a = decide(candidates, live, beacon=beacon, task_id=task_id)
    b = decide(shuffled, live, beacon=beacon, task_id=task_id)
    assert canonical_cbor(a.to_map()) == canonical_cbor(b.to_map())


def test_a_zero_stake_candidate_never_wins() -> None:
    candidates = [Candidate(provider_id=bytes([i]) * 32, stake=0 if i % 2 else 5) for i in range(6)]
    for n in range(300):
        task = hashlib.sha3_256(b"zero" + n.to_bytes(4, "big")).digest()
        assert draw_winner(b"\x01" * 32, task, 0, candidates)[0] % 2 == 0


def test_no_stake_at_all_raises_assignment_error() -> None:
    with pytest.raises(AssignmentError):
        draw_winner(b"b" * 32, b"t" * 32, 0, [Candidate(provider_id=b"p" * 32, stake=0)])
    with pytest.raises(AssignmentError):
        draw_winner(b"b" * 32, b"t" * 32, 0, [])


def test_a_provider_listed_twice_raises_assignment_error() -> None:
    twice = [Candidate(provider_id=b"p" * 32, stake=1), Candidate(provider_id=b"p" * 32, stake=2)]
    with pytest.raises(AssignmentError):
        draw_winner(b"b" * 32, b"t" * 32, 0, twice)


# ---- win rates match stake shares ----------------------------------------------------------------------

# 20,000 task ids derived deterministically: the outcome is fixed, so this test cannot flake. The bounds
# below are those a correct stake-weighted draw meets with probability > 1 - 10^-6 over the choice of
# seed set (chi-square with 6 degrees of freedom: P(χ² > 35.9) ≈ 3e-6; a per-provider deviation of
# 5 standard deviations has probability < 6e-7 each), so passing is evidence, not luck, and the check
# still has the power to catch a draw that ignores stake (see the last assertion).
FAIRNESS_N = 20_000
FAIRNESS_STAKES = [1, 2, 3, 4, 10, 30, 50]
CHI2_LIMIT_6DF = 35.9


def fairness_counts() -> tuple[list[Candidate], Counter[bytes]]:
    candidates = [
        Candidate(provider_id=hashlib.sha3_256(b"provider" + bytes([i])).digest(), stake=s)
        for i, s in enumerate(FAIRNESS_STAKES)
    ]
    beacon = hashlib.sha3_256(b"fairness beacon").digest()
    wins: Counter[bytes] = Counter()
    for n in range(FAIRNESS_N):
        task = hashlib.sha3_256(b"fairness task" + n.to_bytes(4, "big")).digest()
        wins[draw_winner(beacon, task, 0, candidates)] += 1
    return candidates, wins


def chi_square(observed: list[int], shares: list[float]) -> float:
    return sum((o - FAIRNESS_N * p) ** 2 / (FAIRNESS_N * p) for o, p in zip(observed, shares, strict=True))


def test_win_rates_match_stake_shares_over_a_fixed_seed_set() -> None:
    candidates, wins = fairness_counts()
    total = sum(FAIRNESS_STAKES)
    shares = [c.stake / total for c in candidates]
    observed = [wins[c.provider_id] for c in candidates]
    assert sum(observed) == FAIRNESS_N
    assert chi_square(observed, shares) < CHI2_LIMIT_6DF, observed
    for o, p in zip(observed, shares, strict=True):
        sd = (FAIRNESS_N * p * (1 - p)) ** 0.5
        assert abs(o - FAIRNESS_N * p) <= 5 * sd, (o, FAIRNESS_N * p)
    # power: the same counts judged against equal shares (a draw ignoring stake) fail by far
    assert chi_square(observed, [1 / len(candidates)] * len(candidates)) > 100 * CHI2_LIMIT_6DF


# ---- live checks and redraws ---------------------------------------------------------------------------


def healthy(pid: bytes) -> LiveState:
    return LiveState(
        provider_id=pid, last_heartbeat_at=NOW, availability_bps=10000, live_leases=0, bucket_tokens_mu=10**9
    )


def decide(
    candidates: list[Candidate],
    live: dict[bytes, LiveState],
    *,
    beacon: bytes = b"\x07" * 32,
    task_id: bytes = b"\x09" * 32,
    tried: frozenset[bytes] = frozenset(),
    params: Params = P,
    max_units_mu: int = 1000,
) -> AssignmentDecision:
    job = JobNeeds(task_id=task_id, kind="ai", model="llama3-8b", max_units_mu=max_units_mu)
    return assign(
        job,
        attempt=1,
        beacon=beacon,
        candidates=candidates,
        excluded=(),
        live=live,
        tried=tried,
        now=NOW,
        params=params,
    )


FOUR = [Candidate(provider_id=bytes([i]) * 32, stake=10 * (i + 1)) for i in range(4)]


def test_refusals_are_recorded_with_reasons_and_the_next_r_j_is_drawn() -> None:
    only = FOUR[2].provider_id
    decision = decide(FOUR, {only: healthy(only)})
    total = sum(c.stake for c in FOUR)
    assert decision.winner == only
    assert decision.draws[-1].provider_id == only
    assert decision.draws[-1].refused is None
    for d in decision.draws:
        assert d.r == ref_r(b"\x07" * 32, b"\x09" * 32, 1, d.j, total)
        assert d.provider_id == ref_winner(d.r, FOUR)
    assert [d.j for d in decision.draws] == list(range(len(decision.draws)))
    for d in decision.draws[:-1]:
        assert d.provider_id != only
        assert d.refused is Exclusion.HEARTBEAT_STALE


def test_after_max_draws_refusals_there_is_no_winner() -> None:
    decision = decide(FOUR, {})
    assert decision.winner is None
    assert len(decision.draws) == 16
    assert all(d.refused is Exclusion.HEARTBEAT_STALE for d in decision.draws)
    assert "winner" not in decision.to_map()
    fewer = decide(FOUR, {}, params=params_from_mapping({"max_draws": 5}))
    assert len(fewer.draws) == 5


def test_no_candidates_means_no_draws_and_no_winner() -> None:
    decision = decide([], {})
    assert decision.draws == ()
    assert decision.winner is None


def single(live: LiveState, **kwargs: object) -> AssignmentDecision:
    return decide([Candidate(provider_id=live.provider_id, stake=1)], {live.provider_id: live}, **kwargs)  # type: ignore[arg-type]


PID = b"\x05" * 32


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"last_heartbeat_at": None}, Exclusion.HEARTBEAT_STALE),
        ({"last_heartbeat_at": NOW - 61}, Exclusion.HEARTBEAT_STALE),
        ({"availability_bps": 9899}, Exclusion.AVAILABILITY_LOW),
        ({"live_leases": 4}, Exclusion.MAX_LEASES),
        ({"bucket_tokens_mu": 999}, Exclusion.RATE_LIMITED),
    ],
)
def test_each_live_check_refuses_with_its_reason(change: dict[str, object], reason: Exclusion) -> None:
    decision = single(replace(healthy(PID), **change))  # type: ignore[arg-type]
    assert decision.winner is None
    assert {d.refused for d in decision.draws} == {reason}


@pytest.mark.parametrize(
    "change",
    [{"last_heartbeat_at": NOW - 60}, {"availability_bps": 9900}, {"live_leases": 3}, {"bucket_tokens_mu": 1000}],
)
def test_each_live_check_passes_at_its_spec_boundary(change: dict[str, object]) -> None:
    assert single(replace(healthy(PID), **change)).winner == PID  # type: ignore[arg-type]


def test_a_provider_already_tried_is_refused_while_an_untried_candidate_remains() -> None:
    tried = frozenset(c.provider_id for c in FOUR[:3])
    live = {c.provider_id: healthy(c.provider_id) for c in FOUR}
    decision = decide(FOUR, live, tried=tried)
    assert decision.winner == FOUR[3].provider_id
    assert len(decision.draws) > 1  # this beacon and task draw a tried provider first
    assert all(d.refused is Exclusion.ALREADY_TRIED for d in decision.draws[:-1])


def test_a_provider_already_tried_may_win_when_every_candidate_was_tried() -> None:
    tried = frozenset(c.provider_id for c in FOUR)
    live = {c.provider_id: healthy(c.provider_id) for c in FOUR}
    decision = decide(FOUR, live, tried=tried)
    assert decision.winner == decision.draws[0].provider_id
    assert len(decision.draws) == 1


def test_the_decision_record_is_canonically_encodable() -> None:
    decision = decide(FOUR, {FOUR[1].provider_id: healthy(FOUR[1].provider_id)})
    record = decision.to_map()
    assert canonical_cbor(record) == cbor2.dumps(record, canonical=True)
    assert {"task_id", "attempt", "beacon", "candidates", "excluded", "draws"} <= set(record)


EXCLUDED = st.lists(
    st.builds(Excluded, provider_id=B32, reason=st.sampled_from(list(Exclusion))),
    max_size=6,
    unique_by=lambda e: e.provider_id,
)


@given(B32, B32, CANDIDATES, EXCLUDED, st.randoms(use_true_random=False))
def test_a_stored_compact_decision_and_its_pool_rebuild_the_whole_record(
    beacon: bytes, task: bytes, candidates: list[Candidate], excluded: list[Excluded], rng: random.Random
) -> None:
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    pool = make_pool(shuffled, excluded)
    needs = JobNeeds(task_id=task, kind="ai", max_units_mu=1)
    live = {c.provider_id: healthy(c.provider_id) for c in candidates}
    by_pool = assign_from_pool(needs, attempt=0, beacon=beacon, pool=pool, live=live, tried=(), now=NOW, params=P)
    direct = assign(
        needs,
        attempt=0,
        beacon=beacon,
        candidates=candidates,
        excluded=excluded,
        live=live,
        tried=(),
        now=NOW,
        params=P,
    )
    assert by_pool == direct
    assert pool.pool_id == tagged_hash(POOL_TAG, pool.record)
    assert pool.record == canonical_cbor(pool_map(direct.candidates, direct.excluded))
    whole = expand_decision(cbor2.loads(canonical_cbor(direct.compact_map(pool.pool_id))), cbor2.loads(pool.record))
    assert canonical_cbor(whole) == canonical_cbor({**direct.to_map(), "pool": pool.pool_id})


def test_the_pool_id_is_the_same_whatever_order_the_registry_lists_providers() -> None:
    ordered = make_pool(FOUR, [Excluded(provider_id=b"z" * 32, reason=Exclusion.NO_TEE)])
    backwards = make_pool(list(reversed(FOUR)), [Excluded(provider_id=b"z" * 32, reason=Exclusion.NO_TEE)])
    assert ordered.pool_id == backwards.pool_id
    assert make_pool(FOUR[:3], []).pool_id != ordered.pool_id


# ---- static eligibility --------------------------------------------------------------------------------


def profile(n: int, **kwargs: object) -> ProviderProfile:
    base: dict[str, object] = {
        "provider_id": bytes([n]) * 32,
        "active": True,
        "bonded_stake": 100,
        "kinds": frozenset({"ai"}),
        "models": frozenset({"llama3-8b"}),
        "regions": frozenset({"eu"}),
        "tee_classes": frozenset({"sev-snp"}),
    }
    base.update(kwargs)
    return ProviderProfile(**base)  # type: ignore[arg-type]


def test_static_eligibility_excludes_each_provider_with_its_reason() -> None:
    job = JobNeeds(
        task_id=b"t" * 32,
        kind="ai",
        model="llama3-8b",
        regions=("eu",),
        allowlist=tuple(bytes([n]) * 32 for n in range(1, 9) if n != 6),
        tee_required=True,
    )
    providers = [
        profile(1),
        profile(2, kinds=frozenset({"quantum"})),
        profile(3, models=frozenset({"clip-vit-b"})),
        profile(4, active=False),
        profile(5, bonded_stake=0),
        profile(6),
        profile(7, regions=frozenset({"us"})),
        profile(8, tee_classes=frozenset()),
    ]
    candidates, excluded = static_eligibility(job, reversed(providers), P)
    assert [c.provider_id[0] for c in candidates] == [1]
    assert {e.provider_id[0]: e.reason for e in excluded} == {
        2: Exclusion.KIND_UNSUPPORTED,
        3: Exclusion.MODEL_UNSUPPORTED,
        4: Exclusion.NOT_ACTIVE,
        5: Exclusion.STAKE_BELOW_MIN,
        6: Exclusion.NOT_IN_JOB_ALLOWLIST,
        7: Exclusion.REGION_MISMATCH,
        8: Exclusion.NO_TEE,
    }
    _, by_operator = static_eligibility(job, [profile(1)], P, operator_allowlist=[b"\x02" * 32])
    assert by_operator[0].reason is Exclusion.NOT_IN_OPERATOR_ALLOWLIST


def test_candidates_weigh_by_bonded_stake_and_are_sorted_by_provider_id() -> None:
    job = JobNeeds(task_id=b"t" * 32, kind="ai", model="llama3-8b")
    candidates, _ = static_eligibility(job, [profile(9, bonded_stake=7), profile(2, bonded_stake=3)], P)
    assert [(c.provider_id[0], c.stake) for c in candidates] == [(2, 3), (9, 7)]


def test_bucket_burst_and_refill_follow_the_spec_figures() -> None:
    # SPEC §6: burst 10 × Γ/1000 mu, refill per second Γ × 1000 / 86400 (division last, over the elapsed time).
    assert refill_bucket(0, 0, 10**6, P) == 10 * 1_000_000 // 1000
    assert refill_bucket(0, 0, 0, P) == 0
    small = params_from_mapping({"gamma_units": 86_400_000})  # refill 10^6 mu/s, burst 864_000 mu
    assert refill_bucket(5, 100, 100, small) == 5
    assert refill_bucket(0, 0, 1, small) == 864_000
    assert refill_bucket(0, 100, 50, small) == 0  # a clock running backwards refills nothing
    one = params_from_mapping({"gamma_units": 1000})  # refill 1_000_000 / 86400 = 11.57 mu/s
    assert refill_bucket(0, 0, 1, one) == 10  # burst 10 caps it
    assert refill_bucket(-50_000, 0, 1, P) == -50_000 + 11_574  # a debt is paid back by the refill
    # Taken literally the burst (Γ/100 mu) is below one second of refill (≈ 11.6 Γ mu) for every Γ: an empty
    # bucket is full again after one second. Reported as a SPEC question (a unit slip, units for mu?).
    for gamma in (1, 1000, 10**6, 10**9):
        g = params_from_mapping({"gamma_units": gamma})
        assert refill_bucket(0, 0, 1, g) == 10 * gamma // 1000


def test_job_bigger_than_the_burst_is_granted_from_a_full_bucket_only() -> None:
    burst = bucket_burst_mu(P)
    big = burst * 50  # e.g. 500 s of llama3-8b
    assert needed_tokens(big, P) == burst
    assert needed_tokens(burst // 2, P) == burst // 2
    job = JobNeeds(task_id=b"t" * 32, kind="ai", model="llama3-8b", max_units_mu=big)
    full = replace(healthy(PID), bucket_tokens_mu=burst)
    in_debt = replace(healthy(PID), bucket_tokens_mu=burst - big)  # what that lease left behind
    assert live_refusal(full, job, NOW, P, tried=False, untried_left=False) is None
    assert live_refusal(in_debt, job, NOW, P, tried=False, untried_left=False) is Exclusion.RATE_LIMITED
    seconds_to_repay = -(-(big) * 86400 // (P.gamma_units * 1000))
    assert refill_bucket(burst - big, 0, seconds_to_repay, P) == burst


# -- a provider's own unit-rate limits (declared at registration, SPEC §6's figures the cap) -------------------
SMALL = params_from_mapping({"gamma_units": 1000})  # burst 10 mu, refill 1_000_000 mu per day (≈ 11.6 mu/s)
requests = st.lists(st.tuples(st.integers(0, 600), st.integers(1, 5_000)), min_size=1, max_size=40)  # (gap_s, mu)


def admitted(stream: list[tuple[int, int]], params: Params, rate: UnitRate | None) -> list[tuple[int, int]]:
    """The (time, units) the bucket admits from `stream`, as the matcher runs it: the level is refilled from the
    last grant to each request's time, a grant needs `needed_tokens` and spends the job's whole size."""
    burst = bucket_burst_mu(params) if rate is None else rate.burst_mu
    tokens, at, now, out = burst, 0, 0, []
    for gap, size in stream:
        now += gap
        level = refill_bucket(tokens, at, now, params, rate)
        if level >= needed_tokens(size, params, rate):
            tokens, at = level - size, now
            out.append((now, size))
    return out


def stricter(params: Params) -> st.SearchStrategy[UnitRate]:
    cap = protocol_unit_rate(params)
    return st.builds(
        UnitRate, burst_mu=st.integers(1, cap.burst_mu), rate_mu_per_day=st.integers(1, cap.rate_mu_per_day)
    )


def test_no_declared_limits_mean_the_protocol_figures_and_declared_ones_above_them_are_capped() -> None:
    cap = protocol_unit_rate(SMALL)
    assert cap == UnitRate(burst_mu=10, rate_mu_per_day=1_000_000)
    assert effective_unit_rate(0, 0, SMALL) == cap
    assert effective_unit_rate(4, 0, SMALL) == UnitRate(burst_mu=4, rate_mu_per_day=1_000_000)
    assert effective_unit_rate(0, 86_400, SMALL) == UnitRate(burst_mu=10, rate_mu_per_day=86_400)
    # registration refuses more than SPEC's, but a Γ lowered since must not loosen a stored declaration
    assert effective_unit_rate(10**9, 10**12, SMALL) == cap


@given(
    tokens=st.integers(-(10**9), 10**9),
    last=st.integers(0, 10**6),
    now=st.integers(0, 2 * 10**6),
    size=st.integers(0, 10**9),
    gamma=st.integers(1, 10**9),
    stream=requests,
)
def test_declared_limits_equal_to_the_protocol_ones_behave_exactly_as_none(
    tokens: int, last: int, now: int, size: int, gamma: int, stream: list[tuple[int, int]]
) -> None:
    params = params_from_mapping({"gamma_units": gamma})
    same = protocol_unit_rate(params)
    assert refill_bucket(tokens, last, now, params, same) == refill_bucket(tokens, last, now, params)
    assert needed_tokens(size, params, same) == needed_tokens(size, params)
    job = JobNeeds(task_id=b"t" * 32, kind="ai", max_units_mu=size)
    live = replace(healthy(PID), bucket_tokens_mu=tokens)
    assert live_refusal(replace(live, unit_rate=same), job, NOW, params, False, False) == live_refusal(
        live, job, NOW, params, False, False
    )
    assert admitted(stream, params, same) == admitted(stream, params, None)


@given(rate=stricter(SMALL), stream=requests)
def test_a_declared_limit_bounds_the_units_admitted_over_any_interval_below_the_protocol_bound(
    rate: UnitRate, stream: list[tuple[int, int]]
) -> None:
    """Over any interval [t_i, t_j] between grants a bucket admits at most a full bucket (or the one oversized job
    that drives it into debt) plus the refill over the interval; a stricter declaration only lowers that bound."""
    cap = protocol_unit_rate(SMALL)
    grants = admitted(stream, SMALL, rate)
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            window = grants[i : j + 1]
            span, largest = window[-1][0] - window[0][0], max(size for _, size in window)
            bound = max(rate.burst_mu, largest) + span * rate.rate_mu_per_day // 86400
            assert sum(size for _, size in window) <= bound
            assert bound <= max(cap.burst_mu, largest) + span * cap.rate_mu_per_day // 86400


@given(rate=stricter(SMALL), size=st.integers(1, 5_000), gap=st.integers(1, 600), n=st.integers(1, 60))
def test_a_stricter_declared_limit_never_admits_more_of_a_steady_stream_than_the_protocol(
    rate: UnitRate, size: int, gap: int, n: int
) -> None:
    """The same job every `gap` seconds: at every point of the stream the stricter bucket has granted no more."""
    stream = [(gap, size)] * n
    mine, protocol = admitted(stream, SMALL, rate), admitted(stream, SMALL, None)
    for t in range(gap, gap * n + 1, gap):
        assert sum(s for at, s in mine if at <= t) <= sum(s for at, s in protocol if at <= t)
