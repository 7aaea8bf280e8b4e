"""Stake mirrored from an EVM contract (docs/EVM.md, "Stake mirrored in the ledger"): a `stake_sync` transaction
makes the ledger's stake:<id> and the registered provider's bonded and unbonding stake the contract's, at its
block's height (a reorg undoes the ledger part; applying it again changes nothing); registration takes the
mirrored stake and off-chain staking is refused; the devnet refuses the kind. The devnet is the block source
(ingestion reads any chain the same way)."""

import pytest
from store.backends import memory_store

from aicf.chain.devnet import Devnet
from aicf.core.chain import TxKind
from aicf.core.ledger import stake_account
from aicf.core.records import Provider
from aicf.core.registry import ProviderStatus
from aicf.service.audit import verify
from aicf.service.ingest import ingest_available
from aicf.store.interface import META_EVM_MONEY, Store
from service.helpers import START, P, depth_stub, devnet

PID = b"\x51" * 32
OWNER = b"\x0a" * 20


def sync(bonded: int, unbonding: int = 0, release_at: int = 0, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "provider_id": PID, "owner": OWNER, "bonded": bonded, "unbonding": unbonding, "release_at": release_at,
    }  # fmt: skip
    body.update(extra)
    return body


def evm_store() -> Store:
    store = memory_store()
    with store.transaction() as tx:
        tx.set_meta(META_EVM_MONEY, 1)
        tx.commit()
    return store


def registered(store: Store, bonded: int = 0, status: ProviderStatus = ProviderStatus.ACTIVE) -> None:
    with store.transaction() as tx:
        tx.insert_provider(
            Provider(
                provider_id=PID, public_key=b"\x01" * 32, status=status, registered_at=START, kinds=("ai",),
                models=("llama3-8b",), bonded=bonded, updated_at=START,
            )
        )  # fmt: skip
        tx.commit()


def stake_of(store: Store) -> tuple[int, int, int, ProviderStatus | None]:
    """(stake:<id> in the ledger, registry bonded, registry unbonding, status)."""
    with store.transaction() as tx:
        ledger = tx.balances([stake_account(PID)])[stake_account(PID)]
        p = tx.get_provider(PID)
    return ledger, p.bonded if p else 0, p.unbonding if p else 0, p.status if p else None


def mine_sync(net: Devnet, store: Store, body: dict[str, object]) -> None:
    net.submit(OWNER, TxKind.STAKE_SYNC, body)
    net.mine()
    ingest_available(store, net, P, depth_stub)


def test_syncs_make_the_ledger_and_registry_stake_the_contracts() -> None:
    store, net = evm_store(), devnet()
    registered(store)
    mine_sync(net, store, sync(bonded=1_000))
    assert stake_of(store) == (1_000, 1_000, 0, ProviderStatus.ACTIVE)
    mine_sync(net, store, sync(bonded=300, unbonding=700, release_at=START + 99))
    assert stake_of(store) == (1_000, 300, 700, ProviderStatus.ACTIVE)
    mine_sync(net, store, sync(bonded=0, unbonding=700, release_at=START + 99))  # a slash of the bonded 300
    assert stake_of(store) == (700, 0, 700, ProviderStatus.UNBONDING)
    mine_sync(net, store, sync(bonded=0))  # withdrawn: the tokens left the contract
    assert stake_of(store) == (0, 0, 0, ProviderStatus.UNBONDING)
    mine_sync(net, store, sync(bonded=500))  # bonds again
    assert stake_of(store) == (500, 500, 0, ProviderStatus.ACTIVE)
    with store.transaction() as tx:
        moves = [(e.posting.ref_kind, e.posting.amount) for e in tx.snapshot().entries if stake_account(PID) in (
            e.posting.debit, e.posting.credit)]  # fmt: skip
    # in from outside 1_000 and 500; out as a claim (the tokens left the contract) 300 slashed and 700 withdrawn
    assert moves == [("stake_sync", 1_000), ("claim", 300), ("claim", 700), ("stake_sync", 500)]
    assert verify(store).ok


def test_a_sync_applied_again_changes_nothing_and_a_reorg_undoes_its_ledger_part() -> None:
    store, net = evm_store(), devnet()
    registered(store)
    mine_sync(net, store, sync(bonded=1_000))
    mine_sync(net, store, sync(bonded=1_000))  # the same state again (a block re-read): no posting
    with store.transaction() as tx:
        kinds = [e.posting.ref_kind for e in tx.snapshot().entries if e.posting.ref_kind != "treasury_income"]
    assert kinds == ["stake_sync"]
    mine_sync(net, store, sync(bonded=2_500))
    assert stake_of(store)[0] == 2_500
    net.mine(2)
    net.reorg(3)  # the 2_500 sync's block is replaced by one carrying it again (the adapter's syncs are of final
    # logs, so a reorg always brings them back at their height: docs/EVM.md)
    ingest_available(store, net, P, depth_stub)
    with store.transaction() as tx:
        moves = [(e.posting.ref_kind, e.posting.amount, e.block_height) for e in tx.snapshot().entries
                 if stake_account(PID) in (e.posting.debit, e.posting.credit)]  # fmt: skip
    assert moves == [("stake_sync", 1_000, 1), ("stake_sync", 1_500, 3)]  # undone with its block, applied once again
    assert stake_of(store) == (2_500, 2_500, 0, ProviderStatus.ACTIVE)
    assert verify(store).ok


def test_the_devnet_and_a_malformed_sync_are_refused_naming_the_field() -> None:
    plain, net = memory_store(), devnet()
    registered(plain)
    mine_sync(net, plain, sync(bonded=1_000))
    assert stake_of(plain) == (0, 0, 0, ProviderStatus.ACTIVE)
    store, net = evm_store(), devnet()
    for body, _field in (
        (sync(bonded=-1), "bonded"),
        (sync(bonded=1, extra=1), "extra"),
        ({**sync(bonded=1), "owner": b"\x0a" * 32}, "owner"),
        ({**sync(bonded=1), "provider_id": b"\x01"}, "provider_id"),
        (sync(bonded=2**62, unbonding=2**62), "bonded"),
    ):
        net.submit(OWNER, TxKind.STAKE_SYNC, body)
    net.mine()
    ingest_available(store, net, P, depth_stub)
    with store.transaction() as tx:
        refused = [r.field for r in tx.snapshot().refused]
    assert refused == ["bonded", "extra", "owner", "provider_id", "bonded"]
    assert stake_of(store)[0] == 0


@pytest.mark.parametrize("status", [ProviderStatus.JAILED, ProviderStatus.BANNED])
def test_a_jailed_or_banned_provider_keeps_its_status(status: ProviderStatus) -> None:
    store, net = evm_store(), devnet()
    registered(store, status=status)
    mine_sync(net, store, sync(bonded=0, unbonding=10, release_at=START))
    assert stake_of(store) == (10, 0, 10, status)


def test_registration_takes_the_mirrored_stake_and_off_chain_staking_is_refused() -> None:
    from aicf.core.clock import FakeClock
    from aicf.core.ids import provider_id
    from aicf.service.coordinator import Capabilities
    from aicf.service.errors import StakeError
    from service.test_coordinator import DevnetWriter, _key, _pub, coordinator_for

    store, net = evm_store(), devnet()
    key = _key(7)
    pid = provider_id(_pub(key))
    net.submit(OWNER, TxKind.STAKE_SYNC, {**sync(bonded=1_000), "provider_id": pid})
    net.mine()
    ingest_available(store, net, P, depth_stub)
    assert verify(store).ok  # stake on chain before registering is no orphan stake
    coord = coordinator_for(store, FakeClock(START), P, _key(99), DevnetWriter(net))
    provider = coord.register(_pub(key), Capabilities(kinds=("ai",), models=("llama3-8b",)))
    assert (provider.bonded, provider.unbonding, provider.status) == (1_000, 0, ProviderStatus.ACTIVE)
    with store.transaction() as tx:
        assert [e.posting.ref_kind for e in tx.snapshot().entries if e.posting.ref_kind.startswith("stake")] == [
            "stake_sync"
        ]  # registration bonded nothing off chain
    for refused in (
        lambda: coord.deposit_stake(pid, 5, source="external"),
        lambda: coord.withdraw_stake(pid, 5),
        lambda: coord.fund_unregistered(b"\x01" * 32, 5),
    ):
        with pytest.raises(StakeError, match="held by the Aicf contract"):
            refused()
    assert verify(store).ok
