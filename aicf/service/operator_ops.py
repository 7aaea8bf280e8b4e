"""Operator decisions on chain (issue 17 item 7; aicf.core.operator): what the applied operator transactions add up
to (params in force per epoch, the operator allowlist, trap seed commitments, the trap budget and grants) and the
Γ check ingestion shares with the use-cases. The use-cases that check an operator change as ingestion would and
send it signed by the operator key, and what getStatus shows of them, are in aicf.service.operator_calls.

Everything here reads the `operator_changes` rows ingestion wrote from the chain, so a node that follows the
same chain derives the same params, tiers and allowlist at the same height.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aicf.core.encoding import decode_canonical
from aicf.core.errors import RequestError
from aicf.core.operator import (
    OP_ALLOWLIST,
    OP_FUND_TOPUP,
    OP_GRANT,
    OP_PARAMS,
    OP_TRAP_COMMIT,
    OP_TRAP_FUND,
    OP_TRAP_RECLAIM,
    OP_TRAP_REVEAL,
    OperatorChange,
    apply_params_changes,
    epoch_subject,
    params_map,
    wire_value,
)
from aicf.core.params import Params, params_hash
from aicf.core.trap_budget import TrapBudget, batch_trap_income
from aicf.service.context import Caches
from aicf.store.interface import Store, Tx, read_transaction


@runtime_checkable
class OperatorSender(Protocol):
    """Signs an operator transaction with the operator key and sends it (the devnet writer)."""

    def send_operator(self, body: Mapping[str, object]) -> bytes: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamsVersion:
    """The params of one epoch: version 0 is the node's params file, each applied params change adds one."""

    epoch: int
    version: int
    params: Params
    params_hash: bytes
    tx_hash: bytes  # the operator transaction of the last change in force (b"" for version 0)


def params_version(tx: Tx, base: Params, epoch: int) -> ParamsVersion:
    """The params in force in `epoch`: `base` with every params change whose effective epoch ≤ `epoch`, in chain
    order. Changes are scheduled for the epoch after their block's, so each epoch's params are fixed."""
    params, version, last = base, 0, b""
    for change in tx.operator_changes_of(OP_PARAMS):
        if change.effective_epoch > epoch:
            break
        params = apply_params_changes(params, params_map(change.after))
        version, last = version + 1, change.tx_hash
    return ParamsVersion(epoch=epoch, version=version, params=params, params_hash=params_hash(params), tx_hash=last)


def params_of_epoch(store: Store, base: Params, epoch: int | None) -> dict[str, object]:
    """aicf.getParams: the params version of `epoch` (default: the head's) and the on-chain changes it is made of,
    so an auditor applies them to the params file and gets the params the epoch's batch used."""
    with store.transaction() as tx:
        if epoch is None:
            head = tx.head_block()
            epoch = 0 if head is None else head.epoch
        version = params_version(tx, base, epoch)
        changes = [c for c in tx.operator_changes_of(OP_PARAMS) if c.effective_epoch <= epoch]
    return {
        "epoch": epoch,
        "version": version.version,
        "params_hash": "0x" + version.params_hash.hex(),
        "changes": [
            {
                "tx_hash": "0x" + c.tx_hash.hex(),
                "height": c.height,
                "effective_epoch": c.effective_epoch,
                "changes": {k: wire_value(v) for k, v in params_map(c.after).items()},
            }
            for c in changes
        ],
    }


def params_for_epoch(tx: Tx, base: Params, epoch: int) -> Params:
    return params_version(tx, base, epoch).params if tx.operator_changes_of(OP_PARAMS) else base


def params_in_force(store: Store, base: Params, epoch: int | None = None) -> Params:
    """The params of `epoch` (default: the head's): `base`, the node's params file, with the on-chain changes
    effective by then. Every read that depends on params judges by these, as settlement and matching do."""
    with read_transaction(store) as tx:
        if epoch is None:
            head = tx.head_block()
            epoch = 0 if head is None else head.epoch
        return params_for_epoch(tx, base, epoch)


def allowlist(tx: Tx, base: Iterable[bytes]) -> frozenset[bytes]:
    """The operator allowlist: `base` (the node's configuration) with each applied add/remove, in chain order."""
    out = set(base)
    for change in tx.operator_changes_of(OP_ALLOWLIST):
        if decode_canonical(change.after) is True:
            out.add(change.subject)
        else:
            out.discard(change.subject)
    return frozenset(out)


def follow_chain(
    store: Store, caches: Caches, base: tuple[Params, frozenset[bytes]], current: tuple[Params, frozenset[bytes]]
) -> tuple[Params, frozenset[bytes]]:
    """The params of the ingested head's epoch and the allowlist the chain sets, from the node's configured
    `base`; the matcher's cached pools are dropped when either differs from `current`."""
    with store.transaction() as tx:
        head = tx.head_block()
        params = params_for_epoch(tx, base[0], 0 if head is None else head.epoch)
        listed = allowlist(tx, base[1])
    if (params, listed) != current:
        caches.registry = None  # the pools were built for the old params or allowlist
    return params, listed


def trap_commitment(tx: Tx, epoch: int) -> OperatorChange | None:
    found = tx.operator_changes_of(OP_TRAP_COMMIT, epoch_subject(epoch))
    return found[0] if found else None


def trap_reveal(tx: Tx, epoch: int) -> OperatorChange | None:
    found = tx.operator_changes_of(OP_TRAP_REVEAL, epoch_subject(epoch))
    return found[0] if found else None


def change_amount(c: OperatorChange) -> int:
    """What a trap_fund, fund_topup (credited balance after − before) or trap_reclaim (reclaimed balance before −
    after) moved."""
    before, after = decode_canonical(c.before), decode_canonical(c.after)
    if not isinstance(before, int) or not isinstance(after, int):
        raise RequestError("amount", f"a stored {c.op} change does not hold two balances")
    return before - after if c.op == OP_TRAP_RECLAIM else after - before


def trap_income(tx: Tx, base: Params) -> tuple[int, int]:
    """(Σ over the batches written of fund_E × trap_budget_bps_E // 10000, Σ fund_E): batch E's fund total read
    from its batch map, epoch E's params (aicf.core.trap_budget)."""
    last = tx.last_batch_epoch()
    share = split = 0
    for epoch in range(0 if last is None else last + 1):
        batch = tx.get_batch(epoch)
        if batch is None:
            continue
        decoded = decode_canonical(batch.batch)
        totals = decoded.get("totals") if isinstance(decoded, dict) else None
        fund = totals.get("fund") if isinstance(totals, dict) else None
        if isinstance(fund, int) and fund > 0:
            share += batch_trap_income(fund, params_for_epoch(tx, base, epoch))
            split += fund
    return share, split


def trap_budget(tx: Tx, base: Params, pending: Sequence[OperatorChange] = ()) -> TrapBudget:
    """The trap budget at this point of the chain: the stored operator changes, then `pending` (a block's changes
    not written yet)."""
    sums = {OP_FUND_TOPUP: 0, OP_TRAP_FUND: 0, OP_TRAP_RECLAIM: 0}
    for op in sums:
        for c in (*tx.operator_changes_of(op), *(p for p in pending if p.op == op)):
            sums[op] += change_amount(c)
    share, split = trap_income(tx, base)
    return TrapBudget(
        income=share,
        split=split,
        topups=sums[OP_FUND_TOPUP],
        funded=sums[OP_TRAP_FUND],
        reclaimed=sums[OP_TRAP_RECLAIM],
    )


def grant_allowance(tx: Tx, requester: bytes, pending: Sequence[OperatorChange] = ()) -> int:
    """The requester's grant allowance (µANM of escrow and charges the fund may sponsor): the last `grant` op's."""
    found = [c for c in (*tx.operator_changes_of(OP_GRANT, requester), *pending)
             if c.op == OP_GRANT and c.subject == requester]  # fmt: skip
    value = decode_canonical(found[-1].after) if found else 0
    return value if isinstance(value, int) else 0


def trap_budget_left(store: Store, base: Params) -> int:
    """What the trap budget has left at the ingested head (/metrics, getStatus's trap_budget_throttled alarm)."""
    with store.transaction() as tx:
        return trap_budget(tx, base).available


def caller_trap_account(tx: Tx, caller: bytes, pending: Sequence[OperatorChange] = ()) -> tuple[int, int]:
    """(what the fund paid `caller` by trap_fund, what trap_reclaim took back from it), stored and `pending`."""
    funded = sum(change_amount(c) for c in (*tx.operator_changes_of(OP_TRAP_FUND, caller), *pending)
                 if c.op == OP_TRAP_FUND and c.subject == caller)  # fmt: skip
    reclaimed = sum(change_amount(c) for c in (*tx.operator_changes_of(OP_TRAP_RECLAIM, caller), *pending)
                    if c.op == OP_TRAP_RECLAIM and c.subject == caller)  # fmt: skip
    return funded, reclaimed


def check_gamma(params: Params, largest: int) -> None:
    if params.gamma_mu < largest:
        raise RequestError(
            "changes.gamma_units",
            f"Γ × 1000 = {params.gamma_mu} is below the largest max_units_mu of an unsettled job ({largest}); "
            "SPEC §5 refuses it",
        )
