"""The envelope checks of SPEC §8: only the live lease's holder, signing proof_id, changes state."""

from collections.abc import Callable

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.ids import proof_id, provider_id
from aicf.core.leases import Lease, LeaseStatus, grant
from aicf.core.params import Params
from aicf.proofs.envelope import (
    Acceptance,
    ProofEnvelope,
    check_envelope,
    parse_envelope,
    sign_acceptance,
    sign_envelope,
    verify_acceptance,
)
from aicf.proofs.verdict import Reject, RejectCode

P = Params.default()
TASK = b"\x07" * 32


def _key(seed: int) -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


KEY, PUB = _key(1)
PID = provider_id(PUB)
LEASE = grant(TASK, PID, 0, now=1000, params=P)


def _envelope(key: Ed25519PrivateKey = KEY, **changes: object) -> ProofEnvelope:
    raw: dict[str, object] = {
        "version": 1,
        "kind": "AI_V1",
        "task_id": TASK,
        "lease_id": LEASE.lease_id,
        "provider_id": PID,
        "body": {"output_digest": b"\x00" * 32},
        "sig": b"\x00" * 64,
    }
    raw.update(changes)
    env = parse_envelope(raw)
    assert isinstance(env, ProofEnvelope)
    return ProofEnvelope(**{**env.to_map(), "sig": sign_envelope(key, env)})  # type: ignore[arg-type]


def never(_: bytes) -> bool:
    return False


def _check(
    env: ProofEnvelope, *, at: int = 1010, seen: Callable[[bytes], bool] = never, lease: Lease | None = LEASE
) -> Reject | None:
    return check_envelope(env, provider_key=PUB, lease=lease, received_at=at, seen_proof=seen)


def test_holder_of_the_live_lease_passes() -> None:
    assert _check(_envelope()) is None


@given(st.binary(max_size=64), st.integers(0, 2**63 - 1))
def test_a_parsed_envelope_has_the_proof_id_of_its_fields(raw: bytes, n: int) -> None:
    """parse_envelope keeps the body's encoding for proof_id: the id is H over the fields all the same."""
    body = {"output_digest": raw, "units": n, "qos": {"runtime_ms": n}}
    parsed = _envelope(body=body)
    fresh = parse_envelope(parsed.to_map())
    assert isinstance(fresh, ProofEnvelope)
    assert fresh.proof_id == proof_id(1, "AI_V1", TASK, LEASE.lease_id, PID, body)
    assert fresh.proof_id == ProofEnvelope(**parsed.to_map()).proof_id  # type: ignore[arg-type]


@given(st.binary(max_size=64), st.integers(0, 2**63 - 1))
def test_an_envelope_is_encoded_once_to_the_canonical_cbor_of_its_map(raw: bytes, n: int) -> None:
    """encoded() splices the body's kept encoding into the envelope's: the bytes are those of the whole map."""
    body = {"output_digest": raw, "units": n, "qos": {"runtime_ms": n}}
    fresh = parse_envelope(_envelope(body=body).to_map())
    assert isinstance(fresh, ProofEnvelope)
    plain = cbor2.dumps(fresh.to_map(), canonical=True)
    assert fresh.encoded() == plain
    assert fresh.encoded() is fresh.encoded()  # memoised
    assert ProofEnvelope(**fresh.to_map()).encoded() == plain  # type: ignore[arg-type]


def test_signature_by_another_key_is_bad_signature() -> None:
    other, _ = _key(2)
    reject = _check(_envelope(other))
    assert reject is not None
    assert reject.code is RejectCode.BAD_SIGNATURE
    assert reject.is_drop


def test_replayed_envelope_is_duplicate() -> None:
    env = _envelope()
    reject = _check(env, seen=lambda pid: pid == env.proof_id)
    assert reject is not None
    assert reject.code is RejectCode.DUPLICATE


def test_proof_at_the_expiry_instant_is_lease_expired() -> None:
    reject = _check(_envelope(), at=LEASE.expires_at)
    assert reject is not None
    assert reject.code is RejectCode.LEASE_EXPIRED
    assert _check(_envelope(), at=LEASE.expires_at - 1) is None


def test_envelope_for_someone_elses_lease_is_unknown_lease() -> None:
    other_key, other_pub = _key(3)
    env = _envelope(other_key, provider_id=provider_id(other_pub))
    reject = check_envelope(env, provider_key=other_pub, lease=LEASE, received_at=1010, seen_proof=never)
    assert reject is not None
    assert reject.code is RejectCode.UNKNOWN_LEASE


def test_envelope_for_a_dead_lease_is_unknown_lease_and_for_an_expired_one_lease_expired() -> None:
    from dataclasses import replace

    reject = _check(_envelope(), lease=replace(LEASE, status=LeaseStatus.RELEASED))
    assert reject is not None
    assert reject.code is RejectCode.UNKNOWN_LEASE
    reject = _check(_envelope(), lease=replace(LEASE, status=LeaseStatus.EXPIRED))  # SPEC §7, swept already
    assert reject is not None
    assert reject.code is RejectCode.LEASE_EXPIRED
    assert _check(_envelope(), lease=None) == Reject(
        code=RejectCode.UNKNOWN_LEASE, message=f"no lease 0x{LEASE.lease_id.hex()} for this task"
    )


def test_unregistered_provider_is_bad_signature() -> None:
    reject = check_envelope(_envelope(), provider_key=None, lease=LEASE, received_at=1010, seen_proof=never)
    assert reject is not None
    assert reject.code is RejectCode.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("version", 2, "envelope.version"),
        ("version", True, "envelope.version"),
        ("kind", "AI_V2", "envelope.kind"),
        ("task_id", b"\x01" * 31, "envelope.task_id: expected 32 bytes, got 31 bytes"),
        ("sig", "00", "envelope.sig: expected 64 bytes, got str"),
        ("body", {"x": 1.5}, "envelope.body"),
        ("body", [1], "envelope.body"),
        ("extra", 1, "unknown field 'extra'"),
    ],
)
def test_malformed_envelopes_are_dropped_with_the_field_named(field: str, value: object, needle: str) -> None:
    raw = {**_envelope().to_map(), field: value}
    reject = parse_envelope(raw)
    assert isinstance(reject, Reject)
    assert reject.code is RejectCode.MALFORMED
    assert needle in reject.message


@given(st.binary(min_size=1, max_size=64), st.integers(0, 63))
def test_any_change_to_the_signed_fields_breaks_the_signature(junk: bytes, position: int) -> None:
    env = _envelope()
    body = {**env.body, "output_digest": junk}
    tampered = ProofEnvelope(**{**env.to_map(), "body": body})  # type: ignore[arg-type]
    if tampered.proof_id != env.proof_id:
        reject = _check(tampered)
        assert reject is not None
        assert reject.code is RejectCode.BAD_SIGNATURE
    flipped = bytearray(env.sig)
    flipped[position] ^= 1
    reject = _check(ProofEnvelope(**{**env.to_map(), "sig": bytes(flipped)}))  # type: ignore[arg-type]
    assert reject is not None
    assert reject.code is RejectCode.BAD_SIGNATURE


def test_acceptance_record_is_signed_by_the_operator_and_binds_every_field() -> None:
    op_key, op_pub = _key(9)
    acc = Acceptance(proof_id=b"\x05" * 32, units_mu=4048, lat_bps=11500, avail_bps=11000, accepted_at=1010)
    sig = sign_acceptance(op_key, acc)
    assert verify_acceptance(op_pub, acc, sig)
    assert not verify_acceptance(op_pub, Acceptance(**{**acc.to_map(), "units_mu": 4049}), sig)  # type: ignore[arg-type]
    assert not verify_acceptance(PUB, acc, sig)


def test_an_acceptance_this_process_signed_is_not_verified_again_and_a_forgery_still_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op_key, op_pub = _key(9)
    acc = Acceptance(proof_id=b"\x06" * 32, units_mu=7, lat_bps=10000, avail_bps=10000, accepted_at=2020)
    sig = sign_acceptance(op_key, acc)
    verified: list[bytes] = []
    real = Ed25519PublicKey.from_public_bytes

    def counting(raw: bytes) -> Ed25519PublicKey:
        verified.append(raw)
        return real(raw)

    monkeypatch.setattr(Ed25519PublicKey, "from_public_bytes", counting)
    assert verify_acceptance(op_pub, acc, sig)
    assert verified == []  # known good: no Ed25519 verification
    forged = bytes([sig[0] ^ 1]) + sig[1:]
    assert not verify_acceptance(op_pub, acc, forged)
    assert not verify_acceptance(PUB, acc, sig)  # another key: verified, and refused
    assert verified == [op_pub, PUB]
