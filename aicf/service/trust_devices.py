"""Quantum device keys in the registry (issue 14; docs/QUANTUM.md §3): pinned as versions of the `qdevice` root
"<class>/<device>", so the verifier's per-height view holds them with the vendor roots."""

from collections.abc import Collection

from aicf.core.clock import Clock
from aicf.core.qdevice import DeviceCertError, check_device_name
from aicf.core.trust import RootRecord
from aicf.proofs.quantum_device import (
    QDEVICE_VENDOR,
    DeviceKeyError,
    device_key_der,
    device_raw_key,
    device_root_name,
)
from aicf.service.errors import InvalidDeviceKeyError
from aicf.service.trust_steps import check_activation, head_height, insert_root, next_version, root_record
from aicf.store.interface import Store, read_transaction


def pin_device(
    store: Store,
    clock: Clock,
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
    now = clock.now()
    with store.transaction() as tx:
        head = head_height(tx)
        activation = head + 1 if activation_height is None else activation_height
        check_activation(activation, head, InvalidDeviceKeyError)
        pins = [r for r in tx.vendor_roots() if r.vendor == QDEVICE_VENDOR and r.name.split("/", 1)[-1] == device]
        if other := sorted({r.name for r in pins} - {name}):
            raise InvalidDeviceKeyError(
                "device_class", f"device {device!r} is already pinned as {other[0]!r}; use a new device name"
            )
        latest = max(pins, key=lambda r: r.version, default=None)
        if latest is not None and latest.der == der and activation_height is None:
            return latest  # the same key pinned again (a provider restarted with --pin-device): nothing new
        chosen = next_version(QDEVICE_VENDOR, name, pins, None)
        record = root_record(QDEVICE_VENDOR, name, chosen, der, activation, None, head, now)
        insert_root(tx, record, now, f"device key 0x{public_key.hex()} in force from height {activation}")
        tx.commit()
    return record


def device_keys(store: Store) -> list[RootRecord]:
    """Every pinned device key version, by (name, version)."""
    with read_transaction(store) as tx:
        return [r for r in tx.vendor_roots() if r.vendor == QDEVICE_VENDOR]


def device_public_key(record: RootRecord) -> bytes:
    """The raw 32-byte key of a pinned device record (the registry stores its DER SubjectPublicKeyInfo)."""
    return device_raw_key(record.der)
