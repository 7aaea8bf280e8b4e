"""`open_store("memory:")`: a fresh SQLite `:memory:` database, the same backend code as a file."""

from aicf.bootstrap.stores import open_store
from aicf.core.chain import IngestedBlock
from aicf.store.sqlite import SqliteStore
from store.test_contract import block


def test_memory_url_opens_a_fresh_sqlite_memory_database_per_call() -> None:
    first, second = open_store("memory:"), open_store("memory://")
    assert isinstance(first, SqliteStore)
    assert first.path == ":memory:"
    assert isinstance(second, SqliteStore)
    assert second.path == ":memory:"
    with first.transaction() as tx:
        tx.insert_block(block(0))
        tx.commit()
    with first.transaction() as tx:
        head: IngestedBlock | None = tx.head_block()
        assert head is not None
        assert head.height == 0
    with second.transaction() as tx:
        assert tx.head_block() is None
    first.close()
    second.close()
