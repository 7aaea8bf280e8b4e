"""Signed RPC nonces kept in the store, so every API replica on one database refuses a replay any of them saw.

A signed request's nonce is recorded in the transaction of the use-case the request runs (issue 16): the
transport opens a `RequestNonce` for the call (`StoreNonces.begin`), and the use-case's `Work.commit` inserts
it just before committing, so the request's effect and its nonce commit together or not at all. A call whose
use-case commits nothing (a read, a dropped proof) has its nonce recorded by the transport after it, in a
transaction of its own (`StoreNonces.remember`).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from aicf.service.errors import NonceReusedError
from aicf.store.interface import Store, Tx, read_transaction


@dataclass(slots=True, kw_only=True)
class RequestNonce:
    """One signed call's nonce, waiting for the transaction of the use-case it runs."""

    store: Store  # the store whose transactions may record it (the coordinator's)
    provider_id: bytes
    nonce: bytes
    now: int  # the transport's reading for the call: the nonce expires at now + ttl_s
    ttl_s: int
    consumed: bool = False  # True once a use-case's transaction that recorded it committed

    def record(self, tx: Tx) -> None:
        """Insert the nonce in `tx` (which must commit right after); raises NonceReusedError if it is taken."""
        if not tx.use_nonce(self.provider_id, self.nonce, self.now + self.ttl_s, self.now):
            raise NonceReusedError(self.provider_id, self.nonce)


_PENDING: ContextVar[RequestNonce | None] = ContextVar("aicf_request_nonce", default=None)


def pending_nonce(store: Store) -> RequestNonce | None:
    """The running call's nonce if it is still to be recorded in a transaction of `store`."""
    pending = _PENDING.get()
    return pending if pending is not None and not pending.consumed and pending.store is store else None


@contextmanager
def request_nonce(pending: RequestNonce) -> Iterator[RequestNonce]:
    """Make `pending` the running call's nonce while the call's use-case runs (this thread, this context)."""
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


class StoreNonces:
    """A `NonceStore` (aicf.transports.auth) over `Tx.use_nonce`.

    `use_nonce` inserts (provider_id, nonce) under its primary key, so of two replicas recording the same pair
    exactly one succeeds; the provider's expired nonces are forgotten in the same transaction.
    """

    def __init__(self, store: Store, ttl_s: int) -> None:
        self._store = store
        self._ttl_s = ttl_s

    def begin(self, provider_id: bytes, nonce: bytes, now: int) -> RequestNonce:
        """The call's nonce, for its use-case's transaction to record (see the module's docstring). A nonce
        already in use is refused here, before the handler runs (NonceReusedError): a replay costs one read, not
        a use-case run (a replayed submitProof must not re-run a verification or a model). The insert in the
        use-case's transaction still decides a race between two concurrent first uses."""
        with read_transaction(self._store) as tx:
            if tx.nonce_in_use(provider_id, nonce, now):
                raise NonceReusedError(provider_id, nonce)
        return RequestNonce(store=self._store, provider_id=provider_id, nonce=nonce, now=now, ttl_s=self._ttl_s)

    def remember(self, provider_id: bytes, nonce: bytes, now: int) -> bool:
        with self._store.transaction() as tx:
            fresh = tx.use_nonce(provider_id, nonce, now + self._ttl_s, now)
            if fresh:
                tx.commit()
            return fresh

    def forget(self, provider_id: bytes, nonce: bytes) -> None:
        with self._store.transaction() as tx:
            tx.forget_nonce(provider_id, nonce)
            tx.commit()
