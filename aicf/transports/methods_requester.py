"""Requester methods (issue 12): send a signed transaction, follow it, read an account and a job's outcome.

- `aicf.sendTransaction {tx}`: `tx` is the 0x hex of the canonical CBOR of a signed transaction
  (aicf.core.txs): the transaction's own signature is its authentication, its nonce its replay protection.
- `aicf.getTransaction {tx_hash}`: pending, included (with the job it made), refused (with the reason) or unknown.
- `aicf.getAccount {address}`: balance, next nonce, transactions waiting, open jobs.
- `aicf.readResult {id}`: the job's status, ResultRecord, output and what was charged and refunded.
- `aicf.requestGrant {tx}` (devnet and EVM): a signed ai_enqueue the fund sponsors from the requester's grant allowance,
  enqueued from a fresh fund-funded caller like a trap (docs/TRAPS.md "Grants"); the same tx again answers with
  the task id once the job is on chain.
The composition root passes the use-cases in as callables, with the chain's lock held around them.
"""

from collections.abc import Callable
from typing import Any

from aicf.core.encoding import to_hex
from aicf.core.records import GrantRecord
from aicf.core.txs import SignedTx, decode_signed_tx
from aicf.service.errors import NotFoundError
from aicf.service.requesters import Account, RequestOutcome, TxStatus
from aicf.transports.errors import InvalidParamsError
from aicf.transports.results import Hex32Str, HexStr, Out, UInt
from aicf.transports.rpc import CallContext, RpcMethod
from aicf.transports.schemas import Hex, Hex32, WireModel

Json = Any


class SendParams(WireModel):
    tx: Hex


class TxHashParams(WireModel):
    tx_hash: Hex32


class AccountParams(WireModel):
    address: Hex


class TaskParams(WireModel):
    id: Hex32


class NoParams(WireModel):
    pass


# -- result shapes (their JSON schemas are the OpenRPC result schemas; tests validate real answers) -----------
class KindFeesOut(Out):
    ai: UInt
    quantum: UInt


class ModelTermsOut(Out):
    weight_milli: UInt


class ChainOut(Out):
    """Which chain requesters send to: the embedded devnet (aicf.sendTransaction), or an EVM node (their own
    Ethereum transactions to `aicf` at `rpc_url`, escrow in `token`; docs/EVM.md)."""

    kind: str
    rpc_url: str | None = None
    aicf: str | None = None
    token: str | None = None
    deploy_block: UInt | None = None


class TermsOut(Out):
    chain: ChainOut | None = None
    chain_id: UInt
    price_bps: UInt
    models: dict[str, ModelTermsOut]
    best_qos_bps_product: UInt
    reserve_fee_per_unit: KindFeesOut
    suggested_fee_per_unit: KindFeesOut
    max_prompt_bytes: UInt
    max_circuit_bytes: UInt
    max_tokens: UInt
    max_runtime_ms: UInt
    max_shots: UInt
    max_open_jobs: UInt
    faucet_max: UInt


class SentOut(Out):
    tx_hash: Hex32Str
    sender: HexStr
    nonce: UInt


class RefusalOut(Out):
    field: str
    reason: str


class TxStatusOut(Out):
    tx_hash: Hex32Str
    state: str
    kind: str | None = None
    sender: HexStr | None = None
    height: UInt | None = None
    index: UInt | None = None
    task_id: Hex32Str | None = None
    status: str | None = None
    refused: RefusalOut | None = None
    cancel_outcome: str | None = None


class AccountOut(Out):
    address: HexStr
    chain_id: UInt
    balance: UInt
    next_nonce: UInt
    pending: UInt
    open_jobs: UInt


class OutcomeResultOut(Out):
    proof_id: Hex32Str
    provider_id: Hex32Str
    output_digest: Hex32Str
    units_mu: UInt
    qos: dict[str, UInt]
    height: UInt
    output: HexStr | None = None
    results: Any = None


class OutcomeOut(Out):
    task_id: Hex32Str
    kind: str
    model: str
    status: str
    final: bool
    escrow: UInt
    charged: UInt | None
    refunded: UInt | None
    result: OutcomeResultOut | None


def render_status(s: TxStatus) -> Json:
    loc = s.location
    out: dict[str, Json] = {"tx_hash": to_hex(s.tx_hash), "state": s.state}
    if loc is not None:
        out.update(kind=loc.kind.value, sender=to_hex(loc.sender), height=loc.height, index=loc.index)
    if s.jobs:
        out["task_id"] = to_hex(s.jobs[0].task_id)
        out["status"] = s.jobs[0].status.value
    if s.refused is not None:
        out["refused"] = {"field": s.refused.field, "reason": s.refused.reason}
    if s.cancel is not None:
        out["cancel_outcome"] = s.cancel.outcome.value
    return out


def render_account(a: Account, chain_id: int) -> Json:
    return {
        "address": to_hex(a.address),
        "chain_id": chain_id,
        "balance": a.balance,
        "next_nonce": a.next_nonce,
        "pending": a.pending,
        "open_jobs": a.open_jobs,
    }


def _wire(value: object) -> Json:
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _wire(v) for k, v in value.items()}
    return value


def render_outcome(o: RequestOutcome) -> Json:
    job, r = o.job, o.result
    out: dict[str, Json] = {
        "task_id": to_hex(job.task_id),
        "kind": job.kind,
        "model": job.model,
        "status": job.status.value,
        "final": o.final,
        "escrow": job.escrow,
        "charged": o.charged,
        "refunded": o.refunded,
        "result": None,
    }
    if r is not None:
        result: dict[str, Json] = {
            "proof_id": to_hex(r.proof_id),
            "provider_id": to_hex(r.provider_id),
            "output_digest": to_hex(r.output_digest),
            "units_mu": r.units_mu,
            "qos": dict(r.qos),
            "height": r.height,
        }
        if o.output is not None:
            result["output"] = to_hex(o.output)
        if o.results is not None:
            result["results"] = _wire(o.results)
        out["result"] = result
    return out


class GrantOut(Out):
    """A grant request's state: `caller` is the fresh address its job is enqueued from; `task_id` once on chain."""

    caller: HexStr
    request_hash: Hex32Str
    escrow: UInt
    state: str  # requested | sent | closed
    task_id: Hex32Str | None


def render_grant(g: GrantRecord) -> Json:
    state = "closed" if g.closed_at is not None else "sent" if g.sent_at is not None else "requested"
    return {
        "caller": to_hex(g.caller),
        "request_hash": to_hex(g.request_hash),
        "escrow": g.funded,
        "state": state,
        "task_id": to_hex(g.task_id) if g.task_id else None,
    }


def grant_method(request: Callable[[SignedTx], GrantRecord]) -> RpcMethod[Any]:
    """aicf.requestGrant: public, the signed request authenticates the requester (its allowance is on chain)."""

    def request_grant(p: SendParams, _: CallContext) -> Json:
        return render_grant(request(decode_signed_tx(p.tx)))

    return _read("aicf.requestGrant", SendParams, request_grant, GrantOut,
                 "Ask the fund to sponsor a signed ai_enqueue from the requester's grant allowance",
                 description="tx: as aicf.sendTransaction, kind ai_enqueue, tier 0, no allowlist or tee; sent again, "
                             "it answers with the task id once the job is on chain; TRAPS.md")  # fmt: skip


def requester_methods(
    *,
    chain_id: int,
    send: Callable[[SignedTx], bytes] | None,
    status: Callable[[bytes], TxStatus] | None,
    account: Callable[[bytes], Account] | None,
    outcome: Callable[[bytes], RequestOutcome | None],
    terms: Callable[[], Json],
) -> list[RpcMethod[Any]]:
    """The requester methods. On a chain whose transactions requesters send themselves (an EVM node), `send`
    and `account` are None and only aicf.getRequestTerms, aicf.readResult and (with `status`) aicf.getTransaction
    are served."""

    def read_result(p: TaskParams, _: CallContext) -> Json:
        found = outcome(p.id)
        if found is None:
            raise NotFoundError(f"job {to_hex(p.id)}")
        return render_outcome(found)

    def get_terms(_: NoParams, __: CallContext) -> Json:
        return terms()

    reads = [
        _read("aicf.getRequestTerms", NoParams, get_terms, TermsOut,
              "Chain, chain id, models and weights, current price, reserve and suggested fees, request limits"),
        _read("aicf.readResult", TaskParams, read_result, OutcomeOut,
              "A job's status, ResultRecord, output, and what was charged and refunded"),
    ]  # fmt: skip
    if status is not None:
        reads.append(get_transaction_method(status))
    if send is None or account is None:
        return reads
    return [*reads, *_devnet_methods(chain_id, send, account)]


def get_transaction_method(status: Callable[[bytes], TxStatus]) -> RpcMethod[Any]:
    def get_tx(p: TxHashParams, _: CallContext) -> Json:
        return render_status(status(p.tx_hash))

    return _read("aicf.getTransaction", TxHashParams, get_tx, TxStatusOut,
                 "Where a transaction is: pending, included (with its task id), refused (with the reason)")  # fmt: skip


def _devnet_methods(
    chain_id: int,
    send: Callable[[SignedTx], bytes],
    account: Callable[[bytes], Account],
) -> list[RpcMethod[Any]]:
    def send_tx(p: SendParams, _: CallContext) -> Json:
        tx = decode_signed_tx(p.tx)
        tx_hash = send(tx)
        return {"tx_hash": to_hex(tx_hash), "sender": to_hex(tx.sender), "nonce": tx.nonce}

    def get_account(p: AccountParams, _: CallContext) -> Json:
        if len(p.address) != 20:
            raise InvalidParamsError([("address", f"expected 20 bytes, got {len(p.address)}")])
        return render_account(account(p.address), chain_id)

    return [
        _read("aicf.sendTransaction", SendParams, send_tx, SentOut,
              "Send a requester's signed transaction (deposit, ai_enqueue, quantum_enqueue, cancel)",
              description="tx: 0x hex of canonical CBOR {chain_id, public_key, nonce, kind, body, sig}; REQUESTERS.md"),
        _read("aicf.getAccount", AccountParams, get_account, AccountOut,
              "A requester's balance, next nonce, waiting transactions and open jobs"),
    ]  # fmt: skip


def _read(
    name: str, params: type[Any], handler: Any, result: type[Any], summary: str, description: str = ""
) -> RpcMethod[Any]:
    """A requester method: public (a transaction's own signature authenticates it), with a result schema."""
    return RpcMethod(
        name=name,
        params_model=params,
        handler=handler,
        access="read",
        summary=summary,
        description=description,
        result_type=result,
    )
