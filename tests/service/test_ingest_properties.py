"""Money is conserved through any sequence of blocks, deposits, enqueues, cancels and reorgs (SPEC §11)."""

from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from store.backends import memory_store

from aicf.core.chain import TxKind
from aicf.service.audit import verify
from aicf.service.state_digest import state_digest
from service.helpers import ALICE, BOB, CAROL, ai_body, devnet, ingest, replay_digest

WHO = (ALICE, BOB, CAROL)

op = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 2), st.integers(1, 3_000_000)),
    st.tuples(st.just("enqueue"), st.integers(0, 2), st.integers(1, 3000)),
    st.tuples(st.just("cancel"), st.integers(0, 2), st.integers(0, 5)),
    st.tuples(st.just("mine"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("reorg"), st.integers(1, 6), st.just(0)),
)


@settings(max_examples=examples(40))
@given(ops=st.lists(op, min_size=1, max_size=40))
def test_balances_stay_conserved_and_non_negative_and_reorgs_are_exact(ops: list[tuple[str, int, int]]) -> None:
    net = devnet()
    store = memory_store()
    for kind, a, b in ops:
        if kind == "deposit":
            net.submit(WHO[a], TxKind.DEPOSIT, {"to": WHO[a], "amount": b})
        elif kind == "enqueue":
            net.submit(WHO[a], TxKind.AI_ENQUEUE, ai_body(b"%d" % net.nonce, runtime_ms=b))
        elif kind == "cancel":
            with store.transaction() as tx:
                jobs = tx.snapshot().jobs
            if jobs:
                job = jobs[b % len(jobs)]
                net.submit(job.caller, TxKind.CANCEL, {"task_id": job.task_id})
        elif kind == "mine":
            net.mine(a)
        elif net.head_height() >= 1:
            net.reorg(min(a, net.head_height()))
        ingest(store, net)
        report = verify(store)
        assert report.ok, report.problems  # Σ balances == minted, none negative, transitions legal
    net.mine(7)
    ingest(store, net)
    assert verify(store).ok
    assert state_digest(store) == replay_digest(net)
