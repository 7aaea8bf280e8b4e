"""Issue 16, item 4: the settlement postings and the provider's state after a slash are pure core rules."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.errors import EscrowShortfallError, SettlementInputError
from aicf.core.ledger import TREASURY, escrow_account
from aicf.core.params import Params
from aicf.core.registry import ProviderStatus
from aicf.core.settlement import Payout, PayoutEscrow, settlement_postings
from aicf.core.slashing import SlashReason, StakeState, slash_outcome

P = Params.default()
NOW = 1_700_000_000
amounts = st.integers(0, 10**12)


def _payout(n: int, provider: int, miner: int, fund: int, charged: int) -> Payout:
    b = bytes([n]) * 32
    return Payout(payout_id=b, epoch=0, task_id=b, provider_id=b, miner_id=b, proof_id=b, units_mu=0, base_rate=0,
                  price_bps=0, reward=provider + miner + fund, provider=provider, miner=miner, fund=fund,
                  charged=charged, params_hash=b"")  # fmt: skip


@given(st.lists(st.tuples(amounts, amounts, amounts, amounts, amounts), max_size=6))
def test_postings_empty_every_escrow_and_move_the_treasury_by_charge_less_reward(
    rows: list[tuple[int, int, int, int, int]],
) -> None:
    payouts = [_payout(n, *row[:4]) for n, row in enumerate(rows)]
    escrows = {
        p.task_id: PayoutEscrow(held=p.charged + row[4], caller=b"\x01" * 20)
        for p, row in zip(payouts, rows, strict=True)
    }
    postings = settlement_postings(payouts, escrows)
    assert all(x.amount > 0 for x in postings)
    for p in payouts:
        out_of_escrow = sum(x.amount for x in postings if x.debit == escrow_account(p.task_id))
        assert out_of_escrow == escrows[p.task_id].held
    treasury = sum(x.amount for x in postings if x.credit == TREASURY) - sum(
        x.amount for x in postings if x.debit == TREASURY
    )
    assert treasury == sum(p.charged - p.provider - p.miner - p.fund for p in payouts)


def test_a_charge_above_its_escrow_is_an_escrow_shortfall_naming_the_task() -> None:
    payout = _payout(7, 10, 1, 1, 12)
    with pytest.raises(EscrowShortfallError, match="charged 12 exceeds its escrow of 11") as caught:
        settlement_postings([payout], {payout.task_id: PayoutEscrow(held=11, caller=b"\x01" * 20)})
    assert caught.value.task_id == payout.task_id


def test_a_payout_without_an_escrow_entry_is_refused() -> None:
    with pytest.raises(SettlementInputError, match="no escrow entry"):
        settlement_postings([_payout(3, 1, 0, 0, 0)], {})


@given(
    st.sampled_from(list(ProviderStatus)),
    amounts,
    amounts,
    st.sampled_from(list(SlashReason)),
    st.lists(st.integers(NOW - 2 * P.ban_window_s, NOW), max_size=4),
)
def test_a_slash_only_moves_stake_out_and_leaves_a_jailed_or_banned_provider(
    status: ProviderStatus, bonded: int, unbonding: int, reason: SlashReason, earlier: list[int]
) -> None:
    before = StakeState(status=status, bonded=bonded, unbonding=unbonding, jailed_until=None, unbonding_until=0)
    out = slash_outcome(b"\x09" * 32, before, reason, NOW, earlier, P)
    after = out.state
    assert after.bonded + after.unbonding + out.amount.total == bonded + unbonding
    assert after.status in (ProviderStatus.JAILED, ProviderStatus.BANNED)
    if after.status is ProviderStatus.BANNED and status is not ProviderStatus.BANNED:
        assert after.bonded == 0


def test_the_third_slash_within_the_window_bans_and_unbonds_what_is_left() -> None:
    before = StakeState(
        status=ProviderStatus.JAILED, bonded=1_000, unbonding=0, jailed_until=NOW + 5, unbonding_until=0
    )
    out = slash_outcome(b"\x09" * 32, before, SlashReason.MISSED_LEASE, NOW, [NOW - 100, NOW - 50], P)
    assert out.state == StakeState(
        status=ProviderStatus.BANNED, bonded=0, unbonding=990, jailed_until=0, unbonding_until=NOW + P.unbonding_s
    )
    assert out.jailed_until == NOW + P.jail_s["MISSED_LEASE"]
