"""What the coordinator reads of a chain (SPEC §10). The service sees only this Protocol."""

from typing import Protocol

from aicf.core.chain import Block


class ChainView(Protocol):
    @property
    def chain_id(self) -> int: ...

    def head_height(self) -> int:
        """The height of the canonical head; -1 for a chain without blocks."""

    def block_at(self, height: int) -> Block | None:
        """The canonical block at `height`, or None above the head."""

    def finalized_height(self) -> int:
        """The highest final height (head − finality depth), -1 while none is final."""
