"""The store contract for grants (migration 0011, issue 14 item 2) on every backend: a grant per caller, number and
request; open grants by number; what a requester's allowance has paid; and trap fundings and reclaims kept out of
the recent operator changes."""

from dataclasses import replace

from aicf.core.operator import OP_GRANT, OP_TIER, OP_TRAP_FUND, OP_TRAP_RECLAIM
from aicf.core.records import GrantRecord
from aicf.store.interface import Store
from store.test_contract import ALICE, block
from store.test_contract_operator import change

BOB = b"\xbb" * 20


def grant(m: int, requester: bytes = ALICE, funded: int = 100) -> GrantRecord:
    return GrantRecord(caller=bytes([m + 1]) * 20, m=m, epoch=0, requester=requester, request_hash=bytes([m]) * 32,
                       model="m", body=b"\xa0", funded=funded, created_at=10 + m)  # fmt: skip


def test_grants_are_unique_by_caller_number_and_request_and_read_back(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.next_grant_number() == 0
        assert tx.insert_grant(grant(0))
        assert not tx.insert_grant(grant(0))  # the same caller, number and request
        assert not tx.insert_grant(replace(grant(1), request_hash=grant(0).request_hash))  # a replayed request
        assert tx.insert_grant(grant(1, BOB, 40))
        assert tx.next_grant_number() == 2
        assert tx.get_grant(grant(1).caller) == grant(1, BOB, 40)
        assert tx.grant_of_request(grant(0).request_hash) == grant(0)
        assert tx.get_grant(b"\x00" * 20) is None
        tx.commit()


def test_closed_grants_leave_the_open_list_and_the_allowance_pays_funded_less_reclaimed(store: Store) -> None:
    with store.transaction() as tx:
        for m in (0, 1, 2):
            tx.insert_grant(grant(m))
        assert tx.update_grant(replace(grant(1), sent_at=20, task_id=b"\x07" * 32, reclaimed=70, closed_at=30))
        assert not tx.update_grant(replace(grant(9)))  # no such grant
        assert [g.m for g in tx.open_grants(10)] == [0, 2]
        assert [g.m for g in tx.open_grants(1)] == [0]
        assert tx.grant_used(ALICE) == 100 + 30 + 100
        assert tx.grant_used(BOB) == 0
        tx.commit()


def test_recent_operator_changes_leave_out_trap_fundings_and_reclaims(store: Store) -> None:
    with store.transaction() as tx:
        for h in (0, 1, 2):
            tx.insert_block(block(h))
        tx.insert_operator_changes([
            change(1, OP_TRAP_FUND, BOB, 5), change(1, OP_GRANT, ALICE, 9, 1), change(2, OP_TRAP_RECLAIM, BOB, 0),
            change(2, OP_TIER, ALICE, 1, 1),
        ])  # fmt: skip
        assert [c.op for c in tx.recent_operator_changes(10)] == [OP_TIER, OP_GRANT]
        tx.commit()
