"""Vendor roots and attestation policy in the registry (SPEC §8, §13; docs/ROOTS.md).

Operator use-cases (add a root, rotate one with an overlap, set an evidence kind's policy, list them), the pinning
of the shipped roots on a fresh store, the per-height view the verifier judges evidence by, and the expiry of
the pinned roots for the collateral alarm.

Heights. Proofs are verified when submitted, before they are on chain; the acceptance goes on chain with the
envelope at the next block at the earliest, so evidence is judged by the roots and policy in force at
`head + 1`, its earliest inclusion height (`Coordinator.submit_proof`). A change therefore must activate at or
above `head + 1`: a change to heights already produced would judge accepted evidence by rules it never met.

The view is cached against the store's trust version (the highest seq of the trust transition table): one
indexed read per proof, and a change made by any replica is seen by the next proof every replica verifies.
"""

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from aicf.core.clock import Clock
from aicf.core.qdevice import DeviceCertError, check_device_name
from aicf.core.trust import POLICY, ROOT, PolicyRecord, RootRecord, TrustChange
from aicf.core.types import MAX_AMOUNT
from aicf.proofs.attestation.alarms import Expiry, root_expiries
from aicf.proofs.attestation.registry import (
    PolicyFormatError,
    TrustAnchors,
    check_root_der,
    decode_policy,
    encode_policy,
)
from aicf.proofs.attestation.result import Policy, SnpTcb
from aicf.proofs.attestation.roots import VENDORS, PinnedRoot, VendorRoots, VendorRootsError, rotate_root
from aicf.proofs.attestation.verify import VERIFIERS
from aicf.proofs.quantum_device import (
    QDEVICE_VENDOR,
    DeviceKeyError,
    device_key_der,
    device_raw_key,
    device_root_name,
)
from aicf.service.errors import InvalidDeviceKeyError, InvalidPolicyError, InvalidRootError
from aicf.store.interface import Store, Tx, read_transaction

MAX_NAME = 100
ExpiryItem = Expiry  # what `root_expiries` returns, as the transports may name it
COLLATERAL_ALARM_S = 7 * 86400  # the getStatus alarm; deploy/prometheus alerts on the same window
EVIDENCE_KINDS = tuple(sorted(VERIFIERS))


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    new: RootRecord
    retired: tuple[RootRecord, ...]  # older versions of the same root, with their new expiry heights


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySpec:
    """A policy in plain values, for the transports (they do not see aicf.proofs); see Policy for the meaning.
    `allowed_measurements` None: not checked; `min_snp_tcb`: (bootloader, tee, snp, microcode) or None."""

    allow_debug: bool = False
    allowed_measurements: tuple[bytes, ...] | None = None
    accepted_tcb_statuses: tuple[str, ...] = ("UpToDate",)
    min_snp_tcb: tuple[int, int, int, int] | None = None
    max_vmpl: int = 3

    def to_policy(self) -> Policy:
        tcb = self.min_snp_tcb
        return Policy(
            allow_debug=self.allow_debug,
            allowed_measurements=None if self.allowed_measurements is None else frozenset(self.allowed_measurements),
            accepted_tcb_statuses=frozenset(self.accepted_tcb_statuses),
            min_snp_tcb=None if tcb is None else SnpTcb(bootloader=tcb[0], tee=tcb[1], snp=tcb[2], microcode=tcb[3]),
            max_vmpl=self.max_vmpl,
        )


def policy_spec(policy: Policy) -> PolicySpec:
    tcb = policy.min_snp_tcb
    return PolicySpec(
        allow_debug=policy.allow_debug,
        allowed_measurements=None
        if policy.allowed_measurements is None
        else tuple(sorted(policy.allowed_measurements)),
        accepted_tcb_statuses=tuple(sorted(policy.accepted_tcb_statuses)),
        min_snp_tcb=None if tcb is None else (tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode),
        max_vmpl=policy.max_vmpl,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyVersion:
    record: PolicyRecord
    policy: Policy

    @property
    def spec(self) -> PolicySpec:
        return policy_spec(self.policy)


@dataclass(frozen=True, slots=True, kw_only=True)
class RootView:
    record: RootRecord
    not_after: int | None  # the certificate's expiry (unix seconds); None for a public-key root (arm-cca)
    in_force_next_block: bool


@dataclass(frozen=True, slots=True)
class _Cached:
    version: int
    roots: tuple[PinnedRoot, ...]
    policies: tuple[tuple[str, int, Policy], ...]  # (kind, activation height, policy), by (kind, version)


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


class TrustRegistry:
    """The registry's roots and policy on one store; see the module docstring."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._cached = _Cached(version=-1, roots=(), policies=())  # replaced whole: safe across threads

    # -- the verifier's view ---------------------------------------------------------------------------------
    def anchors_at(self, tx: Tx, height: int, version: int | None = None) -> TrustAnchors:
        """The roots and per-kind policies in force at `height`, read in the caller's transaction; `version` is
        `tx.trust_version()` when the caller already read it."""
        cached = self._cached
        version = tx.trust_version() if version is None else version
        if version != cached.version:
            cached = _Cached(
                version=version,
                roots=tuple(pinned(r) for r in tx.vendor_roots()),
                policies=tuple(
                    (p.kind, p.activation_height, decode_policy(p.policy)) for p in tx.attestation_policies()
                ),
            )
            self._cached = cached
        policies: dict[str, Policy] = {}
        for kind, activation, policy in cached.policies:  # by (kind, version): the highest active version wins
            if activation <= height:
                policies[kind] = policy
        return TrustAnchors(
            roots=VendorRoots(roots=tuple(r for r in cached.roots if r.is_in_force(height))), policies=policies
        )

    # -- operator use-cases ----------------------------------------------------------------------------------
    def add_root(
        self,
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
        now = self.clock.now()
        with self.store.transaction() as tx:
            head = _head(tx)
            _check_root_input(vendor, name, der)
            _check_activation(activation_height, head, InvalidRootError)
            if expiry_height is not None and expiry_height <= activation_height:
                raise InvalidRootError(
                    "expiry_height", f"must be above the activation height {activation_height}, got {expiry_height}"
                )
            stored = [r for r in tx.vendor_roots() if (r.vendor, r.name) == (vendor, name)]
            chosen = _next_version(vendor, name, stored, version)
            record = _record(vendor, name, chosen, der, activation_height, expiry_height, head, now)
            _insert_root(tx, record, now, f"in force from height {activation_height}" + _until(expiry_height))
            tx.commit()
        return record

    def pin_device(
        self,
        *,
        device: str,
        device_class: str,
        public_key: bytes,
        classes: Collection[str],
        activation_height: int | None = None,
    ) -> RootRecord:
        """Pin a quantum device's Ed25519 key with its device class (issue 14; docs/QUANTUM.md §3), as a new
        version of the `qdevice` root "<class>/<device>", in force from `activation_height` (default: the next
        block). Raises InvalidDeviceKeyError (nothing stored) on a bad name, a class params has no thresholds for, a key
        that is not a 32-byte Ed25519 key, an activation below the next block, or a device already pinned under
        another class (pin the new class under a new device name). Pinning the key the latest version already holds,
        with no activation height, returns that version and stores nothing."""
        try:
            check_device_name(device)
        except DeviceCertError as exc:
            raise InvalidDeviceKeyError("device", exc.reason) from None
        if device_class not in classes:
            raise InvalidDeviceKeyError(
                "device_class", f"unknown device class {device_class!r}; params has thresholds for {sorted(classes)}"
            )
        try:
            der = device_key_der(public_key)
        except DeviceKeyError as exc:
            raise InvalidDeviceKeyError("public_key", exc.reason) from None
        name = device_root_name(device, device_class)
        now = self.clock.now()
        with self.store.transaction() as tx:
            head = _head(tx)
            activation = head + 1 if activation_height is None else activation_height
            _check_activation(activation, head, InvalidDeviceKeyError)
            pins = [r for r in tx.vendor_roots() if r.vendor == QDEVICE_VENDOR and r.name.split("/", 1)[-1] == device]
            if other := sorted({r.name for r in pins} - {name}):
                raise InvalidDeviceKeyError(
                    "device_class", f"device {device!r} is already pinned as {other[0]!r}; use a new device name"
                )
            latest = max(pins, key=lambda r: r.version, default=None)
            if latest is not None and latest.der == der and activation_height is None:
                return latest  # the same key pinned again (a provider restarted with --pin-device): nothing new
            chosen = _next_version(QDEVICE_VENDOR, name, pins, None)
            record = _record(QDEVICE_VENDOR, name, chosen, der, activation, None, head, now)
            _insert_root(tx, record, now, f"device key 0x{public_key.hex()} in force from height {activation}")
            tx.commit()
        return record

    def device_keys(self) -> list[RootRecord]:
        """Every pinned device key version, by (name, version)."""
        with read_transaction(self.store) as tx:
            return [r for r in tx.vendor_roots() if r.vendor == QDEVICE_VENDOR]

    def rotate_root(
        self,
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
        now = self.clock.now()
        with self.store.transaction() as tx:
            head = _head(tx)
            _check_root_input(vendor, name, der)
            _check_activation(activation_height, head, InvalidRootError)
            if overlap_blocks < 0:
                raise InvalidRootError("overlap_blocks", f"must be >= 0, got {overlap_blocks}")
            if activation_height + overlap_blocks >= MAX_AMOUNT:  # the retirement height is stored as 64 bits
                raise InvalidRootError(
                    "overlap_blocks", f"activation_height + overlap_blocks must be < 2^63, got {overlap_blocks}"
                )
            stored = [r for r in tx.vendor_roots() if (r.vendor, r.name) == (vendor, name)]
            if not stored:
                raise InvalidRootError("name", f"{vendor}/{name} has no stored version to rotate; add it first")
            chosen = _next_version(vendor, name, stored, version)
            record = _record(vendor, name, chosen, der, activation_height, None, head, now)
            try:
                after = rotate_root(VendorRoots(roots=tuple(pinned(r) for r in stored)), pinned(record), overlap_blocks)
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
            _insert_root(tx, record, now, f"in force from height {activation_height} (rotation)")
            tx.commit()
        return Rotation(new=record, retired=tuple(retired))

    def set_policy(self, *, kind: str, activation_height: int, policy: Policy | PolicySpec) -> PolicyRecord:
        """Store the next policy version of evidence kind `kind`, in force from `activation_height` (proofs
        verified for lower heights keep the earlier version). Raises InvalidPolicyError (nothing stored)."""
        now = self.clock.now()
        if isinstance(policy, PolicySpec):
            policy = policy.to_policy()
        if kind not in VERIFIERS:
            raise InvalidPolicyError("kind", f"unknown evidence kind {kind!r}, expected one of {list(EVIDENCE_KINDS)}")
        try:
            encoded = encode_policy(policy)
        except PolicyFormatError as exc:
            raise InvalidPolicyError(exc.field, exc.reason) from exc
        with self.store.transaction() as tx:
            head = _head(tx)
            _check_activation(activation_height, head, InvalidPolicyError)
            versions = [p.version for p in tx.attestation_policies() if p.kind == kind]
            record = PolicyRecord(
                kind=kind,
                version=max(versions, default=0) + 1,
                activation_height=activation_height,
                policy=encoded,
                added_height=head,
                added_at=now,
            )
            if not tx.insert_policy(record):  # another writer took the version first
                raise InvalidPolicyError("kind", f"{kind} v{record.version} was stored meanwhile; retry")
            tx.record_trust_change(
                TrustChange(
                    what=POLICY,
                    action="set",
                    subject=f"{kind} v{record.version}",
                    detail=f"in force from height {activation_height}",
                    height=head,
                    time=now,
                )
            )
            tx.commit()
        return record

    def pin_defaults(self, roots: Sequence[tuple[str, str, bytes]]) -> list[RootRecord]:
        """Pin (vendor, name, der) as version 1 from height 0 for every root with no stored version: `aicf up` on
        a fresh store. Idempotent: a root already stored (any version) is left as the operator made it."""
        now = self.clock.now()
        added: list[RootRecord] = []
        with self.store.transaction() as tx:
            head = _head(tx)
            have = {(r.vendor, r.name) for r in tx.vendor_roots()}
            for vendor, name, der in roots:
                if (vendor, name) in have:
                    continue
                _check_root_input(vendor, name, der)
                record = _record(vendor, name, 1, der, 0, None, head, now)
                _insert_root(tx, record, now, "shipped with aicf, pinned by `aicf up` from height 0")
                have.add((vendor, name))
                added.append(record)
            tx.commit()
        return added

    # -- reads -----------------------------------------------------------------------------------------------
    def roots(self) -> list[RootRecord]:
        with read_transaction(self.store) as tx:
            return tx.vendor_roots()

    def root_views(self) -> list[RootView]:
        with read_transaction(self.store) as tx:
            nxt = _head(tx) + 1
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

    def policies(self) -> list[PolicyVersion]:
        with read_transaction(self.store) as tx:
            return [PolicyVersion(record=p, policy=decode_policy(p.policy)) for p in tx.attestation_policies()]

    def changes(self) -> list[TrustChange]:
        with read_transaction(self.store) as tx:
            return tx.trust_changes()

    def root_expiries(self) -> tuple[Expiry, ...]:
        """Certificate expiry (not_after, unix seconds) of every root not yet retired: in force at the next block
        or scheduled to be. The caller subtracts its own `now` (SPEC §13's collateral alarm)."""
        with read_transaction(self.store) as tx:
            nxt = _head(tx) + 1
            live = [r for r in tx.vendor_roots() if r.expiry_height is None or r.expiry_height > nxt]
        return root_expiries(VendorRoots(roots=tuple(pinned(r) for r in live)))


def device_public_key(record: RootRecord) -> bytes:
    """The raw 32-byte key of a pinned device record (the registry stores its DER SubjectPublicKeyInfo)."""
    return device_raw_key(record.der)


def _head(tx: Tx) -> int:
    """The head height, -1 before the first block (so the next block is `_head + 1`)."""
    head = tx.head_block()
    return head.height if head is not None else -1


def _until(expiry_height: int | None) -> str:
    return "" if expiry_height is None else f" until height {expiry_height}"


def _check_root_input(vendor: str, name: str, der: bytes) -> None:
    if vendor not in VENDORS:
        raise InvalidRootError("vendor", f"unknown vendor {vendor!r}, expected one of {sorted(VENDORS)}")
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidRootError("name", f"must be 1..{MAX_NAME} printable characters, got {name!r}")
    try:
        check_root_der(vendor, der)
    except VendorRootsError as exc:
        raise InvalidRootError("der", exc.reason) from exc


def _check_activation(
    activation_height: int, head: int, error: type[InvalidRootError] | type[InvalidPolicyError]
) -> None:
    if activation_height < head + 1:
        raise error(
            "activation_height",
            f"must be at least the next block height {head + 1}, got {activation_height} "
            "(a change cannot apply to blocks already produced)",
        )


def _next_version(vendor: str, name: str, stored: Sequence[RootRecord], version: int | None) -> int:
    latest = max((r.version for r in stored), default=0)
    if version is None:
        return latest + 1
    if any(r.version == version for r in stored):
        raise InvalidRootError("version", f"{root_label(vendor, name, version)} is already stored")
    if version <= latest:
        raise InvalidRootError("version", f"must exceed the stored version {latest}, got {version}")
    return version


def _record(
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


def _insert_root(tx: Tx, record: RootRecord, now: int, detail: str) -> None:
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
