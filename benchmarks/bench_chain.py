"""Gas of the AICF contracts on anvil (issue 13 Speed): enqueue, proof inclusion, batch root, claim; and the
ingest rate of enqueue logs through the chain adapter beside the embedded devnet's.

Run: .venv/bin/python benchmarks/bench_chain.py [--sizes 2,100,10000,100000] [--blocks 50 --jobs-per-block 20]
Needs `scripts/install-chain`. Starts its own anvil on 127.0.0.1 (a free port), deploys, and prints a markdown
table of gasUsed per transaction. Batch roots and claims are measured for claim trees of each size: a batch
root is one transaction whatever the size, and a claim's gas grows with its Merkle path (log2 of the accounts).
Ingest: `--blocks` blocks of `--jobs-per-block` aiEnqueue each are mined on anvil, then `EvmChain.block_at` reads
them all (a fresh adapter each round, so every block is a cache miss: header + logs), and the embedded devnet's
`block_at` reads a devnet with the same blocks of enqueues; jobs/s, min / median / max of 3 rounds.
"""

import argparse
import math
import statistics
import sys
import time

from web3 import Web3
from web3.logs import DISCARD
from web3.types import Nonce

from aicf.chain.anvil import find_anvil, start_anvil
from aicf.chain.claims import build_claim_tree
from aicf.chain.deploy import Deployment, contract, deploy
from aicf.chain.devnet import Devnet
from aicf.chain.evm import EvmChain
from aicf.core.chain import TxKind

ANM = 10**6
PROOF_DATA = (b"\xe0" * 1024, b"\xac" * 120, b"\x5a" * 64)  # includeProof's envelope, acc, acc_sig (calldata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,100,10000,100000", help="claim tree sizes (accounts per batch)")
    parser.add_argument("--blocks", type=int, default=50, help="blocks of enqueues for the ingest rate")
    parser.add_argument("--jobs-per-block", type=int, default=20, help="aiEnqueue logs per block")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    binary = find_anvil()
    if binary is None:
        sys.exit("anvil is not installed: run scripts/install-chain")
    node = start_anvil(binary)
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        rows = measure(w3, sizes)
        rates = ingest_rates(w3, args.blocks, args.jobs_per_block)
    finally:
        node.stop()
    print("| transaction | detail | gas |")
    print("|---|---|---:|")
    for name, detail, gas in rows:
        print(f"| {name} | {detail} | {gas:,} |")
    print()
    print(f"| ingest ({args.blocks} blocks × {args.jobs_per_block} enqueues) | jobs/s min | median | max |")
    print("|---|---:|---:|---:|")
    for name, samples in rates:
        print(f"| {name} | {min(samples):,.0f} | {statistics.median(samples):,.0f} | {max(samples):,.0f} |")


def ingest_rates(w3: Web3, blocks: int, per_block: int) -> list[tuple[str, list[float]]]:
    """jobs/s of reading `blocks` blocks of `per_block` enqueues: EvmChain on anvil (cold and warm cache) and
    the embedded devnet, 3 rounds each."""
    d, first = enqueue_blocks(w3, blocks, per_block)
    jobs = blocks * per_block
    heights = range(first, first + blocks)

    def evm_round(chain: EvmChain) -> float:
        start = time.perf_counter()
        got = sum(len(b.txs) // 2 for h in heights if (b := chain.block_at(h)) is not None)
        if got != jobs:
            sys.exit(f"EvmChain read {got} enqueues, expected {jobs}")
        return jobs / (time.perf_counter() - start)

    cold = [evm_round(EvmChain(w3, d)) for _ in range(3)]
    warm_chain = EvmChain(w3, d)
    evm_round(warm_chain)
    warm = [evm_round(warm_chain) for _ in range(3)]
    net = Devnet()
    body = {"model": "llama3-8b", "prompt": b"p" * 100, "max_tokens": 64, "max_runtime_ms": 1000}
    for _ in range(blocks):
        for i in range(per_block):
            net.submit(b"\x0a" * 20, TxKind.AI_ENQUEUE, {**body, "fee_per_unit": 15000 + i, "tier": 0})
        net.mine()

    def devnet_round() -> float:
        start = time.perf_counter()
        got = sum(len(b.txs) for h in range(1, blocks + 1) if (b := net.block_at(h)) is not None)
        if got != jobs:
            sys.exit(f"the devnet read {got} enqueues, expected {jobs}")
        return jobs / (time.perf_counter() - start)

    return [
        ("EvmChain.block_at on anvil, cold cache (header + logs per block)", cold),
        ("EvmChain.block_at on anvil, warm cache (header per block)", warm),
        ("embedded devnet block_at", [devnet_round() for _ in range(3)]),
    ]


def enqueue_blocks(w3: Web3, blocks: int, per_block: int) -> tuple[Deployment, int]:
    """A fresh deployment and `blocks` blocks of `per_block` aiEnqueue each (100 B prompts); the first height."""
    admin, coordinator, fund, requester = list(w3.eth.accounts)[:4]
    d = deploy(w3, deployer=admin, coordinator=coordinator, fund=fund, with_consumer=False)
    token, aicf = contract(w3, "AicfTestToken", d.token), contract(w3, "Aicf", d.aicf)
    for call, who in (
        (token.functions.mint(requester, 10**15), admin),
        (token.functions.approve(aicf.address, 2**256 - 1), requester),
    ):
        w3.eth.wait_for_transaction_receipt(call.transact({"from": who}))
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        first = w3.eth.block_number + 1
        nonce = int(w3.eth.get_transaction_count(requester))
        for _ in range(blocks):
            for i in range(per_block):
                call = aicf.functions.aiEnqueue("llama3-8b", b"p" * 100, 64, 1000, 15000 + i, 0, ANM)
                call.transact({"from": requester, "gas": 400_000, "nonce": Nonce(nonce)})
                nonce += 1
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    return d, first


def measure(w3: Web3, sizes: list[int]) -> list[tuple[str, str, int]]:
    admin, coordinator, fund, requester, provider = list(w3.eth.accounts)[:5]
    d = deploy(w3, deployer=admin, coordinator=coordinator, fund=fund)
    token, aicf = contract(w3, "AicfTestToken", d.token), contract(w3, "Aicf", d.aicf)

    def gas(call: object, sender: str) -> int:
        tx = call.transact({"from": sender})  # type: ignore[attr-defined]
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            sys.exit(f"transaction failed: {receipt}")
        used: int = receipt["gasUsed"]
        return used

    rows: list[tuple[str, str, int]] = []
    for who in (requester, provider, admin):
        gas(token.functions.mint(who, 10**15), admin)
        gas(token.functions.approve(aicf.address, 2**256 - 1), who)
    f = aicf.functions
    gas(f.aiEnqueue("llama3-8b", b"warm", 64, 1000, 15000, 0, ANM), requester)  # first write of the nonce
    for size in (100, 4096, 64 * 1024):
        rows.append(
            (
                "aiEnqueue",
                f"{size} B prompt",
                gas(f.aiEnqueue("llama3-8b", b"p" * size, 64, 1000, 15000, 0, ANM), requester),
            )
        )
    circuit = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'
    rows.append(
        ("quantumEnqueue", f"{len(circuit)} B circuit", gas(f.quantumEnqueue(circuit, 1000, 50000, 0, ANM), requester))
    )
    log = f.aiEnqueue("llama3-8b", b"x", 8, 1000, 15000, 0, ANM).transact({"from": requester})
    receipt = w3.eth.wait_for_transaction_receipt(log)
    task_id = aicf.events.AiEnqueued().process_receipt(receipt, errors=DISCARD)[0]["args"]["taskId"]
    rows.append(
        (
            "includeProof",
            "first inclusion of a task, 1 KiB envelope in calldata",
            gas(f.includeProof(task_id, b"\1" * 32, b"\2" * 32, b"\3" * 32, b"\4" * 32, 1234, PROOF_DATA), coordinator),
        )
    )
    rows.append(("stake", "first stake of a provider", gas(f.stake(b"\7" * 32, 100 * ANM), provider)))
    rows.append(("slash", "MISSED_LEASE 100 bps", gas(f.slash(b"\7" * 32, 1, 100, b"\x0e" * 32), coordinator)))
    gas(f.deposit(10**14), admin)
    gas(f.postBatch(0, bytes(32), (0, 0, 0, 0, 0, 0), 0, bytes(32), 0), coordinator)  # nextEpoch 0 -> 1
    for epoch, n in enumerate(sizes, start=1):
        amounts = {(epoch * 10**7 + i).to_bytes(20, "big"): ANM + i for i in range(1, n + 1)}
        tree = build_claim_tree(epoch, amounts)
        totals = (tree.total, tree.total, 0, 0, 0, n)
        rows.append(
            (
                "postBatch",
                f"{n:,} accounts",
                gas(f.postBatch(epoch, tree.root, totals, 0, tree.root, tree.total), coordinator),
            )
        )
        c = tree.claims[0]
        call = f.claim(epoch, Web3.to_checksum_address(c.account), c.amount, list(c.proof))
        rows.append(
            ("claim", f"{n:,} accounts, path {len(c.proof)} = ⌈log2 n⌉ {math.ceil(math.log2(n))}", gas(call, admin))
        )
    return rows


if __name__ == "__main__":
    main()
