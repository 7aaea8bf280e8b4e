"""Registry and stake (SPEC §9): registering a provider, bonding, funding and withdrawing stake."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from aicf.core.assignment import effective_unit_rate, protocol_unit_rate
from aicf.core.ids import provider_id
from aicf.core.ledger import EXTERNAL, Posting, provider_account, stake_account
from aicf.core.params import Params
from aicf.core.records import Provider
from aicf.core.registry import ProviderStatus, check_provider_move
from aicf.core.types import MAX_AMOUNT, MicroAnm
from aicf.service.context import Context, unit_of_work
from aicf.service.errors import InvalidRegistrationError, StakeError
from aicf.service.steps import require_provider, update_provider
from aicf.store.interface import META_EVM_MONEY, Tx

log = logging.getLogger("aicf.coordinator")

KINDS = ("ai", "quantum")
TEE_CLASSES = ("sev-snp", "tdx", "sgx", "nitro", "nvidia-gpu", "cca")
MAX_NAME_CHARS = 64  # a model, device, region or TEE class name (issue 15: text from outside is bounded)
MAX_MODELS = 32
MAX_DEVICES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    kinds: tuple[str, ...]
    models: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tee_classes: tuple[str, ...] = ()
    max_leases: int = 4
    # the provider's own unit-rate limits (SPEC §6's bucket, stricter only); 0: the protocol's figure
    unit_burst_mu: int = 0
    unit_rate_mu_per_day: int = 0


def register(ctx: Context, public_key: bytes, caps: Capabilities, *, bond: bool, stake: int | None) -> Provider:
    """Register a provider; with `bond`, bond `stake` µANM (None: the whole balance) from provider:<id> in the
    registration's transaction. Registering the same key again returns the first registration unchanged.
    Raises InvalidRegistrationError naming the field (nothing stored)."""
    params = ctx.params
    check_caps(caps, params)
    if len(public_key) != 32:
        raise InvalidRegistrationError("public_key", f"expected a 32-byte Ed25519 key, got {len(public_key)}")
    floor = max(params.min_stake, 1)
    if stake is not None and (isinstance(stake, bool) or not floor <= stake < MAX_AMOUNT):
        raise InvalidRegistrationError("stake", f"must be {floor}..2^63-1 µANM (params.min_stake), got {stake}")
    pid = provider_id(public_key)
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        existing = tx.get_provider(pid)
        if existing is not None:
            return existing
        account = provider_account(pid)
        mirrored = tx.get_meta(META_EVM_MONEY) == 1
        if mirrored:  # an EVM contract holds the stake: the ledger's stake:<id> mirrors it (docs/EVM.md)
            bond = False
        balance = tx.balances([account])[account] if bond else 0
        bonded = (balance if stake is None else stake) if bond else 0
        if mirrored:  # below min_stake it is registered but never matched (SPEC §6) until it stakes on chain
            bonded = tx.balances([stake_account(pid)])[stake_account(pid)]
        if bond and not floor <= bonded <= balance:
            raise InvalidRegistrationError(
                "stake",
                f"registration bonds {floor if stake is None else stake} µANM or more (params.min_stake "
                f"{floor}) from {account}, which holds {balance}; fund it first",
            )
        provider = Provider(
            provider_id=pid,
            public_key=public_key,
            status=ProviderStatus.ACTIVE,
            registered_at=now,
            kinds=tuple(sorted(set(caps.kinds))),
            models=tuple(sorted(set(caps.models))),
            devices=tuple(sorted(set(caps.devices))),
            regions=tuple(sorted(set(caps.regions))),
            tee_classes=tuple(sorted(set(caps.tee_classes))),
            max_leases=caps.max_leases,
            bucket_tokens_mu=effective_unit_rate(caps.unit_burst_mu, caps.unit_rate_mu_per_day, params).burst_mu,
            bucket_at=now,
            updated_at=now,
            unit_burst_mu=caps.unit_burst_mu,
            unit_rate_mu_per_day=caps.unit_rate_mu_per_day,
            bonded=bonded,
        )
        tx.insert_provider(provider)
        tx.record_provider_move(pid, None, ProviderStatus.ACTIVE, "registered", now)
        if bonded and not mirrored:
            posting = Posting(debit=account, credit=stake_account(pid), amount=MicroAnm(bonded), ref_kind="stake",
                              ref=pid)  # fmt: skip
            tx.post([posting], None, now)
        w.commit()
    log.info("provider 0x%s registered: %s", pid.hex()[:12], ",".join(provider.kinds))
    return provider


def deposit_stake(ctx: Context, pid: bytes, amount: int, *, source: str = "provider") -> Provider:
    """Bond `amount` µANM from the provider's earnings (`provider`) or, for an operator funding a devnet
    provider, from `external` (a mint). Raises StakeError for an amount out of range or a short balance."""
    if isinstance(amount, bool) or not 0 < amount < MAX_AMOUNT:
        raise StakeError(f"stake amount must be > 0 and < 2^63, got {amount}")
    if source not in ("provider", "external"):
        raise StakeError(f"stake source must be 'provider' or 'external', got {source!r}")
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        _refuse_on_contract(tx, "Aicf.stake(providerId, amount)")
        provider = require_provider(tx, pid)
        if provider.status is ProviderStatus.BANNED:
            raise StakeError(f"provider 0x{pid.hex()} is banned and cannot stake")
        debit = EXTERNAL if source == "external" else provider_account(pid)
        tx.post(
            [Posting(debit=debit, credit=stake_account(pid), amount=MicroAnm(amount), ref_kind="stake", ref=pid)],
            None,
            now,
        )
        updated = replace(provider, bonded=provider.bonded + amount, updated_at=now)
        if provider.status is ProviderStatus.UNBONDING:
            updated = replace(updated, status=check_provider_move(pid, provider.status, ProviderStatus.ACTIVE))
            tx.record_provider_move(pid, provider.status, ProviderStatus.ACTIVE, "restaked", now)
        update_provider(tx, updated, provider.status)
        w.commit()
    return updated


def fund_unregistered(ctx: Context, pid: bytes, amount: int) -> int:
    """Devnet operator mint into provider:<id> of a provider not registered yet, which registration then bonds;
    returns the new balance. Raises StakeError for an amount out of range and BalanceOverflowError (nothing
    stored) for a balance that would pass 2^63."""
    if isinstance(amount, bool) or not 0 < amount < MAX_AMOUNT:
        raise StakeError(f"fund amount must be > 0 and < 2^63, got {amount}")
    account = provider_account(pid)
    with unit_of_work(ctx) as w:
        tx = w.tx
        _refuse_on_contract(tx, "Aicf.stake(providerId, amount)")
        if tx.get_provider(pid) is not None:
            raise StakeError(f"provider 0x{pid.hex()} is registered: fund its stake instead")
        tx.post([Posting(debit=EXTERNAL, credit=account, amount=MicroAnm(amount), ref_kind="deposit", ref=pid)],
                None, w.now)  # fmt: skip
        balance = tx.balances([account])[account]
        w.commit()
    return balance


def withdraw_stake(ctx: Context, pid: bytes, amount: int) -> Provider:
    """Start unbonding `amount`: it stays slashable for params.unbonding_s, then returns to provider:<id>."""
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        _refuse_on_contract(tx, "Aicf.requestUnbond(providerId, amount)")
        provider = require_provider(tx, pid)
        if isinstance(amount, bool) or not 0 < amount <= provider.bonded:
            raise StakeError(f"can withdraw 1..{provider.bonded} µANM (the bonded stake), asked {amount}")
        updated = replace(
            provider,
            bonded=provider.bonded - amount,
            unbonding=provider.unbonding + amount,
            unbonding_until=now + ctx.params.unbonding_s,
            updated_at=now,
        )
        if updated.bonded == 0 and provider.status is ProviderStatus.ACTIVE:
            updated = replace(updated, status=check_provider_move(pid, provider.status, ProviderStatus.UNBONDING))
            tx.record_provider_move(pid, provider.status, ProviderStatus.UNBONDING, "withdrew all stake", now)
        update_provider(tx, updated, provider.status)
        w.commit()
    return updated


def _refuse_on_contract(tx: Tx, call: str) -> None:
    """On an EVM chain the contract holds the stake and the ledger mirrors it (docs/EVM.md): no stake is minted,
    bonded or unbonded off chain."""
    if tx.get_meta(META_EVM_MONEY) == 1:
        raise StakeError(f"the stake is held by the Aicf contract on this chain: its owner calls {call}")


def check_names(field: str, names: Sequence[str], most: int) -> None:
    """Issue 15: every text list from outside has a count cap and names of 1..MAX_NAME_CHARS printable characters."""
    if len(names) > most:
        raise InvalidRegistrationError(field, f"at most {most} names, got {len(names)}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
            shown = repr(name[:40]) + ("…" if isinstance(name, str) and len(name) > 40 else "")
            raise InvalidRegistrationError(
                f"{field}[{i}]", f"a name is 1..{MAX_NAME_CHARS} printable characters, got {shown}"
            )


def check_caps(caps: Capabilities, params: Params) -> None:
    for field_name, names, most in (
        ("kinds", caps.kinds, len(KINDS)),
        ("models", caps.models, MAX_MODELS),
        ("devices", caps.devices, MAX_DEVICES),
        ("regions", caps.regions, params.max_regions),
        ("tee_classes", caps.tee_classes, len(TEE_CLASSES)),
    ):
        check_names(field_name, names, most)
    if not caps.kinds or any(k not in KINDS for k in caps.kinds):
        raise InvalidRegistrationError("kinds", f"expected a non-empty subset of {KINDS}, got {list(caps.kinds)}")
    unknown = [m for m in caps.models if params.weight_milli(m) is None]
    if unknown:
        raise InvalidRegistrationError("models", f"unknown model {unknown[0]!r}; known: {sorted(params.model_weights)}")
    if "ai" in caps.kinds and not caps.models:
        raise InvalidRegistrationError("models", "an AI provider must serve at least one model")
    bad_tee = [t for t in caps.tee_classes if t not in TEE_CLASSES]
    if bad_tee:
        raise InvalidRegistrationError("tee_classes", f"unknown TEE class {bad_tee[0]!r}; known: {TEE_CLASSES}")
    if isinstance(caps.max_leases, bool) or not 1 <= caps.max_leases <= params.max_leases:
        raise InvalidRegistrationError("max_leases", f"must be 1..{params.max_leases}, got {caps.max_leases}")
    if len(caps.regions) > params.max_regions or any(not r or len(r) > 64 for r in caps.regions):
        raise InvalidRegistrationError("regions", f"at most {params.max_regions} names of 1..64 characters")
    cap = protocol_unit_rate(params)  # SPEC §6's figures cap the declared ones: a provider can only be stricter
    for name, value, most in (
        ("unit_burst_mu", caps.unit_burst_mu, cap.burst_mu),
        ("unit_rate_mu_per_day", caps.unit_rate_mu_per_day, cap.rate_mu_per_day),
    ):
        if type(value) is not int or not 0 <= value <= most:
            raise InvalidRegistrationError(
                name, f"must be an integer 0..{most} (0: the protocol's {most}), got {value!r}"
            )
