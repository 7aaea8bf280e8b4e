"""Issue 15: a SQLite database that cannot be written says why. SQLite reports a write the file system refused
only as "disk I/O error"; the store names the cause (a full disk, a read-only database), writes nothing, and the
same store writes again once the fault is lifted."""

import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from aicf.store.interface import StoreUnavailableError
from aicf.store.sqlite import SqliteStore


def _write(store: SqliteStore, keys: int, size: int = 200) -> None:
    with store.transaction() as tx:
        for i in range(keys):
            tx.set_meta(f"k{i:06d}-" + "x" * size, i)
        tx.commit()


def _count(store: SqliteStore) -> int:
    with store.transaction() as tx:
        return sum(1 for k, _ in tx.snapshot().meta if k.startswith("k"))


def test_a_write_past_the_file_size_limit_is_reported_as_disk_full_and_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aicf.db")
    try:
        _write(store, 1)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("aicf.db")]
        limit = max(p.stat().st_size for p in files)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # as if the disk filled up right now
        try:
            with pytest.raises(StoreUnavailableError, match=r"^disk full: ") as caught:
                _write(store, 5000)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert "disk I/O error" in str(caught.value)  # SQLite's own words stay, after the cause
        assert "nothing was written" in str(caught.value)
        assert _count(store) == 1
        _write(store, 10)  # the same store, once space is back
        assert _count(store) == 10
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="chattr +i needs root")
def test_a_database_made_read_only_under_an_open_store_is_reported_as_read_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aicf.db")
    _write(store, 1)
    files = [str(p) for p in tmp_path.iterdir() if p.name in ("aicf.db", "aicf.db-wal")]
    subprocess.run(["chattr", "+i", *files], check=True)  # noqa: S603, S607 - an open file only this makes read-only
    try:
        with pytest.raises(StoreUnavailableError, match=r"^the database is read-only: ") as caught:
            _write(store, 10)
        assert "nothing was written" in str(caught.value)
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)  # noqa: S603, S607
    try:
        assert _count(store) == 1
        _write(store, 10)
        assert _count(store) == 10
    finally:
        store.close()
