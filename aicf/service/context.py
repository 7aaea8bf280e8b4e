"""What every use-case module works over (issue 16): the long-lived wiring (`Context`), the per-process caches
(`Caches`), and one use-case's unit of work (`Work`: its store transaction, the instant it read, the wiring).

The use-case modules (registry, leases, matching, proofs, slashing, sweep, trap_duties, claims) are plain
functions over these; `aicf.service.coordinator.Coordinator` is a thin facade that holds the one `Caches` the
bootstrap built (aicf.bootstrap.coordinator) and builds the `Context` from its attributes.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.core.assignment import CandidatePool, ProviderProfile
from aicf.core.chain import TxKind
from aicf.core.clock import Clock
from aicf.core.params import Params
from aicf.proofs.quantum import QuantumBatch, derive_batch
from aicf.service.nonces import pending_nonce
from aicf.service.traps import ExpectedAnswer, TrapOracle, TrapPrompt, derive_seed
from aicf.service.trust import TrustRegistry
from aicf.service.verifier import ProofVerifier
from aicf.store.interface import Store, Tx

TRAP_WARNING_EVERY_S: Final = 300  # one "the fund cannot pay" line per model per five minutes, the rest counted


class ChainWriter(Protocol):
    """Where accepted proofs go to be included on chain (the devnet's mempool, or a real chain's client)."""

    def include_proof(self, body: Mapping[str, object]) -> None: ...
    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        """Send a transaction from `sender` (the coordinator's trap callers; on a devnet, no signature)."""


@runtime_checkable
class ProofSizeLimit(Protocol):
    """A chain writer whose chain cannot include every proof SPEC §8 allows (an EVM node: a transaction's size
    bounds the envelope it carries). A proof it could never include is refused before it is accepted, so no job
    waits SUBMITTED for an inclusion that cannot happen."""

    @property
    def max_proof_body_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapShortfall:
    """Traps of one model the fund could not pay, since start (this process): an operator alarm, not state."""

    count: int  # lifetime count: aicf_trap_escrow_shortfalls_total
    escrow: int  # µANM the last one needed
    warned_at: int  # when the last warning was logged
    warned_count: int  # `count` at that warning


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryView:
    """What matching reads of the registry, valid while the store's registry version stays `version`."""

    version: int
    profiles: tuple[ProviderProfile, ...]
    slots: dict[bytes, int]  # the matchable providers' own lease limits
    pools: dict[tuple[object, ...], CandidatePool] = field(default_factory=dict)


class Caches:
    """Everything one coordinator process keeps between use-cases. None of it is state: each entry is derived
    from the store, the chain or a model run, so a restart (or another replica) recomputes it."""

    def __init__(self) -> None:
        self.registry: RegistryView | None = None  # the matcher's profiles, per registry version
        self.qos_evaluated: dict[bytes, int] = {}  # provider → the QoS window its QOS_CHRONIC was evaluated in
        self.genesis_time: int | None = None  # the chain's, once ingest recorded it (it never changes after)
        self.expected: dict[tuple[str, bytes, int], ExpectedAnswer] = {}  # trap answers, at most MAX_EXPECTED_ANSWERS
        self.audit_answers: dict[bytes, ExpectedAnswer] = {}  # task → re-execution, at most MAX_AUDIT_ANSWERS
        self.trap_shortfalls: dict[str, TrapShortfall] = {}  # model → traps the fund could not pay (issue 17)
        self.trap_throttles: dict[str, TrapShortfall] = {}  # model → traps held back by the trap budget
        self.trap_reclaims: dict[bytes, int] = {}  # trap caller → when its trap_reclaim was last sent
        # aicf.nextLease: a quantum lease's trap batch is built once per lease (issue 15: it costs about a second
        # of CPU and a provider can poll), then kept while the lease may live; bounded, oldest dropped first.
        self.batches: OrderedDict[bytes, QuantumBatch] = OrderedDict()
        self.batch_bytes = 0
        self.batches_lock = threading.Lock()


DeriveBatch = Callable[[bytes, int, bytes, bytes, Params], QuantumBatch]


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """The use-cases' wiring: one store, clock, params, operator key, verifier and chain writer, the trap
    configuration, and the process's caches."""

    store: Store
    clock: Clock
    params: Params
    operator_key: Ed25519PrivateKey
    verifier: ProofVerifier
    trust: TrustRegistry
    caches: Caches
    chain_writer: ChainWriter | None = None
    trap_secret: bytes = b""
    operator_allowlist: frozenset[bytes] = frozenset()
    trap_oracle: TrapOracle | None = None
    trap_corpus: tuple[TrapPrompt, ...] = ()
    derive_batch: DeriveBatch = derive_batch
    base_params: Params | None = None  # the node's params file (version 0); None: `params`

    def trap_seed(self, epoch: int) -> bytes:
        """s_E: secret until batch E reveals it; its commitment H("aicf/trapseed/v1", s_E) is public before E."""
        return derive_seed(self.trap_secret, epoch)


@dataclass(frozen=True, slots=True)
class Work:
    """One use-case's unit of work: the transaction every step writes in, the instant the use-case read once,
    and the wiring. Leaving `unit_of_work` without `tx.commit()` rolls everything back."""

    tx: Tx
    now: int
    ctx: Context

    @property
    def params(self) -> Params:
        return self.ctx.params

    def commit(self) -> None:
        """Commit the use-case, with the nonce of the signed call it runs if that is not recorded yet (the call's
        effect and its nonce commit together). Raises NonceReusedError, nothing committed, for a replay."""
        pending = pending_nonce(self.ctx.store)
        if pending is not None:
            pending.record(self.tx)
        self.tx.commit()
        if pending is not None:
            pending.consumed = True


@contextmanager
def unit_of_work(ctx: Context, now: int | None = None) -> Iterator[Work]:
    """Read the clock once (unless the caller already did) and open one store transaction."""
    at = ctx.clock.now() if now is None else now
    with ctx.store.transaction() as tx:
        yield Work(tx, at, ctx)
