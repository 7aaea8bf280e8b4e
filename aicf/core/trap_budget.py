"""The trap budget (SPEC §8 aicf; docs/TRAPS.md "The trap budget"): what the fund may spend on trap escrows.

The fund's income is its split of each reward (SPEC §3: fund_bps). Traps are paid from the fund (an operator
`trap_fund` moves a trap caller's escrow), so without a bound a trap rate above what the split brings in drains
the fund. The budget, a pure function of the chain:

    available = Σ_batches fund_E × trap_budget_bps_E // 10000   (income: batch E's fund total, epoch E's params)
              + Σ fund_topup amounts                            (money the operator put in for traps)
              + Σ trap_reclaim amounts                          (refunds of final trap callers, back to the fund)
              − Σ trap_fund amounts

A `trap_fund` is refused when its amount is above `available`, or when it would take the fund's chain balance
(Σ_batches fund_E + top-ups + reclaims − fundings: the fund as a node that follows only the chain holds it; slashes
are the coordinator's and not in it) below `trap_fund_floor`. A reclaim is bounded by what the fund paid that caller
and has not reclaimed, so reclaims never raise the budget above income plus top-ups. Hence at every height
Σ trap_fund − Σ trap_reclaim ≤ income + top-ups: traps never take more than trap_budget_bps of the fund's split,
whatever the job mix.
"""

from dataclasses import dataclass

from aicf.core.errors import RequestError
from aicf.core.params import Params
from aicf.core.types import BPS


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapBudget:
    """The four sums of the budget at one point of the chain (µANM)."""

    income: int = 0  # Σ_batches fund_E × trap_budget_bps_E // 10000
    topups: int = 0
    funded: int = 0
    reclaimed: int = 0
    split: int = 0  # Σ_batches fund_E, the whole split

    @property
    def available(self) -> int:
        return self.income + self.topups + self.reclaimed - self.funded

    @property
    def chain_fund(self) -> int:
        """The fund's balance as the chain alone makes it: its split, top-ups and reclaims less trap fundings."""
        return self.split + self.topups + self.reclaimed - self.funded


def batch_trap_income(fund_total: int, params: Params) -> int:
    """The part of one batch's fund total (its `totals.fund`) that may pay for traps: fund × trap_budget_bps // 10^4."""
    return fund_total * params.trap_budget_bps // BPS


def check_trap_fund(amount: int, budget: TrapBudget, fund_balance: int, params: Params) -> None:
    """Raise RequestError("amount", why) when a trap funding of `amount` is refused: it is above what the trap
    budget has left, it would leave the fund's chain balance below trap_fund_floor, or the fund holds less. The
    first two are the chain's alone, so every node refuses alike and says the same; the last reads the node's
    own ledger, and a budget that passes implies it on every node (the chain balance is at least the budget)."""
    if amount > budget.available:
        raise RequestError(
            "amount",
            f"the trap budget has {budget.available} µANM left, below {amount} µANM (income share {budget.income} + "
            f"top-ups {budget.topups} + reclaimed {budget.reclaimed} − funded {budget.funded})",
        )
    if budget.chain_fund - amount < params.trap_fund_floor:
        raise RequestError(
            "amount",
            f"would leave the fund {budget.chain_fund - amount} µANM (its split, top-ups and reclaims less trap "
            f"fundings), below trap_fund_floor {params.trap_fund_floor} µANM",
        )
    if fund_balance < amount:
        raise RequestError("amount", f"the fund holds {fund_balance} µANM, below {amount} µANM")


def reclaimable(balance: int, funded_to: int, reclaimed_from: int) -> int:
    """What a trap_reclaim moves back to the fund: the caller's balance, at most what the fund paid it and has not
    reclaimed yet (money others sent the address stays there)."""
    return max(0, min(balance, funded_to - reclaimed_from))
