"""The embedded devnet (SPEC §10): a deterministic chain for local runs and tests.

Blocks come every `interval_s` seconds of an injected clock (`tick(now)`) or on demand (`mine(n)`);
producers rotate among a few miners; the beacon is H("aicf/beacon/v1", parent_beacon, height); each block
has a fixed issuance and fees of `tx_fee` per transaction; submitted transactions wait in a mempool and get
their index when a block includes them. `reorg(depth)` replaces the last `depth` blocks (at most the
finality depth, so no final block is ever replaced) with a new branch of the same length: the orphaned
transactions go back to the mempool and land, in order, at heights the seeded generator picks. Everything
follows from the config and the calls made, so two runs of the same script give the same chain.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from aicf.core.chain import ZERO_HASH, Block, ChainTx, TxKind, block_hash_of, finalized_height, tx_hash_of
from aicf.core.encoding import tagged_hash
from aicf.core.ids import beacon_of
from aicf.core.types import MicroAnm

MINER_TAG = "aicf/devnet/miner/v1"  # devnet-only ids, not consensus


class DevnetError(Exception):
    """A call the devnet refuses (a reorg deeper than finality allows)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetConfig:
    chain_id: int = 1337
    seed: int = 0
    genesis_time: int = 1_700_000_000
    interval_s: int = 10
    miners: int = 3
    issuance: int = 50_000_000  # µANM per block (50 ANM)
    tx_fee: int = 1_000  # µANM per transaction
    max_txs_per_block: int = 10_000
    finality_depth: int = 6


@dataclass(frozen=True, slots=True)
class _Pending:
    tx_hash: bytes
    sender: bytes
    kind: TxKind
    body: Mapping[str, object]


@dataclass(slots=True)
class Devnet:
    config: DevnetConfig = field(default_factory=DevnetConfig)
    blocks: list[Block] = field(default_factory=list)
    mempool: list[_Pending] = field(default_factory=list)
    nonce: int = 0
    reorgs: int = 0

    def __post_init__(self) -> None:
        if not self.blocks:
            self.blocks.append(self._make_block(0, ZERO_HASH, ZERO_HASH, self.config.genesis_time, ()))

    # -- ChainView ---------------------------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        return self.config.chain_id

    def head_height(self) -> int:
        return len(self.blocks) - 1

    def block_at(self, height: int) -> Block | None:
        return self.blocks[height] if 0 <= height < len(self.blocks) else None

    def finalized_height(self) -> int:
        return finalized_height(self.head_height(), self.config.finality_depth)

    # -- driving it ----------------------------------------------------------------------------------------
    def miner_ids(self) -> list[bytes]:
        return [tagged_hash(MINER_TAG, self.config.seed, i) for i in range(self.config.miners)]

    def submit(self, sender: bytes, kind: TxKind, body: Mapping[str, object]) -> bytes:
        """Put a transaction in the mempool; returns its hash (the same wherever it is included)."""
        tx_hash = tx_hash_of(self.config.chain_id, sender, kind.value, self.nonce, body)
        self.nonce += 1
        self.mempool.append(_Pending(tx_hash=tx_hash, sender=sender, kind=kind, body=dict(body)))
        return tx_hash

    def mine(self, count: int = 1) -> list[Block]:
        """Produce `count` blocks, each `interval_s` after its parent, each taking what the mempool holds."""
        return [self._mine_one(self.config.max_txs_per_block, 0) for _ in range(count)]

    def tick(self, now: int) -> list[Block]:
        """Produce every block due by `now` (the injected clock's reading)."""
        made: list[Block] = []
        while self.blocks[-1].time + self.config.interval_s <= now:
            made.append(self._mine_one(self.config.max_txs_per_block, 0))
        return made

    def reorg(self, depth: int) -> list[Block]:
        """Replace the last `depth` blocks with a new branch of the same length (1 ≤ depth ≤ finality depth)."""
        if not 1 <= depth <= min(self.config.finality_depth, self.head_height()):
            raise DevnetError(
                f"reorg depth must be in 1..{min(self.config.finality_depth, self.head_height())}, got {depth}"
            )
        self.reorgs += 1
        orphaned = self.blocks[-depth:]
        del self.blocks[-depth:]
        self.mempool[:0] = [
            _Pending(tx_hash=t.tx_hash, sender=t.sender, kind=t.kind, body=t.body) for b in orphaned for t in b.txs
        ]
        rng = random.Random(f"{self.config.seed}/reorg/{self.reorgs}")  # noqa: S311  (a devnet, not security)
        branch: list[Block] = []
        for _ in range(depth):
            take = rng.randint(0, min(len(self.mempool), self.config.max_txs_per_block))
            branch.append(self._mine_one(take, 1))
        return branch

    # -- internals -----------------------------------------------------------------------------------------
    def _make_block(
        self, height: int, parent: bytes, parent_beacon: bytes, time: int, txs: tuple[ChainTx, ...]
    ) -> Block:
        cfg = self.config
        miners = self.miner_ids()
        producer = miners[(height + self.reorgs) % len(miners)]
        beacon = beacon_of(parent_beacon, height)
        issuance = MicroAnm(cfg.issuance if height > 0 else 0)
        fees = MicroAnm(cfg.tx_fee * len(txs))
        block_hash = block_hash_of(
            chain_id=cfg.chain_id,
            height=height,
            parent=parent,
            time=time,
            producer=producer,
            beacon=beacon,
            issuance=issuance,
            fees=fees,
            tx_hashes=[t.tx_hash for t in txs],
        )
        return Block(
            height=height,
            hash=block_hash,
            parent=parent,
            time=time,
            producer=producer,
            beacon=beacon,
            issuance=issuance,
            fees=fees,
            txs=txs,
        )

    def _mine_one(self, take: int, time_skew_s: int) -> Block:
        parent = self.blocks[-1]
        taken, self.mempool = self.mempool[:take], self.mempool[take:]
        txs = tuple(
            ChainTx(tx_hash=p.tx_hash, index=i, sender=p.sender, kind=p.kind, body=p.body) for i, p in enumerate(taken)
        )
        block = self._make_block(
            parent.height + 1, parent.hash, parent.beacon, parent.time + self.config.interval_s + time_skew_s, txs
        )
        self.blocks.append(block)
        return block
