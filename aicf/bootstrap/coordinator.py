"""The coordinator every running shape runs: `aicf up`, a replica, and the test harnesses build it here.

A `CoordinatorConfig` holds what decides its behaviour (params, operator key, the models it pins, the trap
secret and corpus); the adapters it runs on (store, clock, chain writer) are passed beside it, so a test hands in
a fake clock and an in-memory store where `aicf up` hands in the wall clock and SQLite.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.core.clock import Clock
from aicf.core.params import Params
from aicf.service.collateral import CollateralWatch
from aicf.service.context import Caches
from aicf.service.coordinator import ChainWriter, Coordinator
from aicf.service.traps import TrapOracle, TrapPrompt
from aicf.service.verifier import StandardVerifier
from aicf.store.interface import Store


@dataclass(frozen=True, kw_only=True)
class CoordinatorConfig:
    """What a coordinator decides with. `trap_seed` None: the coordinator's own seeds, derived from
    `trap_secret` (SPEC §8); a harness that plants no quantum traps may fix it (e.g. to 32 zero bytes)."""

    params: Params
    operator_key: Ed25519PrivateKey
    model_digests: Mapping[str, bytes]
    trap_secret: bytes
    trap_seed: Callable[[int], bytes] | None = None
    trap_oracle: TrapOracle | None = None
    trap_corpus: Sequence[TrapPrompt] = ()
    watch: CollateralWatch | None = field(default=None)  # what accepted TEE evidence relied on (/metrics alarms)


def build_coordinator(
    config: CoordinatorConfig,
    *,
    store: Store,
    clock: Clock,
    chain_writer: ChainWriter | None,
    caches: Caches | None = None,
) -> Coordinator:
    """The coordinator on `store`, reading `clock`, sending accepted proofs through `chain_writer`, keeping its
    per-process caches in `caches` (a new, empty `Caches` unless the caller holds one to look into)."""

    def own_seed(epoch: int) -> bytes:
        return coord.trap_seed(epoch)

    verifier = StandardVerifier(
        model_digests=config.model_digests,
        trap_seed=config.trap_seed if config.trap_seed is not None else own_seed,
        watch=config.watch,
    )
    coord = Coordinator(
        store=store,
        clock=clock,
        params=config.params,
        operator_key=config.operator_key,
        verifier=verifier,
        caches=caches if caches is not None else Caches(),
        chain_writer=chain_writer,
        trap_secret=config.trap_secret,
        trap_oracle=config.trap_oracle,
        trap_corpus=config.trap_corpus,
    )
    return coord
