"""Operator methods for the embedded devnet: `aicf.devnetReorg {depth}` (the `aicf devnet reorg` command).

The method replaces the devnet's last `depth` blocks with a new branch of the same length, as a real chain's
reorg would. It changes only the chain: the coordinator's next pass sees the new canonical blocks, restores
its state at the fork point and replays them (SPEC §4, §10), exactly as it does for a reorg it did not ask
for. Depth is 1..6 (the finality depth: a final block is never replaced) and at most the blocks above genesis.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Protocol

from pydantic import Field

from aicf.core.encoding import to_hex
from aicf.transports.errors import InvalidParamsError
from aicf.transports.results import ReorgOut
from aicf.transports.rpc import CallContext, RpcMethod
from aicf.transports.schemas import WireModel

MAX_REORG_DEPTH: Final = 6  # SPEC §15 finality depth: a deeper reorg would replace a final block


class BlockLike(Protocol):
    @property
    def height(self) -> int: ...

    @property
    def hash(self) -> bytes: ...


class ReorgableChain(Protocol):
    """What the method needs of the devnet (aicf.chain.devnet.Devnet has it)."""

    def head_height(self) -> int: ...

    def block_at(self, height: int) -> BlockLike | None: ...

    def reorg(self, depth: int) -> Sequence[BlockLike]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ReorgOutcome:
    depth: int
    head_height: int
    head_hash: bytes
    orphaned: tuple[bytes, ...]  # the replaced blocks' hashes, lowest first
    branch: tuple[bytes, ...]  # the new blocks' hashes, lowest first


class ReorgParams(WireModel):
    depth: Annotated[int, Field(ge=1, le=MAX_REORG_DEPTH, description="blocks to replace, 1..6")]


def reorg_chain(chain: ReorgableChain, depth: int, max_depth: int = MAX_REORG_DEPTH) -> ReorgOutcome:
    """Replace the chain's last `depth` blocks. The caller holds the chain's lock."""
    head = chain.head_height()
    limit = min(max_depth, head)
    if not 1 <= depth <= limit:
        raise InvalidParamsError(
            [("depth", f"must be in 1..{limit}: the finality depth is {max_depth} and the head is at {head}")]
        )
    orphaned = tuple(b.hash for h in range(head - depth + 1, head + 1) if (b := chain.block_at(h)) is not None)
    branch = chain.reorg(depth)
    return ReorgOutcome(
        depth=depth,
        head_height=branch[-1].height,
        head_hash=branch[-1].hash,
        orphaned=orphaned,
        branch=tuple(b.hash for b in branch),
    )


def render_reorg(o: ReorgOutcome) -> dict[str, Any]:
    return {
        "depth": o.depth,
        "head_height": o.head_height,
        "head_hash": to_hex(o.head_hash),
        "orphaned": [to_hex(h) for h in o.orphaned],
        "branch": [to_hex(h) for h in o.branch],
    }


def devnet_reorg_method(reorg: Callable[[int], ReorgOutcome]) -> RpcMethod[ReorgParams]:
    """`aicf.devnetReorg` over a callback that runs `reorg_chain` on the devnet under the chain lock."""

    def handler(p: ReorgParams, _: CallContext) -> dict[str, Any]:
        return render_reorg(reorg(p.depth))

    return RpcMethod(
        name="aicf.devnetReorg",
        params_model=ReorgParams,
        handler=handler,
        access="operator",
        summary="Devnet: replace the last `depth` (1..6) blocks with a new branch",
        result_type=ReorgOut,
        description="The coordinator's next pass restores its state at the fork point and replays the branch.",
    )
