"""The ingester takes EvmChain's records as it takes the devnet's: an enqueue through the contract becomes a
PENDING job under SPEC's task_id with its escrow, and a reorg on anvil (evm_snapshot / evm_revert, then a new
block) is found by block hash and undone exactly."""

from store.backends import memory_store
from web3 import Web3
from web3.logs import DISCARD

from aicf.chain.evm import EvmChain, EvmWriter, Inclusion, spec_task_id
from aicf.core.jobs import JobStatus
from aicf.core.ledger import escrow_account, requester_account
from aicf.core.params import Params
from aicf.service.audit import verify
from aicf.service.ingest import ingest_available
from chain.evm_adapter_support import MiningWaiter, coordinator_account, local_coordinator_stack
from chain.evm_support import ANM, Stack, send

AI_ARGS = ("llama3-8b", b"hello", 64, 1000, 15000, 0, 4 * ANM)
PARAMS = Params.default()


def no_circuits(circuit: bytes) -> int:
    raise AssertionError("no quantum job in these tests")


def test_an_evm_enqueue_is_ingested_as_a_pending_job_and_a_reorg_on_anvil_removes_it(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    chain = EvmChain(stack.w3, stack.deployment)
    store = memory_store()
    snap = stack.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    receipt = send(stack.aicf.functions.aiEnqueue(*AI_ARGS), stack.roles.requester)
    (event,) = stack.aicf.events.AiEnqueued().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["escrow"] == 4 * ANM
    ingest_available(store, chain, PARAMS, no_circuits)
    block = chain.block_at(receipt["blockNumber"])
    assert block is not None
    enqueue = block.txs[1]
    task = spec_task_id(chain.chain_id, block.height, enqueue.tx_hash, enqueue.sender, enqueue.kind, enqueue.body)
    with store.transaction() as tx:
        job = tx.get_job(task)
        assert tx.snapshot().refused == ()  # neither the escrow deposit nor the enqueue was refused
        assert job is not None
        assert (job.status, job.caller, job.tx_hash) == (JobStatus.PENDING, enqueue.sender, enqueue.tx_hash)
        balances = tx.balances([requester_account(enqueue.sender), escrow_account(task)])
    assert balances[escrow_account(task)] == job.escrow
    assert balances[requester_account(enqueue.sender)] == 4 * ANM - job.escrow  # the rest of what it paid in
    assert verify(store).ok

    assert stack.w3.provider.make_request("evm_revert", [snap])["result"]  # type: ignore[arg-type]
    stack.w3.provider.make_request("evm_mine", [block.time + 5])  # type: ignore[arg-type]
    ingest_available(store, chain, PARAMS, no_circuits)
    with store.transaction() as tx:
        assert tx.get_job(task) is None
        assert tx.balances([escrow_account(task)])[escrow_account(task)] == 0
        stored = tx.block_at(block.height)
    assert stored is not None
    assert stored.hash == bytes(stack.w3.eth.get_block(block.height)["hash"]) != block.hash
    assert verify(store).ok


def test_an_inclusion_sent_by_the_writer_is_ingested_as_the_tasks_proof_inclusion_paying_the_fee_recipient(
    w3: Web3,
) -> None:
    local = local_coordinator_stack(w3)
    local.fund_with(local.roles.requester, 10 * ANM)
    chain = EvmChain(w3, local.deployment)
    store = memory_store()
    receipt = send(local.aicf.functions.aiEnqueue(*AI_ARGS), local.roles.requester)
    (event,) = local.aicf.events.AiEnqueued().process_receipt(receipt, errors=DISCARD)
    block = chain.block_at(receipt["blockNumber"])
    assert block is not None
    enqueue = block.txs[1]
    task = spec_task_id(chain.chain_id, block.height, enqueue.tx_hash, enqueue.sender, enqueue.kind, enqueue.body)
    writer = EvmWriter(w3, local.deployment, coordinator_account(), MiningWaiter(w3))
    inclusion = Inclusion(
        task_id=bytes(event["args"]["taskId"]),
        spec_task_id=task,
        proof_id=b"\x52" * 32,
        provider_id=b"\x53" * 32,
        output_digest=b"\x54" * 32,
        units_mu=1000,
        envelope=b"\xe0" * 40,
        acc=b"\xac" * 30,
        acc_sig=b"\x5a" * 64,
    )
    written = writer.ensure(inclusion)
    ingest_available(store, chain, PARAMS, no_circuits)
    with store.transaction() as tx:
        stored = tx.proof_inclusions_of([task])[task]
        assert tx.snapshot().refused == ()
    assert (stored.proof_id, stored.provider_id, stored.height, stored.tx_hash) == (
        b"\x52" * 32,
        b"\x53" * 32,
        written.block,
        written.tx_hash,
    )
    assert stored.producer == bytes.fromhex(local.roles.miner[2:])
    assert verify(store).ok
