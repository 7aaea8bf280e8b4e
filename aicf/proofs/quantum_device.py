"""The device certificate of a QUANTUM_V1 body, checked against the device keys the operator pinned (issue 14).

There is no public vendor PKI for quantum devices (docs/QUANTUM.md §3): a device is trusted because the operator
pinned its Ed25519 key, with its device class, in the registry (`aicf devices pin`, stored as a `qdevice` root).
The check fails closed, in this order:
1. `cert_chain` is not exactly one CBOR map `{"device", "sig"}` with a valid name and 64-byte sig → MALFORMED
   (a drop: no attempt used, no slash);
2. no certificate at all, or a device with no key pinned in force at the proof's height → UNPINNED_DEVICE (no
   slash, the job requeues: the provider may be honest and the operator late, as with UNKNOWN_ROOT);
3. the signature does not verify under the pinned key over `device_statement` → BAD_DEVICE_CERT (slashed as
   BAD_ATTESTATION: the provider presented a certificate of a device that did not sign these results).
The device's class then picks the thresholds of the quantum verifier (params, per device class).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from aicf.core.cbor_limits import CborLimits, UntrustedCborError
from aicf.core.errors import AicfError, EncodingError
from aicf.core.qdevice import PUBLIC_KEY_BYTES, SIG_BYTES, DeviceCertError, check_device_name, device_statement
from aicf.proofs.attestation.roots import VendorRoots
from aicf.proofs.untrusted import decode_untrusted
from aicf.proofs.verdict import Reject, RejectCode

CERT_LIMITS: Final = CborLimits(max_bytes=1024, max_items=16, max_depth=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedDevice:
    """A device key the operator pinned: its name, its class (a key of params' per-class tables) and the raw
    32-byte Ed25519 public key."""

    device: str
    device_class: str
    public_key: bytes


def decode_device_cert(cert_chain: Sequence[bytes]) -> tuple[str, bytes]:
    """(device, sig) of the one certificate in `cert_chain`. Raises DeviceCertError on any other shape."""
    if len(cert_chain) != 1:
        raise DeviceCertError(f"expected exactly one device certificate, got {len(cert_chain)}")
    try:
        cert = decode_untrusted(cert_chain[0], CERT_LIMITS, "the device certificate")
    except UntrustedCborError as exc:
        raise DeviceCertError(str(exc)) from None
    if not isinstance(cert, dict) or set(cert) != {"device", "sig"}:
        raise DeviceCertError('the device certificate must be a map with exactly the keys "device" and "sig"')
    sig = cert["sig"]
    if not isinstance(sig, bytes) or len(sig) != SIG_BYTES:
        raise DeviceCertError(f"sig: expected {SIG_BYTES} bytes")
    return check_device_name(cert["device"]), sig


def check_device_cert(
    body: Mapping[str, object], devices: Mapping[str, PinnedDevice], lease_id: bytes
) -> PinnedDevice | Reject:
    """The pinned device that signed this body's results for this lease, or the Reject saying why not (steps in
    the module docstring). `body` has passed the QUANTUM_V1 shape check."""
    chain = body.get("cert_chain")
    if not isinstance(chain, list | tuple) or not all(isinstance(c, bytes) for c in chain):  # (1)
        return Reject(code=RejectCode.MALFORMED, message="cert_chain: expected a list of byte strings")
    if not chain:  # (2)
        return Reject(
            code=RejectCode.UNPINNED_DEVICE,
            message="cert_chain is empty: a quantum proof needs the certificate of a device the operator pinned",
        )
    try:  # (1)
        device, sig = decode_device_cert(chain)
    except DeviceCertError as exc:
        return Reject(code=RejectCode.MALFORMED, message=str(exc))
    pinned = devices.get(device)
    if pinned is None:  # (2)
        known = ", ".join(sorted(devices)) or "none"
        return Reject(
            code=RejectCode.UNPINNED_DEVICE,
            message=f"device {device!r} has no key pinned in the registry (pinned: {known})",
        )
    digest, shots, results = body.get("circuit_digest"), body.get("shots"), body.get("results")
    if not isinstance(digest, bytes) or not isinstance(shots, int) or not isinstance(results, list | tuple):
        return Reject(code=RejectCode.MALFORMED, message="body: circuit_digest, shots or results has the wrong type")
    try:
        statement = device_statement(device, lease_id, digest, shots, [r for r in results if isinstance(r, Mapping)])
    except (EncodingError, TypeError, ValueError) as exc:
        return Reject(code=RejectCode.MALFORMED, message=f"the device statement cannot be encoded: {exc}")
    try:  # (3)
        Ed25519PublicKey.from_public_bytes(pinned.public_key).verify(sig, statement)
    except (InvalidSignature, ValueError):
        return Reject(
            code=RejectCode.BAD_DEVICE_CERT,
            message=f"the certificate's signature does not verify under the key pinned for device {device!r} "
            f"(class {pinned.device_class})",
        )
    return pinned


QDEVICE_VENDOR: Final = "qdevice"  # the registry keeps pinned device keys beside the vendor roots


class DeviceKeyError(AicfError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"device key: {reason}")
        self.reason = reason


def device_key_der(public_key: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo the registry stores for a raw 32-byte Ed25519 key. Raises DeviceKeyError."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise DeviceKeyError(f"expected a {PUBLIC_KEY_BYTES}-byte Ed25519 public key, got {len(public_key)} bytes")
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise DeviceKeyError(f"not an Ed25519 public key: {exc}") from None
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def device_raw_key(der: bytes) -> bytes:
    """The raw 32-byte Ed25519 key of a stored DER SubjectPublicKeyInfo. Raises DeviceKeyError."""
    try:
        key = load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DeviceKeyError(f"the stored key does not parse: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise DeviceKeyError("the stored key is not an Ed25519 key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def device_root_name(device: str, device_class: str) -> str:
    """The registry's name of a pinned device: "<class>/<device>" (so `aicf roots list` shows the class)."""
    return f"{device_class}/{device}"


def pinned_devices(roots: VendorRoots) -> dict[str, PinnedDevice]:
    """The device keys among `roots` (those in force at the proof's height), by device name; of several versions
    of one device, the highest. A stored entry that does not parse is skipped (the pin checked it)."""
    best: dict[str, tuple[int, PinnedDevice]] = {}
    for root in roots.roots:
        if root.vendor != QDEVICE_VENDOR or "/" not in root.name:
            continue
        device_class, device = root.name.split("/", 1)
        try:
            raw = device_raw_key(root.der)
        except DeviceKeyError:
            continue
        if device not in best or root.version > best[device][0]:
            best[device] = (root.version, PinnedDevice(device=device, device_class=device_class, public_key=raw))
    return {device: pinned for device, (_, pinned) in best.items()}
