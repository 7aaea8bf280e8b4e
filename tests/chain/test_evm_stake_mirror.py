"""Stake mirrored from the contract on a real anvil (docs/EVM.md, "Stake mirrored in the ledger"): a provider's
stake, unbond, withdrawal and a coordinator's slash reach the ledger's stake:<id> and the registry once their
blocks are final, and then equal the contract's numbers."""

from store.backends import memory_store

from aicf.chain.evm import EvmChain
from aicf.core.ledger import stake_account
from aicf.core.params import Params
from aicf.core.records import Provider
from aicf.core.registry import ProviderStatus
from aicf.service.audit import verify
from aicf.service.ingest import ingest_available
from aicf.store.interface import META_EVM_MONEY, Store
from chain.evm_support import ANM, Stack, advance_time, mine, send

PARAMS = Params.default()
PID = b"\x61" * 32


def no_circuits(circuit: bytes) -> int:
    raise AssertionError("no quantum job in these tests")


def mirrored(store: Store) -> tuple[int, int, int]:
    """(the ledger's stake:<id>, the registry's bonded, its unbonding)."""
    with store.transaction() as tx:
        provider = tx.get_provider(PID)
        ledger = tx.balances([stake_account(PID)])[stake_account(PID)]
    assert provider is not None
    return ledger, provider.bonded, provider.unbonding


def on_chain(stack: Stack) -> tuple[int, int, int]:
    _, bonded, unbonding, _ = stack.aicf.functions.stakes(PID).call()
    return int(bonded) + int(unbonding), int(bonded), int(unbonding)


def test_stake_unbond_withdraw_and_slash_on_chain_reach_the_ledger_once_final(stack: Stack) -> None:
    store = memory_store()
    with store.transaction() as tx:
        tx.set_meta(META_EVM_MONEY, 1)
        tx.insert_provider(
            Provider(provider_id=PID, public_key=b"\x01" * 32, status=ProviderStatus.ACTIVE, registered_at=0,
                     kinds=("ai",), models=("llama3-8b",))
        )  # fmt: skip
        tx.commit()
    chain = EvmChain(stack.w3, stack.deployment)
    depth = stack.deployment.finality_depth
    owner, fn = stack.roles.provider, stack.aicf.functions
    stack.fund_with(owner, 1000 * ANM)

    def settle() -> None:
        mine(stack.w3, depth)
        ingest_available(store, chain, PARAMS, no_circuits)

    send(fn.stake(PID, 1000 * ANM), owner)
    ingest_available(store, chain, PARAMS, no_circuits)
    assert mirrored(store) == (0, 0, 0)  # not final yet: nothing mirrored
    settle()
    assert mirrored(store) == on_chain(stack) == (1000 * ANM, 1000 * ANM, 0)

    send(fn.requestUnbond(PID, 400 * ANM), owner)
    settle()
    assert mirrored(store) == on_chain(stack) == (1000 * ANM, 600 * ANM, 400 * ANM)

    advance_time(stack.w3, int(fn.unbondingPeriod().call()))
    send(fn.withdraw(PID), owner)
    settle()
    assert mirrored(store) == on_chain(stack) == (600 * ANM, 600 * ANM, 0)

    send(fn.slash(PID, 1, 1000, b"\x77" * 32), stack.roles.coordinator)
    settle()
    assert mirrored(store) == on_chain(stack) == (540 * ANM, 540 * ANM, 0)
    assert verify(store).ok
