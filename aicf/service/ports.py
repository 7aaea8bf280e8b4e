"""The adapters' types as the transports may name them (they see the service, never a backend)."""

from collections.abc import Callable
from typing import Protocol

from aicf.store.interface import (
    ConcurrentUpdateError,
    IdempotencyConflictError,
    Store,
    StoreError,
    StoreUnavailableError,
)


class StoreOpener(Protocol):
    def __call__(self, url: str | None = None, *, must_exist: bool = False) -> Store: ...


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
