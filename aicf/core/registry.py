"""Provider statuses and their legal moves (SPEC §9, issue 5), as a table like the job table."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from aicf.core.errors import AicfError


class ProviderStatus(StrEnum):
    ACTIVE = "ACTIVE"
    JAILED = "JAILED"
    UNBONDING = "UNBONDING"  # withdrew all stake; still slashable until the unbonding ends
    BANNED = "BANNED"


P = ProviderStatus
PROVIDER_MOVES: Final[Mapping[ProviderStatus, frozenset[ProviderStatus]]] = {
    P.ACTIVE: frozenset({P.JAILED, P.UNBONDING, P.BANNED}),
    P.JAILED: frozenset({P.ACTIVE, P.UNBONDING, P.BANNED}),  # jail ends; withdraws while jailed; third slash
    P.UNBONDING: frozenset({P.ACTIVE, P.JAILED, P.BANNED}),  # re-stakes; slashed while unbonding
}


class IllegalProviderMoveError(AicfError):
    def __init__(self, provider_id: bytes, status: ProviderStatus, to: ProviderStatus) -> None:
        super().__init__(f"provider 0x{provider_id.hex()}: {status.value} -> {to.value} is not an allowed move")
        self.provider_id, self.status, self.to = provider_id, status, to


def check_provider_move(provider_id: bytes, status: ProviderStatus, to: ProviderStatus) -> ProviderStatus:
    if to not in PROVIDER_MOVES.get(status, frozenset()):
        raise IllegalProviderMoveError(provider_id, status, to)
    return to
