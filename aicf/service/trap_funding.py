"""What the fund pays for on the trap pass (aicf.service.trap_duties): the purse of one pass (the fund above its
floor and the trap budget, aicf.core.trap_budget), the grants it sends and follows like traps (aicf.service.grants),
the refunds it asks back (`trap_reclaim`) and the count of traps the budget held back."""

import logging
from dataclasses import replace

from aicf.core.encoding import decode_canonical
from aicf.core.jobs import JobStatus
from aicf.core.ledger import FUND, requester_account
from aicf.core.records import GrantRecord
from aicf.core.trap_budget import reclaimable
from aicf.service.context import TRAP_WARNING_EVERY_S, Context, TrapShortfall, Work
from aicf.service.grants import GrantCallerKeys
from aicf.service.operator_ops import caller_trap_account, trap_budget

log = logging.getLogger("aicf.coordinator")

TRAP_FINAL_STATUSES = (JobStatus.SETTLED, JobStatus.REJECTED, JobStatus.FAILED, JobStatus.CANCELLED)
# Final states whose refund is chain data (a batch's settlement postings, a final cancel or deadline): only these
# are reclaimed. A REJECTED or FAILED job is refunded by the coordinator's own verdict, off chain, so a node that
# follows the chain does not hold that refund and would move another amount: that refund stays with the caller.
CHAIN_REFUNDED = (JobStatus.SETTLED, JobStatus.CANCELLED)
MAX_TRAPS_PER_PASS = 16
RECLAIM_RESEND_S = 60  # a trap_reclaim still not ingested after this long is sent again (a lost transaction)
GRANT_ENQUEUE_WAIT_S = 600  # a sent grant whose enqueue is not on chain after this long is closed (and reclaimed)


class Purse:
    """What one pass may still spend on trap and grant escrows (µANM): the fund, and the trap budget bounded by the
    fund's chain balance above trap_fund_floor, less the fundings sent whose job is not ingested yet (taken as not
    on chain yet). Read from the store the first time a trap or grant asks (the budget sums the chain's batches
    and operator changes), so a pass with nothing to fund reads nothing. `held` once a due trap was held back."""

    def __init__(self, w: Work) -> None:
        self.w, self.held, self.capped = w, False, False
        self._left: tuple[int, int] | None = None

    def _load(self) -> tuple[int, int]:
        if self._left is None:
            tx, ctx = self.w.tx, self.w.ctx
            reserved = sum(t.funded for t in tx.open_traps(10_000) if not t.task_id)
            reserved += sum(g.funded for g in tx.open_grants(10_000) if g.sent_at is not None and not g.task_id)
            budget = trap_budget(tx, ctx.base_params or ctx.params)
            room = min(budget.available, budget.chain_fund - ctx.params.trap_fund_floor)  # the floor throttles too
            self._left = (tx.balances([FUND])[FUND] - reserved, room - reserved)
        return self._left

    @property
    def fund(self) -> int:
        return self._load()[0]

    @property
    def budget(self) -> int:
        return self._load()[1]

    def spend(self, amount: int) -> None:
        fund, budget = self._load()
        self._left = (fund - amount, budget - amount)

    def cap_fund(self, held: int) -> None:
        """Spend no more than `held`, what the chain itself holds for trap escrow (an EVM contract's trap fund,
        whose fundings are mined before the pass): a trap it cannot pay is held back like one the fund cannot."""
        fund, budget = self._load()
        self._left, self.capped = (min(fund, held), budget), True


def left_to_reclaim(w: Work, caller: bytes) -> int:
    """What a trap_reclaim of `caller` would move back to the fund now (aicf.core.trap_budget.reclaimable)."""
    funded, reclaimed = caller_trap_account(w.tx, caller)
    account = requester_account(caller)
    return reclaimable(w.tx.balances([account])[account], funded, reclaimed)


def reclaims_to_resend(w: Work) -> list[bytes]:
    """Callers whose trap_reclaim was sent RECLAIM_RESEND_S ago or more and is still not on chain (a lost
    transaction): sent again. One on chain is forgotten. The memory is the process's: after a restart a lost
    reclaim's refund stays with its caller (the budget stays lower, never higher)."""
    sent = w.ctx.caches.trap_reclaims
    again: list[bytes] = []
    for caller, at in list(sent.items()):
        if left_to_reclaim(w, caller) == 0:
            del sent[caller]
        elif w.now - at >= RECLAIM_RESEND_S:
            again.append(caller)
    return again


def new_grants(w: Work, purse: Purse) -> list[tuple[bytes, dict[str, object], int]]:
    """The grants requested and not sent yet, in order, while `purse` pays them; each is marked sent. On an EVM
    node (GrantCallerKeys) the purse is capped by the contract's trap fund and each caller's key is derived again
    (the process that took the request may have restarted); a grant whose caller is not that key's (recorded
    before grants had keys there) cannot be sent and is closed with nothing spent."""
    out: list[tuple[bytes, dict[str, object], int]] = []
    keyed = w.ctx.chain_writer if isinstance(w.ctx.chain_writer, GrantCallerKeys) else None
    for grant in w.tx.open_grants(MAX_TRAPS_PER_PASS * 4):
        if grant.sent_at is not None:
            continue
        if keyed is not None:
            if not purse.capped:
                purse.cap_fund(keyed.trap_fund_held())
            if keyed.grant_caller(w.ctx.trap_seed(grant.epoch), grant.m) != grant.caller:
                log.warning("grant %d not sent: its caller 0x%s has no key on this chain", grant.m, grant.caller.hex())
                w.tx.update_grant(replace(grant, sent_at=w.now, reclaimed=grant.funded, closed_at=w.now))
                continue
        if len(out) >= MAX_TRAPS_PER_PASS or purse.fund < grant.funded or purse.budget < grant.funded:
            break  # waits for the next pass, in order
        body = decode_canonical(grant.body)
        if not isinstance(body, dict):
            continue
        purse.spend(grant.funded)
        w.tx.update_grant(replace(grant, sent_at=w.now))
        out.append((grant.caller, {str(k): v for k, v in body.items()}, grant.funded))
    return out


def follow_grant(w: Work, grant: GrantRecord) -> bool:
    """Link a sent grant to its task; once the job is final (or its enqueue never landed within
    GRANT_ENQUEUE_WAIT_S) ask its refund back, then close it with what the chain says the fund got back. Returns
    whether to send its trap_reclaim."""
    tx, ctx, sent_at = w.tx, w.ctx, grant.sent_at
    if sent_at is None:
        return False
    jobs = tx.jobs_of_caller(grant.caller)
    job = jobs[-1] if jobs else None
    if job is not None and job.task_id != grant.task_id:
        grant = replace(grant, task_id=job.task_id)
        tx.update_grant(grant)
    done = job.status in TRAP_FINAL_STATUSES if job is not None else w.now - sent_at >= GRANT_ENQUEUE_WAIT_S
    if not done:
        return False
    chain_refund = job is None or job.status in CHAIN_REFUNDED  # no job: the funding itself is all there is
    if chain_refund and left_to_reclaim(w, grant.caller) > 0:  # closed once the reclaim is on chain
        return grant.caller not in ctx.caches.trap_reclaims
    funded, reclaimed = caller_trap_account(tx, grant.caller)
    # the allowance pays what the fund spent on chain: funded − reclaimed there (0 if the funding never landed)
    tx.update_grant(replace(grant, reclaimed=grant.funded - (funded - reclaimed), closed_at=w.now))
    return False


def note_throttled_trap(ctx: Context, model: str, escrow: int, budget: int, now: int) -> None:
    """Count a due trap the trap budget could not pay (aicf_traps_throttled_total, the trap_budget_throttled
    alarm); warn at most once per TRAP_WARNING_EVERY_S per model."""
    throttles = ctx.caches.trap_throttles
    last = throttles.get(model)
    count = (last.count if last else 0) + 1
    if last is None or now - last.warned_at >= TRAP_WARNING_EVERY_S:
        since = f"; {count - last.warned_count} since the last warning" if last else ""
        log.warning(
            "traps throttled by the trap budget: %d µANM left, a %s trap's escrow is %d µANM%s",
            budget,
            model,
            escrow,
            since,
        )
        throttles[model] = TrapShortfall(count=count, escrow=escrow, warned_at=now, warned_count=count)
    else:
        throttles[model] = replace(last, count=count, escrow=escrow)
