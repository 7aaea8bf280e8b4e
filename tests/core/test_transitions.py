"""Job states (SPEC §4): every one of the 9 × 9 moves against a table written here from SPEC's text."""

import itertools

import pytest

from aicf.core.errors import IllegalTransitionError
from aicf.core.jobs import (
    FINAL_STATUSES,
    JobStatus,
    after_attempt_ends,
    after_rejected_proof,
    backoff_s,
    check_move,
    is_allowed,
)

# SPEC §4's table, row by row: (from, to).
SPEC_MOVES = {
    ("PENDING", "QUEUED"),  # the enqueue block becomes final
    ("QUEUED", "LEASED"),  # the matcher assigns it
    ("QUEUED", "CANCELLED"),  # requester cancels, or the deadline is final
    ("LEASED", "QUEUED"),  # lease expires or is released, attempts left
    ("LEASED", "FAILED"),  # lease expires or is released, no attempts left
    ("LEASED", "SUBMITTED"),  # the live lease's holder submits a valid envelope
    ("SUBMITTED", "VERIFIED"),  # the proof verifies
    ("SUBMITTED", "QUEUED"),  # the proof fails, attempts left
    ("SUBMITTED", "REJECTED"),  # the proof fails, no attempts left
    ("VERIFIED", "SETTLED"),  # a settlement batch pays it
}
SPEC_STATUSES = ["PENDING", "QUEUED", "LEASED", "SUBMITTED", "VERIFIED", "SETTLED", "REJECTED", "FAILED", "CANCELLED"]
ALL_PAIRS = list(itertools.product(SPEC_STATUSES, repeat=2))
TASK = bytes.fromhex("ab" * 32)


def test_the_statuses_are_exactly_spec_s_nine() -> None:
    assert sorted(s.value for s in JobStatus) == sorted(SPEC_STATUSES)


@pytest.mark.parametrize(("frm", "to"), sorted(SPEC_MOVES), ids=[f"{a}->{b}" for a, b in sorted(SPEC_MOVES)])
def test_every_move_in_the_spec_table_is_allowed(frm: str, to: str) -> None:
    assert is_allowed(JobStatus(frm), JobStatus(to))
    assert check_move(TASK, JobStatus(frm), JobStatus(to)) is JobStatus(to)


ILLEGAL = [pair for pair in ALL_PAIRS if pair not in SPEC_MOVES]


@pytest.mark.parametrize(("frm", "to"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_move_not_in_the_spec_table_raises_naming_task_from_and_to(frm: str, to: str) -> None:
    assert not is_allowed(JobStatus(frm), JobStatus(to))
    with pytest.raises(IllegalTransitionError) as info:
        check_move(TASK, JobStatus(frm), JobStatus(to))
    message = str(info.value)
    assert "0x" + TASK.hex() in message
    assert f"{frm} -> {to}" in message
    assert (info.value.task_id, info.value.status, info.value.to) == (TASK, frm, to)


def test_the_whole_table_is_covered_once() -> None:
    assert len(ALL_PAIRS) == 81
    assert len(ILLEGAL) == 81 - len(SPEC_MOVES)


def test_settled_rejected_failed_and_cancelled_are_final() -> None:
    assert {s.value for s in FINAL_STATUSES} == {"SETTLED", "REJECTED", "FAILED", "CANCELLED"}


@pytest.mark.parametrize(("used", "status"), [(1, "QUEUED"), (2, "QUEUED"), (3, "FAILED"), (4, "FAILED")])
def test_an_ended_lease_requeues_while_attempts_remain(used: int, status: str) -> None:
    assert after_attempt_ends(used, 3) is JobStatus(status)


@pytest.mark.parametrize(("used", "status"), [(1, "QUEUED"), (2, "QUEUED"), (3, "REJECTED")])
def test_a_failed_proof_requeues_while_attempts_remain(used: int, status: str) -> None:
    assert after_rejected_proof(used, 3) is JobStatus(status)


@pytest.mark.parametrize(("attempt", "wait_s"), [(0, 5), (1, 10), (2, 20), (5, 160), (6, 300), (60, 300)])
def test_backoff_is_five_seconds_doubling_up_to_three_hundred(attempt: int, wait_s: int) -> None:
    # SPEC §7: not_before = end + min(5 × 2^a, 300) s
    assert backoff_s(attempt, 5, 300) == wait_s
