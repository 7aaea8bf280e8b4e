"""Stake mirrored from an EVM contract (docs/EVM.md, "Stake mirrored in the ledger"): a `stake_sync` transaction
carries a provider's stake on the contract right after one of its final stake logs (`Staked`, `UnbondRequested`,
`Withdrawn`, `Slashed`). Ingestion makes the ledger's stake:<id> equal to bonded + unbonding (the difference
external → stake:<id>, or stake:<id> → external as a `claim`: tokens that left the contract) at the block's height,
so a reorg undoes it with the block, and sets the registered provider's bonded and unbonding stake to the
contract's. The values are absolute, so applying a sync again (a block re-ingested after a reorg) changes nothing.
Read only on a store that follows an EVM contract (`META_EVM_MONEY`); the devnet refuses the kind."""

from dataclasses import replace

from aicf.core.chain import Block, ChainTx
from aicf.core.errors import RequestError
from aicf.core.ledger import EXTERNAL, WITHDRAWAL_KIND, Posting, stake_account
from aicf.core.registry import ProviderStatus, check_provider_move
from aicf.core.types import MAX_AMOUNT, MicroAnm
from aicf.service.ingest_work import BlockWork, balance
from aicf.service.steps import update_provider
from aicf.store.interface import META_EVM_MONEY, Tx

SYNC_KEYS = frozenset({"provider_id", "owner", "bonded", "unbonding", "release_at"})


def stake_sync(tx: Tx, work: BlockWork, block: Block, ctx: ChainTx) -> None:
    """Mirror one provider's on-chain stake (module doc). Raises RequestError naming the field (refused, nothing
    applied) on a store that does not follow an EVM contract or on a body that is not a sync."""
    if tx.get_meta(META_EVM_MONEY) != 1:
        raise RequestError("kind", "a stake_sync is read only from an EVM contract's stake logs (docs/EVM.md)")
    body = ctx.body
    if set(body) != SYNC_KEYS:
        extra = sorted(set(body) ^ SYNC_KEYS)[0]
        raise RequestError(extra, "a stake_sync has exactly provider_id, owner, bonded, unbonding, release_at")
    pid, owner = body["provider_id"], body["owner"]
    if not isinstance(pid, bytes) or len(pid) != 32:
        raise RequestError("provider_id", "expected 32 bytes")
    if not isinstance(owner, bytes) or len(owner) != 20:
        raise RequestError("owner", "expected a 20-byte address")
    values: dict[str, int] = {}
    for key in ("bonded", "unbonding", "release_at"):
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_AMOUNT:
            raise RequestError(key, "expected an integer >= 0 and < 2^63")
        values[key] = value
    bonded, unbonding = values["bonded"], values["unbonding"]
    target = bonded + unbonding
    if target >= MAX_AMOUNT:
        raise RequestError("bonded", "bonded + unbonding must stay below 2^63")
    account = stake_account(pid)
    have = balance(tx, work, account)
    if target > have:
        supply = balance(tx, work, EXTERNAL)
        if supply - (target - have) <= -MAX_AMOUNT:
            raise RequestError("bonded", f"the supply would pass 2^63 µANM ({-supply} minted so far)")
        work.balances[EXTERNAL] = supply - (target - have)
        work.postings.append(
            Posting(
                debit=EXTERNAL, credit=account, amount=MicroAnm(target - have), ref_kind="stake_sync", ref=ctx.tx_hash
            )
        )
    elif target < have:
        work.balances[EXTERNAL] = balance(tx, work, EXTERNAL) + (have - target)
        work.postings.append(
            Posting(
                debit=account,
                credit=EXTERNAL,
                amount=MicroAnm(have - target),
                ref_kind=WITHDRAWAL_KIND,
                ref=ctx.tx_hash,
            )
        )
    work.balances[account] = target
    _mirror_registry(tx, pid, bonded, unbonding, values["release_at"], block.time)


def _mirror_registry(tx: Tx, pid: bytes, bonded: int, unbonding: int, release_at: int, time: int) -> None:
    """The registered provider's stake becomes the contract's; ACTIVE with nothing bonded is UNBONDING, and an
    UNBONDING provider that bonds again is ACTIVE (as aicf.service.registry does). Jails and bans stay."""
    provider = tx.get_provider(pid)
    if provider is None:  # registration takes the mirrored stake (aicf.service.registry.register)
        return
    if (provider.bonded, provider.unbonding) == (bonded, unbonding):
        return
    updated = replace(provider, bonded=bonded, unbonding=unbonding, unbonding_until=release_at, updated_at=time)
    to = provider.status
    if provider.status is ProviderStatus.ACTIVE and bonded == 0:
        to = ProviderStatus.UNBONDING
    elif provider.status is ProviderStatus.UNBONDING and bonded > 0:
        to = ProviderStatus.ACTIVE
    if to is not provider.status:
        updated = replace(updated, status=check_provider_move(pid, provider.status, to))
        tx.record_provider_move(pid, provider.status, to, "stake on chain", time)
    update_provider(tx, updated, provider.status)
