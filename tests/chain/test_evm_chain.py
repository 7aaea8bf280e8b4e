"""EvmChain on a real anvil: blocks and the Aicf contract's logs become the devnet's Block / ChainTx records,
a reorg shows a new hash at the same height through the cache, and a wrong chain id or a dead URL is refused."""

import json
from pathlib import Path

import pytest
from web3 import Web3
from web3.logs import DISCARD

from aicf.chain.anvil import Anvil, free_port
from aicf.chain.deploy import DeploymentError
from aicf.chain.evm import EvmChain, EvmWriter, Inclusion, NodeUnreachableError, spec_task_id
from aicf.chain.interface import ChainView
from aicf.core.chain import TxKind
from aicf.core.params import Params
from aicf.core.requests import validate_request
from chain.evm_adapter_support import MiningWaiter, coordinator_account, local_coordinator_stack, set_automine
from chain.evm_support import ANM, Stack, mine, send

CIRCUIT = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nh q[0];\nmeasure q[0] -> c[0];\n'
AI_ARGS = ("llama3-8b", b"hello", 64, 1000, 15000, 0, 4 * ANM)


def addr(value: str) -> bytes:
    return bytes.fromhex(value[2:])


@pytest.fixture
def local(w3: Web3) -> Stack:
    return local_coordinator_stack(w3)


def test_an_ai_enqueue_log_becomes_the_escrow_deposit_and_the_enqueue_with_its_request_body(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    receipt = send(stack.aicf.functions.aiEnqueue(*AI_ARGS), stack.roles.requester)
    chain = EvmChain(stack.w3, stack.deployment)
    height = receipt["blockNumber"]
    block = chain.block_at(height)
    assert block is not None
    header = stack.w3.eth.get_block(height)
    assert (block.height, block.hash, block.parent, block.time) == (
        height,
        bytes(header["hash"]),
        bytes(header["parentHash"]),
        header["timestamp"],
    )
    assert block.producer == addr(stack.roles.miner)
    assert block.beacon == bytes(header["mixHash"])
    assert (block.issuance, block.fees) == (0, 0)
    requester = addr(stack.roles.requester)
    deposit, enqueue = block.txs
    assert (deposit.index, deposit.kind, deposit.sender, dict(deposit.body)) == (
        0,
        TxKind.DEPOSIT,
        requester,
        {"to": requester, "amount": 4 * ANM},
    )
    assert (enqueue.index, enqueue.kind, enqueue.sender, enqueue.tx_hash) == (
        1,
        TxKind.AI_ENQUEUE,
        requester,
        bytes(receipt["transactionHash"]),
    )
    body = {"model": "llama3-8b", "prompt": b"hello", "max_tokens": 64, "max_runtime_ms": 1000}
    assert dict(enqueue.body) == {**body, "fee_per_unit": 15000, "tier": 0}
    valid = validate_request({**enqueue.body, "kind": "ai"}, Params(), 10_000, lambda _c: 0)
    assert valid.escrow <= 4 * ANM  # the body is a SPEC §2 request the ingester takes as it is


def test_enqueues_of_one_block_are_numbered_in_log_order_and_keep_their_bodies(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    set_automine(stack.w3, False)
    try:
        first = stack.aicf.functions.quantumEnqueue(CIRCUIT, 20, 50000, 0, ANM).transact(
            {"from": stack.roles.requester}
        )
        second = stack.aicf.functions.aiEnqueue(*AI_ARGS).transact({"from": stack.roles.requester})
        mine(stack.w3, 1)
    finally:
        set_automine(stack.w3, True)
    block = EvmChain(stack.w3, stack.deployment).block_at(stack.w3.eth.block_number)
    assert block is not None
    assert [(t.index, t.kind) for t in block.txs] == [
        (0, TxKind.DEPOSIT),
        (1, TxKind.QUANTUM_ENQUEUE),
        (2, TxKind.DEPOSIT),
        (3, TxKind.AI_ENQUEUE),
    ]
    assert (block.txs[1].tx_hash, block.txs[3].tx_hash) == (bytes(first), bytes(second))
    assert dict(block.txs[1].body) == {"circuit": CIRCUIT, "shots": 20, "fee_per_unit": 50000, "tier": 0}
    assert len({t.tx_hash for t in block.txs}) == 4


def test_a_cancel_names_the_spec_task_id_and_an_inclusion_becomes_a_proof_from_the_coordinator(local: Stack) -> None:
    local.fund_with(local.roles.requester, 10 * ANM)
    receipt = send(local.aicf.functions.aiEnqueue(*AI_ARGS), local.roles.requester)
    (event,) = local.aicf.events.AiEnqueued().process_receipt(receipt, errors=DISCARD)
    contract_task = bytes(event["args"]["taskId"])
    chain = EvmChain(local.w3, local.deployment)
    enqueue_block = chain.block_at(receipt["blockNumber"])
    assert enqueue_block is not None
    enqueue = enqueue_block.txs[1]
    spec_id = spec_task_id(
        local.deployment.chain_id, enqueue_block.height, enqueue.tx_hash, enqueue.sender, enqueue.kind, enqueue.body
    )

    cancel = send(local.aicf.functions.cancel(contract_task), local.roles.requester)
    for reader in (chain, EvmChain(local.w3, local.deployment)):  # the enqueue read before, or found by its log
        cancel_block = reader.block_at(cancel["blockNumber"])
        assert cancel_block is not None
        (tx,) = cancel_block.txs
        assert (tx.kind, dict(tx.body), tx.sender) == (
            TxKind.CANCEL,
            {"task_id": spec_id},
            addr(local.roles.requester),
        )

    writer = EvmWriter(local.w3, local.deployment, coordinator_account(), MiningWaiter(local.w3))
    inclusion = Inclusion(
        task_id=contract_task,
        spec_task_id=spec_id,
        proof_id=b"\x52" * 32,
        provider_id=b"\x53" * 32,
        output_digest=b"\x54" * 32,
        units_mu=1234,
        envelope=b"\xe0" * 40,
        acc=b"\xac" * 30,
        acc_sig=b"\x5a" * 64,
    )
    written = writer.ensure(inclusion)
    assert written.block is not None
    proof_block = chain.block_at(written.block)
    assert proof_block is not None
    (proof,) = proof_block.txs
    assert (proof.kind, proof.sender, proof.tx_hash) == (
        TxKind.PROOF,
        addr(local.roles.coordinator),
        written.tx_hash,
    )
    assert dict(proof.body) == {
        "task_id": spec_id,
        "proof_id": b"\x52" * 32,
        "provider_id": b"\x53" * 32,
        "output_digest": b"\x54" * 32,
        "units_mu": 1234,
        "envelope": b"\xe0" * 40,  # read back from the includeProof call's input
        "acc": b"\xac" * 30,
        "acc_sig": b"\x5a" * 64,
    }


def test_a_reorg_shows_a_new_hash_at_the_same_height_and_the_cache_does_not_hide_it(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    chain = EvmChain(stack.w3, stack.deployment)
    snap = stack.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    receipt = send(stack.aicf.functions.aiEnqueue(*AI_ARGS), stack.roles.requester)
    height = receipt["blockNumber"]
    before = chain.block_at(height)
    assert before is not None
    assert len(before.txs) == 2
    assert chain.block_at(height) == before  # served from the cache
    assert chain.hits == 1
    assert stack.w3.provider.make_request("evm_revert", [snap])["result"]  # type: ignore[arg-type]
    stack.w3.provider.make_request("evm_mine", [before.time + 7])  # type: ignore[arg-type]
    after = chain.block_at(height)
    assert after is not None
    assert after.hash != before.hash
    assert after.height == before.height
    assert after.parent == before.parent
    assert after.txs == ()
    assert after.hash == bytes(stack.w3.eth.get_block(height)["hash"])


def test_finality_is_the_deployment_depth_below_the_head(stack: Stack) -> None:
    chain: ChainView = EvmChain(stack.w3, stack.deployment)  # mypy checks it is a ChainView
    mine(stack.w3, 7)
    assert chain.finalized_height() == chain.head_height() - stack.deployment.finality_depth
    assert chain.block_at(chain.head_height() + 1) is None
    assert chain.block_at(-1) is None


def test_finality_by_tag_takes_the_lower_of_the_depth_and_the_nodes_finalized_block(stack: Stack) -> None:
    chain = EvmChain(stack.w3, stack.deployment, finality="tag")
    mine(stack.w3, 70)
    tagged = int(stack.w3.eth.get_block("finalized")["number"])  # anvil: 64 blocks behind the head
    assert tagged < chain.head_height() - stack.deployment.finality_depth
    assert chain.finalized_height() == tagged


def test_a_deployment_file_of_another_chain_id_is_refused_naming_both(
    stack: Stack, tmp_path: Path, anvil: Anvil
) -> None:
    doc = json.loads(stack.deployment.to_json())
    doc["chain_id"] = stack.deployment.chain_id + 1
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(
        DeploymentError, match=rf"chain_id {doc['chain_id']} does not match the node's {stack.deployment.chain_id}"
    ):
        EvmChain.connect(anvil.url, path)


def test_an_rpc_url_that_does_not_answer_is_a_specific_error(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    stack.deployment.write(path)
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NodeUnreachableError, match=f"RPC URL {dead} does not answer"):
        EvmChain.connect(dead, path, timeout_s=1.0)


def test_a_treasury_deposit_log_becomes_a_treasury_deposit_from_its_sender(stack: Stack) -> None:
    stack.fund_with(stack.roles.other, 5 * ANM)
    receipt = send(stack.aicf.functions.deposit(3 * ANM), stack.roles.other)
    block = EvmChain(stack.w3, stack.deployment).block_at(receipt["blockNumber"])
    assert block is not None
    (deposit,) = block.txs
    assert (deposit.kind, deposit.sender, dict(deposit.body), deposit.tx_hash) == (
        TxKind.TREASURY_DEPOSIT,
        addr(stack.roles.other),
        {"amount": 3 * ANM},
        bytes(receipt["transactionHash"]),
    )
