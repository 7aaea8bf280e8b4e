"""Grants (issue 14 item 2; docs/TRAPS.md "Grants"): the fund sponsors real requesters' AI jobs the way it funds
traps, so a fund-funded caller is not necessarily a trap.

The operator sets a requester's allowance on chain (operator op `grant`). The requester signs an `ai_enqueue`
transaction with its own key but sends it to the coordinator (`aicf.requestGrant`), not to the chain. The
coordinator checks the signature, the request's limits and the allowance, and keeps a `GrantRecord`; its trap pass
then does for the grant exactly what it does for a trap: `trap_fund` of the escrow to a fresh caller
H("aicf/grantcaller/v1", s_E, m)[:20], the body's `ai_enqueue` from that caller, and once the job is final a
`trap_reclaim` of the refund. The requester reads its result by the task id the same request answers with.

On an EVM node (a chain writer with `GrantCallerKeys`) the caller is the address of a key derived like a trap
caller's (aicf.bootstrap.evm.grant_account: the coordinator key, s_E and m), so the coordinator signs the sponsored
`aiEnqueue` itself, exactly as a trap's; such a request carries only the six fields an EVM `aiEnqueue` takes.
"""

from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aicf.core.chain import TxKind
from aicf.core.encoding import canonical_cbor
from aicf.core.errors import RequestError
from aicf.core.records import GrantRecord
from aicf.core.requests import validate_request
from aicf.core.txs import BadTxSignatureError, SignedTx, TxError, WrongChainError, check_tx_shape
from aicf.service.context import Context, unit_of_work
from aicf.service.operator_ops import grant_allowance
from aicf.service.traps import grant_caller

# A grant is shaped like a trap: tier 0 (a fresh caller has no registered tier), no allowlist and no TEE; a grant
# request with any of these would be told apart from the traps, so it is refused.
TRAP_SHAPE_KEYS = frozenset({"model", "prompt", "max_tokens", "max_runtime_ms", "fee_per_unit", "tier",
                             "regions", "deadline_blocks"})  # fmt: skip


# What an EVM `aiEnqueue` carries (aicf.bootstrap.evm.EvmBackend.send_trap_enqueue): a grant asking for more
# (regions, deadline_blocks) could not be sent as asked, so it is refused on an EVM node.
EVM_ENQUEUE_KEYS = ("model", "prompt", "max_tokens", "max_runtime_ms", "fee_per_unit", "tier")
# The caller pays its aiEnqueue's gas from the ether its trap_fund forwards (aicf.bootstrap.evm.TRAP_CALLER_GAS, the
# same for traps and grants, or the amount would tell them apart): a 4 KiB prompt's enqueue is ~189k gas
# (BENCHMARKS.md), so it fits with room for the base fee to rise ~75% before the enqueue (6 KiB fits on anvil, 8 KiB
# does not). A longer prompt could never be enqueued from the forwarded gas, so it is refused.
EVM_GRANT_PROMPT_BYTES = 4 * 1024


@runtime_checkable
class GrantCallerKeys(Protocol):
    """A chain writer whose grant callers send their own transactions and so need keys (an EVM node): grant m's
    caller is the address of a key derived from the coordinator key, s_E and m; elsewhere it is
    aicf.service.traps.grant_caller(s_E, m)."""

    def grant_caller(self, seed: bytes, m: int) -> bytes:
        """The caller's address; its key is kept so the enqueue can be signed (derived again before sending)."""
        ...

    def trap_fund_held(self) -> int:
        """µANM the chain holds for trap and grant escrow now (the contract's trap fund)."""
        ...


def check_grant_request(tx: SignedTx, chain_id: int, evm: bool = False) -> None:
    """The signed request's shape, chain and signature; raises TxError naming the field."""
    if tx.kind != TxKind.AI_ENQUEUE:
        raise TxError("kind", f"a grant request is an ai_enqueue transaction, got {tx.kind.value!r}")
    check_tx_shape(tx)
    if tx.chain_id != chain_id:
        raise WrongChainError(chain_id, tx.chain_id)
    try:
        Ed25519PublicKey.from_public_bytes(tx.public_key).verify(tx.sig, tx.signing_digest())
    except (InvalidSignature, ValueError):
        raise BadTxSignatureError() from None
    extra = sorted(set(tx.body) - TRAP_SHAPE_KEYS)
    if extra:
        raise TxError(extra[0], "a grant is enqueued like a trap: no allowlist or tee (they would tell it apart)")
    if tx.body.get("tier", 0) != 0:
        raise TxError("tier", "a grant is enqueued from a fresh caller, whose tier is 0")
    beyond = sorted(set(tx.body) - set(EVM_ENQUEUE_KEYS))
    if evm and beyond:
        raise TxError(beyond[0], f"an EVM aiEnqueue carries only {', '.join(EVM_ENQUEUE_KEYS)}")
    prompt = tx.body.get("prompt")
    if evm and isinstance(prompt, bytes) and len(prompt) > EVM_GRANT_PROMPT_BYTES:
        raise TxError(
            "prompt",
            f"{len(prompt)} bytes exceeds {EVM_GRANT_PROMPT_BYTES}, the most a sponsored aiEnqueue's gas covers",
        )


def request_grant(ctx: Context, tx: SignedTx, chain_id: int) -> GrantRecord:
    """Record a requester's sponsored job; the trap pass sends it. The same signed request again returns the first
    record (with its task id once the enqueue is ingested), so a requester polls with it. Raises TxError or
    RequestError naming the field, nothing stored."""
    keyed = ctx.chain_writer if isinstance(ctx.chain_writer, GrantCallerKeys) else None
    check_grant_request(tx, chain_id, evm=keyed is not None)
    request_hash = tx.tx_hash()
    with unit_of_work(ctx) as w:
        found = w.tx.grant_of_request(request_hash)
        if found is not None:
            return found
        head = w.tx.head_block()
        if head is None:
            raise RequestError("chain", "no block ingested yet")
        price = w.tx.get_meta("price_bps") or ctx.params.price_initial_bps
        valid = validate_request({"kind": "ai", **tx.body}, ctx.params, price, lambda _: 1)  # the reserve fee too
        requester = tx.sender
        open_now = sum(1 for g in w.tx.open_grants(10_000) if g.requester == requester)
        if open_now >= ctx.params.max_open_jobs:  # as SPEC §2 bounds a caller's open jobs
            raise RequestError("requester", f"0x{requester.hex()} has {open_now} open grants, the most allowed")
        allowance, used = grant_allowance(w.tx, requester), w.tx.grant_used(requester)
        if used + valid.escrow > allowance:
            raise RequestError(
                "allowance",
                f"0x{requester.hex()} has a grant allowance of {allowance} µANM, {used} used; this job's escrow "
                f"is {valid.escrow} µANM",
            )
        m = w.tx.next_grant_number()
        seed = ctx.trap_seed(head.epoch)
        grant = GrantRecord(
            caller=keyed.grant_caller(seed, m) if keyed is not None else grant_caller(seed, m),
            m=m,
            epoch=head.epoch,
            requester=requester,
            request_hash=request_hash,
            model=str(tx.body["model"]),
            body=canonical_cbor(dict(tx.body)),
            funded=valid.escrow,
            created_at=w.now,
        )
        if not w.tx.insert_grant(grant):
            raise RequestError("request", "another grant took this number; send the request again")
        w.commit()
    return grant
