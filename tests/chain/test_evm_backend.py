"""The EVM backend's pure parts: an accepted proof's inclusion body becomes includeProof's arguments (digest from
the envelope, units from the signed acceptance), a body that is not one is refused by name, and inclusions that
could not be sent go back to the front of the queue in their order."""

import pytest

from aicf.bootstrap.evm import EvmProofWriter, inclusion_of
from aicf.chain.evm import EvmError, Inclusion
from aicf.core.encoding import canonical_cbor

TASK, PROOF, PROVIDER, DIGEST = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32


def body(output_digest: bytes = DIGEST, units: object = 1500) -> dict[str, object]:
    envelope = {"version": 1, "kind": "AI_V1", "task_id": TASK, "body": {"output_digest": output_digest}}
    return {
        "task_id": TASK,
        "proof_id": PROOF,
        "provider_id": PROVIDER,
        "envelope": canonical_cbor(envelope),
        "acc": canonical_cbor({"proof_id": PROOF, "units_mu": units}),
        "acc_sig": b"\x05" * 64,
    }


def test_an_accepted_proof_becomes_include_proofs_arguments() -> None:
    assert inclusion_of(body(), b"\x09" * 32) == Inclusion(
        task_id=b"\x09" * 32,
        spec_task_id=TASK,
        proof_id=PROOF,
        provider_id=PROVIDER,
        output_digest=DIGEST,
        units_mu=1500,
    )


def test_a_body_without_a_32_byte_digest_or_units_is_refused() -> None:
    with pytest.raises(EvmError, match="no 32-byte output digest or no units"):
        inclusion_of(body(output_digest=b"\x04" * 31), b"\x09" * 32)
    with pytest.raises(EvmError, match="no 32-byte output digest or no units"):
        inclusion_of(body(units="many"), b"\x09" * 32)
    with pytest.raises(EvmError, match="no byte string 'envelope'"):
        inclusion_of({**body(), "envelope": None}, b"\x09" * 32)


def test_unsent_inclusions_go_back_to_the_front_of_the_queue_and_keep_their_envelopes() -> None:
    extras: dict[bytes, dict[str, bytes]] = {}
    writer = EvmProofWriter(extras)
    first, second, third = body(), {**body(), "proof_id": b"\x12" * 32}, {**body(), "proof_id": b"\x13" * 32}
    writer.include_proof(first)
    writer.include_proof(second)
    taken = writer.take()
    writer.include_proof(third)
    writer.put_back(taken[1:])
    assert [b["proof_id"] for b in writer.take()] == [b"\x12" * 32, b"\x13" * 32]
    assert writer.take() == []
    assert set(extras) == {PROOF, b"\x12" * 32, b"\x13" * 32}
    assert extras[PROOF]["envelope"] == first["envelope"]
