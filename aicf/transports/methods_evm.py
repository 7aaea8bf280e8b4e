"""`aicf.getClaim {epoch, account}`: an account's payout of one settled epoch on an EVM chain, with the Merkle
proof the `Aicf` contract's `claim(epoch, account, amount, proof)` checks (docs/EVM.md, "The claim tree").
Served only when the coordinator follows an EVM node; `aicf chain claim` sends the claim with it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aicf.core.encoding import to_hex
from aicf.service.errors import NotFoundError
from aicf.transports.errors import InvalidParamsError
from aicf.transports.results import Hex32Str, HexStr, Out, UInt
from aicf.transports.rpc import CallContext, RpcMethod
from aicf.transports.schemas import Hex, Uint, WireModel


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimAnswer:
    epoch: int
    account: bytes
    amount: int
    proof: tuple[bytes, ...]
    claim_root: bytes
    claim_total: int
    posted: bool  # the contract holds this epoch's batch, so the claim can be sent


class GetClaimParams(WireModel):
    epoch: Uint
    account: Hex


class ClaimProofOut(Out):
    epoch: UInt
    account: HexStr
    amount: UInt
    proof: list[Hex32Str]
    claim_root: Hex32Str
    claim_total: UInt
    posted: bool


def get_claim_method(find: Callable[[int, bytes], ClaimAnswer | None]) -> RpcMethod[GetClaimParams]:
    """aicf.getClaim; `find` answers None when the epoch is not settled yet or pays the account nothing."""

    def get_claim(p: GetClaimParams, _: CallContext) -> Any:
        if len(p.account) != 20:
            raise InvalidParamsError([("account", f"expected a 20-byte address, got {len(p.account)} bytes")])
        found = find(p.epoch, p.account)
        if found is None:
            raise NotFoundError(f"a claim of {to_hex(p.account)} in epoch {p.epoch} (not settled, or nothing paid)")
        return {
            "epoch": found.epoch,
            "account": to_hex(found.account),
            "amount": found.amount,
            "proof": [to_hex(s) for s in found.proof],
            "claim_root": to_hex(found.claim_root),
            "claim_total": found.claim_total,
            "posted": found.posted,
        }

    return RpcMethod(
        name="aicf.getClaim",
        params_model=GetClaimParams,
        handler=get_claim,
        access="read",
        summary="An account's payout of a settled epoch on the EVM chain, with its Merkle proof for Aicf.claim",
        result_type=ClaimProofOut,
    )
