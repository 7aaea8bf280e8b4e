"""Shared pieces of the service tests: the fake clock (aicf.core), request bodies, a stub circuit parser."""

from store.backends import memory_store

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock as FakeClock  # the one fake clock, for the service tests
from aicf.core.ids import task_id
from aicf.core.params import Params
from aicf.core.requests import build_request_map, encode_payload
from aicf.service.ingest import ingest_available
from aicf.service.state_digest import state_digest
from aicf.store.interface import Store

P = Params.default()
ALICE = b"\xa1" * 20
BOB = b"\xb0" * 20
CAROL = b"\xc0" * 20
START = 1_700_000_000


def depth_stub(circuit: bytes) -> int:
    """A stand-in for the QASM parser: the depth is the circuit's length, so tests choose it."""
    return len(circuit)


def ai_body(prompt: bytes = b"hello", fee: int = 15000, runtime_ms: int = 1000, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "llama3-8b",
        "prompt": prompt,
        "max_tokens": 64,
        "max_runtime_ms": runtime_ms,
        "fee_per_unit": fee,
        "tier": 0,
    }
    body.update(extra)
    return body


ESCROW_1000MS = 15000 * (1000 * 1000 * 11500 * 11000 // 10**11) // 1000  # fee × max_units_mu // 1000


def devnet(seed: int = 1) -> Devnet:
    return Devnet(DevnetConfig(seed=seed))


def task_of(net: Devnet, height: int, index: int) -> bytes:
    """The task id ingestion gives the enqueue at (height, index)."""
    block = net.block_at(height)
    assert block is not None
    ctx = block.txs[index]
    rmap = build_request_map({**ctx.body, "kind": "ai" if ctx.kind == TxKind.AI_ENQUEUE else "quantum"}, P)
    return task_id(net.chain_id, height, ctx.tx_hash, ctx.sender, encode_payload(rmap))


def replay_digest(net: Devnet) -> bytes:
    """The digest of a fresh store that ingests the chain as it is now, never seeing any orphaned block."""
    fresh = memory_store()
    ingest_available(fresh, net, P, depth_stub)
    return state_digest(fresh)


def ingest(store: Store, net: Devnet) -> None:
    ingest_available(store, net, P, depth_stub)
