"""The trap part of the store contract (SPEC §8: trap seed commitments and reveals, AI trap records), one suite
run against every backend."""

import dataclasses

from aicf.core.records import TrapRecord, TrapSeedRecord
from aicf.store.interface import Store
from store.test_contract import ALICE, BOB, job

T = 1_700_000_000


def seed(epoch: int) -> TrapSeedRecord:
    return TrapSeedRecord(epoch=epoch, commitment=bytes([epoch + 1]) * 32, committed_at=T + epoch, committed_height=7)


def trap(n: int, model: str = "minilm-l6-v2") -> TrapRecord:
    return TrapRecord(
        caller=bytes([0x70 + n]) * 20,
        n=n,
        epoch=2,
        model=model,
        prompt=b"prompt %d" % n,
        max_tokens=16,
        funded=12_345,
        created_at=T,
    )


def test_a_trap_seed_is_committed_once_and_revealed_once(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.get_trap_seed(0) is None
        assert tx.insert_trap_seed(seed(0))
        assert not tx.insert_trap_seed(dataclasses.replace(seed(0), commitment=b"x" * 32))
        assert tx.insert_trap_seed(seed(1))
        assert not tx.reveal_trap_seed(5, b"s" * 32, T)  # never committed
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_trap_seed(0) == seed(0)
        assert tx.reveal_trap_seed(0, b"s" * 32, T + 50)
        assert not tx.reveal_trap_seed(0, b"t" * 32, T + 60)
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_trap_seed(0) == dataclasses.replace(seed(0), seed=b"s" * 32, revealed_at=T + 50)
        assert tx.get_trap_seed(1) == seed(1)


def test_traps_are_unique_by_caller_and_number_and_update_in_place(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.insert_trap(trap(1))
        assert not tx.insert_trap(dataclasses.replace(trap(1), n=9))  # caller taken
        assert not tx.insert_trap(dataclasses.replace(trap(2), n=1))  # number taken
        assert tx.insert_trap(trap(0, model="smollm2-135m"))
        assert tx.insert_trap(trap(2))
        assert not tx.update_trap(trap(3))
        tx.commit()
    done = dataclasses.replace(trap(1), task_id=b"t" * 32, log_hash=b"l" * 32, answer_digest=b"a" * 32, revealed_at=T)
    with store.transaction() as tx:
        assert tx.get_trap(trap(1).caller) == trap(1)
        assert tx.get_trap(b"\x00" * 20) is None
        assert tx.update_trap(done)
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_trap(trap(1).caller) == done
        assert tx.open_traps(10) == [trap(0, model="smollm2-135m"), trap(2)]
        assert tx.open_traps(1) == [trap(0, model="smollm2-135m")]
        assert tx.trap_counts() == {"minilm-l6-v2": 2, "smollm2-135m": 1}


def test_ai_job_counts_and_jobs_of_caller(store: Store) -> None:
    quantum = dataclasses.replace(job(4, 1, index=2), kind="quantum", model="")
    with store.transaction() as tx:
        assert tx.ai_job_counts() == {}
        tx.insert_jobs(
            [job(1, 2, caller=BOB), job(2, 1, caller=BOB), dataclasses.replace(job(3, 1, index=1), model="x"), quantum]
        )
        tx.commit()
    with store.transaction() as tx:
        assert tx.ai_job_counts() == {"llama3-8b": 2, "x": 1}
        assert [j.task_id for j in tx.jobs_of_caller(BOB)] == [job(2, 1).task_id, job(1, 2).task_id]
        assert tx.jobs_of_caller(BOB)[0] == job(2, 1, caller=BOB)
        assert [j.task_id for j in tx.jobs_of_caller(ALICE)] == [job(3, 1).task_id, job(4, 1).task_id]
