"""The chains a node may follow, named by one value (`aicf up|serve --chain`, SystemConfig.chain). Light on
purpose: `aicf up` checks the name before it binds its port and before the system's modules are imported."""

from aicf.core.errors import AicfError

CHAINS = ("devnet",)  # the embedded devnet kept in the store; the EVM backend adds its own


class UnknownChainError(AicfError):
    """A chain name this build does not follow."""


def check_chain(name: str) -> None:
    if name not in CHAINS:
        raise UnknownChainError(f"unknown chain {name!r}: this build follows {', '.join(CHAINS)} (--chain)")
