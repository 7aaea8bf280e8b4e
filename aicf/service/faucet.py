"""Devnet faucets the operator runs for the demo (`aicf up`): mint from outside the ledger's supply, as the
devnet's fundProvider mints stake. Never part of a production deployment (docs/DECISIONS.md, issue 17)."""

from aicf.core.clock import Clock
from aicf.core.errors import RequestError
from aicf.core.ledger import EXTERNAL, FUND, Posting
from aicf.core.types import MicroAnm
from aicf.service.ports import Store

FUND_TOPUP_KIND = "fund_topup"


def top_up_fund(store: Store, clock: Clock, amount: int) -> int:
    """Mint `amount` µANM into the fund (so it can pay trap escrows); returns the fund's new balance."""
    if not 0 < amount < 2**63:
        raise RequestError("amount", f"must be 1..2^63-1 µANM, got {amount}")
    now = clock.now()
    with store.transaction() as tx:
        tx.post([Posting(debit=EXTERNAL, credit=FUND, amount=MicroAnm(amount), ref_kind=FUND_TOPUP_KIND, ref=b"")],
                None, now)  # fmt: skip
        balance = tx.balances([FUND])[FUND]
        tx.commit()
    return balance
