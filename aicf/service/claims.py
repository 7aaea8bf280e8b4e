"""Payout claims (SPEC §11): a provider withdraws its whole balance, idempotently on the claim id."""

from aicf.core.chain import Claim
from aicf.core.ids import claim_id
from aicf.core.ledger import EXTERNAL, Posting, provider_account
from aicf.core.types import MAX_AMOUNT, MicroAnm
from aicf.service.context import Context, unit_of_work
from aicf.service.errors import StakeError
from aicf.service.steps import require_provider


def claim_payout(ctx: Context, pid: bytes, nonce: int) -> Claim:
    """Withdraw the provider's whole balance; idempotent on claim_id = H("aicf/claim/v1", provider, nonce).
    A new claim of an empty balance raises StakeError and stores nothing. A BANNED provider may still claim
    what its released stake and earnings left in its account."""
    if isinstance(nonce, bool) or not 0 <= nonce < MAX_AMOUNT:
        raise StakeError(f"claim nonce must be >= 0 and < 2^63, got {nonce}")
    cid = claim_id(pid, nonce)
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        require_provider(tx, pid)
        first = tx.get_claim(cid)
        if first is not None:
            return first
        account = provider_account(pid)
        amount = tx.balances([account])[account]
        if amount <= 0:  # issue 15: an empty claim would only add a record per call
            raise StakeError(f"nothing to claim: {account} holds 0 µANM (no claim was made)")
        claim = Claim(claim_id=cid, provider_id=pid, amount=MicroAnm(amount), time=now)
        tx.insert_claim(claim)
        tx.post(
            [Posting(debit=account, credit=EXTERNAL, amount=MicroAnm(amount), ref_kind="claim", ref=cid)],
            None,
            now,
        )
        w.commit()
    return claim
