"""The embedded devnet (SPEC §10): a deterministic chain for local runs and tests.

Blocks come every `interval_s` seconds of an injected clock (`tick(now)`) or on demand (`mine(n)`);
producers rotate among a few miners; the beacon is H("aicf/beacon/v1", parent_beacon, height); each block
has a fixed issuance and fees of `tx_fee` per transaction; submitted transactions wait in a mempool and get
their index when a block includes them. `reorg(depth)` replaces the last `depth` blocks (at most the
finality depth, so no final block is ever replaced) with a new branch of the same length: the orphaned
transactions go back to the mempool and land, in order, at heights the seeded generator picks. Everything
follows from the config and the calls made, so two runs of the same script give the same chain.

Requesters send signed transactions (`send`, aicf.core.txs): the devnet checks the chain id, the signature and
the sender's next nonce before the transaction enters the mempool, so a replayed or forged one is refused with
nothing stored.

With a `DevnetJournal` (issue 12) every change — a submitted transaction, mined blocks, a reorg — is written
to it in one atomic record BEFORE the in-memory chain changes, and `Devnet.resume(journal, ...)` rebuilds the
same chain, mempool and nonces after a stop or a SIGKILL. A journal write that fails leaves the devnet as it
was. After a stop the chain does not replay the blocks it missed: the first block after a gap of more than
`max_gap_blocks` intervals is made at the current time (a halted chain restarting), and the epochs in between
settle as empty batches (SPEC §5).
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aicf.chain.interface import TxLocation
from aicf.core.chain import ZERO_HASH, Block, ChainTx, TxKind, block_hash_of, finalized_height, tx_hash_of
from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.errors import AicfError
from aicf.core.ids import beacon_of
from aicf.core.txs import BadTxSignatureError, NonceError, SignedTx, TxError, WrongChainError, check_tx_shape
from aicf.core.types import MicroAnm

MINER_TAG = "aicf/devnet/miner/v1"  # devnet-only ids, not consensus


class DevnetError(AicfError):
    """A call the devnet refuses (a reorg deeper than finality allows, a journal of another chain)."""


class DevnetJournal(Protocol):
    """Where a persisted devnet keeps itself (aicf.store.devnet_journal keeps it in the coordinator's store)."""

    def load(self) -> tuple[dict[str, int], list[bytes], list[tuple[int, bytes]]] | None:
        """(meta, encoded blocks from height 0, [(seq, encoded pending tx)] in seq order), or None if empty."""

    def record(
        self,
        *,
        meta: Mapping[str, int],
        blocks: Sequence[tuple[int, bytes]] = (),
        drop_blocks_above: int | None = None,
        pending: Sequence[tuple[int, bytes]] = (),
        drop_pending_through: int | None = None,
        replace_mempool: bool = False,
    ) -> None:
        """Apply one change atomically: upsert `meta`; delete blocks above `drop_blocks_above`; put `blocks`;
        with `replace_mempool`, delete every pending tx first; delete pending txs with seq ≤
        `drop_pending_through`; put `pending`."""


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
    max_gap_blocks: int = 30  # after a longer stop the next block is made at the current time (module doc)


CONFIG_KEYS = tuple(f.name for f in fields(DevnetConfig))
NONCE_PREFIX = "nonce:"  # journal meta key of a signed sender's next nonce: "nonce:<hex address>"


@dataclass(frozen=True, slots=True)
class _Pending:
    tx_hash: bytes
    sender: bytes
    kind: TxKind
    body: Mapping[str, object]
    seq: int = 0  # the journal's order key; mempool order is seq order


@dataclass(slots=True)
class Devnet:
    config: DevnetConfig = field(default_factory=DevnetConfig)
    blocks: list[Block] = field(default_factory=list)
    mempool: list[_Pending] = field(default_factory=list)
    nonce: int = 0
    reorgs: int = 0
    journal: DevnetJournal | None = None
    account_nonces: dict[bytes, int] = field(default_factory=dict)  # signed senders' next nonce
    next_seq: int = 0
    operator: bytes | None = None  # the operator's address: the only sender of operator transactions
    _where: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # tx_hash -> (height, index) when included

    def __post_init__(self) -> None:
        if not self.blocks:
            genesis = self._make_block(0, ZERO_HASH, ZERO_HASH, self.config.genesis_time, ())
            if self.journal is not None:
                self.journal.record(meta=self._meta(), blocks=[(0, encode_block(genesis))])
            self.blocks.append(genesis)
        for block in self.blocks:
            self._index(block)

    @classmethod
    def resume(cls, journal: DevnetJournal, config: DevnetConfig) -> "Devnet":
        """The devnet the journal holds, or a new one with `config` if the journal is empty. A journal kept
        for another chain id is refused (DevnetError); its own config (genesis time, interval, miners) wins
        over `config` otherwise, so a restart continues the same chain."""
        saved = journal.load()
        if saved is None:
            return cls(config, journal=journal)
        meta, blocks, pending = saved
        stored = DevnetConfig(**{k: meta[k] for k in CONFIG_KEYS if k in meta})
        if stored.chain_id != config.chain_id:
            raise DevnetError(f"the database holds devnet chain {stored.chain_id}, this run expects {config.chain_id}")
        net = cls(
            stored,
            blocks=[decode_block(b) for b in blocks],
            mempool=[decode_pending(seq, p) for seq, p in pending],
            nonce=meta.get("nonce", 0),
            reorgs=meta.get("reorgs", 0),
            journal=journal,
            account_nonces={
                bytes.fromhex(k.removeprefix(NONCE_PREFIX)): v for k, v in meta.items() if k.startswith(NONCE_PREFIX)
            },
            next_seq=meta.get("next_seq", 0),
        )
        if (
            not net.blocks
            or net.blocks[0].height != 0
            or any(b.height != i or (i and b.parent != net.blocks[i - 1].hash) for i, b in enumerate(net.blocks))
        ):
            raise DevnetError("the devnet blocks in the database do not form one chain from genesis")
        return net

    def follow(self, meta: Mapping[str, int], blocks: Sequence[bytes], pending: Sequence[tuple[int, bytes]]) -> bool:
        """Catch up with what another process on the same journal wrote since this devnet last read it (issue 13:
        `aicf serve` replicas share one chain): `blocks` are the journal's blocks above this head, `pending` its
        whole mempool, `meta` its counters. Returns False, changing nothing, when the journal's chain does not
        extend this one (a reorg there): resume from the journal instead."""
        new = [decode_block(b) for b in blocks]
        if meta.get("reorgs", 0) != self.reorgs or meta.get("chain_id", self.config.chain_id) != self.config.chain_id:
            return False
        parent = self.blocks[-1]
        for block in new:
            if block.height != parent.height + 1 or block.parent != parent.hash:
                return False
            parent = block
        self.blocks.extend(new)
        for block in new:
            self._index(block)
        self.mempool = [decode_pending(seq, p) for seq, p in pending]
        self.nonce, self.next_seq = meta.get("nonce", 0), meta.get("next_seq", 0)
        self.account_nonces = {
            bytes.fromhex(k.removeprefix(NONCE_PREFIX)): v for k, v in meta.items() if k.startswith(NONCE_PREFIX)
        }
        return True

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
        """Put a transaction of one of the devnet's own senders (the coordinator, tests) in the mempool;
        returns its hash (the same wherever it is included). Operator transactions must be signed (`send`)."""
        if kind == TxKind.OPERATOR:
            raise TxError("kind", "an operator transaction must be signed by the operator key (send, not submit)")
        tx_hash = tx_hash_of(self.config.chain_id, sender, kind.value, self.nonce, body)
        pending = _Pending(tx_hash=tx_hash, sender=sender, kind=kind, body=dict(body), seq=self.next_seq)
        self._enqueue(pending, {"nonce": self.nonce + 1})
        self.nonce += 1
        return tx_hash

    def send(self, tx: SignedTx) -> bytes:
        """A requester's signed transaction (aicf.core.txs): shape, chain id, signature and the sender's next
        nonce are checked before it enters the mempool; raises TxError with nothing stored. Returns its hash."""
        check_tx_shape(tx)
        if tx.chain_id != self.config.chain_id:
            raise WrongChainError(self.config.chain_id, tx.chain_id)
        try:
            Ed25519PublicKey.from_public_bytes(tx.public_key).verify(tx.sig, tx.signing_digest())
        except (InvalidSignature, ValueError):
            raise BadTxSignatureError() from None
        sender = tx.sender
        if tx.kind == TxKind.OPERATOR and sender != self.operator:
            operator = "none is configured" if self.operator is None else f"it is 0x{self.operator.hex()}"
            raise TxError("sender", f"0x{sender.hex()} is not the operator ({operator}): operator transactions refused")
        expected = self.account_nonces.get(sender, 0)
        if tx.nonce != expected:
            raise NonceError(expected, tx.nonce)
        tx_hash = tx.tx_hash()
        pending = _Pending(tx_hash=tx_hash, sender=sender, kind=tx.kind, body=dict(tx.body), seq=self.next_seq)
        self._enqueue(pending, {NONCE_PREFIX + sender.hex(): expected + 1})
        self.account_nonces[sender] = expected + 1
        return tx_hash

    def next_nonce(self, sender: bytes) -> int:
        return self.account_nonces.get(sender, 0)

    def pending_from(self, sender: bytes) -> list[TxLocation]:
        """The sender's transactions still waiting in the mempool, in order."""
        return [
            TxLocation(tx_hash=p.tx_hash, sender=p.sender, kind=p.kind, body=p.body)
            for p in self.mempool
            if p.sender == sender
        ]

    def locate(self, tx_hash: bytes) -> TxLocation | None:
        """Where a transaction is on the canonical chain or in the mempool; None if the devnet never saw it."""
        where = self._where.get(tx_hash)
        if where is not None:
            height, index = where
            if height < len(self.blocks) and index < len(self.blocks[height].txs):
                t = self.blocks[height].txs[index]
                if t.tx_hash == tx_hash:
                    return TxLocation(
                        tx_hash=tx_hash, sender=t.sender, kind=t.kind, body=t.body, height=height, index=index
                    )
        for p in self.mempool:
            if p.tx_hash == tx_hash:
                return TxLocation(tx_hash=tx_hash, sender=p.sender, kind=p.kind, body=p.body)
        return None

    def mine(self, count: int = 1) -> list[Block]:
        """Produce `count` blocks, each `interval_s` after its parent, each taking what the mempool holds."""
        return self._produce([(self.config.max_txs_per_block, 0)] * count)

    def tick(self, now: int) -> list[Block]:
        """Produce every block due by `now` (the injected clock's reading). After a stop longer than
        `max_gap_blocks` intervals, the first block is made at `now` instead of replaying the gap."""
        interval = self.config.interval_s
        last = self.blocks[-1].time
        if now - last > interval * max(self.config.max_gap_blocks, 1):
            return self._produce([(self.config.max_txs_per_block, now - last - interval)])
        due = max(0, (now - last) // interval)
        return self._produce([(self.config.max_txs_per_block, 0)] * due)

    def reorg(self, depth: int) -> list[Block]:
        """Replace the last `depth` blocks with a new branch of the same length (1 ≤ depth ≤ finality depth)."""
        if not 1 <= depth <= min(self.config.finality_depth, self.head_height()):
            raise DevnetError(
                f"reorg depth must be in 1..{min(self.config.finality_depth, self.head_height())}, got {depth}"
            )
        saved = (list(self.blocks), list(self.mempool), self.reorgs, self.next_seq)
        self.reorgs += 1
        orphaned = self.blocks[-depth:]
        fork = len(self.blocks) - depth - 1
        del self.blocks[-depth:]
        self.mempool[:0] = [
            _Pending(tx_hash=t.tx_hash, sender=t.sender, kind=t.kind, body=t.body) for b in orphaned for t in b.txs
        ]
        self.mempool = [replace_seq(p, self.next_seq + i) for i, p in enumerate(self.mempool)]
        self.next_seq += len(self.mempool)
        rng = random.Random(f"{self.config.seed}/reorg/{self.reorgs}")  # noqa: S311  (a devnet, not security)
        branch: list[Block] = []
        for _ in range(depth):
            take = rng.randint(0, min(len(self.mempool), self.config.max_txs_per_block))
            branch.append(self._mine_one(take, 1))
        if self.journal is not None:
            try:
                self.journal.record(
                    meta=self._meta(),
                    drop_blocks_above=fork,
                    blocks=[(b.height, encode_block(b)) for b in branch],
                    replace_mempool=True,
                    pending=[(p.seq, encode_pending(p)) for p in self.mempool],
                )
            except BaseException:
                self.blocks, self.mempool, self.reorgs, self.next_seq = saved
                raise
        for block in orphaned:
            for t in block.txs:
                self._where.pop(t.tx_hash, None)
        for block in branch:
            self._index(block)
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

    def _meta(self, extra: Mapping[str, int] | None = None) -> dict[str, int]:
        cfg = self.config
        meta = {k: int(getattr(cfg, k)) for k in CONFIG_KEYS}
        meta.update(nonce=self.nonce, reorgs=self.reorgs, next_seq=self.next_seq)
        meta.update(extra or {})
        return meta

    def _index(self, block: Block) -> None:
        for t in block.txs:
            self._where[t.tx_hash] = (block.height, t.index)

    def _enqueue(self, pending: _Pending, extra_meta: Mapping[str, int]) -> None:
        """Journal first (with the counters as they will be), then the mempool."""
        if self.journal is not None:
            meta = {"next_seq": self.next_seq + 1, **extra_meta}
            self.journal.record(meta=meta, pending=[(pending.seq, encode_pending(pending))])
        self.mempool.append(pending)
        self.next_seq += 1

    def _produce(self, plan: Sequence[tuple[int, int]]) -> list[Block]:
        """Mine one block per (take, time skew) of `plan`; journal them in one record, then keep them."""
        if not plan:
            return []
        saved_blocks, saved_mempool = len(self.blocks), list(self.mempool)
        made = [self._mine_one(take, skew) for take, skew in plan]
        if self.journal is not None:
            taken = len(saved_mempool) - len(self.mempool)
            try:
                self.journal.record(
                    meta={"nonce": self.nonce, "reorgs": self.reorgs, "next_seq": self.next_seq},
                    blocks=[(b.height, encode_block(b)) for b in made],
                    drop_pending_through=saved_mempool[taken - 1].seq if taken else None,
                )
            except BaseException:
                del self.blocks[saved_blocks:]
                self.mempool = saved_mempool
                raise
        for block in made:
            self._index(block)
        return made

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


def replace_seq(p: _Pending, seq: int) -> _Pending:
    return _Pending(tx_hash=p.tx_hash, sender=p.sender, kind=p.kind, body=p.body, seq=seq)


def encode_block(b: Block) -> bytes:
    """A block with its transactions as canonical CBOR (the journal's form)."""
    txs = [[t.tx_hash, t.index, t.sender, t.kind.value, dict(t.body)] for t in b.txs]
    return canonical_cbor([b.height, b.hash, b.parent, b.time, b.producer, b.beacon, int(b.issuance), int(b.fees), txs])


def decode_block(data: bytes) -> Block:
    height, block_hash, parent, time, producer, beacon, issuance, fees, txs = cbor2.loads(data)
    return Block(
        height=height,
        hash=block_hash,
        parent=parent,
        time=time,
        producer=producer,
        beacon=beacon,
        issuance=MicroAnm(issuance),
        fees=MicroAnm(fees),
        txs=tuple(
            ChainTx(tx_hash=h, index=i, sender=sender, kind=TxKind(kind), body=body) for h, i, sender, kind, body in txs
        ),
    )


def encode_pending(p: _Pending) -> bytes:
    return canonical_cbor([p.tx_hash, p.sender, p.kind.value, dict(p.body)])


def decode_pending(seq: int, data: bytes) -> _Pending:
    tx_hash, sender, kind, body = cbor2.loads(data)
    return _Pending(tx_hash=tx_hash, sender=sender, kind=TxKind(kind), body=body, seq=seq)
