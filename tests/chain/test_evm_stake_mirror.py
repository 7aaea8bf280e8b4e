"""Stake mirrored from the contract on a real anvil (docs/EVM.md, "Stake mirrored in the ledger"): a provider's
stake, unbond, withdrawal and a coordinator's slash reach the ledger's stake:<id> and the registry once their
blocks are final, and then equal the contract's numbers. A batch pays a provider's shares to the owner its first
Staked log bound by the batch's finalized height, else to the fund ("Unowned providers")."""

from store.backends import memory_store
from web3 import Web3

from aicf.bootstrap.evm import EvmBackend
from aicf.chain.evm import EvmChain
from aicf.core.ledger import stake_account
from aicf.core.params import Params
from aicf.core.records import BatchRecord, Provider
from aicf.core.registry import ProviderStatus
from aicf.core.settlement import VerifiedJob, settle_epoch
from aicf.service.audit import verify
from aicf.service.ingest import ingest_available
from aicf.store.interface import META_EVM_MONEY, Store
from chain.evm_adapter_support import MiningWaiter, coordinator_account, local_coordinator_stack
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


def test_a_providers_payee_is_its_owner_by_the_batchs_finalized_height_else_the_fund(w3: Web3) -> None:
    local = local_coordinator_stack(w3)
    owned, late, never = b"\x71" * 32, b"\x72" * 32, b"\x73" * 32
    local.fund_with(local.roles.provider, 2 * ANM)
    send(local.aicf.functions.stake(owned, ANM), local.roles.provider)
    finalized = int(w3.eth.block_number)  # the batch's finalized height: `owned` has staked, `late` not yet
    send(local.aicf.functions.stake(late, ANM), local.roles.provider)
    jobs = [
        VerifiedJob(
            task_id=bytes([n]) * 32, provider_id=pid, miner_id=bytes.fromhex(local.roles.miner[2:]),
            proof_id=bytes([0x90 + n]) * 32, kind="ai", priority_class=0, proof_height=finalized, tx_index=n,
            units_mu=1_000_000, fee_per_unit=15000,
        )
        for n, pid in enumerate((owned, late, never))
    ]  # fmt: skip
    batch = settle_epoch(epoch=0, finalized_height=finalized, jobs=jobs, treasury=10**12, price_bps=10000,
                         params=PARAMS)  # fmt: skip
    store = memory_store()
    with store.transaction() as tx:
        record = BatchRecord(
            epoch=0, finalized_height=finalized, params_hash=batch.params_hash, price_bps=10000,
            next_price_bps=batch.next_price_bps, root=batch.root, batch=b"", payouts=3, carried=0,
            reward=batch.totals.reward, units_mu=batch.totals.units_mu, treasury_before=10**12,
        )  # fmt: skip
        assert tx.insert_batch(record, batch.payouts)
        tx.commit()
    backend = EvmBackend(
        chain=EvmChain(w3, local.deployment),
        writer_key=coordinator_account(),
        store=store,
        rpc_url="http://node",
        waiter=MiningWaiter(w3),
        params=PARAMS,
    )
    tree = backend.claim_tree(0)
    assert tree is not None
    share = {p.provider_id: p.provider for p in batch.payouts}
    owner, fund = bytes.fromhex(local.roles.provider[2:]), bytes.fromhex(local.roles.fund[2:])
    assert tree.claim_for(owner).amount == share[owned]  # `late` staked after the finalized height: not its owner's
    assert tree.claim_for(fund).amount == batch.totals.fund + share[late] + share[never]
    assert tree.total == batch.totals.reward  # nothing held up, nothing lost
    assert EvmChain(w3, local.deployment).owner_at(late, finalized + 1) == owner
