"""`aicf devnet run` and `aicf chain deploy`: a devnet driven through the seeded scenario, ingested step by step."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.chain.scenario import apply_step, plan
from aicf.core.params import Params
from aicf.core.qasm import circuit_depth
from aicf.core.requests import CircuitDepth
from aicf.service.ingest import IngestStep, ingest_available
from aicf.store.interface import Store


def depth_function() -> CircuitDepth:
    return circuit_depth


def open_devnet(seed: int = 0, interval_s: int = 10, miners: int = 3, genesis_time: int = 1_700_000_000) -> Devnet:
    return Devnet(DevnetConfig(seed=seed, interval_s=interval_s, miners=miners, genesis_time=genesis_time))


def _read_progress(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    text = path.read_text(encoding="utf-8").strip()
    return int(text) if text else 0


def _write_progress(path: Path | None, done: int) -> None:
    """Atomically: a killed process leaves either the old count or the new one, never a torn file."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(str(done))
        f.flush()
        os.fsync(f.fileno())
    Path(tmp).replace(path)


def run_scenario(
    store: Store,
    params: Params,
    *,
    seed: int,
    steps: int,
    progress: Path | None = None,
    on_step: Callable[[int, list[IngestStep]], None] | None = None,
) -> Devnet:
    """Drive a devnet through the seeded scenario and ingest after every step.

    With `progress`, the number of steps done is kept in that file: a restarted run rebuilds the devnet to
    that point (it is deterministic) and goes on, while the store resumes from what it committed.
    """
    depth = depth_function()
    script = plan(seed, steps)
    done = _read_progress(progress)
    devnet = open_devnet(seed)
    for step in script[:done]:
        apply_step(devnet, step, params)
    for index in range(done, len(script)):
        apply_step(devnet, script[index], params)
        _write_progress(progress, index + 1)
        ingested = ingest_available(store, devnet, params, depth)
        if on_step is not None:
            on_step(index, ingested)
    ingest_available(store, devnet, params, depth)
    return devnet


def deploy_to_node(**kwargs: object) -> dict[str, object]:
    """web3 is imported only when a deployment runs: importing it raises the interpreter's recursion limit to
    100,000 (eth_account does), which must not happen in a process that parses outside JSON (`aicf up`)."""
    from aicf.chain.deploy import deploy_to_node

    return deploy_to_node(**kwargs)  # type: ignore[arg-type]


def claim_payout(**kwargs: object) -> dict[str, object]:
    """`aicf chain claim`, importing web3 only when it runs (as `deploy_to_node`)."""
    from aicf.bootstrap.evm_cli import claim_payout

    return claim_payout(**kwargs)  # type: ignore[arg-type]


def evm_requester_ops() -> dict[str, Callable[..., dict[str, object]]]:
    """`aicf request` on an EVM chain (aicf/bootstrap/evm_cli.py), each importing web3 only when it runs."""

    def enqueue(**kwargs: object) -> dict[str, object]:
        from aicf.bootstrap.evm_cli import evm_enqueue

        return evm_enqueue(**kwargs)  # type: ignore[arg-type]

    def deposit(**kwargs: object) -> dict[str, object]:
        from aicf.bootstrap.evm_cli import evm_deposit

        return evm_deposit(**kwargs)  # type: ignore[arg-type]

    def balance(**kwargs: object) -> dict[str, object]:
        from aicf.bootstrap.evm_cli import evm_balance

        return evm_balance(**kwargs)  # type: ignore[arg-type]

    return {"enqueue": enqueue, "deposit": deposit, "balance": balance}
