"""A SQLite database aicf creates is readable by its owner only: it holds unrevealed trap records and balances."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicf.store.sqlite import SqliteStore


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most common umask (022), which leaves new files world-readable unless the code says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_a_new_database_and_its_wal_and_shm_files_are_created_0600(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "aicf.db"
    store = SqliteStore(db)
    try:
        with store.transaction() as tx:  # a write: the WAL and the shared-memory index exist from here on
            tx.commit()
        files = [db, db.with_name("aicf.db-wal"), db.with_name("aicf.db-shm")]
        assert all(f.exists() for f in files), [f.name for f in files if not f.exists()]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        store.close()


@pytest.mark.usefixtures("open_umask")
def test_an_existing_database_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    db = tmp_path / "aicf.db"
    SqliteStore(db).close()
    db.chmod(0o640)  # the owner's choice (say, a backup group may read): aicf does not undo it
    SqliteStore(db).close()
    assert mode(db) == 0o640
