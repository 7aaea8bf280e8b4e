"""The embedded devnet (SPEC §10): deterministic blocks, beacon, rotation, finality, reorgs above finality."""

import pytest

from aicf.chain.devnet import Devnet, DevnetConfig, DevnetError
from aicf.chain.scenario import build_devnet, plan
from aicf.core.chain import ZERO_HASH, TxKind, block_hash_of, finalized_height, is_final
from aicf.core.ids import beacon_of
from aicf.core.params import Params

A = b"\x0a" * 20


def test_two_runs_of_one_script_give_the_same_chain() -> None:
    one = build_devnet(4, plan(4, 120), Params.default())
    two = build_devnet(4, plan(4, 120), Params.default())
    assert one.blocks == two.blocks
    assert one.head_height() > 20


def test_the_beacon_chains_from_the_zero_beacon_and_hashes_cover_the_header() -> None:
    net = Devnet()
    net.submit(A, TxKind.DEPOSIT, {"to": A, "amount": 5})
    net.mine(3)
    assert net.blocks[0].beacon == beacon_of(ZERO_HASH, 0)
    for parent, block in zip(net.blocks, net.blocks[1:], strict=False):
        assert block.parent == parent.hash
        assert block.beacon == beacon_of(parent.beacon, block.height)
        assert block.time == parent.time + net.config.interval_s
        assert block.hash == block_hash_of(
            chain_id=net.chain_id, height=block.height, parent=block.parent, time=block.time,
            producer=block.producer, beacon=block.beacon, issuance=block.issuance, fees=block.fees,
            tx_hashes=[t.tx_hash for t in block.txs],
        )  # fmt: skip
    assert net.blocks[1].fees == net.config.tx_fee
    assert [t.index for t in net.blocks[1].txs] == [0]


def test_producers_rotate_among_the_miners() -> None:
    net = Devnet(DevnetConfig(miners=3))
    net.mine(6)
    producers = [b.producer for b in net.blocks[1:]]
    assert len(set(producers)) == 3
    assert producers[:3] == producers[3:]


def test_finality_is_at_depth_six() -> None:
    net = Devnet()
    net.mine(6)
    assert net.finalized_height() == 0
    assert is_final(0, 6, 6)
    assert not is_final(1, 6, 6)
    assert finalized_height(5, 6) == -1


def test_a_reorg_replaces_the_last_blocks_and_returns_their_transactions_to_the_mempool() -> None:
    net = Devnet()
    net.mine(8)
    tx = net.submit(A, TxKind.DEPOSIT, {"to": A, "amount": 5})
    net.mine(1)
    old = list(net.blocks)
    net.reorg(3)
    assert net.head_height() == 9
    assert net.blocks[:7] == old[:7]
    assert all(net.blocks[h].hash != old[h].hash for h in (7, 8, 9))
    included = [b.height for b in net.blocks for t in b.txs if t.tx_hash == tx]
    in_mempool = [p for p in net.mempool if p.tx_hash == tx]
    assert len(included) + len(in_mempool) == 1  # exactly once: re-included or waiting
    net.mine(1)
    assert [b.height for b in net.blocks for t in b.txs if t.tx_hash == tx] != []


@pytest.mark.parametrize("depth", [0, 7])
def test_a_reorg_that_would_touch_a_final_block_is_refused(depth: int) -> None:
    net = Devnet()
    net.mine(10)
    with pytest.raises(DevnetError):
        net.reorg(depth)
