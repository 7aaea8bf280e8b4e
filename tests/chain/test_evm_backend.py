"""The EVM backend: an accepted proof's inclusion body becomes includeProof's arguments (digest from the envelope,
units from the signed acceptance), a body that is not one is refused by name; what must be included is read from the
store (an accepted proof whose sender crashed is included after the restart, once), and slashes are sent once."""

from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field

import pytest
from store.backends import memory_store
from store.test_contract import job
from store.test_contract_coordinator import T, lease, proof, queued
from web3 import Web3

from aicf.bootstrap.evm import (
    MAX_SENDABLE_PROOF_BYTES,
    EvmBackend,
    EvmProofWriter,
    inclusion_of,
    send_missing_inclusions,
)
from aicf.chain.evm import EvmChain, EvmError, Inclusion, Intent, WriteResult, WriteStatus, spec_task_id
from aicf.core.chain import ProofInclusion, TxKind
from aicf.core.encoding import canonical_cbor
from aicf.core.params import Params
from aicf.core.records import SlashRecord
from aicf.store.interface import Store
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
        envelope=body()["envelope"],  # type: ignore[arg-type]
        acc=body()["acc"],  # type: ignore[arg-type]
        acc_sig=b"\x05" * 64,
    )


def test_a_body_without_a_32_byte_digest_or_units_is_refused() -> None:
    with pytest.raises(EvmError, match="no 32-byte output digest or no units"):
        inclusion_of(body(output_digest=b"\x04" * 31), b"\x09" * 32)
    with pytest.raises(EvmError, match="no 32-byte output digest or no units"):
        inclusion_of(body(units="many"), b"\x09" * 32)
    with pytest.raises(EvmError, match="no byte string 'envelope'"):
        inclusion_of({**body(), "envelope": None}, b"\x09" * 32)


def test_an_envelope_no_evm_transaction_can_carry_is_refused_before_it_is_sent() -> None:
    def envelope(output: int) -> bytes:  # an output of over 64 KiB: its CBOR header is 5 bytes, not 1
        return canonical_cbor({"version": 1, "body": {"output_digest": DIGEST, "output": b"o" * output}})

    acc = body()["acc"]
    assert isinstance(acc, bytes)
    room = MAX_SENDABLE_PROOF_BYTES - len(acc) - 64  # the acceptance and its signature take the rest
    largest = envelope(room - len(envelope(0)) - 4)
    assert len(largest) == room
    assert inclusion_of({**body(), "envelope": largest}, b"\x09" * 32).envelope == largest
    over = envelope(room - len(envelope(0)) - 3)
    with pytest.raises(EvmError, match=f"are {MAX_SENDABLE_PROOF_BYTES + 1} bytes: over {MAX_SENDABLE_PROOF_BYTES}"):
        inclusion_of({**body(), "envelope": over}, b"\x09" * 32)


def stored_acceptance(store: Store, n: int = 1, task: bytes = TASK, proof_id: bytes = PROOF) -> None:
    """A SUBMITTED job (the n-th) with its accepted proof in `store`, as the proof's acceptance commits it."""
    received = T + 10 * n
    with store.transaction() as tx:
        queued(tx, replace(job(n, 0), task_id=task))
        assert tx.lease_job(replace(lease(n, 1), task_id=task), T)
        accepted = replace(
            proof(n, n, 1, received),
            proof_id=proof_id,
            task_id=task,
            lease_id=lease(n, 1).lease_id,
            provider_id=PROVIDER,
            envelope=body()["envelope"],  # type: ignore[arg-type]
            acceptance=body()["acc"],  # type: ignore[arg-type]
            acceptance_sig=body()["acc_sig"],  # type: ignore[arg-type]
        )
        assert tx.accept_proof(accepted, received)
        tx.commit()


@dataclass
class FakeContract:
    """The contract's inclusions as `EvmWriter.ensure` sees them: SENT once, ALREADY after (or LOST to another)."""

    tasks: dict[bytes, bytes]  # SPEC task_id → the contract's taskId (its enqueue log)
    included: dict[bytes, bytes] = dataclass_field(default_factory=dict)  # contract taskId → winning proof_id
    sent: list[Inclusion] = dataclass_field(default_factory=list)
    asked: list[bytes] = dataclass_field(default_factory=list)

    def contract_task_of(self, spec_id: bytes) -> bytes | None:
        self.asked.append(spec_id)
        return self.tasks.get(spec_id)

    def ensure(self, intent: Intent) -> WriteResult:
        assert isinstance(intent, Inclusion)
        winner = self.included.get(intent.task_id)
        if winner is not None:
            status = WriteStatus.ALREADY if winner == intent.proof_id else WriteStatus.LOST
            return WriteResult(status=status)
        self.included[intent.task_id] = intent.proof_id
        self.sent.append(intent)
        return WriteResult(status=WriteStatus.SENT)


def test_an_accepted_proof_whose_sender_crashed_is_included_from_the_store_once() -> None:
    store = memory_store()
    stored_acceptance(store)
    crashed = EvmProofWriter()
    crashed.include_proof(body())  # the API thread's call; the process is killed before its pass sends it
    contract = FakeContract(tasks={TASK: b"\x09" * 32})
    sent = send_missing_inclusions(store, contract, contract, unsendable=set())  # the restarted pass
    assert [r.status for r in sent] == [WriteStatus.SENT]
    assert contract.sent == [inclusion_of(body(), b"\x09" * 32)]
    again = send_missing_inclusions(store, contract, contract, unsendable=set())  # not ingested yet: asked again
    assert [r.status for r in again] == [WriteStatus.ALREADY]
    assert len(contract.sent) == 1  # the contract holds it: nothing is sent twice


def test_an_ingested_inclusion_is_not_sent_and_a_proof_without_an_enqueue_is_skipped_once() -> None:
    store = memory_store()
    stored_acceptance(store)
    orphan = b"\x0a" * 32
    stored_acceptance(store, 2, task=orphan, proof_id=b"\x0b" * 32)
    with store.transaction() as tx:  # the first one's inclusion is on chain and ingested
        inclusion = ProofInclusion(task_id=TASK, proof_id=PROOF, provider_id=PROVIDER, height=3, tx_index=0,
                                   tx_hash=b"h" * 32, producer=b"m" * 20)  # fmt: skip
        assert tx.insert_proof_inclusions([inclusion]) == 1
        tx.commit()
    contract = FakeContract(tasks={TASK: b"\x09" * 32})
    unsendable: set[bytes] = set()
    assert send_missing_inclusions(store, contract, contract, unsendable=unsendable) == []
    assert send_missing_inclusions(store, contract, contract, unsendable=unsendable) == []
    assert contract.sent == []
    assert contract.asked == [orphan]  # no enqueue log for it: looked up once, not on every pass
    assert unsendable == {b"\x0b" * 32}


def test_nothing_is_sent_once_the_writer_lock_is_lost() -> None:
    store = memory_store()
    stored_acceptance(store)
    contract = FakeContract(tasks={TASK: b"\x09" * 32})
    assert send_missing_inclusions(store, contract, contract, unsendable=set(), may_send=lambda: False) == []
    assert contract.sent == []


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


@dataclass
class SwitchedLock:
    """A writer lock the test holds or not (PostgreSQL's own is tested in tests/store/test_writer_lock.py)."""

    on: bool
    closed: bool = False

    def held(self) -> bool:
        return self.on

    def close(self) -> None:
        self.closed = True


def test_only_the_writer_lock_holder_includes_an_enqueued_jobs_accepted_proof_on_chain(w3: Web3) -> None:
    local = local_coordinator_stack(w3)
    local.fund_with(local.roles.requester, 10 * ANM)
    receipt = send(local.aicf.functions.aiEnqueue("llama3-8b", b"hello", 64, 1000, 15000, 0, 5 * ANM),
                   local.roles.requester)  # fmt: skip
    chain = EvmChain(w3, local.deployment)
    enqueued = chain.evm_block_at(int(receipt["blockNumber"]))
    assert enqueued is not None
    (tx,) = [t for t in enqueued.block.txs if t.kind == TxKind.AI_ENQUEUE]
    spec_task = spec_task_id(chain.chain_id, enqueued.block.height, tx.tx_hash, tx.sender, tx.kind, tx.body)
    store = memory_store()
    stored_acceptance(store, task=spec_task)
    lock = SwitchedLock(on=False)
    backend = EvmBackend(chain=chain, writer_key=coordinator_account(), store=store, rpc_url="http://node",
                         waiter=MiningWaiter(w3), writer_lock=lock)  # fmt: skip
    included = local.aicf.events.ProofIncluded()
    backend.after_pass()  # a follower: another replica holds the lock
    assert list(included.get_logs(from_block=local.deployment.deploy_block)) == []
    assert (backend.included, backend.writing) == (0, False)
    lock.on = True
    backend.after_pass()
    backend.after_pass()  # the contract holds it now: not sent again
    logs = included.get_logs(from_block=local.deployment.deploy_block)
    assert [(bytes(e["args"]["specTaskId"]), bytes(e["args"]["proofId"])) for e in logs] == [(spec_task, PROOF)]
    assert (backend.included, backend.writing) == (1, True)
    backend.close()
    assert lock.closed
