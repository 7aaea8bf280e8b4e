"""What a provider agent and its work runners share: the lease offer as it comes off the wire, the modes, the
Work protocol.

A lease offer is one item of `aicf.nextLease` (docs/PROVIDERS.md): ids and bytes as 0x hex, integers as JSON
integers. `parse_offer` turns it into a `LeaseOffer` or raises `OfferError` naming the field, so a coordinator
that sends something unexpected gets the lease released rather than a crashed agent.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from aicf.core.clock import Clock
from aicf.core.encoding import from_hex
from aicf.core.errors import AicfError

KINDS: Final = ("ai", "quantum")
ENVELOPE_KINDS: Final = {"ai": "AI_V1", "quantum": "QUANTUM_V1"}


class Mode(StrEnum):
    """How the agent behaves. Everything but HONEST is a cheat, for tests and demos of the verifier."""

    HONEST = "honest"
    RANDOM_OUTPUT = "random_output"  # AI: random bytes with their true digest; quantum: random bitstrings
    REPLAY = "replay"  # answer a new lease with an envelope already accepted for another one, unchanged
    WRONG_BINDING = "wrong_binding"  # honest work, but the body commits to another input (or circuit)
    SKIP_TRAPS = "skip_traps"  # quantum: simulate the job circuit only, answer the traps at random
    SILENT_DROP = "silent_drop"  # take leases, never answer, stop heartbeating until they have expired
    FAKE_JOB = "fake_job"  # quantum: simulate the (Clifford) traps, make up the job's counts (issue 14)
    INFLATE_RUNTIME = "inflate_runtime"  # AI: honest output, but qos.runtime_ms claims the job's max_runtime_ms
    # AI: tells traps by their old shape (a public-corpus prompt, or max_tokens 16 on a generation model), answers
    # those honestly and every other job with random bytes (issue 14: traps drawn like real jobs catch it)
    SPARE_TRAP_SHAPES = "spare_trap_shapes"


class OfferError(AicfError):
    """A nextLease item the agent cannot read."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"lease offer: {field}: {reason}")
        self.field, self.reason = field, reason


class WorkError(AicfError):
    """A lease this agent cannot run (unknown model, no job circuit in the batch, wrong kind)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseOffer:
    """One live lease and what its holder needs to run it. AI fields are empty for quantum and vice versa."""

    lease_id: bytes
    task_id: bytes
    attempt: int
    expires_at: int
    kind: str
    model: str = ""
    prompt: bytes = b""
    max_tokens: int = 0
    max_runtime_ms: int = 0
    shots: int = 0
    batch: tuple[bytes, ...] = ()
    batch_shots: tuple[int, ...] = ()


def _int(item: Mapping[str, object], key: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OfferError(key, f"expected a non-negative JSON integer, got {value!r}")
    return value


def _hex(item: Mapping[str, object], key: str, size: int | None = None) -> bytes:
    value = item.get(key)
    if not isinstance(value, str):
        raise OfferError(key, f"expected 0x hex, got {type(value).__name__}")
    try:
        raw = from_hex(value, key)
    except AicfError as exc:
        raise OfferError(key, str(exc)) from None
    if size is not None and len(raw) != size:
        raise OfferError(key, f"expected {size} bytes, got {len(raw)}")
    return raw


def _list(item: Mapping[str, object], key: str) -> Sequence[object]:
    value = item.get(key)
    if not isinstance(value, list):
        raise OfferError(key, f"expected a list, got {type(value).__name__}")
    return value


def parse_offer(item: object) -> LeaseOffer:
    """A LeaseOffer from one nextLease item; raises OfferError naming the first bad field."""
    if not isinstance(item, Mapping):
        raise OfferError("item", f"expected an object, got {type(item).__name__}")
    kind = item.get("kind")
    if kind not in KINDS:
        raise OfferError("kind", f"expected one of {KINDS}, got {kind!r}")
    lease_id, task_id = _hex(item, "lease_id", 32), _hex(item, "task_id", 32)
    attempt, expires_at = _int(item, "attempt"), _int(item, "expires_at")
    if kind == "ai":
        model = item.get("model")
        if not isinstance(model, str) or not model:
            raise OfferError("model", f"expected a model name, got {model!r}")
        return LeaseOffer(
            lease_id=lease_id,
            task_id=task_id,
            attempt=attempt,
            expires_at=expires_at,
            kind="ai",
            model=model,
            prompt=_hex(item, "prompt"),
            max_tokens=_int(item, "max_tokens"),
            max_runtime_ms=_int(item, "max_runtime_ms"),
        )
    circuits = _list(item, "batch")
    batch = tuple(_hex({f"batch[{i}]": c}, f"batch[{i}]") for i, c in enumerate(circuits))
    counts = _list(item, "batch_shots")
    batch_shots = tuple(_int({f"batch_shots[{i}]": n}, f"batch_shots[{i}]") for i, n in enumerate(counts))
    if not batch or len(batch) != len(batch_shots):
        raise OfferError("batch", f"{len(batch)} circuits and {len(batch_shots)} shot counts")
    return LeaseOffer(
        lease_id=lease_id,
        task_id=task_id,
        attempt=attempt,
        expires_at=expires_at,
        kind="quantum",
        shots=_int(item, "shots"),
        batch=batch,
        batch_shots=batch_shots,
    )


class Work(Protocol):
    """Runs one kind of lease and returns the proof body of SPEC §8 (the agent signs and submits it)."""

    @property
    def kind(self) -> str:
        """ "ai" or "quantum"."""
        ...

    def body(self, offer: LeaseOffer, clock: Clock, mode: Mode) -> dict[str, object]:
        """The body for `offer`, honest or cheating as `mode` says (modes the work does not act on are honest).

        Raises WorkError (or another AicfError of the runtime) when the lease cannot be run.
        """
        ...
