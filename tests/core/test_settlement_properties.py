"""Epoch settlement (SPEC §3, §5) as properties over generated epochs, plus hand-made edge cases.

The settlement order, the admission rule and the demand fed to the price are re-derived here from SPEC's
words; payout bytes and the root are checked with cbor2 and hashlib, not with the core's encoder.
"""

import hashlib
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from aicf.core.errors import SettlementInputError
from aicf.core.params import Params, params_from_mapping, params_hash
from aicf.core.settlement import SettlementBatch, VerifiedJob, priority_class, settle_epoch


def ref_h(tag: str, *fields: object) -> bytes:
    return hashlib.sha3_256(cbor2.dumps([tag, *fields], canonical=True)).digest()


PARAMS = params_from_mapping({"gamma_units": 100})  # Γ = 100 units: the cap binds with a handful of jobs
CAP_MU = PARAMS.gamma_units * 1000
RATE = {"ai": 15000, "quantum": 50000}
B32 = st.binary(min_size=32, max_size=32)
FEW_IDS = st.sampled_from([bytes([i]) * 32 for i in range(4)])

JOB = st.builds(
    VerifiedJob,
    task_id=B32,
    provider_id=FEW_IDS,
    miner_id=FEW_IDS,
    proof_id=B32,
    kind=st.sampled_from(["ai", "quantum"]),
    priority_class=st.integers(0, 4),
    proof_height=st.integers(0, 6),
    tx_index=st.integers(0, 3),
    units_mu=st.one_of(st.integers(0, 30_000), st.integers(0, 150_000)),
    fee_per_unit=st.integers(0, 200_000),
)
JOBS = st.lists(JOB, max_size=25, unique_by=lambda j: j.task_id)
PRICE = st.integers(5000, 20000)
TREASURY = st.one_of(st.integers(0, 10**6), st.integers(10**6, 10**8), st.just(2**63 - 1))


def settle(jobs: list[VerifiedJob], treasury: int, price: int, params: Params = PARAMS) -> SettlementBatch:
    return settle_epoch(epoch=7, finalized_height=99, jobs=jobs, treasury=treasury, price_bps=price, params=params)


def spec_order(jobs: list[VerifiedJob]) -> list[VerifiedJob]:
    """SPEC §5: class descending, then proof inclusion height, tx index, task_id."""
    return sorted(jobs, key=lambda j: (-j.priority_class, j.proof_height, j.tx_index, j.task_id))


def spec_reward(job: VerifiedJob, price: int) -> int:
    return job.units_mu * RATE[job.kind] * price // (1000 * 10000)


def batch_bytes(batch: SettlementBatch) -> bytes:
    return cbor2.dumps(batch.to_map(), canonical=True)


# ---- money is conserved ------------------------------------------------------------------------------


@given(JOBS, TREASURY, PRICE)
def test_every_payout_splits_its_reward_exactly(jobs: list[VerifiedJob], treasury: int, price: int) -> None:
    for p in settle(jobs, treasury, price).payouts:
        assert p.provider + p.miner + p.fund == p.reward
        assert min(p.provider, p.miner, p.fund, p.reward, p.charged) >= 0
        assert p.provider == p.reward * 8000 // 10000
        assert p.miner == p.reward * 1500 // 10000


@given(JOBS, TREASURY, PRICE)
def test_every_payout_carries_the_spec_fields(jobs: list[VerifiedJob], treasury: int, price: int) -> None:
    by_task = {j.task_id: j for j in jobs}
    p_hash = params_hash(PARAMS)
    for p in settle(jobs, treasury, price).payouts:
        job = by_task[p.task_id]
        assert p.payout_id == ref_h("aicf/payout/v1", 7, job.task_id)
        assert (p.epoch, p.price_bps, p.params_hash) == (7, price, p_hash)
        assert (p.provider_id, p.miner_id, p.proof_id, p.units_mu) == (
            job.provider_id,
            job.miner_id,
            job.proof_id,
            job.units_mu,
        )
        assert p.base_rate == RATE[job.kind]
        assert p.reward == spec_reward(job, price)
        assert p.charged == job.fee_per_unit * job.units_mu // 1000


@given(JOBS, TREASURY, PRICE)
def test_admitted_units_stay_within_gamma_and_rewards_within_the_treasury(
    jobs: list[VerifiedJob], treasury: int, price: int
) -> None:
    batch = settle(jobs, treasury, price)
    assert sum(p.units_mu for p in batch.payouts) <= CAP_MU
    assert sum(p.reward for p in batch.payouts) <= treasury


@given(JOBS, TREASURY, PRICE)
def test_totals_are_the_sums_over_the_admitted_payouts(jobs: list[VerifiedJob], treasury: int, price: int) -> None:
    batch = settle(jobs, treasury, price)
    for name in ("reward", "provider", "miner", "fund", "charged", "units_mu"):
        assert getattr(batch.totals, name) == sum(getattr(p, name) for p in batch.payouts), name
    t = batch.totals
    assert t.provider + t.miner + t.fund == t.reward


# ---- every eligible job is paid or carried, in SPEC's order --------------------------------------------


@given(JOBS, TREASURY, PRICE)
def test_paid_plus_carried_is_eligible_with_no_task_in_both(jobs: list[VerifiedJob], treasury: int, price: int) -> None:
    batch = settle(jobs, treasury, price)
    paid = [p.task_id for p in batch.payouts]
    assert len(paid) + len(batch.carried) == len(jobs)
    assert set(paid).isdisjoint(batch.carried)
    assert set(paid) | set(batch.carried) == {j.task_id for j in jobs}


@given(JOBS, TREASURY, PRICE)
def test_carried_jobs_are_a_suffix_in_settlement_order(jobs: list[VerifiedJob], treasury: int, price: int) -> None:
    batch = settle(jobs, treasury, price)
    ordered = [j.task_id for j in spec_order(jobs)]
    assert [p.task_id for p in batch.payouts] + list(batch.carried) == ordered


@given(JOBS, TREASURY, PRICE)
def test_admission_stops_exactly_at_the_first_job_that_does_not_fit(
    jobs: list[VerifiedJob], treasury: int, price: int
) -> None:
    batch = settle(jobs, treasury, price)
    if batch.carried:
        first = next(j for j in jobs if j.task_id == batch.carried[0])
        over_cap = batch.totals.units_mu + first.units_mu > CAP_MU
        over_treasury = batch.totals.reward + spec_reward(first, price) > treasury
        assert over_cap or over_treasury


@given(JOBS, TREASURY, PRICE)
def test_demand_counts_carried_units_only_when_the_cap_broke(
    jobs: list[VerifiedJob], treasury: int, price: int
) -> None:
    batch = settle(jobs, treasury, price)
    by_task = {j.task_id: j for j in jobs}
    carried_units = sum(by_task[t].units_mu for t in batch.carried)
    broke_cap = bool(batch.carried) and batch.totals.units_mu + by_task[batch.carried[0]].units_mu > CAP_MU
    expected = batch.totals.units_mu + (carried_units if broke_cap else 0)
    assert batch.demand_mu == expected
    step = (price * (expected - CAP_MU)) // (8000 * PARAMS.gamma_units)
    assert batch.next_price_bps == min(20000, max(5000, min(price + price // 8, max(price - price // 8, price + step))))


# ---- the batch is a pure function of its inputs --------------------------------------------------------


@given(JOBS, TREASURY, PRICE, st.randoms(use_true_random=False))
def test_shuffling_the_input_leaves_the_batch_byte_identical(
    jobs: list[VerifiedJob], treasury: int, price: int, rnd: Any
) -> None:
    shuffled = list(jobs)
    rnd.shuffle(shuffled)
    a, b = settle(jobs, treasury, price), settle(shuffled, treasury, price)
    assert batch_bytes(a) == batch_bytes(b)
    assert a.root == b.root
    assert (a.next_price_bps, a.demand_mu) == (b.next_price_bps, b.demand_mu)


@given(JOBS, TREASURY, PRICE)
def test_settling_the_same_input_twice_gives_identical_bytes(
    jobs: list[VerifiedJob], treasury: int, price: int
) -> None:
    assert batch_bytes(settle(jobs, treasury, price)) == batch_bytes(settle(list(jobs), treasury, price))


@given(JOBS, TREASURY, PRICE)
def test_root_is_the_merkle_root_of_the_payouts_canonical_cbor_in_admission_order(
    jobs: list[VerifiedJob], treasury: int, price: int
) -> None:
    batch = settle(jobs, treasury, price)
    level = [ref_h("aicf/leaf/v1", cbor2.dumps(p.to_map(), canonical=True)) for p in batch.payouts]
    if not level:
        assert batch.root == ref_h("aicf/empty/v1")
        return
    while len(level) > 1:
        nxt = [ref_h("aicf/node/v1", level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    assert batch.root == level[0]


@settings(max_examples=examples(300))
@pytest.mark.slow
@given(JOBS, TREASURY, PRICE, st.randoms(use_true_random=False))
def test_shuffling_never_changes_the_batch_over_many_epochs(
    jobs: list[VerifiedJob], treasury: int, price: int, rnd: Any
) -> None:
    shuffled = list(jobs)
    rnd.shuffle(shuffled)
    assert batch_bytes(settle(jobs, treasury, price)) == batch_bytes(settle(shuffled, treasury, price))


# ---- edge cases by hand --------------------------------------------------------------------------------


HAND = Params.minimal()  # Γ = 1000 units: cap 1_000_000 mu


def settle_by_hand(jobs: list[VerifiedJob], treasury: int, price: int, params: Params = HAND) -> SettlementBatch:
    return settle(jobs, treasury, price, params)


def job(n: int, *, units: int = 1000, kind: str = "ai", cls: int = 0, height: int = 1, tx: int = 0) -> VerifiedJob:
    return VerifiedJob(
        task_id=bytes([n]) * 32,
        provider_id=b"\xaa" * 32,
        miner_id=b"\xbb" * 32,
        proof_id=bytes([n]) * 31 + b"\x01",
        kind=kind,
        priority_class=cls,
        proof_height=height,
        tx_index=tx,
        units_mu=units,
        fee_per_unit=20000,
    )


def test_an_empty_epoch_gets_an_empty_batch_with_the_empty_root() -> None:
    batch = settle_by_hand([], 10**9, 10000)
    assert batch.payouts == ()
    assert batch.carried == ()
    assert batch.root == ref_h("aicf/empty/v1")
    assert batch.totals.reward == 0
    assert batch.next_price_bps == 10000 - 10000 // 8  # no demand: the price falls by an eighth
    assert set(batch.to_map()) == {
        "epoch",
        "finalized_height",
        "params_hash",
        "price_bps",
        "payouts",
        "carried",
        "totals",
        "root",
    }


def test_a_job_that_breaks_the_cap_carries_with_every_later_job_even_if_they_fit() -> None:
    a, big, small = job(1, units=600_000, height=1), job(2, units=500_000, height=2), job(3, units=1, height=3)
    batch = settle_by_hand([small, big, a], 2**62, 10000)
    assert [p.task_id for p in batch.payouts] == [a.task_id]
    assert batch.carried == (big.task_id, small.task_id)
    assert batch.demand_mu == 600_000 + 500_000 + 1  # the cap broke: carried demand counts


def test_demand_leaves_out_carried_units_when_only_the_treasury_broke() -> None:
    a, b = job(1, units=1000, height=1), job(2, units=1000, height=2)
    reward_a = 1000 * 15000 * 10000 // 10**7
    batch = settle_by_hand([a, b], reward_a, 10000)  # b fits the cap but not the treasury
    assert [p.task_id for p in batch.payouts] == [a.task_id]
    assert batch.carried == (b.task_id,)
    assert batch.demand_mu == 1000


def test_demand_includes_carried_units_when_cap_and_treasury_both_broke() -> None:
    a, b = job(1, units=600_000, height=1), job(2, units=600_000, height=2)
    reward_a = 600_000 * 15000 * 10000 // 10**7
    batch = settle_by_hand([a, b], reward_a, 10000)
    assert batch.carried == (b.task_id,)
    assert batch.demand_mu == 1_200_000


def test_exactly_full_cap_and_exact_treasury_are_admitted() -> None:
    a, b = job(1, units=400_000, height=1), job(2, units=600_000, height=2)
    treasury = (400_000 + 600_000) * 15000 * 10000 // 10**7
    batch = settle_by_hand([a, b], treasury, 10000)
    assert batch.carried == ()
    assert batch.totals.units_mu == 1_000_000
    assert batch.totals.reward == treasury


def test_settlement_orders_by_class_then_height_then_tx_then_task_id() -> None:
    jobs = [
        job(9, cls=0, height=1, tx=0),
        job(8, cls=3, height=5, tx=2),
        job(7, cls=3, height=5, tx=1),
        job(6, cls=4, height=9, tx=9),
        job(5, cls=3, height=2, tx=7),
        job(4, cls=3, height=5, tx=1),
    ]
    batch = settle_by_hand(jobs, 2**62, 10000)
    assert [p.task_id[0] for p in batch.payouts] == [6, 5, 4, 7, 8, 9]


def test_a_job_carried_by_seven_batches_sorts_as_class_four() -> None:
    assert priority_class(0, 6, HAND) == 0
    assert priority_class(0, 7, HAND) == 4
    assert priority_class(3, 7, HAND) == 4


def test_quantum_jobs_are_paid_at_the_quantum_base_rate() -> None:
    batch = settle_by_hand([job(1, kind="quantum", units=3200)], 2**62, 8685)
    assert batch.payouts[0].reward == 138960  # the reward_split-5 vector's number
    assert batch.payouts[0].base_rate == 50000


def test_duplicate_task_ids_raise_settlement_input_error() -> None:
    a = job(1)
    with pytest.raises(SettlementInputError, match="appears twice"):
        settle_by_hand([a, replace(a, proof_height=3)], 2**62, 10000)


@pytest.mark.parametrize("field", ["units_mu", "fee_per_unit", "proof_height", "tx_index", "priority_class"])
def test_a_negative_job_amount_raises_settlement_input_error_naming_it(field: str) -> None:
    with pytest.raises(SettlementInputError, match=field):
        settle_by_hand([replace(job(1), **{field: -1})], 2**62, 10000)  # type: ignore[arg-type]


def test_a_negative_treasury_raises_settlement_input_error() -> None:
    with pytest.raises(SettlementInputError, match="treasury"):
        settle_by_hand([], -1, 10000)


def test_an_unknown_kind_raises_settlement_input_error() -> None:
    with pytest.raises(SettlementInputError, match="kind"):
        settle_by_hand([replace(job(1), kind="video")], 2**62, 10000)


def test_the_batch_commits_to_the_params_it_was_built_with() -> None:
    other = params_from_mapping({"gamma_units": 2000}, base=HAND)
    a = settle_by_hand([job(1)], 2**62, 10000)
    b = settle_by_hand([job(1)], 2**62, 10000, params=other)
    assert a.params_hash == params_hash(HAND) != b.params_hash
    assert a.root != b.root  # every payout carries params_hash


# ---- payout bytes stay canonical for every input SPEC admits --------------------------------------------

ANY_ID = st.binary(min_size=1, max_size=40)


@given(ANY_ID, ANY_ID, ANY_ID, ANY_ID, st.integers(0, CAP_MU), st.integers(0, 10**6))
def test_payout_bytes_and_root_are_canonical_for_ids_of_any_length(
    task: bytes, provider: bytes, miner: bytes, proof: bytes, units: int, fee: int
) -> None:
    # A miner is a block producer (SPEC §3, §10): its id may be a 20-byte address, not a 32-byte hash.
    j = VerifiedJob(
        task_id=task,
        provider_id=provider,
        miner_id=miner,
        proof_id=proof,
        kind="ai",
        priority_class=0,
        proof_height=1,
        tx_index=0,
        units_mu=units,
        fee_per_unit=fee,
    )
    batch = settle([j], 2**62, 10000)
    (payout,) = batch.payouts
    canonical = cbor2.dumps(payout.to_map(), canonical=True)
    assert payout.encode() == canonical
    assert batch.root == ref_h("aicf/leaf/v1", canonical)


def test_a_charge_of_2_63_or_more_raises_settlement_input_error_naming_it() -> None:
    # SPEC §1: every stored amount is < 2^63; charged = fee_per_unit × units_mu // 1000 is stored in the payout.
    huge = VerifiedJob(
        task_id=b"\x01" * 32,
        provider_id=b"\x02" * 32,
        miner_id=b"\x03" * 32,
        proof_id=b"\x04" * 32,
        kind="ai",
        priority_class=0,
        proof_height=1,
        tx_index=0,
        units_mu=10**6,
        fee_per_unit=2**62,
    )
    with pytest.raises(SettlementInputError, match="charged"):
        settle([huge], 2**62, 10000)


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 50), st.integers(0, 5)), max_size=60))
def test_the_two_stable_sorts_give_exactly_the_settlement_order(keys: list[tuple[int, int, int]]) -> None:
    from aicf.core.settlement import VerifiedJob, in_settlement_order, settlement_order

    jobs = [
        VerifiedJob(
            task_id=n.to_bytes(32, "big"), provider_id=bytes(32), miner_id=bytes(32), proof_id=bytes(32), kind="ai",
            priority_class=c, proof_height=h, tx_index=t, units_mu=1, fee_per_unit=1,
        )
        for n, (c, h, t) in enumerate(keys)
    ]  # fmt: skip
    assert in_settlement_order(reversed(jobs)) == sorted(jobs, key=settlement_order)
