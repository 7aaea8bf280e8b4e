"""The trap budget (SPEC §8 aicf, docs/TRAPS.md "The trap budget") on the devnet: what the fund may spend on trap
escrows is derived from the chain (the fund's split of settled batches × trap_budget_bps, the operator's top-ups,
the trap callers' reclaimed refunds, less the trap fundings), so ingestion refuses a trap_fund above it on every
node, and the trap pass holds due traps back until income pays them.

Before the budget, a trap_fund was refused only when the fund held less than its amount: the fund paid traps out of
whatever it held (slashes included) and, at trap_bps 500, more than its 5 % split brought in.
"""

from dataclasses import dataclass

import pytest

from aicf.core.chain import TxKind
from aicf.core.jobs import JobStatus
from aicf.core.ledger import EXTERNAL, FUND, Posting, requester_account
from aicf.core.operator import OP_TRAP_FUND, OP_TRAP_RECLAIM
from aicf.core.params import params_from_mapping
from aicf.core.trap_budget import TrapBudget
from aicf.core.types import MicroAnm
from aicf.service.ingest import ingest_available
from aicf.service.operator_ops import change_amount, trap_budget
from service.test_coordinator import DevnetWriter, _pub
from service.test_operator_chain import TwoNodes, _no_circuits
from service.test_traps import MODEL, embed

# a fund split of 20 %, so the income of one epoch of 19 small jobs pays a trap's escrow
BUDGET = params_from_mapping(
    {"epoch_seconds": 120, "gamma_units": 1000, "model_weights": {MODEL: 100}, "fund_bps": 2000, "provider_bps": 6500}
)
STRANGER = b"\x31" * 20
UNPAID = b"\x32" * 20


@dataclass
class BudgetNodes(TwoNodes):
    def __post_init__(self) -> None:
        self.start(BUDGET, DevnetWriter(self.devnet))

    def follow(self) -> None:
        ingest_available(self.replica, self.devnet, BUDGET, _no_circuits, operator_key=_pub(self.operator))

    def mint_to_fund(self, amount: int) -> None:
        """Money in the fund that is not trap budget (slashes fill it so in real runs): only the split and top-ups
        count."""
        with self.store.transaction() as tx:
            tx.post([Posting(debit=EXTERNAL, credit=FUND, amount=MicroAnm(amount), ref_kind="mint", ref=b"")], None, 0)
            tx.commit()

    def budget(self) -> TrapBudget:
        with self.store.transaction() as tx:
            return trap_budget(tx, BUDGET)

    def refused(self) -> list[tuple[str, str]]:
        with self.store.transaction() as tx:
            return [(r.field, r.reason) for r in tx.snapshot().refused if r.kind == "operator"]


@pytest.fixture
def nodes() -> BudgetNodes:
    w = BudgetNodes()
    w.mine(1)
    return w


def test_a_trap_fund_above_the_trap_budget_is_refused_although_the_fund_holds_it(nodes: BudgetNodes) -> None:
    nodes.mint_to_fund(10**9)
    nodes.operator_tx({"op": OP_TRAP_FUND, "to": STRANGER, "amount": 5})
    nodes.mine(1)
    assert nodes.refused() == [
        (
            "amount",
            "the trap budget has 0 µANM left, below 5 µANM (income share 0 + top-ups 0 + reclaimed 0 − funded 0)",
        )
    ]
    with nodes.store.transaction() as tx:
        assert tx.balances([requester_account(STRANGER)])[requester_account(STRANGER)] == 0
        assert tx.operator_changes_of(OP_TRAP_FUND) == []


def test_a_top_up_is_trap_budget_and_a_trap_fund_within_it_is_applied(nodes: BudgetNodes) -> None:
    nodes.operator_tx({"op": "fund_topup", "amount": 100})
    nodes.operator_tx({"op": OP_TRAP_FUND, "to": STRANGER, "amount": 60})
    nodes.operator_tx({"op": OP_TRAP_FUND, "to": STRANGER, "amount": 41})  # 1 µANM over what is left
    nodes.mine(1)
    assert nodes.budget() == TrapBudget(income=0, topups=100, funded=60, reclaimed=0)
    assert [reason for _, reason in nodes.refused()] == [
        "the trap budget has 40 µANM left, below 41 µANM (income share 0 + top-ups 100 + reclaimed 0 − funded 60)"
    ]


def test_trap_funding_never_takes_the_fund_below_its_floor(nodes: BudgetNodes) -> None:
    nodes.operator_tx({"op": "params", "changes": {"trap_fund_floor": 50}})
    nodes.mine(12 * 2)  # the change applies from the next epoch
    nodes.operator_tx({"op": "fund_topup", "amount": 100})
    nodes.operator_tx({"op": OP_TRAP_FUND, "to": STRANGER, "amount": 51})
    nodes.operator_tx({"op": OP_TRAP_FUND, "to": STRANGER, "amount": 50})
    nodes.mine(1)
    (reason,) = [reason for _, reason in nodes.refused()]
    assert reason == (
        "would leave the fund 49 µANM (its split, top-ups and reclaims less trap fundings), below trap_fund_floor "
        "50 µANM"
    )
    with nodes.store.transaction() as tx:
        assert tx.balances([FUND])[FUND] == 50


def test_a_reclaim_takes_back_only_what_the_fund_paid_the_caller(nodes: BudgetNodes) -> None:
    nodes.operator_tx({"op": "fund_topup", "amount": 100})
    nodes.operator_tx({"op": OP_TRAP_FUND, "to": STRANGER, "amount": 60})
    nodes.mine(1)
    nodes.devnet.submit(STRANGER, TxKind.DEPOSIT, {"to": STRANGER, "amount": 7})  # money from elsewhere
    nodes.operator_tx({"op": OP_TRAP_RECLAIM, "from": STRANGER})
    nodes.operator_tx({"op": OP_TRAP_RECLAIM, "from": STRANGER})  # nothing left that the fund paid
    nodes.operator_tx({"op": OP_TRAP_RECLAIM, "from": UNPAID})  # never paid by the fund
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        assert tx.balances([requester_account(STRANGER)])[requester_account(STRANGER)] == 7  # the deposit stays
        (reclaim,) = tx.operator_changes_of(OP_TRAP_RECLAIM)
    assert change_amount(reclaim) == 60
    assert nodes.budget() == TrapBudget(income=0, topups=100, funded=60, reclaimed=60)
    assert [reason for _, reason in nodes.refused()] == [
        f"0x{STRANGER.hex()} holds nothing the fund paid it and has not reclaimed",
        f"0x{UNPAID.hex()} was never paid by a trap_fund",
    ]


def test_due_traps_wait_for_the_budget_then_run_and_cost_the_fund_only_their_charge(nodes: BudgetNodes) -> None:
    """The fund holds plenty (minted, as slashes fill it), but no split has come in: the trap due after 19 jobs
    waits (counted as throttled), the 19 jobs settle, their batch's fund share becomes budget, the trap is funded
    and run, and its refund is reclaimed, so traps cost the fund exactly their charge, within its income; a node
    that follows only the chain derives the same budget and balances."""
    nodes.mint_to_fund(10**9)
    pid = nodes.provider_for(1)
    nodes.mine(1)
    nodes.enqueue_model(19)
    nodes.mine(2)
    with nodes.store.transaction() as tx:
        assert tx.open_traps(10) == []  # due, but the budget is 0
    assert nodes.coord.trap_throttles[MODEL].count >= 1
    assert nodes.serve_all(pid, 1) == 19
    for _ in range(40):  # until batch 0 pays the fund's share and the trap pass funds the trap
        nodes.mine(1)
        with nodes.store.transaction() as tx:
            if tx.open_traps(10):
                break
    assert nodes.budget().income > 0
    assert nodes.serve_all(pid, 1) == 1  # the trap
    for _ in range(60):  # the trap's batch, then its reclaim on chain
        nodes.mine(1)
        with nodes.store.transaction() as tx:
            if tx.operator_changes_of(OP_TRAP_RECLAIM):
                break
    nodes.follow()
    budget = nodes.budget()
    with nodes.store.transaction() as a, nodes.replica.transaction() as b:
        (funding,) = a.operator_changes_of(OP_TRAP_FUND)
        trap = a.get_trap(funding.subject)
        assert trap is not None
        (job,) = a.jobs_of_caller(trap.caller)
        payout = a.payout_of_task(job.task_id)
        assert payout is not None
        assert budget.funded - budget.reclaimed == payout.charged  # the trap cost the fund its charge, no more
        assert budget.funded - budget.reclaimed <= budget.income + budget.topups
        assert trap_budget(b, BUDGET) == budget  # derived from the chain alone
        assert b.balances([FUND])[FUND] == a.balances([FUND])[FUND] - 10**9  # B never saw the mint, only the chain
        assert b.balances([requester_account(trap.caller)]) == a.balances([requester_account(trap.caller)])
        assert a.balances([requester_account(trap.caller)])[requester_account(trap.caller)] == 0


def test_a_rejected_traps_refund_is_not_reclaimed_so_a_chain_only_node_holds_the_same_budget(
    nodes: BudgetNodes,
) -> None:
    """A REJECTED job is refunded by the coordinator's verdict, off chain: a node that follows the chain does not
    hold that refund, so reclaiming it would move another amount there. It stays with the caller on node A."""
    nodes.operator_tx({"op": "fund_topup", "amount": 10**9})
    cheats = [nodes.provider_for(seed) for seed in (1, 2, 3)]
    nodes.mine(1)
    nodes.enqueue_model(19)
    nodes.mine(2)
    with nodes.store.transaction() as tx:
        (trap,) = tx.open_traps(10)
    for _ in range(200):  # every provider fakes the trap and answers the rest: three attempts, then REJECTED
        nodes.coord.match()
        for seed, pid in enumerate(cheats, start=1):
            for work in nodes.coord.leases_for(pid):
                prompt = work.request["prompt"]
                assert isinstance(prompt, bytes)
                output = embed(b"not the prompt") if work.job.caller == trap.caller else embed(prompt)
                nodes.clock.advance(ms=1500)
                nodes.coord.submit_proof(nodes.proof(seed, work.lease.lease_id, work.job.task_id, output))
        with nodes.store.transaction() as tx:
            (job,) = tx.jobs_of_caller(trap.caller)
        if job.status is JobStatus.REJECTED:
            break
        nodes.mine(1)
    assert job.status is JobStatus.REJECTED
    nodes.mine(3)
    nodes.follow()
    with nodes.store.transaction() as a, nodes.replica.transaction() as b:
        assert a.operator_changes_of(OP_TRAP_RECLAIM) == []
        held = requester_account(trap.caller)
        assert a.balances([held])[held] == job.escrow  # refunded off chain, on node A only
        assert trap_budget(b, BUDGET) == trap_budget(a, BUDGET)
