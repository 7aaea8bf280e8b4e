"""The trap budget's pure rules (aicf.core.trap_budget) and the params rule that refuses a trap rate the fund's split
cannot pay (aicf.core.params), with a property test: for any job mix, the fund never goes below its floor and
traps never take more than trap_budget_bps of what the fund received."""

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicf.core.errors import ParamsError, RequestError
from aicf.core.params import Params, params_from_mapping
from aicf.core.pricing import reserve_fee, reward_of, split_reward
from aicf.core.trap_budget import TrapBudget, batch_trap_income, check_trap_fund, reclaimable
from aicf.service.traps import traps_due

P = Params.default()


def test_the_defaults_pay_their_traps_exactly_at_the_reserve_fee() -> None:
    # trap_bps × min_fee_bps = 500 × 10000 == trap_budget_bps × fund_bps = 10000 × 500: the edge, accepted
    assert P.trap_bps * P.min_fee_bps == P.trap_budget_bps * P.fund_bps


@pytest.mark.parametrize(
    "changes",
    [
        {"fund_bps": 499, "provider_bps": 8001},  # a split of 4.99 % cannot pay traps at 5 %
        {"trap_bps": 501},
        {"min_fee_bps": 10001},  # every trap charged above its reward: more than the split brings in
        {"trap_budget_bps": 9000},  # only 90 % of the split may go to traps
    ],
)
def test_params_whose_traps_cost_more_than_the_funds_trap_budget_are_refused(changes: dict[str, int]) -> None:
    with pytest.raises(ParamsError) as info:
        params_from_mapping(changes)
    assert info.value.key == "trap_bps"
    assert "traps would cost the fund more than its trap budget" in str(info.value)


def test_a_lower_trap_rate_or_a_larger_split_is_accepted() -> None:
    assert params_from_mapping({"trap_budget_bps": 8000, "trap_bps": 400}).trap_bps == 400
    assert params_from_mapping({"trap_bps": 1000, "fund_bps": 1000, "miner_bps": 1000}).trap_bps == 1000
    assert params_from_mapping({"trap_bps": 0, "fund_bps": 0, "provider_bps": 8500}).fund_bps == 0


def test_trap_bps_of_10000_is_refused_naming_it() -> None:
    with pytest.raises(ParamsError, match="must be below 10000 bps"):
        params_from_mapping({"trap_bps": 10000, "fund_bps": 10000, "provider_bps": 0, "miner_bps": 0})


def test_check_trap_fund_names_what_is_short() -> None:
    budget = TrapBudget(income=30, topups=20, funded=10, reclaimed=5, split=60)
    assert (budget.available, budget.chain_fund) == (45, 75)
    check_trap_fund(45, budget, 100, P)
    with pytest.raises(RequestError, match="the trap budget has 45 µANM left, below 46 µANM"):
        check_trap_fund(46, budget, 100, P)
    with pytest.raises(RequestError, match="the fund holds 40 µANM, below 45 µANM"):  # the node's ledger, last
        check_trap_fund(45, budget, 40, P)
    # the floor is of the fund as the chain alone makes it (split 90 + top-ups 20 + reclaimed 5 − funded 10 = 105),
    # not of the node's ledger (which holds slashes too): 105 − 46 = 59
    floored = params_from_mapping({"trap_fund_floor": 60})
    with_split = TrapBudget(income=30, topups=20, funded=10, reclaimed=5, split=90)
    check_trap_fund(45, with_split, 10**9, floored)
    with pytest.raises(RequestError, match=r"would leave the fund 59 µANM \(its split"):
        check_trap_fund(46, TrapBudget(income=31, topups=20, funded=10, reclaimed=5, split=90), 10**9, floored)


def test_batch_income_is_the_budget_share_of_the_funds_total_rounded_down() -> None:
    assert batch_trap_income(999, P) == 999
    assert batch_trap_income(999, params_from_mapping({"trap_budget_bps": 5000, "trap_bps": 250})) == 499


def test_a_reclaim_is_bounded_by_what_the_fund_paid_and_has_not_taken_back() -> None:
    assert reclaimable(balance=100, funded_to=60, reclaimed_from=0) == 60
    assert reclaimable(balance=30, funded_to=60, reclaimed_from=0) == 30
    assert reclaimable(balance=100, funded_to=60, reclaimed_from=45) == 15
    assert reclaimable(balance=100, funded_to=60, reclaimed_from=60) == 0


# -- property: any job mix ----------------------------------------------------------------------------------
@dataclass
class Fund:
    """The fund as the chain moves it: split income per batch, top-ups, trap fundings and reclaims."""

    params: Params
    balance: int = 0
    received: int = 0  # the split, all of it
    budget: TrapBudget = field(default_factory=TrapBudget)

    def settle(self, rewards: list[int]) -> None:
        share = sum(split_reward(r, self.params).fund for r in rewards)
        self.balance += share
        self.received += share
        self.budget = _plus(self.budget, income=batch_trap_income(share, self.params), split=share)

    def top_up(self, amount: int) -> None:
        self.balance += amount
        self.budget = _plus(self.budget, topups=amount)

    def fund_trap(self, escrow: int) -> bool:
        try:
            check_trap_fund(escrow, self.budget, self.balance, self.params)
        except RequestError:
            return False
        self.balance -= escrow
        self.budget = _plus(self.budget, funded=escrow)
        return True

    def reclaim(self, refund: int, escrow: int) -> None:
        back = reclaimable(refund, escrow, 0)
        self.balance += back
        self.budget = _plus(self.budget, reclaimed=back)


def _plus(
    b: TrapBudget, *, income: int = 0, topups: int = 0, funded: int = 0, reclaimed: int = 0, split: int = 0
) -> TrapBudget:
    return TrapBudget(
        income=b.income + income,
        topups=b.topups + topups,
        funded=b.funded + funded,
        reclaimed=b.reclaimed + reclaimed,
        split=b.split + split,
    )


JOB = st.tuples(st.integers(1, 5_000_000), st.integers(0, 30_000))  # (units_mu, fee above the reserve)
EPOCH = st.lists(JOB, max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(EPOCH, min_size=1, max_size=6),
    st.integers(0, 3000),  # fund_bps
    st.integers(0, 10000),  # trap_budget_bps
    st.integers(0, 10**7),  # top-up at the start
    st.integers(0, 10**6),  # trap_fund_floor
    st.integers(1, 20),  # a trap's escrow as a multiple of its charge (max_runtime_ms over the runtime)
    st.integers(5000, 20000),  # price_bps
)
def test_for_any_job_mix_traps_never_take_the_fund_below_its_floor_or_beyond_its_budget(
    epochs: list[list[tuple[int, int]]],
    fund_bps: int,
    budget_bps: int,
    top_up: int,
    floor: int,
    escrow_mult: int,
    price: int,
) -> None:
    trap_bps = budget_bps * fund_bps // P.min_fee_bps  # the highest trap rate the params rule accepts
    params = params_from_mapping(
        {
            "fund_bps": fund_bps,
            "provider_bps": 8500 - fund_bps,
            "miner_bps": 1500,
            "trap_bps": trap_bps,
            "trap_budget_bps": budget_bps,
            "trap_fund_floor": floor,
        }
    )
    fund = Fund(params)
    fund.top_up(top_up)
    ordinary = traps = 0
    for jobs in epochs:
        rewards: list[int] = []
        for units, extra in jobs:  # ordinary jobs; each one makes traps due at trap_bps
            rewards.append(reward_of(units, P.base_rate_ai, price))
            ordinary += 1
            while traps < traps_due(ordinary, params):
                traps += 1  # due: funded if the budget and the floor allow, else it waits (throttled)
                fee = reserve_fee(P.base_rate_ai, price, params) + extra
                charged = fee * units // 1000
                escrow = charged * escrow_mult
                fits = escrow <= fund.budget.available and fund.balance - escrow >= floor
                assert fund.fund_trap(escrow) == fits  # refused only when the budget or the floor says so
                if fits:
                    assert fund.balance >= floor
                    rewards.append(reward_of(units, P.base_rate_ai, price))  # the trap is paid like any job
                    fund.reclaim(escrow - charged, escrow)  # its refund comes back once it settles
        fund.settle(rewards)
        spent = fund.budget.funded - fund.budget.reclaimed
        assert spent <= fund.budget.income + fund.budget.topups  # never beyond the budget
        assert fund.balance >= fund.received - fund.budget.income >= 0  # the split's non-trap share is kept
        assert fund.balance >= 0
