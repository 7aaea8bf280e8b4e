"""Store operations only tests need: the product never sets a requester tier, reads the idempotency table or asks
the store which trust versions are in force (the service judges that from every version). They run the named
queries of `sql/queries.sql` through a SQL transaction's primitives, so the contract suite still checks that SQL
on every backend without widening `Tx`."""

from aicf.core.chain import Job
from aicf.core.trust import PolicyRecord, RootRecord
from aicf.store import rows, tables
from aicf.store.interface import IdempotencyConflictError, Tx
from aicf.store.sqlbase import SqlTx


def _sql(tx: Tx) -> SqlTx:
    assert isinstance(tx, SqlTx), f"a SQL transaction, not {type(tx).__name__}"
    return tx


def set_requester_tier(tx: Tx, caller: bytes, tier: int) -> None:
    _sql(tx)._exec("set_requester_tier", {"caller": caller, "tier": tier})


def replayed(tx: Tx, key: bytes, fingerprint: bytes) -> bytes | None:
    """The first result stored under `key`, or None. Raises IdempotencyConflictError if the key was used with
    another fingerprint."""
    row = _sql(tx)._one("get_idempotency", {"key": key})
    if row is None:
        return None
    if rows.as_bytes(row[0]) != fingerprint:
        raise IdempotencyConflictError(key)
    return rows.as_bytes(row[1])


def remember(tx: Tx, key: bytes, fingerprint: bytes, result: bytes) -> None:
    if _sql(tx)._one("get_idempotency", {"key": key}) is not None:
        raise IdempotencyConflictError(key)
    _sql(tx)._exec("insert_idempotency", {"key": key, "fingerprint": fingerprint, "result": result})


def ready_jobs(tx: Tx, now: int, limit: int) -> list[Job]:
    """`claim_ready_jobs` (the product's read of the matcher order), for tests that only look."""
    return tx.claim_ready_jobs(now, limit)


def roots_in_force(tx: Tx, height: int) -> list[RootRecord]:
    """The root versions in force at `height`, by (vendor, name, version)."""
    return [tables.VENDOR_ROOTS.decode(r) for r in _sql(tx)._all("roots_in_force", {"height": height})]


def policies_in_force(tx: Tx, height: int) -> list[PolicyRecord]:
    """Per evidence kind, the highest version whose activation height is at most `height`; by kind."""
    return [tables.ATTESTATION_POLICIES.decode(r) for r in _sql(tx)._all("policies_in_force", {"height": height})]
