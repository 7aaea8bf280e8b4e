"""A `ProofIncluded` log becomes the full PROOF transaction from the chain alone (issue 13): the envelope, `acc` and
`acc_sig` are read back from the input of the `includeProof` call that emitted the log, and an input that is not
that call (another contract, another function, garbage, other ids than the log's, an empty or oversized field) is
refused naming why. The slash's bps on chain are the params' in force at the slash's height. No node needed."""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from eth_abi.abi import encode
from store.backends import memory_store
from store.test_contract import block

from aicf.bootstrap.evm import slash_bps_at, slash_epoch
from aicf.chain.evm import (
    INCLUDE_PROOF_SELECTOR,
    MAX_ENVELOPE_BYTES,
    ProofInputError,
    proof_tx_of,
)
from aicf.core.encoding import canonical_cbor
from aicf.core.operator import OP_PARAMS, OperatorChange
from aicf.core.params import Params
from aicf.core.records import SlashRecord

AICF = b"\xa1" * 20
TASK, SPEC_TASK, PROOF, PROVIDER, DIGEST = (bytes([n]) * 32 for n in range(1, 6))
ENVELOPE, ACC, ACC_SIG = b"\xe0" * 300, b"\xac" * 90, b"\x5a" * 64
TYPES = ["bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "uint64", "(bytes,bytes,bytes)"]


def log_args(**changes: object) -> dict[str, Any]:
    args: dict[str, Any] = {"taskId": TASK, "specTaskId": SPEC_TASK, "proofId": PROOF, "providerId": PROVIDER,
                            "outputDigest": DIGEST, "unitsMu": 1500, "miner": "0x" + "00" * 20}  # fmt: skip
    return args | changes


def call_input(
    args: Mapping[str, Any] | None = None, data: tuple[bytes, bytes, bytes] = (ENVELOPE, ACC, ACC_SIG)
) -> bytes:
    a = log_args() if args is None else args
    values = [a["taskId"], a["specTaskId"], a["proofId"], a["providerId"], a["outputDigest"], a["unitsMu"], data]
    return INCLUDE_PROOF_SELECTOR + encode(TYPES, values)


def test_an_inclusion_logs_ids_and_its_call_input_carries_the_envelope_and_the_signed_acceptance() -> None:
    assert proof_tx_of(AICF, log_args(), AICF, call_input()) == {
        "task_id": SPEC_TASK,  # SPEC's task id, not the contract's
        "proof_id": PROOF,
        "provider_id": PROVIDER,
        "output_digest": DIGEST,
        "units_mu": 1500,
        "envelope": ENVELOPE,
        "acc": ACC,
        "acc_sig": ACC_SIG,
    }


def test_an_envelope_at_the_cap_is_taken() -> None:
    big = b"\x01" * MAX_ENVELOPE_BYTES
    assert proof_tx_of(AICF, log_args(), AICF, call_input(data=(big, ACC, ACC_SIG)))["envelope"] == big


@pytest.mark.parametrize(
    ("to", "data", "reason"),
    [
        (b"\xb2" * 20, call_input(), "its transaction calls 0x" + "b2" * 20 + ", not the Aicf contract"),
        (None, call_input(), "its transaction calls no contract"),
        (AICF, b"\x12\x34\x56\x78" + call_input()[4:], "input starts 0x12345678, not includeProof's selector"),
        (AICF, call_input()[:100], "input does not decode as includeProof's arguments"),
        (AICF, INCLUDE_PROOF_SELECTOR, "input does not decode as includeProof's arguments"),
        (AICF, call_input(log_args(proofId=b"\x99" * 32)), "its transaction's proofId differs from the log's"),
        (AICF, call_input(log_args(unitsMu=1501)), "its transaction's unitsMu differs from the log's"),
        (AICF, call_input(log_args(specTaskId=TASK)), "its transaction's specTaskId differs from the log's"),
        (
            AICF,
            call_input(data=(b"\x01" * (MAX_ENVELOPE_BYTES + 1), ACC, ACC_SIG)),
            f"its envelope is {MAX_ENVELOPE_BYTES + 1} bytes, allowed 1..{MAX_ENVELOPE_BYTES}",
        ),
        (AICF, call_input(data=(b"", ACC, ACC_SIG)), "its envelope is 0 bytes, allowed 1.."),
        (AICF, call_input(data=(ENVELOPE, b"\x01" * 257, ACC_SIG)), "its acc is 257 bytes, allowed 1..256"),
        (AICF, call_input(data=(ENVELOPE, ACC, ACC_SIG[:63])), "its acc_sig is 63 bytes, allowed 64..64"),
    ],
)
def test_an_input_that_is_not_the_logs_include_proof_call_is_refused_by_name(
    to: bytes | None, data: bytes, reason: str
) -> None:
    with pytest.raises(ProofInputError, match=reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        proof_tx_of(AICF, log_args(), to, data)


def slash(time: int) -> SlashRecord:
    return SlashRecord(evidence_hash=b"\x30" * 32, provider_id=PROVIDER, reason="MISSED_LEASE", subject=b"\x40" * 32,
                       task_id=TASK, amount=1, evidence=b"\xa0", time=time, jailed_until=None)  # fmt: skip


def test_a_slash_is_sent_with_the_bps_of_the_params_in_force_at_its_height() -> None:
    base = Params()
    store = memory_store()
    with store.transaction() as tx:
        assert slash_epoch(tx, 5000) == 0  # no block yet
        for height in range(6):  # times 1000, 1010, … 1050; epochs 0, 0, 0, 1, 1, 1
            tx.insert_block(replace(block(height), epoch=height // 3))
        raised = {**base.slash_bps, "MISSED_LEASE": base.slash_bps["MISSED_LEASE"] + 400}
        tx.insert_operator_changes(
            [
                OperatorChange(
                    height=1,
                    tx_index=0,
                    tx_hash=b"\x77" * 32,
                    sender=b"\x01" * 20,
                    op=OP_PARAMS,
                    subject=b"",
                    before=canonical_cbor({}),
                    after=canonical_cbor({"slash_bps": raised}),
                    effective_epoch=1,
                    time=1010,
                )
            ]
        )
        tx.commit()
    with store.transaction() as tx:
        assert [slash_epoch(tx, t) for t in (999, 1000, 1025, 1030, 1049, 1050, 9999)] == [0, 0, 0, 1, 1, 1, 1]
        assert slash_bps_at(tx, base, slash(1029)) == base.slash_bps["MISSED_LEASE"]  # height 2, epoch 0
        assert slash_bps_at(tx, base, slash(1030)) == base.slash_bps["MISSED_LEASE"] + 400  # height 3, epoch 1
