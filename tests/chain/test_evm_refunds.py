"""Refunds claimed on a real anvil (docs/EVM.md, "Refunds"): a requester's enqueue that the coordinator refuses,
the escrow it paid above a job's price and a cancelled job's whole escrow come back to it through epoch 0's claim
tree, claimed once; after the epoch the contract's escrow and treasury are the ledger's. Its own anvil (fresh
block 0, so epoch 0 starts at this test's deployment, SPEC's 86400 s epochs): slow."""

from collections.abc import Iterator

import pytest
import requests
from store.backends import memory_store
from web3 import Web3
from web3.logs import DISCARD

from aicf.bootstrap.evm import EvmBackend
from aicf.chain.evm import EvmChain
from aicf.core.jobs import JobStatus
from aicf.core.ledger import TREASURY
from aicf.core.params import Params
from aicf.service.audit import verify
from aicf.service.ingest import ingest_available
from chain.conftest import own_anvil
from chain.evm_adapter_support import MiningWaiter, coordinator_account, local_coordinator_stack
from chain.evm_support import ANM, advance_time, mine, revert_of, send

pytestmark = pytest.mark.slow

PARAMS = Params.default()
PRICE = 15000 * (1000 * 1000 * 11500 * 11000 // 10**11) // 1000  # fee × max_units_mu // 1000 (SPEC §2)


def no_circuits(circuit: bytes) -> int:
    raise AssertionError("no quantum job in these tests")


@pytest.fixture(scope="module")
def own_w3() -> Iterator[Web3]:
    with own_anvil() as node, requests.Session() as session:
        yield Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}, session=session))


def ai(escrow: int) -> tuple[object, ...]:
    return ("llama3-8b", b"hello", 64, 1000, 15000, 0, escrow)


def test_a_requester_claims_its_refunds_once_and_the_contract_matches_the_ledger(own_w3: Web3) -> None:
    local = local_coordinator_stack(own_w3)
    requester = local.roles.requester
    local.fund_with(requester, 10 * ANM)
    store = memory_store()
    backend = EvmBackend(
        chain=EvmChain(own_w3, local.deployment),
        writer_key=coordinator_account(),
        store=store,
        rpc_url="http://node",
        waiter=MiningWaiter(own_w3),
        params=PARAMS,
    )
    fn = local.aicf.functions
    send(fn.aiEnqueue(*ai(1)), requester)  # below the price: the coordinator refuses it, all 1 µANM owed back
    send(fn.aiEnqueue(*ai(4 * ANM)), requester)  # kept: PRICE in escrow, 4 ANM − PRICE owed back
    receipt = send(fn.aiEnqueue(*ai(4 * ANM)), requester)
    (cancelled,) = local.aicf.events.AiEnqueued().process_receipt(receipt, errors=DISCARD)
    mine(own_w3, 6)  # the enqueues are final (the job QUEUED) before the cancel arrives
    ingest_available(store, backend.view, PARAMS, no_circuits)
    send(fn.cancel(cancelled["args"]["taskId"]), requester)  # all 4 ANM owed back once the cancel is final
    advance_time(own_w3, PARAMS.epoch_seconds)  # the first block of epoch 1
    mine(own_w3, PARAMS.finality_depth)  # ... is final: batch 0 settles
    ingest_available(store, backend.view, PARAMS, no_circuits)
    with store.transaction() as tx:
        assert tx.last_batch_epoch() == 0
        statuses = sorted(j.status.value for j in tx.snapshot().jobs)
        assert len(tx.snapshot().refused) == 1
    assert statuses == [JobStatus.CANCELLED.value, JobStatus.QUEUED.value]
    owed = 1 + (4 * ANM - PRICE) + 4 * ANM

    backend.after_pass()
    assert int(fn.nextEpoch().call()) == 1
    assert int(fn.batches(0).call()[2]) == owed  # the claim total: the refunds (no reward in epoch 0)
    answer = backend.find_claim(0, bytes.fromhex(requester[2:]))
    assert answer is not None
    assert (answer.amount, answer.posted) == (owed, True)

    # After the epoch: the contract holds exactly what the ledger says is escrowed, owed and in the treasury.
    with store.transaction() as tx:
        snapshot = tx.snapshot()
        treasury = tx.balances([TREASURY])[TREASURY]
    ledger_escrow = sum(b for a, b in snapshot.balances if a.startswith(("escrow:", "requester:")))
    assert ledger_escrow == int(fn.escrowLocked().call()) == PRICE
    assert treasury == int(fn.treasury().call()) == 0
    assert local.balance(local.deployment.aicf) == PRICE + owed  # the open job's escrow and the unclaimed refunds
    assert verify(store).ok

    before = local.balance(requester)
    send(fn.claim(0, requester, answer.amount, list(answer.proof)), local.roles.other)  # anyone may send it
    assert local.balance(requester) == before + owed
    assert revert_of(fn.claim(0, requester, answer.amount, list(answer.proof)), requester) == (
        "AlreadyClaimed",
        (0, requester),
    )
    assert local.balance(local.deployment.aicf) == int(fn.escrowLocked().call()) == PRICE  # nothing stranded
