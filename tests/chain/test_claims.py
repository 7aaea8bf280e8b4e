"""The EVM claim tree (aicf/chain/claims.py), without a node: proofs verify, nothing else does, the path is
log2 of the accounts, and a settlement batch's shares land on the right accounts in exact amounts."""

import math

import pytest
from eth_hash.auto import keccak

from aicf.chain.claims import (
    EMPTY_ROOT,
    ClaimTreeError,
    batch_claim_amounts,
    batch_post,
    build_claim_tree,
    claim_leaf,
    claim_tree_for_batch,
    hash_pair,
    refunds_of,
    verify_claim,
)
from aicf.core.ledger import EXTERNAL, Posting, requester_account
from aicf.core.params import Params
from aicf.core.settlement import SettlementBatch, VerifiedJob, refund_claim_postings, settle_epoch
from aicf.core.types import MicroAnm


def addr(i: int) -> bytes:
    return i.to_bytes(20, "big")


def test_leaf_is_keccak_of_the_abi_encoded_epoch_account_amount() -> None:
    # keccak256(abi.encode(uint256(7), address(0x..01), uint256(5))): three big-endian 32-byte words (the
    # contract computes the same leaf in the anvil tests, where these trees pay real claims).
    word = (7).to_bytes(32, "big") + bytes(12) + addr(1) + (5).to_bytes(32, "big")
    assert claim_leaf(7, addr(1), 5) == keccak(word)


def test_a_pair_hashes_the_same_in_either_order() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    assert hash_pair(a, b) == hash_pair(b, a) != hash_pair(a, a)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 100])
def test_every_claim_verifies_and_its_path_is_at_most_log2_of_the_accounts(n: int) -> None:
    tree = build_claim_tree(3, {addr(i): 1000 + i for i in range(1, n + 1)})
    assert tree.total == sum(1000 + i for i in range(1, n + 1))
    assert [c.account for c in tree.claims] == sorted(addr(i) for i in range(1, n + 1))
    for claim in tree.claims:
        assert verify_claim(tree.root, claim)
        assert len(claim.proof) <= math.ceil(math.log2(n)) if n > 1 else claim.proof == ()


def test_a_claim_for_another_amount_account_or_epoch_does_not_verify() -> None:
    tree = build_claim_tree(3, {addr(i): 10 * i for i in range(1, 6)})
    claim = tree.claim_for(addr(2))
    assert verify_claim(tree.root, claim)
    for forged in (
        type(claim)(epoch=3, account=claim.account, amount=claim.amount + 1, leaf=claim.leaf, proof=claim.proof),
        type(claim)(epoch=3, account=addr(9), amount=claim.amount, leaf=claim.leaf, proof=claim.proof),
        type(claim)(epoch=4, account=claim.account, amount=claim.amount, leaf=claim.leaf, proof=claim.proof),
        type(claim)(epoch=3, account=claim.account, amount=claim.amount, leaf=claim.leaf, proof=claim.proof[:-1]),
    ):
        assert not verify_claim(tree.root, forged)


def test_zero_amounts_get_no_leaf_and_an_empty_tree_has_the_zero_root() -> None:
    assert build_claim_tree(0, {}).root == EMPTY_ROOT
    tree = build_claim_tree(0, {addr(1): 0, addr(2): 4})
    assert [c.account for c in tree.claims] == [addr(2)]
    assert tree.root == claim_leaf(0, addr(2), 4)


def test_bad_accounts_and_amounts_are_refused_naming_the_field() -> None:
    with pytest.raises(ClaimTreeError, match="account: expected a 20-byte address, got 32 bytes"):
        build_claim_tree(0, {b"\x01" * 32: 1})
    with pytest.raises(ClaimTreeError, match="amount of 0x"):
        build_claim_tree(0, {addr(1): -1})
    with pytest.raises(ClaimTreeError, match="claim total"):
        build_claim_tree(0, {addr(1): 2**62, addr(2): 2**62})
    with pytest.raises(ClaimTreeError, match="has no claim in epoch 0"):
        build_claim_tree(0, {addr(1): 1}).claim_for(addr(2))


P1, P2 = b"\x11" * 32, b"\x22" * 32
MINER, FUND, OWNER1, OWNER2, REQUESTER = addr(0xAA), addr(0xF0), addr(0x01), addr(0x02), addr(0x0E)


def sample_batch(epoch: int = 0, treasury: int = 10**12) -> SettlementBatch:
    jobs = [
        VerifiedJob(
            task_id=bytes([i]) * 32,
            provider_id=P1 if i % 2 else P2,
            miner_id=MINER,
            proof_id=bytes([0x80 + i]) * 32,
            kind="ai",
            priority_class=0,
            proof_height=10 + i,
            tx_index=0,
            units_mu=1_000_000 + 7 * i,
            fee_per_unit=15000,
        )
        for i in range(1, 6)
    ]
    return settle_epoch(
        epoch=epoch, finalized_height=20, jobs=jobs, treasury=treasury, price_bps=10000, params=Params.default()
    )


def test_batch_shares_go_to_payees_miner_and_fund_in_exact_totals() -> None:
    batch = sample_batch()
    amounts = batch_claim_amounts(batch, payees={P1: OWNER1, P2: OWNER2}, fund_account=FUND, refunds={REQUESTER: 9})
    assert amounts[OWNER1] == sum(p.provider for p in batch.payouts if p.provider_id == P1)
    assert amounts[OWNER2] == sum(p.provider for p in batch.payouts if p.provider_id == P2)
    assert amounts[MINER] == batch.totals.miner
    assert amounts[FUND] == batch.totals.fund
    assert amounts[REQUESTER] == 9
    tree = claim_tree_for_batch(batch, payees={P1: OWNER1, P2: OWNER2}, fund_account=FUND, refunds={REQUESTER: 9})
    assert tree.total == batch.totals.reward + 9
    post = batch_post(batch, tree)
    assert post.claim_total == post.totals[0] + post.escrow_released - post.totals[4]
    assert (post.spec_root, post.claim_root, post.escrow_released) == (batch.root, tree.root, batch.totals.charged + 9)


def test_an_unowned_providers_share_goes_to_the_fund_and_the_batch_still_balances() -> None:
    batch = sample_batch()
    amounts = batch_claim_amounts(batch, payees={P2: OWNER2}, fund_account=FUND)
    p1_share = sum(p.provider for p in batch.payouts if p.provider_id == P1)
    assert p1_share > 0
    assert amounts[FUND] == batch.totals.fund + p1_share
    assert OWNER1 not in amounts
    post = batch_post(batch, claim_tree_for_batch(batch, payees={P2: OWNER2}, fund_account=FUND))
    assert (post.claim_total, post.escrow_released) == (batch.totals.reward, batch.totals.charged)


def test_refund_claim_postings_become_refund_leaves_that_verify() -> None:
    batch = sample_batch()
    postings = refund_claim_postings(0, {requester_account(REQUESTER): 9, requester_account(OWNER1): 4})
    refunds = refunds_of(postings)
    assert refunds == {REQUESTER: 9, OWNER1: 4}
    tree = claim_tree_for_batch(batch, payees={P1: OWNER1, P2: OWNER2}, fund_account=FUND, refunds=refunds)
    # OWNER1 is paid as a provider's owner and refunded as a requester: one leaf, the sum, claimed once.
    owner1 = tree.claim_for(OWNER1)
    assert owner1.amount == 4 + sum(p.provider for p in batch.payouts if p.provider_id == P1)
    assert verify_claim(tree.root, owner1)
    assert verify_claim(tree.root, tree.claim_for(REQUESTER))
    assert tree.claim_for(REQUESTER).amount == 9
    post = batch_post(batch, tree)
    assert post.escrow_released == batch.totals.charged + 13
    assert post.claim_total == batch.totals.reward + 13


def test_postings_that_are_not_refund_claims_or_not_addresses_are_refused() -> None:
    with pytest.raises(ClaimTreeError, match="is not a requester's refund claim"):
        refunds_of([Posting(debit="fund", credit=EXTERNAL, amount=MicroAnm(1), ref_kind="claim", ref=b"")])
    with pytest.raises(ClaimTreeError, match="expected a 20-byte address, got 32 bytes"):
        refunds_of(refund_claim_postings(0, {requester_account(b"\x01" * 32): 1}))


def test_a_miner_id_that_is_no_address_is_refused() -> None:
    odd = settle_epoch(
        epoch=0,
        finalized_height=20,
        jobs=[
            VerifiedJob(
                task_id=b"\x01" * 32, provider_id=P1, miner_id=b"\x0a" * 32, proof_id=b"\x02" * 32, kind="ai",
                priority_class=0, proof_height=1, tx_index=0, units_mu=1000, fee_per_unit=15000,
            )
        ],
        treasury=10**9,
        price_bps=10000,
        params=Params.default(),
    )  # fmt: skip
    with pytest.raises(ClaimTreeError, match=r"miner_id of payout 0x.*: expected a 20-byte address"):
        batch_claim_amounts(odd, payees={P1: OWNER1}, fund_account=FUND)


def test_batch_post_refuses_a_tree_of_another_epoch_or_one_short_of_the_reward() -> None:
    batch = sample_batch()
    with pytest.raises(ClaimTreeError, match="claim tree is for epoch 1, batch for epoch 0"):
        batch_post(batch, build_claim_tree(1, {}))
    with pytest.raises(ClaimTreeError, match=f"claim tree pays 5, less than the batch's reward {batch.totals.reward}"):
        batch_post(batch, build_claim_tree(0, {addr(1): 5}))
