"""The coordinator's chain writer on the devnet: accepted proofs, trap transactions and operator transactions go
into its mempool."""

import threading
from collections.abc import Mapping
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aicf.core.chain import TxKind
from aicf.core.errors import AicfError
from aicf.core.txs import SignedTx, address_of, tx_signing_digest


class NoOperatorKeyError(AicfError):
    """Operator transactions cannot be signed here: no operator key (or no chain writer) was given."""


def sign_operator_tx(key: Ed25519PrivateKey, chain_id: int, nonce: int, body: Mapping[str, object]) -> SignedTx:
    """An operator transaction signed like a requester's (aicf.core.txs): chain id and nonce inside the signature."""
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    digest = tx_signing_digest(chain_id, public, TxKind.OPERATOR, nonce, body)
    return SignedTx(
        chain_id=chain_id, public_key=public, nonce=nonce, kind=TxKind.OPERATOR, body=dict(body), sig=key.sign(digest)
    )


class Mempool(Protocol):
    """What the writer needs of the devnet (aicf.chain.devnet.Devnet, or the replicas' shared one)."""

    def submit(self, sender: bytes, kind: TxKind, body: Mapping[str, object]) -> bytes: ...

    @property
    def chain_id(self) -> int: ...

    def next_nonce(self, sender: bytes) -> int: ...

    def send(self, tx: SignedTx) -> bytes: ...


class DevnetWriter:
    """Accepted proofs go into the devnet's mempool, from the coordinator's own address; operator transactions
    are signed with the operator key (when the writer has it) and sent like a requester's."""

    def __init__(
        self, devnet: Mempool, lock: threading.Lock, sender: bytes, operator_key: Ed25519PrivateKey | None = None
    ) -> None:
        self.devnet, self.lock, self.sender, self.operator_key = devnet, lock, sender, operator_key

    def include_proof(self, body: Mapping[str, object]) -> None:
        with self.lock:
            self.devnet.submit(self.sender, TxKind.PROOF, body)

    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        """A transaction from another of the coordinator's addresses (an AI trap's fresh caller)."""
        with self.lock:
            self.devnet.submit(sender, kind, body)

    def send_operator(self, body: Mapping[str, object]) -> bytes:
        """Sign an operator transaction with the operator key at the operator's next nonce and send it; returns
        its hash. Raises TxError (nothing sent) if the devnet refuses it."""
        if self.operator_key is None:
            raise NoOperatorKeyError("this chain writer holds no operator key: operator transactions cannot be signed")
        with self.lock:
            public = self.operator_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            nonce = self.devnet.next_nonce(address_of(public))
            return self.devnet.send(sign_operator_tx(self.operator_key, self.devnet.chain_id, nonce, body))
