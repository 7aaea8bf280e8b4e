"""A provider's stake on the `Aicf` contract, folded from its logs (docs/EVM.md, "Stake mirrored in the ledger").

The contract's stake logs carry what changed (`Staked(amount, bonded)`, `UnbondRequested(amount, unbonding,
releaseAt)`, `Withdrawn(amount)`, `Slashed(amount)`), so the stake after any log is the fold of the provider's
logs up to it, exactly as the contract computes it (a slash takes bonded stake first, then unbonding). The chain
adapter reports that state as a `stake_sync` transaction, which ingestion mirrors into the ledger and registry.
Pure functions; the fold refuses a log the contract could not have emitted (a slash above the stake, …).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aicf.core.errors import AicfError

STAKE_EVENTS = frozenset({"Staked", "UnbondRequested", "Withdrawn", "Slashed"})


class StakeLogError(AicfError):
    """A stake log that does not follow from the provider's earlier ones (the message names it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StakeState:
    owner: bytes = b""  # the 20-byte address the first Staked log bound; empty before any
    bonded: int = 0
    unbonding: int = 0
    release_at: int = 0  # chain seconds when the unbonding stake may be withdrawn (0: none unbonding)

    def to_body(self, provider_id: bytes) -> dict[str, object]:
        """The `stake_sync` transaction's body (aicf.core.chain.TxKind.STAKE_SYNC)."""
        return {
            "provider_id": provider_id,
            "owner": self.owner,
            "bonded": self.bonded,
            "unbonding": self.unbonding,
            "release_at": self.release_at,
        }


def apply_stake_log(state: StakeState, event: str, args: Mapping[str, Any], owner: bytes = b"") -> StakeState:
    """The stake after one log of the provider (`owner`: the Staked log's owner, 20 bytes)."""
    amount = int(args["amount"])
    if event == "Staked":
        if state.owner and owner != state.owner:
            raise StakeLogError(f"Staked by 0x{owner.hex()}, but the owner is 0x{state.owner.hex()}")
        bonded = state.bonded + amount
        if int(args["bonded"]) != bonded:
            raise StakeLogError(f"Staked says bonded {int(args['bonded'])}, the earlier logs give {bonded}")
        return StakeState(owner=owner, bonded=bonded, unbonding=state.unbonding, release_at=state.release_at)
    if event == "UnbondRequested":
        if amount > state.bonded or int(args["unbonding"]) != state.unbonding + amount:
            raise StakeLogError(f"UnbondRequested of {amount} does not follow from bonded {state.bonded}")
        return StakeState(
            owner=state.owner,
            bonded=state.bonded - amount,
            unbonding=state.unbonding + amount,
            release_at=int(args["releaseAt"]),
        )
    if event == "Withdrawn":
        if amount != state.unbonding:
            raise StakeLogError(f"Withdrawn {amount}, but {state.unbonding} is unbonding")
        return StakeState(owner=state.owner, bonded=state.bonded, unbonding=0, release_at=0)
    if event == "Slashed":
        if amount > state.bonded + state.unbonding:
            raise StakeLogError(f"Slashed {amount}, above the stake {state.bonded + state.unbonding}")
        from_bonded = min(amount, state.bonded)
        unbonding = state.unbonding - (amount - from_bonded)
        return StakeState(
            owner=state.owner,
            bonded=state.bonded - from_bonded,
            unbonding=unbonding,
            release_at=state.release_at if unbonding else 0,
        )
    raise StakeLogError(f"{event} is not a stake log")


def fold_stake_logs(logs: Iterable[tuple[str, Mapping[str, Any], bytes]]) -> StakeState:
    """The stake after `logs` (event, arguments, owner), oldest first."""
    state = StakeState()
    for event, args, owner in logs:
        state = apply_stake_log(state, event, args, owner)
    return state
