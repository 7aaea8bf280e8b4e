"""A seeded script of devnet activity: deposits, enqueues (valid and not), cancels, proofs, blocks, reorgs.

`plan(seed, steps)` is a pure function of its arguments, and `apply_step` drives a devnet with one step, so
the devnet after the first k steps can be rebuilt in any process: this is how the crash tests restart a
killed coordinator on the same chain without persisting the chain itself.
"""

import random
from dataclasses import dataclass

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.chain import ENQUEUE_KINDS, TxKind
from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError
from aicf.core.ids import task_id
from aicf.core.params import Params
from aicf.core.requests import build_request_map, encode_payload

REQUESTER_TAG = "aicf/devnet/requester/v1"
PROVIDER_TAG = "aicf/devnet/provider/v1"
BELL = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'
MODELS = ("llama3-8b", "llama3-70b", "clip-vit-b")


@dataclass(frozen=True, slots=True)
class Step:
    op: str  # deposit | enqueue | cancel | proof | mine | reorg
    a: int = 0
    b: int = 0
    c: int = 0


def requester(seed: int, i: int) -> bytes:
    return tagged_hash(REQUESTER_TAG, seed, i)[:20]


def plan(seed: int, steps: int, requesters: int = 4) -> list[Step]:
    """`steps` seeded steps, then enough blocks for every enqueue to become final."""
    rng = random.Random(f"aicf-scenario/{seed}")  # noqa: S311  (test traffic, not security)
    out: list[Step] = [Step("deposit", i, rng.randint(500_000, 3_000_000)) for i in range(requesters)]
    height = 0
    for _ in range(steps):
        roll = rng.randrange(100)
        if roll < 40:
            out.append(Step("enqueue", rng.randrange(requesters), rng.randrange(16), rng.randrange(1 << 30)))
        elif roll < 50:
            out.append(Step("deposit", rng.randrange(requesters), rng.randint(100_000, 3_000_000)))
        elif roll < 56:
            out.append(Step("cancel", rng.randrange(8)))
        elif roll < 63:
            out.append(Step("proof", rng.randrange(8), rng.randrange(1 << 30)))
        elif roll < 93:
            n = rng.randint(1, 3)
            height += n
            out.append(Step("mine", n))
        elif height >= 1:
            out.append(Step("reorg", rng.randint(1, min(6, height))))
    out.append(Step("mine", 8))
    return out


def _request(step: Step, rng: random.Random) -> tuple[TxKind, dict[str, object]]:
    variant = step.b
    if variant == 15:
        return TxKind.QUANTUM_ENQUEUE, {"circuit": BELL, "shots": rng.randint(1, 20), "fee_per_unit": 50_000, "tier": 0}
    body: dict[str, object] = {
        "model": MODELS[variant % 3],
        "prompt": b"prompt-%d" % step.c,
        "max_tokens": rng.randint(16, 512),
        "max_runtime_ms": rng.randint(100, 3000),
        "fee_per_unit": rng.randint(15_000, 20_000),
        "tier": 0,
    }
    if variant in (3, 4):
        body["deadline_blocks"] = rng.randint(7, 20)  # short deadlines: some jobs get cancelled by the chain
    if variant == 12:
        body["model"] = "gpt-unknown"
    elif variant == 13:
        body["max_tokens"] = 1 << 20
    elif variant == 14:
        body["fee_per_unit"] = 1
    return TxKind.AI_ENQUEUE, body


def _recent_task(devnet: Devnet, back: int, params: Params) -> tuple[bytes, bytes] | None:
    """(task_id, caller) of the `back`-th most recent included enqueue whose request map builds."""
    seen = 0
    for height in range(devnet.head_height(), -1, -1):
        block = devnet.block_at(height)
        if block is None:
            continue
        for ctx in reversed(block.txs):
            if ctx.kind not in ENQUEUE_KINDS:
                continue
            try:
                rmap = build_request_map({**ctx.body, "kind": ENQUEUE_KINDS[ctx.kind]}, params)
            except AicfError:
                continue
            if seen == back:
                payload = encode_payload(rmap)
                return task_id(devnet.chain_id, height, ctx.tx_hash, ctx.sender, payload), ctx.sender
            seen += 1
    return None


def apply_step(devnet: Devnet, step: Step, params: Params) -> None:
    seed = devnet.config.seed
    rng = random.Random(f"aicf-scenario/{seed}/{step}")  # noqa: S311
    if step.op == "deposit":
        who = requester(seed, step.a)
        devnet.submit(who, TxKind.DEPOSIT, {"to": who, "amount": step.b})
    elif step.op == "enqueue":
        kind, body = _request(step, rng)
        devnet.submit(requester(seed, step.a), kind, body)
    elif step.op == "cancel":
        found = _recent_task(devnet, step.a, params)
        if found is not None:
            devnet.submit(found[1], TxKind.CANCEL, {"task_id": found[0]})
    elif step.op == "proof":
        found = _recent_task(devnet, step.a, params)
        if found is not None:
            provider = tagged_hash(PROVIDER_TAG, seed, step.b % 5)
            proof = tagged_hash(PROVIDER_TAG, seed, "proof", step.b)
            devnet.submit(
                provider[:20], TxKind.PROOF, {"task_id": found[0], "proof_id": proof, "provider_id": provider}
            )
    elif step.op == "mine":
        devnet.mine(step.a)
    elif step.op == "reorg":
        devnet.reorg(min(step.a, devnet.head_height(), devnet.config.finality_depth))
    else:
        raise ValueError(f"unknown scenario step {step.op!r}")


def build_devnet(seed: int, steps: list[Step], params: Params, config: DevnetConfig | None = None) -> Devnet:
    """The devnet after `steps`, from scratch."""
    devnet = Devnet(config if config is not None else DevnetConfig(seed=seed))
    for step in steps:
        apply_step(devnet, step, params)
    return devnet
