"""The operator's use-cases (issue 17 item 7; the chain's sums are in aicf.service.operator_ops): check an operator
change as ingestion would and send it signed by the operator key (aicf.setParams / setTier / setAllowlist /
fundTraps / setGrant), and what getStatus shows of the params versions and the operator changes."""

from collections.abc import Mapping, Sequence

from aicf.core.encoding import canonical_cbor, decode_canonical
from aicf.core.ledger import FUND
from aicf.core.operator import (
    OP_ALLOWLIST,
    OP_FUND_TOPUP,
    OP_GRANT,
    OP_PARAMS,
    OP_TIER,
    OP_TRAP_COMMIT,
    OP_TRAP_FUND,
    OP_TRAP_REVEAL,
    OperatorChange,
    apply_params_changes,
    body_int,
    operator_op,
    params_changes,
)
from aicf.core.params import Params
from aicf.core.trap_budget import check_trap_fund
from aicf.service.operator_ops import OperatorSender, check_gamma, params_for_epoch, params_version, trap_budget
from aicf.store.interface import Store


# -- the use-cases behind aicf.setParams / setTier / setAllowlist / fundTraps ------------------------------------
def check_params_change(store: Store, base: Params, changes: Mapping[str, object]) -> Params:
    """Raise RequestError naming the key if ingestion would refuse this params change now: an unknown or ill-typed
    key, a key fixed for the chain's life, a params object that does not validate once the change is applied to
    the params scheduled for the next epoch, or Γ × 1000 below the largest max_units_mu of an unsettled job
    (SPEC §5). Returns the params the change would schedule."""
    body = {"op": OP_PARAMS, "changes": dict(changes)}
    operator_op(body)
    with store.transaction() as tx:
        head = tx.head_block()
        epoch = 0 if head is None else head.epoch
        scheduled = params_for_epoch(tx, base, epoch + 1)
        after = apply_params_changes(scheduled, params_changes(body))
        check_gamma(after, tx.max_unsettled_units())
    return after


def send_operator(store: Store, sender: OperatorSender, base: Params, body: Mapping[str, object]) -> bytes:
    """Check an operator body as ingestion would (shape; a params change against the scheduled params and Γ; a
    trap funding against the fund and the trap budget) and send it; returns the transaction hash. Nothing is sent
    on an error."""
    op = operator_op(body)
    if op == OP_PARAMS:
        check_params_change(store, base, params_changes(body))
    elif op == OP_TRAP_FUND:
        with store.transaction() as tx:
            fund = tx.balances([FUND])[FUND]
            head = tx.head_block()
            params = params_for_epoch(tx, base, 0 if head is None else head.epoch)
            budget = trap_budget(tx, base)
        check_trap_fund(body_int(body, "amount"), budget, fund, params)
    return sender.send_operator(body)


def tier_body(address: bytes, tier: int) -> dict[str, object]:
    return {"op": OP_TIER, "address": address, "tier": tier}


def allowlist_body(action: str, provider_id: bytes) -> dict[str, object]:
    return {"op": OP_ALLOWLIST, "action": action, "provider_id": provider_id}


def fund_body(amount: int, to: bytes | None) -> dict[str, object]:
    """A trap funding (fund → requester:<to>) or, without `to`, a devnet top-up of the fund (external → fund)."""
    if to is None:
        return {"op": OP_FUND_TOPUP, "amount": amount}
    return {"op": OP_TRAP_FUND, "to": to, "amount": amount}


def grant_body(requester: bytes, allowance: int) -> dict[str, object]:
    return {"op": OP_GRANT, "requester": requester, "allowance": allowance}


# -- what getStatus shows --------------------------------------------------------------------------------------
def render_change(c: OperatorChange, head_epoch: int) -> dict[str, object]:
    def show(raw: bytes) -> object:
        if c.op in (OP_TRAP_COMMIT, OP_TRAP_REVEAL):  # raw 32-byte commitments and seeds, not CBOR
            return "0x" + raw.hex() if raw else None
        value = decode_canonical(raw) if raw else None
        if isinstance(value, bytes):
            return "0x" + value.hex()
        if isinstance(value, dict):
            return {str(k): show(canonical_cbor(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [show(canonical_cbor(v)) for v in value]
        return value

    return {
        "op": c.op,
        "tx_hash": "0x" + c.tx_hash.hex(),
        "sender": "0x" + c.sender.hex(),
        "subject": "0x" + c.subject.hex() if c.subject else "",
        "before": show(c.before),
        "after": show(c.after),
        "height": c.height,
        "effective_epoch": c.effective_epoch,
        "state": "pending" if c.effective_epoch > head_epoch else "applied",
    }


def operator_status(store: Store, base: Params, limit: int = 20) -> dict[str, object]:
    """The params version in force and scheduled, and the newest operator changes (pending and applied)."""
    with store.transaction() as tx:
        head = tx.head_block()
        epoch = 0 if head is None else head.epoch
        now, nxt = params_version(tx, base, epoch), params_version(tx, base, epoch + 1)
        changes: Sequence[OperatorChange] = tx.recent_operator_changes(limit)
    return {
        "epoch": epoch,
        "params_version": now.version,
        "params_hash": "0x" + now.params_hash.hex(),
        "next_params_version": nxt.version,
        "next_params_hash": "0x" + nxt.params_hash.hex(),
        "pending": [render_change(c, epoch) for c in changes if c.effective_epoch > epoch],
        "applied": [render_change(c, epoch) for c in changes if c.effective_epoch <= epoch],
    }
