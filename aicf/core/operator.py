"""Operator transactions (issue 17 item 7, issue 14 item 1): the operator's decisions that move money, on chain.

One transaction kind, `operator` (aicf.core.chain.TxKind.OPERATOR), signed by the operator key like a requester's
transaction (aicf.core.txs: chain-id bound, nonce'd), whose body names a sub-kind in `op`:

| op | body | effect at ingestion |
|---|---|---|
| `params` | `{op, changes: {key: value…}}` (1..64 keys of a params file) | scheduled for the next epoch |
| `tier` | `{op, address: 20 bytes, tier: 0..3}` | the requester's tier, from the next transaction on |
| `allowlist` | `{op, action: "add"/"remove", provider_id: 32 bytes}` | the operator allowlist |
| `trap_fund` | `{op, to: 20 bytes, amount}` | fund → requester:<to> (a trap caller's escrow) |
| `fund_topup` | `{op, amount}` | external → fund (the devnet faucet for the fund) |
| `trap_commit` | `{op, epoch, commitment: 32 bytes}` | the epoch's trap seed commitment |
| `trap_reveal` | `{op, epoch, seed: 32 bytes}` | the seed, checked against the commitment |
| `trap_reclaim` | `{op, from: 20 bytes}` | requester:<from> → fund, a final trap caller's refund (trap budget) |
| `grant` | `{op, requester: 20 bytes, allowance}` | the requester's grant allowance (µANM the fund may sponsor) |

Pure: the shape of a body. The rules that need state (the sender is the operator, the fund's balance, Γ against
unsettled jobs, a reveal against its commitment) are applied by ingestion (aicf.service.operator_ops).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aicf.core.encoding import canonical_cbor, decode_canonical
from aicf.core.errors import ParamsError, RequestError
from aicf.core.params import Params, coerce_params_changes, params_from_mapping
from aicf.core.types import MAX_AMOUNT

OP_PARAMS: Final = "params"
OP_TIER: Final = "tier"
OP_ALLOWLIST: Final = "allowlist"
OP_TRAP_FUND: Final = "trap_fund"
OP_FUND_TOPUP: Final = "fund_topup"
OP_TRAP_COMMIT: Final = "trap_commit"
OP_TRAP_REVEAL: Final = "trap_reveal"
OP_TRAP_RECLAIM: Final = "trap_reclaim"
OP_GRANT: Final = "grant"
OPS: Final = (
    OP_PARAMS, OP_TIER, OP_ALLOWLIST, OP_TRAP_FUND, OP_FUND_TOPUP, OP_TRAP_COMMIT, OP_TRAP_REVEAL, OP_TRAP_RECLAIM,
    OP_GRANT,
)  # fmt: skip
BODY_KEYS: Final[Mapping[str, frozenset[str]]] = {
    OP_PARAMS: frozenset({"op", "changes"}),
    OP_TIER: frozenset({"op", "address", "tier"}),
    OP_ALLOWLIST: frozenset({"op", "action", "provider_id"}),
    OP_TRAP_FUND: frozenset({"op", "to", "amount"}),
    OP_FUND_TOPUP: frozenset({"op", "amount"}),
    OP_TRAP_COMMIT: frozenset({"op", "epoch", "commitment"}),
    OP_TRAP_REVEAL: frozenset({"op", "epoch", "seed"}),
    OP_TRAP_RECLAIM: frozenset({"op", "from"}),
    OP_GRANT: frozenset({"op", "requester", "allowance"}),
}
MAX_PARAMS_CHANGES: Final = 64
MAX_TIER: Final = 3  # SPEC §5: tier 3 is the highest class
MAX_OPERATOR_AMOUNT: Final = 10**12  # µANM one trap_fund or fund_topup may move (1,000,000 ANM)
# Fixed for the chain's life: the epoch of every block and the finality of every height follow from them.
CHAIN_FIXED_PARAMS: Final = frozenset({"epoch_seconds", "finality_depth"})
ALLOWLIST_ACTIONS: Final = ("add", "remove")


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorChange:
    """One applied operator transaction: a transition row (who, what, from → to, effective epoch/height).

    `subject` names what changed (the address, the provider id, the epoch as 8 big-endian bytes; b"" for params
    and fund_topup); `before`/`after` are canonical CBOR of the old and new value (params: maps of the changed
    keys; tier: the tier; allowlist: listed or not; trap_fund/fund_topup: the credited account's balance;
    trap_reclaim: the reclaimed caller's balance, then 0; grant: the requester's allowance), except
    for trap_commit (after = the commitment) and trap_reveal (before = the commitment, after = the seed): raw."""

    height: int
    tx_index: int
    tx_hash: bytes
    sender: bytes
    op: str
    subject: bytes
    before: bytes
    after: bytes
    effective_epoch: int
    time: int


def epoch_subject(epoch: int) -> bytes:
    return epoch.to_bytes(8, "big")


def _uint(field: str, value: object, lo: int = 0, hi: int = MAX_AMOUNT - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RequestError(field, f"expected an integer in {lo}..{hi}, got {value!r}")
    return value


def _bytes(field: str, value: object, length: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise RequestError(field, f"expected {length} bytes")
    return value


def body_int(body: Mapping[str, object], key: str) -> int:
    """An integer field of a checked body (RequestError if it is not one)."""
    return _uint(key, body.get(key))


def body_bytes(body: Mapping[str, object], key: str) -> bytes:
    """A byte-string field of a checked body (RequestError if it is not one)."""
    value = body.get(key)
    if not isinstance(value, bytes):
        raise RequestError(key, "expected a byte string")
    return value


def params_map(raw: bytes) -> dict[str, object]:
    """The `after` of a params change: its map of changed keys."""
    value = decode_canonical(raw)
    if not isinstance(value, dict):
        raise RequestError("changes", "a stored params change is not a map")
    return {str(k): v for k, v in value.items()}


def operator_op(body: Mapping[str, object]) -> str:
    """The sub-kind of a well-formed operator body; raises RequestError naming the field otherwise. Checks keys,
    types and bounds (a params change: each key known and of its type, none of CHAIN_FIXED_PARAMS)."""
    op = body.get("op")
    if not isinstance(op, str) or op not in BODY_KEYS:
        raise RequestError("op", f"unknown operator op {op!r}; expected one of {', '.join(OPS)}")
    if set(body) != BODY_KEYS[op]:
        raise RequestError("body", f"an operator {op} has exactly the keys {sorted(BODY_KEYS[op])}, got {sorted(body)}")
    if op == OP_PARAMS:
        params_changes(body)
    elif op == OP_TIER:
        _bytes("address", body["address"], 20)
        _uint("tier", body["tier"], 0, MAX_TIER)
    elif op == OP_ALLOWLIST:
        if body["action"] not in ALLOWLIST_ACTIONS:
            raise RequestError("action", f"expected add or remove, got {body['action']!r}")
        _bytes("provider_id", body["provider_id"], 32)
    elif op in (OP_TRAP_FUND, OP_FUND_TOPUP):
        if op == OP_TRAP_FUND:
            _bytes("to", body["to"], 20)
        _uint("amount", body["amount"], 1, MAX_OPERATOR_AMOUNT)
    elif op == OP_TRAP_RECLAIM:
        _bytes("from", body["from"], 20)
    elif op == OP_GRANT:
        _bytes("requester", body["requester"], 20)
        _uint("allowance", body["allowance"], 0, MAX_OPERATOR_AMOUNT)
    else:
        _uint("epoch", body["epoch"])
        _bytes(
            "commitment" if op == OP_TRAP_COMMIT else "seed", body["commitment" if op == OP_TRAP_COMMIT else "seed"], 32
        )
    return op


def params_changes(body: Mapping[str, object]) -> dict[str, object]:
    """The `changes` map of a params op, coerced as a params file is read; raises RequestError naming the key."""
    changes = body.get("changes")
    if not isinstance(changes, Mapping) or not 1 <= len(changes) <= MAX_PARAMS_CHANGES:
        raise RequestError("changes", f"expected a map of 1..{MAX_PARAMS_CHANGES} params keys")
    fixed = sorted(CHAIN_FIXED_PARAMS & set(changes))
    if fixed:
        raise RequestError(f"changes.{fixed[0]}", "fixed for the chain's life (every block's epoch follows from it)")
    try:
        return coerce_params_changes({str(k): v for k, v in changes.items()})
    except ParamsError as exc:
        raise RequestError(f"changes.{exc.key}", exc.reason) from None


def apply_params_changes(base: Params, changes: Mapping[str, object]) -> Params:
    """`base` with `changes` applied, validated as a whole params object; raises RequestError naming the key."""
    try:
        return params_from_mapping(changes, base)
    except ParamsError as exc:
        raise RequestError(f"changes.{exc.key}", exc.reason) from None


def wire_value(value: object) -> object:
    """A params value as canonical CBOR holds it (tuples of pairs as lists, tables as maps)."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, tuple):
        return [wire_value(v) for v in value]
    return value


def params_diff(before: Params, changes: Mapping[str, object]) -> tuple[bytes, bytes]:
    """(before, after) of the changed keys, canonical CBOR maps."""
    old = before.to_map()
    return (
        canonical_cbor({k: wire_value(old[k]) for k in sorted(changes)}),
        canonical_cbor({k: wire_value(changes[k]) for k in sorted(changes)}),
    )


def decode_value(raw: bytes) -> object:
    return decode_canonical(raw) if raw else None
