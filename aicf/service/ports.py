"""The adapters' types as the transports may name them (they see the service, never a backend)."""

from collections.abc import Callable

from aicf.store.interface import (
    ConcurrentUpdateError,
    IdempotencyConflictError,
    Store,
    StoreError,
    StoreUnavailableError,
)

StoreOpener = Callable[[str | None], Store]
DefaultUrl = Callable[[], str]

__all__ = [
    "ConcurrentUpdateError",
    "DefaultUrl",
    "IdempotencyConflictError",
    "Store",
    "StoreError",
    "StoreOpener",
    "StoreUnavailableError",
]
