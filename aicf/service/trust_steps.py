"""Steps the trust registry's use-cases share (issue 16: one place each): the next block's height, the activation
check every change passes, and a root version's record, label and stored row with its transition."""

import hashlib
from collections.abc import Sequence

from aicf.core.trust import ROOT, RootRecord, TrustChange
from aicf.proofs.attestation.registry import check_root_der
from aicf.proofs.attestation.roots import VENDORS, PinnedRoot, VendorRootsError
from aicf.service.errors import InvalidPolicyError, InvalidRootError
from aicf.store.interface import Tx

MAX_NAME = 100


def pinned(r: RootRecord) -> PinnedRoot:
    return PinnedRoot(
        vendor=r.vendor,
        name=r.name,
        version=r.version,
        der=r.der,
        activation_height=r.activation_height,
        expiry_height=r.expiry_height,
    )


def root_label(vendor: str, name: str, version: int) -> str:
    return f"{vendor}/{name} v{version}"


def head_height(tx: Tx) -> int:
    """The head height, -1 before the first block (so the next block is `head_height + 1`)."""
    head = tx.head_block()
    return head.height if head is not None else -1


def until(expiry_height: int | None) -> str:
    return "" if expiry_height is None else f" until height {expiry_height}"


def check_root_input(vendor: str, name: str, der: bytes) -> None:
    if vendor not in VENDORS:
        raise InvalidRootError("vendor", f"unknown vendor {vendor!r}, expected one of {sorted(VENDORS)}")
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidRootError("name", f"must be 1..{MAX_NAME} printable characters, got {name!r}")
    try:
        check_root_der(vendor, der)
    except VendorRootsError as exc:
        raise InvalidRootError("der", exc.reason) from exc


def check_activation(
    activation_height: int, head: int, error: type[InvalidRootError] | type[InvalidPolicyError]
) -> None:
    if activation_height < head + 1:
        raise error(
            "activation_height",
            f"must be at least the next block height {head + 1}, got {activation_height} "
            "(a change cannot apply to blocks already produced)",
        )


def next_version(vendor: str, name: str, stored: Sequence[RootRecord], version: int | None) -> int:
    latest = max((r.version for r in stored), default=0)
    if version is None:
        return latest + 1
    if any(r.version == version for r in stored):
        raise InvalidRootError("version", f"{root_label(vendor, name, version)} is already stored")
    if version <= latest:
        raise InvalidRootError("version", f"must exceed the stored version {latest}, got {version}")
    return version


def root_record(
    vendor: str, name: str, version: int, der: bytes, activation: int, expiry: int | None, head: int, now: int
) -> RootRecord:
    return RootRecord(
        vendor=vendor,
        name=name,
        version=version,
        der=der,
        sha256=hashlib.sha256(der).digest(),
        activation_height=activation,
        expiry_height=expiry,
        added_height=max(head, 0),
        added_at=now,
    )


def insert_root(tx: Tx, record: RootRecord, now: int, detail: str) -> None:
    if not tx.insert_root(record):  # another writer took the version first
        raise InvalidRootError("version", f"{root_label(record.vendor, record.name, record.version)} is already stored")
    tx.record_trust_change(
        TrustChange(
            what=ROOT,
            action="add",
            subject=root_label(record.vendor, record.name, record.version),
            detail=f"{detail}; sha256 {record.sha256.hex()}",
            height=record.added_height,
            time=now,
        )
    )
