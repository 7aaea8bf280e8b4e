"""The device certificate a QUANTUM_V1 body carries in `cert_chain` (issue 14; docs/QUANTUM.md §3).

There is no public vendor PKI for quantum devices, so a device is known by an Ed25519 key the operator pins in the
registry with its device class (`aicf devices pin`). The device signs what it ran and what it measured:

    statement = H("aicf/qdevice/v1", device, lease_id, circuit_digest, shots, results)

with `results` the body's list of bitstring → count maps; lease_id already binds the task, the provider and the
attempt, so a certificate is good for one lease only. `cert_chain` holds exactly one entry, the canonical CBOR map
`{"device": name, "sig": Ed25519(device key, statement)}`. Signing is the provider's (aicf.provider), checking
the verifier's (aicf.proofs.quantum_device); both use these bytes.
"""

from collections.abc import Mapping, Sequence
from typing import Final

from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.errors import AicfError

DEVICE_TAG: Final = "aicf/qdevice/v1"
MAX_DEVICE_NAME: Final = 64
SIG_BYTES: Final = 64
PUBLIC_KEY_BYTES: Final = 32


class DeviceCertError(AicfError):
    """A device name or certificate that is not what docs/QUANTUM.md §3 describes."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cert_chain: {reason}")
        self.reason = reason


def check_device_name(name: object) -> str:
    """A device name: 1..64 characters of lowercase letters, digits, `-`, `_` and `.`. Raises DeviceCertError."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_DEVICE_NAME:
        raise DeviceCertError(f"a device name is 1..{MAX_DEVICE_NAME} characters, got {str(name)[:80]!r}")
    if name.strip("abcdefghijklmnopqrstuvwxyz0123456789-_.") or not name[0].isalnum():
        raise DeviceCertError(
            f"device name {name!r}: lowercase letters, digits, '-', '_' and '.' only, starting with a letter or digit"
        )
    return name


def device_statement(
    device: str, lease_id: bytes, circuit_digest: bytes, shots: int, results: Sequence[Mapping[str, int]]
) -> bytes:
    """What the device signs: H("aicf/qdevice/v1", device, lease_id, circuit_digest, shots, results)."""
    return tagged_hash(DEVICE_TAG, device, lease_id, circuit_digest, shots, [dict(r) for r in results])


def encode_device_cert(device: str, sig: bytes) -> bytes:
    return canonical_cbor({"device": check_device_name(device), "sig": sig})
