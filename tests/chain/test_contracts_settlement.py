"""Treasury and settlement on anvil: deposits, a batch posted in one transaction by the coordinator only, and
claims against its Merkle root that pay exact token balances, once each, and nothing for a wrong proof."""

import math

from eth_typing import ChecksumAddress
from web3 import Web3

from aicf.chain.claims import BatchPost, ClaimTree, batch_post, build_claim_tree, claim_tree_for_batch
from aicf.core.params import Params
from aicf.core.settlement import SettlementBatch, VerifiedJob, settle_epoch
from chain.evm_support import ANM, Stack, revert_of, send

P1, P2 = b"\x11" * 32, b"\x22" * 32
ESCROW = 20 * ANM
FEE = 15000
UNITS = 1_000_000  # 1000 units: reward 15 ANM, charged 15 ANM of a 20 ANM escrow
ZERO_TOTALS = (0, 0, 0, 0, 0, 0)


def raw(address: str) -> bytes:
    return bytes.fromhex(address.removeprefix("0x"))


def enqueue(stack: Stack, count: int) -> None:
    stack.fund_with(stack.roles.requester, count * ESCROW)
    for _ in range(count):
        call = stack.aicf.functions.aiEnqueue("llama3-8b", b"q", 16, 1000, FEE, 0, ESCROW)
        send(call, stack.roles.requester)


def deposit(stack: Stack, amount: int) -> None:
    stack.fund_with(stack.roles.admin, amount)
    send(stack.aicf.functions.deposit(amount), stack.roles.admin)


def batch_of(stack: Stack, count: int, treasury: int) -> SettlementBatch:
    jobs = [
        VerifiedJob(
            task_id=bytes([i]) * 32,
            provider_id=P1 if i % 2 else P2,
            miner_id=raw(stack.roles.miner),
            proof_id=bytes([0x80 + i]) * 32,
            kind="ai",
            priority_class=0,
            proof_height=10 + i,
            tx_index=0,
            units_mu=UNITS,
            fee_per_unit=FEE,
        )
        for i in range(1, count + 1)
    ]
    return settle_epoch(
        epoch=0, finalized_height=20, jobs=jobs, treasury=treasury, price_bps=10000, params=Params.default()
    )


def post(stack: Stack, p: BatchPost, sender: ChecksumAddress | None = None) -> int:
    call = stack.aicf.functions.postBatch(
        p.epoch, p.spec_root, p.totals, p.escrow_released, p.claim_root, p.claim_total
    )
    gas: int = send(call, sender or stack.roles.coordinator)["gasUsed"]
    return gas


def claim(stack: Stack, tree: ClaimTree, account: bytes, sender: ChecksumAddress) -> int:
    c = tree.claim_for(account)
    call = stack.aicf.functions.claim(c.epoch, Web3.to_checksum_address(c.account), c.amount, list(c.proof))
    gas: int = send(call, sender)["gasUsed"]
    return gas


def test_deposit_funds_the_treasury(stack: Stack) -> None:
    deposit(stack, 50 * ANM)
    assert stack.aicf.functions.treasury().call() == 50 * ANM
    assert stack.balance(stack.aicf.address) == 50 * ANM
    stack.fund_with(stack.roles.other, ANM, approve=0)
    assert revert_of(stack.aicf.functions.deposit(ANM), stack.roles.other) == ("InsufficientAllowance", (0, ANM))


def test_a_settled_batch_pays_providers_miner_fund_and_refunds_in_exact_balances(stack: Stack) -> None:
    enqueue(stack, 4)
    deposit(stack, 1000 * ANM)
    batch = batch_of(stack, 4, treasury=1000 * ANM)
    refund = 4 * ESCROW - batch.totals.charged  # each job charged 15 of its 20 ANM escrow
    r = stack.roles
    tree = claim_tree_for_batch(
        batch,
        payees={P1: raw(r.provider), P2: raw(r.other)},
        fund_account=raw(r.fund),
        refunds={raw(r.requester): refund},
    )
    receipt_gas = post(stack, batch_post(batch, tree))
    assert receipt_gas > 0
    treasury = stack.aicf.functions.treasury().call()
    assert treasury == 1000 * ANM - batch.totals.reward + batch.totals.charged
    assert stack.aicf.functions.escrowLocked().call() == 0
    before = {a: stack.balance(a) for a in (r.provider, r.other, r.miner, r.fund, r.requester)}
    for account in (r.provider, r.other, r.miner, r.fund, r.requester):
        claim(stack, tree, raw(account), sender=r.admin)  # anyone may send a claim; the tokens go to the account
    paid = {a: stack.balance(a) - before[a] for a in before}
    assert paid[r.provider] == sum(p.provider for p in batch.payouts if p.provider_id == P1)
    assert paid[r.other] == sum(p.provider for p in batch.payouts if p.provider_id == P2)
    assert paid[r.miner] == batch.totals.miner
    assert paid[r.fund] == batch.totals.fund
    assert paid[r.requester] == refund
    # what stays in the contract is exactly the treasury: every escrow and claim is accounted for
    assert stack.balance(stack.aicf.address) == treasury
    assert stack.aicf.functions.batches(0).call()[3] == tree.total


def test_a_second_claim_and_a_claim_with_a_wrong_proof_are_refused(stack: Stack) -> None:
    deposit(stack, 100 * ANM)
    r = stack.roles
    tree = build_claim_tree(0, {raw(r.provider): 7 * ANM, raw(r.other): 3 * ANM, raw(r.fund): ANM})
    post(stack, BatchPost(epoch=0, spec_root=b"\x01" * 32, totals=(11 * ANM, 11 * ANM, 0, 0, 0, 5),
                          escrow_released=0, claim_root=tree.root, claim_total=tree.total))  # fmt: skip
    c = tree.claim_for(raw(r.provider))
    f = stack.aicf.functions
    wrong_amount = f.claim(0, r.provider, c.amount + 1, list(c.proof))
    assert revert_of(wrong_amount, r.provider) == ("InvalidClaimProof", (0, r.provider, c.amount + 1))
    stolen = f.claim(0, r.requester, c.amount, list(c.proof))
    assert revert_of(stolen, r.requester) == ("InvalidClaimProof", (0, r.requester, c.amount))
    truncated = f.claim(0, r.provider, c.amount, list(c.proof[:-1]))
    assert revert_of(truncated, r.provider)[0] == "InvalidClaimProof"
    assert stack.balance(r.provider) == 0
    claim(stack, tree, raw(r.provider), sender=r.provider)
    assert stack.balance(r.provider) == 7 * ANM
    again = f.claim(0, r.provider, c.amount, list(c.proof))
    assert revert_of(again, r.provider) == ("AlreadyClaimed", (0, r.provider))
    assert stack.balance(r.provider) == 7 * ANM
    unposted = f.claim(1, r.provider, c.amount, list(c.proof))
    assert revert_of(unposted, r.provider) == ("BatchNotPosted", (1,))


def test_a_batch_posted_by_anyone_but_the_coordinator_reverts_and_changes_nothing(stack: Stack) -> None:
    deposit(stack, 10 * ANM)
    f = stack.aicf.functions
    call = f.postBatch(0, b"\x01" * 32, ZERO_TOTALS, 0, b"\x02" * 32, 0)
    assert revert_of(call, stack.roles.admin) == ("NotCoordinator", (stack.roles.admin,))
    assert (f.nextEpoch().call(), f.treasury().call()) == (0, 10 * ANM)


def test_bad_batches_revert_with_their_reason_and_change_nothing(stack: Stack) -> None:
    enqueue(stack, 1)
    deposit(stack, 10 * ANM)
    f, who = stack.aicf.functions, stack.roles.coordinator
    root = b"\x02" * 32
    cases = [
        (f.postBatch(1, root, ZERO_TOTALS, 0, root, 0), ("EpochOutOfOrder", (0, 1))),
        (f.postBatch(0, root, (10, 8, 1, 0, 0, 1), 0, root, 10), ("SplitMismatch", (10, 8, 1, 0))),
        (f.postBatch(0, root, (0, 0, 0, 0, 5, 0), 4, root, 0), ("ChargedAboveReleased", (5, 4))),
        (f.postBatch(0, root, ZERO_TOTALS, ESCROW + 1, root, ESCROW + 1), ("EscrowShort", (ESCROW, ESCROW + 1))),
        (f.postBatch(0, root, (11 * ANM, 11 * ANM, 0, 0, 0, 1), 0, root, 11 * ANM),
         ("TreasuryShort", (10 * ANM, 11 * ANM))),
        (f.postBatch(0, root, (10, 10, 0, 0, 3, 1), 5, root, 11), ("ClaimTotalMismatch", (11, 12))),
    ]  # fmt: skip
    for call, expected in cases:
        assert revert_of(call, who) == expected
    assert (f.nextEpoch().call(), f.treasury().call(), f.escrowLocked().call()) == (0, 10 * ANM, ESCROW)
    send(f.postBatch(0, root, ZERO_TOTALS, 0, bytes(32), 0), who)  # an empty batch: every epoch gets one
    assert revert_of(f.postBatch(0, root, ZERO_TOTALS, 0, root, 0), who) == ("EpochOutOfOrder", (1, 0))


def test_claim_gas_grows_with_the_merkle_path_only_and_a_batch_root_is_one_flat_transaction(stack: Stack) -> None:
    sizes = [2, 16, 128, 1000, 1024]
    deposit(stack, 10_000 * ANM)
    post_gas: dict[int, int] = {}
    claim_gas: dict[int, tuple[int, int]] = {}
    # epoch 0 empty: the first batch also turns nextEpoch from zero to non-zero, a one-off storage cost
    send(stack.aicf.functions.postBatch(0, bytes(32), ZERO_TOTALS, 0, bytes(32), 0), stack.roles.coordinator)
    for epoch, n in enumerate(sizes, start=1):
        # fresh accounts per tree, so every claim writes a new token balance and a new claimed flag
        amounts = {(epoch * 100_000 + i).to_bytes(20, "big"): ANM + i for i in range(1, n + 1)}
        tree = build_claim_tree(epoch, amounts)
        totals = (tree.total, tree.total, 0, 0, 0, n)
        post_gas[n] = post(stack, BatchPost(epoch=epoch, spec_root=tree.root, totals=totals, escrow_released=0,
                                            claim_root=tree.root, claim_total=tree.total))  # fmt: skip
        c = tree.claims[0]  # the first leaf has a sibling at every level
        assert len(c.proof) == math.ceil(math.log2(n))
        claim_gas[n] = (claim(stack, tree, c.account, sender=stack.roles.admin), len(c.proof))
    # a batch root costs the same whatever the number of payouts (calldata bytes aside)
    assert max(post_gas.values()) - min(post_gas.values()) < 500, post_gas
    # a claim costs a base plus a fixed price per proof element: fit it on the smallest and largest trees
    (g_small, d_small), (g_large, d_large) = claim_gas[2], claim_gas[1024]
    per_level = (g_large - g_small) / (d_large - d_small)
    assert 0 < per_level < 1000, claim_gas
    for gas, depth in claim_gas.values():
        assert abs(gas - (g_small + per_level * (depth - d_small))) < 100, claim_gas
    assert abs(claim_gas[1000][0] - claim_gas[1024][0]) < 100  # same path length, different sizes: same gas


def test_claims_never_pay_more_than_the_batch_total_even_if_its_tree_says_so(stack: Stack) -> None:
    deposit(stack, 100 * ANM)
    r = stack.roles
    tree = build_claim_tree(0, {raw(r.provider): 7 * ANM, raw(r.other): 3 * ANM})  # pays 10 ANM in all
    post(stack, BatchPost(epoch=0, spec_root=b"\x01" * 32, totals=(8 * ANM, 8 * ANM, 0, 0, 0, 1),
                          escrow_released=0, claim_root=tree.root, claim_total=8 * ANM))  # fmt: skip
    claim(stack, tree, raw(r.provider), sender=r.provider)
    c = tree.claim_for(raw(r.other))
    call = stack.aicf.functions.claim(0, r.other, c.amount, list(c.proof))
    assert revert_of(call, r.other) == ("ClaimExceedsBatch", (0, 10 * ANM, 8 * ANM))
    assert stack.balance(r.other) == 0
