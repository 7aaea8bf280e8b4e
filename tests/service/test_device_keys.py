"""Quantum device keys (issue 14; docs/QUANTUM.md §3): the operator pins them, the verifier checks a QUANTUM_V1
body's one-entry cert_chain against them, failing closed, and the pinned class picks the thresholds."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from store.backends import memory_store

from aicf.core.clock import FakeClock
from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.params import Params
from aicf.core.qdevice import device_statement, encode_device_cert
from aicf.proofs.quantum_device import PinnedDevice, check_device_cert, pinned_devices
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.errors import InvalidDeviceKeyError
from aicf.service.trust import TrustRegistry, device_public_key

T = 1_700_000_000
CLASSES = Params().device_classes()
LEASE = b"\x11" * 32
KEY = Ed25519PrivateKey.from_private_bytes(tagged_hash("aicf/test/qdevice", 1))
PUBLIC = KEY.public_key().public_bytes_raw()
BODY: dict[str, object] = {
    "circuit_digest": b"\x22" * 32,
    "shots": 4,
    "results": [{"00": 2, "11": 2}, {"10": 4}],
    "cert_chain": [],
    "qos": {"runtime_ms": 3},
}


def signed(device: str = "qpu-1", key: Ed25519PrivateKey = KEY, lease: bytes = LEASE) -> dict[str, object]:
    results = BODY["results"]
    assert isinstance(results, list)
    sig = key.sign(device_statement(device, lease, b"\x22" * 32, 4, results))
    return {**BODY, "cert_chain": [encode_device_cert(device, sig)]}


PINNED = {"qpu-1": PinnedDevice(device="qpu-1", device_class="noisy", public_key=PUBLIC)}


def code(out: PinnedDevice | Reject) -> str:
    return out.code.value if isinstance(out, Reject) else "ok"


def test_a_body_signed_by_the_pinned_device_for_this_lease_names_its_class() -> None:
    assert check_device_cert(signed(), PINNED, LEASE) == PINNED["qpu-1"]


@pytest.mark.parametrize(
    ("body", "want", "message"),
    [
        (BODY, "UNPINNED_DEVICE", "cert_chain is empty"),
        (signed("qpu-2"), "UNPINNED_DEVICE", "device 'qpu-2' has no key pinned in the registry (pinned: qpu-1)"),
        (signed(key=Ed25519PrivateKey.generate()), "BAD_DEVICE_CERT", "does not verify under the key pinned"),
        (signed(lease=b"\x12" * 32), "BAD_DEVICE_CERT", "does not verify"),  # a certificate of another lease
        ({**signed(), "shots": 5}, "BAD_DEVICE_CERT", "does not verify"),  # results changed after signing
        ({**BODY, "cert_chain": [b"\x00", b"\x01"]}, "MALFORMED", "expected exactly one device certificate, got 2"),
        ({**BODY, "cert_chain": [b"\xff"]}, "MALFORMED", "the device certificate"),
        ({**BODY, "cert_chain": [canonical_cbor({"device": "qpu-1"})]}, "MALFORMED", 'exactly the keys "device"'),
        (
            {**BODY, "cert_chain": [canonical_cbor({"device": "QPU 1", "sig": bytes(64)})]},
            "MALFORMED",
            "lowercase letters",
        ),
    ],
)
def test_a_certificate_that_is_missing_unpinned_forged_or_malformed_is_refused(
    body: dict[str, object], want: str, message: str
) -> None:
    out = check_device_cert(body, PINNED, LEASE)
    assert isinstance(out, Reject)
    assert (out.code.value, message in out.message) == (want, True), out.message


def test_only_a_forged_certificate_is_slashed_and_as_bad_attestation() -> None:
    assert Reject(code=RejectCode.BAD_DEVICE_CERT, message="").slash_reason == "BAD_ATTESTATION"
    assert Reject(code=RejectCode.UNPINNED_DEVICE, message="").slash_reason is None


def test_a_pinned_key_reaches_the_verifiers_view_from_its_activation_height() -> None:
    store = memory_store()
    registry = TrustRegistry(store, FakeClock(T))
    record = registry.pin_device(device="qpu-1", device_class="noisy", public_key=PUBLIC, classes=CLASSES)
    assert (record.vendor, record.name, record.version, record.activation_height) == ("qdevice", "noisy/qpu-1", 1, 0)
    assert device_public_key(record) == PUBLIC
    with store.transaction() as tx:
        assert pinned_devices(registry.anchors_at(tx, 0).roots) == PINNED
    rotated = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    later = registry.pin_device(
        device="qpu-1", device_class="noisy", public_key=rotated, classes=CLASSES, activation_height=7
    )
    with store.transaction() as tx:
        assert pinned_devices(registry.anchors_at(tx, 6).roots)["qpu-1"].public_key == PUBLIC
        assert pinned_devices(registry.anchors_at(tx, 7).roots)["qpu-1"].public_key == device_public_key(later)
    assert [c.subject for c in registry.changes()] == ["qdevice/noisy/qpu-1 v1", "qdevice/noisy/qpu-1 v2"]


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"device": "QPU"}, "device", "lowercase letters"),
        ({"device": ""}, "device", "1..64 characters"),
        ({"device_class": "photonic"}, "device_class", "unknown device class 'photonic'"),
        ({"public_key": b"\x01" * 31}, "public_key", "expected a 32-byte Ed25519 public key, got 31 bytes"),
        ({"activation_height": -1}, "activation_height", "must be at least the next block height 0"),
    ],
)
def test_a_bad_pin_is_refused_naming_the_field_and_stores_nothing(
    kwargs: dict[str, object], field: str, reason: str
) -> None:
    store = memory_store()
    registry = TrustRegistry(store, FakeClock(T))
    args: dict[str, object] = {"device": "qpu-1", "device_class": "noisy", "public_key": PUBLIC, **kwargs}
    with pytest.raises(InvalidDeviceKeyError) as caught:
        registry.pin_device(classes=CLASSES, **args)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert registry.device_keys() == []
    assert str(caught.value).startswith("device key refused: ")


def test_a_device_pinned_under_one_class_is_not_pinned_again_under_another() -> None:
    registry = TrustRegistry(memory_store(), FakeClock(T))
    registry.pin_device(device="qpu-1", device_class="noisy", public_key=PUBLIC, classes=CLASSES)
    with pytest.raises(InvalidDeviceKeyError, match="already pinned as 'noisy/qpu-1'; use a new device name"):
        registry.pin_device(device="qpu-1", device_class="simulator", public_key=PUBLIC, classes=CLASSES)
    assert len(registry.device_keys()) == 1


def test_pinning_the_same_key_again_stores_nothing_and_returns_the_pinned_version() -> None:
    registry = TrustRegistry(memory_store(), FakeClock(T))
    first = registry.pin_device(device="qpu-1", device_class="noisy", public_key=PUBLIC, classes=CLASSES)
    again = registry.pin_device(device="qpu-1", device_class="noisy", public_key=PUBLIC, classes=CLASSES)
    assert again == first
    assert len(registry.device_keys()) == 1
    assert len(registry.changes()) == 1
