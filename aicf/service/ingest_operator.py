"""Operator transactions in a block (aicf.core.operator, docs/OPERATOR.md): params changes scheduled for the next
epoch, tiers, the allowlist, trap funding and the fund's top-up, trap seed commitments and reveals."""

from aicf.core.chain import Block, ChainTx
from aicf.core.encoding import canonical_cbor
from aicf.core.errors import RequestError
from aicf.core.ids import trap_seed_commitment
from aicf.core.ledger import EXTERNAL, FUND, Posting, requester_account
from aicf.core.operator import (
    OP_ALLOWLIST,
    OP_FUND_TOPUP,
    OP_GRANT,
    OP_PARAMS,
    OP_TIER,
    OP_TRAP_COMMIT,
    OP_TRAP_FUND,
    OP_TRAP_RECLAIM,
    OP_TRAP_REVEAL,
    OperatorChange,
    apply_params_changes,
    body_bytes,
    body_int,
    epoch_subject,
    operator_op,
    params_changes,
    params_diff,
)
from aicf.core.params import Params
from aicf.core.trap_budget import check_trap_fund, reclaimable
from aicf.core.txs import address_of
from aicf.core.types import MAX_AMOUNT, MicroAnm
from aicf.service.ingest_work import BlockWork, balance, refuse
from aicf.service.operator_ops import (
    allowlist,
    caller_trap_account,
    check_gamma,
    grant_allowance,
    params_for_epoch,
    trap_budget,
    trap_commitment,
    trap_reveal,
)
from aicf.store.interface import Tx


def operator_tx(
    tx: Tx, work: BlockWork, block: Block, ctx: ChainTx, epoch: int, base: Params, operator_key: bytes | None
) -> None:
    try:
        _operator(tx, work, block, ctx, epoch, base, operator_key)
    except RequestError as exc:
        refuse(work, block, ctx, exc)


def _operator(
    tx: Tx, work: BlockWork, block: Block, ctx: ChainTx, epoch: int, base: Params, operator_key: bytes | None
) -> None:
    """An operator transaction (aicf.core.operator): refused unless its sender is the operator's address; each
    applied one is an OperatorChange row at this height, so a reorg undoes it with its block."""
    if operator_key is None:
        raise RequestError("sender", "this node knows no operator key: operator transactions are refused")
    if ctx.sender != address_of(operator_key):
        raise RequestError("sender", f"0x{ctx.sender.hex()} is not the operator: operator transactions are refused")
    op = operator_op(ctx.body)
    body = ctx.body
    subject, before, after, effective = b"", b"", b"", epoch
    if op == OP_PARAMS:
        current = work.scheduled or params_for_epoch(tx, base, epoch + 1)
        changes = params_changes(body)
        scheduled = apply_params_changes(current, changes)
        largest = max([tx.max_unsettled_units(), *(j.max_units_mu for j in work.jobs)])
        check_gamma(scheduled, largest)
        before, after = params_diff(current, changes)
        work.scheduled, effective = scheduled, epoch + 1
    elif op == OP_TIER:
        address, tier = body_bytes(body, "address"), body_int(body, "tier")
        if address not in work.tiers:
            work.tiers[address] = tx.requester_tier(address)
        subject, before, after = address, canonical_cbor(work.tiers[address]), canonical_cbor(tier)
        work.tiers[address] = tier
    elif op == OP_ALLOWLIST:
        pid = body_bytes(body, "provider_id")
        listed = pid in allowlist(tx, ()) if not work.changes else _listed_in_block(tx, work, pid)
        subject, before, after = pid, canonical_cbor(listed), canonical_cbor(body["action"] == "add")
    elif op in (OP_TRAP_FUND, OP_FUND_TOPUP):
        amount = body_int(body, "amount")
        source = FUND if op == OP_TRAP_FUND else EXTERNAL
        target = FUND if op == OP_FUND_TOPUP else requester_account(body_bytes(body, "to"))
        have, held = balance(tx, work, source), balance(tx, work, target)
        if source == FUND:  # the trap budget (aicf.core.trap_budget): bounded by the fund's income and top-ups
            check_trap_fund(amount, trap_budget(tx, base, work.changes), have, params_for_epoch(tx, base, epoch))
        if source == EXTERNAL and have - amount <= -MAX_AMOUNT:
            raise RequestError("amount", f"the supply would pass 2^63 µANM ({-have} minted so far)")
        if held + amount >= MAX_AMOUNT:
            raise RequestError("amount", f"{target} would exceed 2^63 µANM")
        work.balances[source], work.balances[target] = have - amount, held + amount
        ref_kind = "trap_funding" if op == OP_TRAP_FUND else "fund_topup"
        work.postings.append(
            Posting(debit=source, credit=target, amount=MicroAnm(amount), ref_kind=ref_kind, ref=ctx.tx_hash)
        )
        subject = body_bytes(body, "to") if op == OP_TRAP_FUND else b""
        before, after = canonical_cbor(held), canonical_cbor(held + amount)
    elif op == OP_GRANT:
        subject = body_bytes(body, "requester")
        before = canonical_cbor(grant_allowance(tx, subject, work.changes))
        after = canonical_cbor(body_int(body, "allowance"))
    elif op == OP_TRAP_RECLAIM:
        subject = body_bytes(body, "from")
        before, after = _reclaim(tx, work, subject, ctx.tx_hash)
    else:
        target_epoch = body_int(body, "epoch")
        subject, effective = epoch_subject(target_epoch), target_epoch
        committed = trap_commitment(tx, target_epoch) or next(
            (c for c in work.changes if c.op == OP_TRAP_COMMIT and c.subject == subject), None
        )
        if op == OP_TRAP_COMMIT:
            if target_epoch < epoch or (target_epoch == epoch and epoch > 0):
                raise RequestError("epoch", f"epoch {target_epoch} has begun (this block is in epoch {epoch})")
            if target_epoch > epoch + 1000:
                raise RequestError("epoch", f"more than 1000 epochs ahead of this block's epoch {epoch}")
            if committed is not None:
                raise RequestError("epoch", f"epoch {target_epoch} already has a trap seed commitment")
            after = body_bytes(body, "commitment")
        else:
            if target_epoch >= epoch:
                raise RequestError("epoch", f"epoch {target_epoch} is not over (this block is in epoch {epoch})")
            if committed is None:
                raise RequestError("epoch", f"epoch {target_epoch} has no trap seed commitment on chain")
            if trap_reveal(tx, target_epoch) is not None or any(
                c.op == OP_TRAP_REVEAL and c.subject == subject for c in work.changes
            ):
                raise RequestError("epoch", f"epoch {target_epoch}'s trap seed is already revealed")
            seed = body_bytes(body, "seed")
            if trap_seed_commitment(seed) != committed.after:
                raise RequestError("seed", f"does not match epoch {target_epoch}'s commitment")
            before, after = committed.after, seed
    work.changes.append(
        OperatorChange(
            height=block.height,
            tx_index=ctx.index,
            tx_hash=ctx.tx_hash,
            sender=ctx.sender,
            op=op,
            subject=subject,
            before=before,
            after=after,
            effective_epoch=effective,
            time=block.time,
        )
    )


def _reclaim(tx: Tx, work: BlockWork, caller: bytes, tx_hash: bytes) -> tuple[bytes, bytes]:
    """trap_reclaim: requester:<caller> → fund, at most what trap_fund paid the caller and was not reclaimed yet;
    refused for a caller the fund never paid or with nothing to take back. Job states are not read: leases and
    verdicts are the coordinator's, so a node that follows only the chain may not know them; the coordinator sends
    it once the trap's job is final, and a refund that arrives later can be reclaimed by another. Returns the
    caller's balance before and after, canonical CBOR."""
    funded, reclaimed = caller_trap_account(tx, caller, work.changes)
    if funded == 0:
        raise RequestError("from", f"0x{caller.hex()} was never paid by a trap_fund")
    account = requester_account(caller)
    held = balance(tx, work, account)
    amount = reclaimable(held, funded, reclaimed)
    if amount == 0:
        raise RequestError("from", f"0x{caller.hex()} holds nothing the fund paid it and has not reclaimed")
    fund = balance(tx, work, FUND)
    if fund + amount >= MAX_AMOUNT:
        raise RequestError("from", "the fund would exceed 2^63 µANM")
    work.balances[account], work.balances[FUND] = held - amount, fund + amount
    work.postings.append(
        Posting(debit=account, credit=FUND, amount=MicroAnm(amount), ref_kind="trap_reclaim", ref=tx_hash)
    )
    return canonical_cbor(held), canonical_cbor(held - amount)


def _listed_in_block(tx: Tx, work: BlockWork, pid: bytes) -> bool:
    listed = pid in allowlist(tx, ())
    for c in work.changes:
        if c.op == OP_ALLOWLIST and c.subject == pid:
            listed = c.after == canonical_cbor(True)
    return listed
