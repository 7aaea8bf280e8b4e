"""Vendor roots in the registry (SPEC §13; docs/ROOTS.md): the operator's use-cases that add a root, rotate one
with an overlap and pin the shipped roots on a fresh store, and the reads of the roots with their certificate
expiry (the collateral alarm). Heights: see aicf.service.trust."""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from aicf.core.clock import Clock
from aicf.core.trust import ROOT, RootRecord, TrustChange
from aicf.core.types import MAX_AMOUNT
from aicf.proofs.attestation.alarms import Expiry, root_expiries
from aicf.proofs.attestation.roots import VendorRoots, VendorRootsError
from aicf.proofs.attestation.roots import rotate_root as rotated_roots
from aicf.service.errors import InvalidRootError
from aicf.service.trust_steps import (
    check_activation,
    check_root_input,
    head_height,
    insert_root,
    next_version,
    pinned,
    root_label,
    root_record,
    until,
)
from aicf.store.interface import Store, read_transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    new: RootRecord
    retired: tuple[RootRecord, ...]  # older versions of the same root, with their new expiry heights


@dataclass(frozen=True, slots=True, kw_only=True)
class RootView:
    record: RootRecord
    not_after: int | None  # the certificate's expiry (unix seconds); None for a public-key root (arm-cca)
    in_force_next_block: bool


def add_root(
    store: Store,
    clock: Clock,
    *,
    vendor: str,
    name: str,
    der: bytes,
    activation_height: int,
    expiry_height: int | None = None,
    version: int | None = None,
) -> RootRecord:
    """Pin a new root version. Raises InvalidRootError (nothing stored) on a bad vendor, name or DER, an
    activation below the next block, an expiry not above activation, or a version not above the stored ones."""
    now = clock.now()
    with store.transaction() as tx:
        head = head_height(tx)
        check_root_input(vendor, name, der)
        check_activation(activation_height, head, InvalidRootError)
        if expiry_height is not None and expiry_height <= activation_height:
            raise InvalidRootError(
                "expiry_height", f"must be above the activation height {activation_height}, got {expiry_height}"
            )
        stored = [r for r in tx.vendor_roots() if (r.vendor, r.name) == (vendor, name)]
        chosen = next_version(vendor, name, stored, version)
        record = root_record(vendor, name, chosen, der, activation_height, expiry_height, head, now)
        insert_root(tx, record, now, f"in force from height {activation_height}" + until(expiry_height))
        tx.commit()
    return record


def rotate_root(
    store: Store,
    clock: Clock,
    *,
    vendor: str,
    name: str,
    der: bytes,
    activation_height: int,
    overlap_blocks: int,
    version: int | None = None,
) -> Rotation:
    """Pin a new version of an existing root and retire the older ones `overlap_blocks` after it activates
    (`aicf.proofs.attestation.roots.rotate_root`): both verify during the overlap, only the new one after.
    Raises InvalidRootError (nothing stored) as `add_root` does, on a negative overlap, or when no version
    of the root is stored yet (add it instead)."""
    now = clock.now()
    with store.transaction() as tx:
        head = head_height(tx)
        check_root_input(vendor, name, der)
        check_activation(activation_height, head, InvalidRootError)
        if overlap_blocks < 0:
            raise InvalidRootError("overlap_blocks", f"must be >= 0, got {overlap_blocks}")
        if activation_height + overlap_blocks >= MAX_AMOUNT:  # the retirement height is stored as 64 bits
            raise InvalidRootError(
                "overlap_blocks", f"activation_height + overlap_blocks must be < 2^63, got {overlap_blocks}"
            )
        stored = [r for r in tx.vendor_roots() if (r.vendor, r.name) == (vendor, name)]
        if not stored:
            raise InvalidRootError("name", f"{vendor}/{name} has no stored version to rotate; add it first")
        chosen = next_version(vendor, name, stored, version)
        record = root_record(vendor, name, chosen, der, activation_height, None, head, now)
        try:
            after = rotated_roots(VendorRoots(roots=tuple(pinned(r) for r in stored)), pinned(record), overlap_blocks)
        except VendorRootsError as exc:
            raise InvalidRootError("version", exc.reason) from exc
        new_expiry = {(r.vendor, r.name, r.version): r.expiry_height for r in after.roots}
        retired: list[RootRecord] = []
        for old in stored:
            expiry = new_expiry[(old.vendor, old.name, old.version)]
            if expiry != old.expiry_height and expiry is not None:
                tx.set_root_expiry(old.vendor, old.name, old.version, expiry)
                retired.append(replace(old, expiry_height=expiry))
                tx.record_trust_change(
                    TrustChange(
                        what=ROOT,
                        action="retire",
                        subject=root_label(old.vendor, old.name, old.version),
                        detail=f"expires at height {expiry} (rotated to v{chosen}, overlap {overlap_blocks})",
                        height=head,
                        time=now,
                    )
                )
        insert_root(tx, record, now, f"in force from height {activation_height} (rotation)")
        tx.commit()
    return Rotation(new=record, retired=tuple(retired))


def pin_defaults(store: Store, clock: Clock, roots: Sequence[tuple[str, str, bytes]]) -> list[RootRecord]:
    """Pin (vendor, name, der) as version 1 from height 0 for every root with no stored version: `aicf up` on
    a fresh store. Idempotent: a root already stored (any version) is left as the operator made it."""
    now = clock.now()
    added: list[RootRecord] = []
    with store.transaction() as tx:
        head = head_height(tx)
        have = {(r.vendor, r.name) for r in tx.vendor_roots()}
        for vendor, name, der in roots:
            if (vendor, name) in have:
                continue
            check_root_input(vendor, name, der)
            record = root_record(vendor, name, 1, der, 0, None, head, now)
            insert_root(tx, record, now, "shipped with aicf, pinned by `aicf up` from height 0")
            have.add((vendor, name))
            added.append(record)
        tx.commit()
    return added


def root_views(store: Store) -> list[RootView]:
    with read_transaction(store) as tx:
        nxt = head_height(tx) + 1
        stored = tx.vendor_roots()
    out: list[RootView] = []
    for r in stored:
        expiries = root_expiries(VendorRoots(roots=(pinned(r),)))
        out.append(
            RootView(
                record=r,
                not_after=expiries[0].not_after if expiries else None,
                in_force_next_block=r.is_in_force(nxt),
            )
        )
    return out


def live_root_expiries(store: Store) -> tuple[Expiry, ...]:
    """Certificate expiry (not_after, unix seconds) of every root not yet retired: in force at the next block
    or scheduled to be. The caller subtracts its own `now` (SPEC §13's collateral alarm)."""
    with read_transaction(store) as tx:
        nxt = head_height(tx) + 1
        live = [r for r in tx.vendor_roots() if r.expiry_height is None or r.expiry_height > nxt]
    return root_expiries(VendorRoots(roots=tuple(pinned(r) for r in live)))
