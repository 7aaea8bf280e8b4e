"""The chain a system runs on, chosen at start (issue 13, item 3): the embedded devnet or an EVM node.

`build_system` takes a `ChainBackend` and never asks which one it is: the ingester reads `view`, the
coordinator's pass first calls `advance(now)` (the devnet mines a block when one is due; an EVM node makes its
own blocks) and ends with `after_pass()` (an EVM node gets the coordinator's settlement batches and slashes),
accepted proofs go through `writer`, /readyz reads `head_height()`, and `rpc_methods` are the requester-facing
calls of that chain. The EVM backend lives in aicf/bootstrap/evm.py, so web3 is imported only when asked for.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.bootstrap.shared_devnet import SharedDevnet
from aicf.chain.devnet_writer import DevnetWriter
from aicf.chain.interface import ChainView
from aicf.core.params import Params
from aicf.core.qasm import circuit_depth
from aicf.core.txs import SignedTx
from aicf.service import requesters
from aicf.service.context import ChainWriter
from aicf.store.interface import Store
from aicf.transports.methods_devnet import ReorgOutcome, devnet_reorg_method, reorg_chain
from aicf.transports.methods_requester import requester_methods
from aicf.transports.rpc import RpcMethod


class ChainBackend(Protocol):
    """What the system needs of its chain (module docstring)."""

    @property
    def kind(self) -> str:
        """ "devnet" or "evm": the banner and aicf.getRequestTerms name it."""

    @property
    def chain_id(self) -> int: ...

    @property
    def view(self) -> ChainView: ...

    @property
    def writer(self) -> ChainWriter: ...

    def advance(self, now: int) -> None: ...

    def after_pass(self) -> None: ...

    def head_height(self) -> int: ...

    def rpc_methods(self, store: Store, params: Params) -> Sequence[RpcMethod[Any]]: ...

    def close(self) -> None: ...


@dataclass
class DevnetBackend:
    """The embedded devnet, kept in the coordinator's store and shared by every process on it (SharedDevnet);
    every call on it holds `lock`."""

    devnet: SharedDevnet
    lock: threading.Lock
    sender: bytes  # the coordinator's devnet address: accepted proofs are sent from it
    operator_key: Ed25519PrivateKey | None = None  # signs operator transactions (docs/OPERATOR.md)

    kind = "devnet"

    def __post_init__(self) -> None:
        self._writer = DevnetWriter(self.devnet, self.lock, self.sender, self.operator_key)

    @property
    def chain_id(self) -> int:
        return self.devnet.chain_id

    @property
    def view(self) -> ChainView:
        return self.devnet

    @property
    def writer(self) -> DevnetWriter:
        return self._writer

    def advance(self, now: int) -> None:
        with self.lock:
            self.devnet.tick(now)

    def after_pass(self) -> None:
        """Nothing: settlement and slashes live in the coordinator's ledger, which is the devnet's state."""

    def head_height(self) -> int:
        with self.lock:
            return self.devnet.head_height()

    def rpc_methods(self, store: Store, params: Params) -> Sequence[RpcMethod[Any]]:
        """aicf.devnetReorg and the requester calls that send devnet transactions (aicf.sendTransaction …)."""
        lock, devnet = self.lock, self.devnet

        def devnet_reorg(depth: int) -> ReorgOutcome:  # aicf.devnetReorg: the next tick ingests the new branch
            with lock:
                return reorg_chain(devnet, depth, params.finality_depth)

        def send(tx: SignedTx) -> bytes:  # check and send under the chain lock: no two sends race on one balance
            with lock:
                return requesters.send_transaction(store, devnet, params, tx, circuit_depth)

        def tx_status(tx_hash: bytes) -> requesters.TxStatus:
            with lock:
                return requesters.transaction_status(store, devnet, tx_hash)

        def account(address: bytes) -> requesters.Account:
            with lock:
                return requesters.account(store, devnet, address)

        terms: Callable[[], dict[str, Any]] = lambda: {  # noqa: E731
            **requesters.request_terms(store, params, devnet.chain_id),
            "chain": {"kind": "devnet"},
        }
        return [
            devnet_reorg_method(devnet_reorg),
            *requester_methods(
                chain_id=devnet.chain_id,
                send=send,
                status=tx_status,
                account=account,
                outcome=lambda task_id: requesters.request_outcome(store, task_id),
                terms=terms,
            ),
        ]

    def close(self) -> None:
        """Nothing to close: the devnet is the store's."""
