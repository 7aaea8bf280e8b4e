"""The adapters' types as the transports may name them (they see the service, never a backend)."""

from collections.abc import Callable

from aicf.store.interface import Store, StoreError, StoreUnavailableError

StoreOpener = Callable[[str | None], Store]
DefaultUrl = Callable[[], str]

__all__ = ["DefaultUrl", "Store", "StoreError", "StoreOpener", "StoreUnavailableError"]
