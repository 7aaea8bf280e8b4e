"""One column list per table (aicf.store.tables) gives the SELECT list, the insert parameters and the decoder."""

import re
from importlib import resources

import pytest

from aicf.core.chain import Transition
from aicf.core.jobs import JobStatus
from aicf.store.interface import CorruptValueError, SchemaError
from aicf.store.sqlfiles import parse_queries
from aicf.store.tables import JOB_TRANSITIONS, JOBS, PAYOUTS, TABLES, expand_columns
from store.test_contract import job
from store.test_contract_coordinator import payout


def test_a_record_survives_its_insert_parameters_and_decoder_in_column_order() -> None:
    j = job(1, 0, 2)
    stored = JOBS.params(j)
    assert list(stored) == [c.name for c in JOBS.columns]
    assert JOBS.decode(tuple(stored.values())) == j
    p = payout(1, 1)
    assert PAYOUTS.decode(tuple(PAYOUTS.params(p).values())) == p


def test_the_decoder_names_fields_by_column_not_by_position() -> None:
    """job_transitions stores `frm`/`to` as from_status/to_status after the database's seq."""
    t = Transition(task_id=b"t" * 32, frm=JobStatus.PENDING, to=JobStatus.QUEUED, reason="final", height=6, time=9)
    assert JOB_TRANSITIONS.params(t) == {
        "task_id": b"t" * 32, "from_status": "PENDING", "to_status": "QUEUED", "reason": "final", "height": 6,
        "time": 9,
    }  # fmt: skip
    row = (41, b"t" * 32, "PENDING", "QUEUED", "final", 6, 9)
    assert JOB_TRANSITIONS.decode(row) == Transition(
        task_id=b"t" * 32, frm=JobStatus.PENDING, to=JobStatus.QUEUED, reason="final", height=6, time=9, seq=41
    )


def test_a_row_of_another_width_is_refused() -> None:
    with pytest.raises(ValueError, match="job_transitions: a row of 6 values, expected 7 columns"):
        JOB_TRANSITIONS.decode((41, b"t" * 32, "PENDING", "QUEUED", "final", 6))
    with pytest.raises(ValueError, match="a row of 8 values"):
        JOB_TRANSITIONS.decode((41, b"t" * 32, "PENDING", "QUEUED", "final", 6, 9, 10))


def test_column_lists_expand_plain_aliased_and_for_inserts() -> None:
    assert expand_columns("SELECT {events} FROM events") == "SELECT seq, topic, data, time FROM events"
    assert expand_columns("SELECT {claims:c}") == "SELECT c.claim_id, c.provider_id, c.amount, c.time"
    assert expand_columns("({job_transitions:insert})") == "(task_id, from_status, to_status, reason, height, time)"
    with pytest.raises(SchemaError, match=r"\{nope\} names no table"):
        expand_columns("SELECT {nope}")


def test_every_insert_of_a_column_list_binds_the_table_parameters_in_order() -> None:
    folder = resources.files("aicf.store").joinpath("sql")
    checked = 0
    for name in ("queries.sql", "sqlite.sql", "postgres.sql"):
        for query, sql in parse_queries(folder.joinpath(name).read_text(encoding="utf-8")).items():
            m = re.search(r"INSERT INTO (\w+) \(\{\1:insert\}\)\s*VALUES \(([^)]*)\)", sql)
            if m is None:
                continue
            table = TABLES[m[1]]
            bound = [p.strip().removeprefix(":") for p in m[2].split(",")]
            assert bound == [c.name for c in table.columns if c.insert], query
            checked += 1
    assert checked >= 10


def test_the_decoder_converts_or_refuses_values_not_of_the_column_type() -> None:
    row = (memoryview(b"t" * 32), "PENDING", "QUEUED", "final", True, 9)
    t = JOB_TRANSITIONS.decode((41, *row))
    assert (t.task_id, t.height, type(t.task_id), type(t.height)) == (b"t" * 32, 1, bytes, int)
    with pytest.raises(CorruptValueError):
        JOB_TRANSITIONS.decode((41, b"t" * 32, "PENDING", "QUEUED", "final", 6, "9"))
    with pytest.raises(TypeError, match="text column"):
        JOB_TRANSITIONS.decode((41, b"t" * 32, "PENDING", "QUEUED", b"final", 6, 9))
