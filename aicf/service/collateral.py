"""The TEE collateral alarm (SPEC §13 "collateral near expiry"): what accepted evidence relied on, and until when.

The verifier records, per evidence kind, the expiry items of the latest accepted evidence (`AttestationResult.
expiries`: DCAP TCB info, QE identity and CRL next updates, PCK and TCB signing certificates; SEV-SNP VCEK/VLEK
and ASK/ASVK; the GPU device chain). `/metrics` and `aicf.getStatus` turn them into seconds left at their own
`now`. In memory, per process: after a restart the alarm starts again with the first accepted evidence of a kind.
"""

import threading

from aicf.proofs.attestation.result import Expiry

MAX_KINDS = 16  # evidence kinds are the SPEC §8 types (six today); anything beyond is dropped
MAX_ITEMS_PER_KIND = 32  # a DCAP quote names seven, an SNP report two; a longer list is cut


class CollateralWatch:
    """The expiry items of the most recent accepted evidence of each kind. Thread-safe, bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_kind: dict[str, tuple[Expiry, ...]] = {}

    def record(self, kind: str, items: tuple[Expiry, ...]) -> None:
        """Replace `kind`'s items with those of evidence just accepted (an empty tuple clears them)."""
        with self._lock:
            if kind not in self._by_kind and len(self._by_kind) >= MAX_KINDS:
                return
            self._by_kind[kind] = tuple(items[:MAX_ITEMS_PER_KIND])

    def items(self) -> tuple[tuple[str, Expiry], ...]:
        """(kind, item) pairs, by kind then the item's name."""
        with self._lock:
            snapshot = dict(self._by_kind)
        return tuple((kind, e) for kind in sorted(snapshot) for e in sorted(snapshot[kind], key=lambda e: e.what))

    def expiries(self) -> tuple[Expiry, ...]:
        """Every item; each `what` already names its evidence kind."""
        return tuple(e for _, e in self.items())
