"""EvmWriter on a real anvil: each coordinator transaction reaches the chain once. A writer killed between
sending a batch root and its confirmation is replaced by a new writer on the same key, which does not post it
again; a transaction that vanished is resent; a refused call names the contract's error."""

import pytest
from eth_account import Account
from web3 import Web3

from aicf.chain.evm import (
    EvmWriteError,
    EvmWriter,
    Inclusion,
    ReceiptTimeoutError,
    SlashPost,
    WriteStatus,
)
from chain.evm_adapter_support import (
    MiningWaiter,
    StoppedWaiter,
    batch_logs,
    coordinator_account,
    empty_batch,
    local_coordinator_stack,
    set_automine,
)
from chain.evm_support import ANM, Stack, send
from chain.test_contracts_jobs import enqueue_ai


@pytest.fixture
def local(w3: Web3) -> Stack:
    return local_coordinator_stack(w3)


def writer(stack: Stack, clock: MiningWaiter | StoppedWaiter | None = None, timeout_s: float = 30.0) -> EvmWriter:
    return EvmWriter(
        stack.w3,
        stack.deployment,
        coordinator_account(),
        clock if clock is not None else MiningWaiter(stack.w3),
        receipt_timeout_s=timeout_s,
    )


def nonce(stack: Stack) -> int:
    return int(stack.w3.eth.get_transaction_count(stack.roles.coordinator, "latest"))


def test_a_batch_root_is_posted_once_and_a_second_ensure_sends_nothing(local: Stack) -> None:
    w = writer(local)
    first = w.ensure(empty_batch(0))
    assert first.status == WriteStatus.SENT
    assert first.tx_hash is not None
    assert local.aicf.functions.nextEpoch().call() == 1
    sent = nonce(local)
    again = writer(local).ensure(empty_batch(0))
    assert again.status == WriteStatus.ALREADY
    assert (nonce(local), batch_logs(local)) == (sent, 1)


def test_a_writer_killed_between_sending_a_root_and_its_confirmation_does_not_post_it_twice(local: Stack) -> None:
    start = nonce(local)
    set_automine(local.w3, False)
    try:
        killed = writer(local, StoppedWaiter(), timeout_s=5.0)
        with pytest.raises(ReceiptTimeoutError, match="stays in flight"):
            killed.ensure(empty_batch(0))  # sent, never confirmed: the process dies here
        assert killed.sent == 1
        assert local.aicf.functions.nextEpoch().call() == 0
        clock = MiningWaiter(local.w3)
        restarted = writer(local, clock)  # a new writer object on the same key, knowing nothing
        result = restarted.ensure(empty_batch(0))
    finally:
        set_automine(local.w3, True)
    assert result.status == WriteStatus.ALREADY
    assert restarted.sent == 0
    assert clock.slept >= 1
    assert (nonce(local), batch_logs(local), local.aicf.functions.nextEpoch().call()) == (start + 1, 1, 1)


def test_a_root_whose_transaction_vanished_before_mining_is_resent_once(local: Stack) -> None:
    set_automine(local.w3, False)
    try:
        killed = writer(local, StoppedWaiter(), timeout_s=5.0)
        with pytest.raises(ReceiptTimeoutError):
            killed.ensure(empty_batch(0))
        (lost,) = killed.in_flight.values()
        local.w3.provider.make_request("anvil_dropTransaction", ["0x" + lost.tx_hash.hex()])  # type: ignore[arg-type]
    finally:
        set_automine(local.w3, True)
    restarted = writer(local)
    results = restarted.ensure_all([empty_batch(0), empty_batch(1)])
    assert [r.status for r in results] == [WriteStatus.SENT, WriteStatus.SENT]
    assert (batch_logs(local), local.aicf.functions.nextEpoch().call()) == (2, 2)
    assert [r.status for r in writer(local).ensure_all([empty_batch(0), empty_batch(1)])] == [WriteStatus.ALREADY] * 2
    assert batch_logs(local) == 2


def test_a_stuck_root_is_replaced_at_its_nonce_with_higher_fees_and_lands_once(local: Stack) -> None:
    start = nonce(local)
    set_automine(local.w3, False)
    try:
        w = writer(local, StoppedWaiter(), timeout_s=5.0)
        with pytest.raises(ReceiptTimeoutError):
            w.ensure(empty_batch(0))
        (stuck,) = w.in_flight.values()
        (replacement,) = w.replace_stuck()
        assert replacement != stuck.tx_hash
        assert w.in_flight[start].max_fee > stuck.max_fee
        local.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert w.wait_receipt(start)["transactionHash"] == replacement
        w.clock = MiningWaiter(local.w3)
        assert w.ensure(empty_batch(0)).status == WriteStatus.ALREADY
    finally:
        set_automine(local.w3, True)
    assert (nonce(local), batch_logs(local)) == (start + 1, 1)


def test_a_different_root_already_posted_for_the_epoch_is_a_conflict_not_a_resend(local: Stack) -> None:
    writer(local).ensure(empty_batch(0))
    other = empty_batch(0)
    changed = type(other)(
        epoch=0,
        spec_root=other.spec_root,
        totals=other.totals,
        escrow_released=0,
        claim_root=b"\x09" * 32,
        claim_total=0,
    )
    with pytest.raises(EvmWriteError, match=r"epoch 0's batch on chain has claim root 0x0{64}"):
        writer(local).ensure(changed)
    assert batch_logs(local) == 1


def test_an_inclusion_is_sent_once_and_a_later_proof_for_the_task_loses(local: Stack) -> None:
    local.fund_with(local.roles.requester, 10 * ANM)
    task = enqueue_ai(local)
    inclusion = Inclusion(
        task_id=task,
        spec_task_id=b"\x51" * 32,
        proof_id=b"\x52" * 32,
        provider_id=b"\x53" * 32,
        output_digest=b"\x54" * 32,
        units_mu=500,
        envelope=b"\xe0" * 40,
        acc=b"\xac" * 30,
        acc_sig=b"\x5a" * 64,
    )
    w = writer(local)
    assert w.ensure(inclusion).status == WriteStatus.SENT
    sent = nonce(local)
    assert writer(local).ensure(inclusion).status == WriteStatus.ALREADY
    late = Inclusion(
        task_id=task,
        spec_task_id=b"\x51" * 32,
        proof_id=b"\x62" * 32,
        provider_id=b"\x63" * 32,
        output_digest=b"\x64" * 32,
        units_mu=1,
        envelope=b"\xe0" * 40,
        acc=b"\xac" * 30,
        acc_sig=b"\x5a" * 64,
    )
    lost = writer(local).ensure(late)
    assert (lost.status, lost.detail) == (WriteStatus.LOST, "0x" + "52" * 32 + " won")
    assert nonce(local) == sent


def test_a_slash_is_sent_once_per_evidence(local: Stack) -> None:
    provider_id = b"\x71" * 32
    local.fund_with(local.roles.provider, 100 * ANM)
    send(local.aicf.functions.stake(provider_id, 100 * ANM), local.roles.provider)
    slash = SlashPost(provider_id=provider_id, reason=1, bps=1000, evidence_hash=b"\x72" * 32)
    assert writer(local).ensure(slash).status == WriteStatus.SENT
    assert writer(local).ensure(slash).status == WriteStatus.ALREADY
    assert local.aicf.functions.stakes(provider_id).call()[1] == 90 * ANM


def test_a_call_the_contract_refuses_is_reported_by_its_error_and_nothing_is_sent(local: Stack) -> None:
    w, start = writer(local), nonce(local)
    with pytest.raises(EvmWriteError, match=r"postBatch would revert: EpochOutOfOrder\(0, 3\)"):
        w.ensure(empty_batch(3))
    assert (w.sent, nonce(local)) == (0, start)


def test_a_writer_whose_key_is_not_the_coordinator_is_refused(local: Stack) -> None:
    with pytest.raises(EvmWriteError, match="the deployment's coordinator is"):
        EvmWriter(local.w3, local.deployment, Account.from_key("0x" + "11" * 32), MiningWaiter(local.w3))
