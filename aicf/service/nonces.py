"""Signed RPC nonces kept in the store, so every API replica on one database refuses a replay any of them saw."""

from aicf.store.interface import Store


class StoreNonces:
    """A `NonceStore` (aicf.transports.auth) over `Tx.use_nonce`: one short transaction per signed call.

    `use_nonce` inserts (provider_id, nonce) under its primary key, so of two replicas recording the same pair
    exactly one succeeds; the provider's expired nonces are forgotten in the same transaction.
    """

    def __init__(self, store: Store, ttl_s: int) -> None:
        self._store = store
        self._ttl_s = ttl_s

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
