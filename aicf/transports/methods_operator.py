"""JSON-RPC methods for the operator's decisions that move money (issue 17 item 7; aicf.core.operator): each one
builds an operator transaction, checks it as ingestion would, signs it with the operator key and sends it to the
chain, returning its hash; `aicf.getTransaction` follows it (an EVM node answers once it is mined, docs/EVM.md).
All need the operator token.

- `aicf.setParams {changes}`: a params change (keys of a params file), in force from the next epoch;
- `aicf.setTier {address, tier}`: a requester's tier;
- `aicf.setAllowlist {action: add|remove, provider_id}`: the operator allowlist;
- `aicf.fundTraps {amount, to?}`: with `to`, fund → requester:<to> (a trap caller); without, the devnet's fund
  top-up (external → fund);
- `aicf.setGrant {address, allowance}`: a requester's grant allowance (µANM the fund may sponsor, docs/TRAPS.md).
Parse, call `aicf.service.operator_calls`, render: no rules here.
"""

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.core.operator import MAX_OPERATOR_AMOUNT, MAX_PARAMS_CHANGES, MAX_TIER
from aicf.service.operator_calls import allowlist_body, fund_body, grant_body, tier_body
from aicf.transports.errors import InvalidParamsError
from aicf.transports.results import Hex32Str, Out, UInt
from aicf.transports.rpc import CallContext, RpcMethod
from aicf.transports.schemas import Hex, Hex32, WireModel

Json = Any


class SetParamsParams(WireModel):
    changes: Annotated[
        dict[Annotated[str, Field(max_length=64)], Any], Field(min_length=1, max_length=MAX_PARAMS_CHANGES)
    ]


class SetTierParams(WireModel):
    address: Hex
    tier: Annotated[int, Field(ge=0, le=MAX_TIER)]


class SetAllowlistParams(WireModel):
    action: Literal["add", "remove"]
    provider_id: Hex32


class FundTrapsParams(WireModel):
    amount: Annotated[int, Field(ge=1, le=MAX_OPERATOR_AMOUNT)]
    to: Hex | None = None


class SetGrantParams(WireModel):
    address: Hex
    allowance: Annotated[int, Field(ge=0, le=MAX_OPERATOR_AMOUNT)]


class EpochParams(WireModel):
    epoch: Annotated[int, Field(ge=0, lt=2**63)] | None = None


class ParamsChangeOut(Out):
    tx_hash: Hex32Str
    height: UInt
    effective_epoch: UInt
    changes: dict[str, Any]


class ParamsOut(Out):
    epoch: UInt
    version: UInt
    params_hash: Hex32Str
    changes: list[ParamsChangeOut]


class OperatorTxOut(Out):
    tx_hash: Hex32Str
    op: str


RESULTS: dict[str, Any] = {
    "aicf.setParams": OperatorTxOut,
    "aicf.setTier": OperatorTxOut,
    "aicf.setAllowlist": OperatorTxOut,
    "aicf.fundTraps": OperatorTxOut,
    "aicf.setGrant": OperatorTxOut,
    "aicf.getParams": ParamsOut,
}


class OperatorTxUnsupportedError(AicfError):
    """This node's chain takes no operator transactions (a system built without an operator writer)."""


def operator_methods(
    send: Callable[[Mapping[str, object]], bytes] | None, params_of: Callable[[int | None], Json]
) -> list[RpcMethod[Any]]:
    """`send` checks an operator body as ingestion would and sends it signed (aicf.service.operator_calls); None
    for a system without an operator writer, where the senders answer why; `params_of(epoch)` is
    aicf.getParams (public: the params of an epoch are chain data), served on every chain."""

    def sent(body: Mapping[str, object]) -> Json:
        if send is None:
            raise OperatorTxUnsupportedError(
                f"{body['op']}: this node's chain takes no operator transactions (it has no operator writer: the "
                "params are its --params file)"
            )
        return {"tx_hash": to_hex(send(body)), "op": str(body["op"])}

    def set_params(p: SetParamsParams, _: CallContext) -> Json:
        return sent({"op": "params", "changes": dict(p.changes)})

    def set_tier(p: SetTierParams, _: CallContext) -> Json:
        if len(p.address) != 20:
            raise InvalidParamsError([("address", f"expected 20 bytes, got {len(p.address)}")])
        return sent(tier_body(p.address, p.tier))

    def set_allowlist(p: SetAllowlistParams, _: CallContext) -> Json:
        return sent(allowlist_body(p.action, p.provider_id))

    def fund_traps(p: FundTrapsParams, _: CallContext) -> Json:
        if p.to is not None and len(p.to) != 20:
            raise InvalidParamsError([("to", f"expected a 20-byte address, got {len(p.to)} bytes")])
        return sent(fund_body(p.amount, p.to))

    def set_grant(p: SetGrantParams, _: CallContext) -> Json:
        if len(p.address) != 20:
            raise InvalidParamsError([("address", f"expected 20 bytes, got {len(p.address)}")])
        return sent(grant_body(p.address, p.allowance))

    def get_params(p: EpochParams, _: CallContext) -> Json:
        return params_of(p.epoch)

    def m(
        name: str, model: type[Any], fn: Any, summary: str, access: Literal["read", "operator"] = "operator"
    ) -> RpcMethod[Any]:
        return RpcMethod(name=name, params_model=model, handler=fn, access=access, summary=summary,
                         result_type=RESULTS[name])  # fmt: skip

    return [
        m("aicf.setParams", SetParamsParams, set_params, "Send a params change (in force from the next epoch)"),
        m("aicf.setTier", SetTierParams, set_tier, "Send a requester's tier as an operator transaction"),
        m("aicf.setAllowlist", SetAllowlistParams, set_allowlist, "Add or remove a provider on the operator allowlist"),
        m("aicf.fundTraps", FundTrapsParams, fund_traps, "Fund a trap caller from the fund, or top up the fund"),
        m("aicf.setGrant", SetGrantParams, set_grant, "Send a requester's grant allowance as an operator transaction"),
        m("aicf.getParams", EpochParams, get_params, "The params version of an epoch and its on-chain changes", "read"),
    ]
