"""Issue 15: a database that stops answering does not end `aicf up`. The progress line of its main thread read the
store with no guard, so one dropped PostgreSQL connection ended the process (3 of 4 pg_terminate_backend trials in
the fault audit; tests/chaos/test_faults.py reproduces it on a real `aicf up`). It now skips the line with a warning
and prints it again once the database answers."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from aicf.bootstrap.up import devnet_params, report_progress
from aicf.store.interface import StoreUnavailableError
from aicf.store.sqlite import SqliteStore, SqliteTx

T = 1_700_000_000


class FlakyStore(SqliteStore):
    """A SQLite store in memory whose transactions fail like a PostgreSQL store whose connection was terminated."""

    down = False

    def __init__(self) -> None:
        super().__init__(":memory:")

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError(
                "PostgreSQL failed: terminating connection due to administrator command", "nothing was written"
            )

    @contextmanager
    def transaction(self) -> Iterator[SqliteTx]:
        self._check()
        with super().transaction() as tx:
            yield tx

    @contextmanager
    def read_transaction(self) -> Iterator[SqliteTx]:
        self._check()
        with super().read_transaction() as tx:
            yield tx


def test_the_progress_line_survives_a_database_that_does_not_answer(caplog: pytest.LogCaptureFixture) -> None:
    store, lines = FlakyStore(), list[str]()
    report_progress(store, T, devnet_params(), lines.append)
    assert len(lines) == 1
    assert lines[0].startswith("head ")
    store.down = True
    report_progress(store, T, devnet_params(), lines.append)  # raised StoreUnavailableError out of run_up before
    assert len(lines) == 1
    assert "progress report skipped, the database did not answer" in caplog.text
    assert "terminating connection due to administrator command" in caplog.text
    store.down = False
    report_progress(store, T, devnet_params(), lines.append)
    assert len(lines) == 2
