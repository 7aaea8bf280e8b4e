"""The EVM backend's pure parts: an accepted proof's inclusion body becomes includeProof's arguments (digest from
the envelope, units from the signed acceptance), a body that is not one is refused by name, and inclusions that
could not be sent go back to the front of the queue in their order."""

import pytest
from store.backends import memory_store
from web3 import Web3

from aicf.bootstrap.evm import EvmBackend, EvmProofWriter, inclusion_of
from aicf.chain.evm import EvmChain, EvmError, Inclusion
from aicf.core.encoding import canonical_cbor
from aicf.core.params import Params
from aicf.core.records import SlashRecord
from chain.evm_adapter_support import MiningWaiter, coordinator_account, local_coordinator_stack
from chain.evm_support import ANM, send

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


def test_a_recorded_slash_is_sent_to_the_contract_once_and_a_provider_without_stake_is_skipped(w3: Web3) -> None:
    local = local_coordinator_stack(w3)
    staked, unstaked = b"\x21" * 32, b"\x22" * 32
    local.fund_with(local.roles.provider, 1000 * ANM)
    send(local.aicf.functions.stake(staked, 1000 * ANM), local.roles.provider)
    store = memory_store()
    with store.transaction() as tx:
        for n, pid in enumerate((staked, unstaked)):
            tx.insert_slash(
                SlashRecord(
                    evidence_hash=bytes([0x30 + n]) * 32,
                    provider_id=pid,
                    reason="MISSED_LEASE",
                    subject=bytes([0x40 + n]) * 32,
                    task_id=b"\x50" * 32,
                    amount=1,
                    evidence=b"\xa0",
                    time=1,
                    jailed_until=None,
                )
            )
        tx.commit()
    backend = EvmBackend(
        chain=EvmChain(w3, local.deployment),
        writer_key=coordinator_account(),
        store=store,
        rpc_url="http://node",
        waiter=MiningWaiter(w3),
        params=Params(),
    )
    fund_before = local.balance(local.roles.fund)
    backend.send_slashes()
    backend.send_slashes()  # a second pass sends nothing
    backend.slashes_done.clear()
    backend.send_slashes()  # nor does a restarted writer: the contract holds the evidence
    slashed = local.aicf.events.Slashed().get_logs(from_block=local.deployment.deploy_block)
    assert [(bytes(e["args"]["providerId"]), int(e["args"]["bps"])) for e in slashed] == [(staked, 100)]
    assert local.balance(local.roles.fund) == fund_before + 1000 * ANM * 100 // 10_000
    assert backend.slashed == 1
