"""Gas of the AICF contracts on anvil (issue 13 Speed): enqueue, proof inclusion, batch root, claim.

Run: .venv/bin/python benchmarks/bench_chain.py [--sizes 2,100,10000,100000]
Needs `scripts/install-chain`. Starts its own anvil on 127.0.0.1 (a free port), deploys, and prints a markdown
table of gasUsed per transaction. Batch roots and claims are measured for claim trees of each size: a batch
root is one transaction whatever the size, and a claim's gas grows with its Merkle path (log2 of the accounts).
"""

import argparse
import math
import sys

from web3 import Web3
from web3.logs import DISCARD

from aicf.chain.anvil import find_anvil, start_anvil
from aicf.chain.claims import build_claim_tree
from aicf.chain.deploy import contract, deploy

ANM = 10**6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,100,10000,100000", help="claim tree sizes (accounts per batch)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    binary = find_anvil()
    if binary is None:
        sys.exit("anvil is not installed: run scripts/install-chain")
    node = start_anvil(binary)
    try:
        rows = measure(Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120})), sizes)
    finally:
        node.stop()
    print("| transaction | detail | gas |")
    print("|---|---|---:|")
    for name, detail, gas in rows:
        print(f"| {name} | {detail} | {gas:,} |")


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
            "first inclusion of a task",
            gas(f.includeProof(task_id, b"\1" * 32, b"\2" * 32, b"\3" * 32, b"\4" * 32, 1234), coordinator),
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
