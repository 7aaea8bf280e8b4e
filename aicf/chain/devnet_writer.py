"""The coordinator's chain writer on the devnet: accepted proofs and trap transactions go into its mempool."""

import threading
from collections.abc import Mapping
from typing import Protocol

from aicf.core.chain import TxKind


class Mempool(Protocol):
    """What the writer needs of the devnet (aicf.chain.devnet.Devnet, or the replicas' shared one)."""

    def submit(self, sender: bytes, kind: TxKind, body: Mapping[str, object]) -> bytes: ...


class DevnetWriter:
    """Accepted proofs go into the devnet's mempool, from the coordinator's own address."""

    def __init__(self, devnet: Mempool, lock: threading.Lock, sender: bytes) -> None:
        self.devnet, self.lock, self.sender = devnet, lock, sender

    def include_proof(self, body: Mapping[str, object]) -> None:
        with self.lock:
            self.devnet.submit(self.sender, TxKind.PROOF, body)

    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        """A transaction from another of the coordinator's addresses (an AI trap's fresh caller)."""
        with self.lock:
            self.devnet.submit(sender, kind, body)
