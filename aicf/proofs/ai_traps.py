"""The AI trap checks of SPEC §8: compare a provider's answer with the coordinator's own re-execution.

The coordinator re-executes a trap itself with the same model (`aicf.provider.models.reexecute_trap`); this
module only compares, so it does no I/O, reads no clock and loads no model. Each check returns a `TrapResult`
that says expected and actual; none raises on bad provider input.

- Embeddings pass when cosine(expected, got) ≥ min_cosine_bps / 10000, the cosine computed in float64 over the
  little-endian float32 vectors, each sum taken in index order (so every implementation gets the same bits).
  A vector of the wrong length or holding NaN or infinity is MALFORMED; a low cosine or a zero vector is a
  TRAP_FAILURE.
- Generation passes when the token ids are exactly the expected ones (greedy decoding is deterministic).
  The generation output is the canonical CBOR map {"text": bytes, "token_ids": [uint, ...]}; anything else is
  MALFORMED.
- The output digest is H("aicf/output/v1", output) of the output carried (DIGEST_MISMATCH otherwise).
"""

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from aicf.core.encoding import canonical_cbor
from aicf.core.ids import output_digest
from aicf.proofs.verdict import Reject, RejectCode

BPS = 10_000
EMBEDDING_DIMS = 384  # minilm-l6-v2, the only embedding model served so far
FLOAT32_BYTES = 4
MAX_TOKEN_ID = 2**32 - 1
GENERATION_KEYS = ("text", "token_ids")


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapResult:
    """The outcome of one trap comparison. `code` is None exactly when the trap passed.

    `cosine_bps` is floor(cosine × 10000) for an embedding comparison that got as far as a cosine, else None.
    """

    passed: bool
    code: RejectCode | None
    message: str
    cosine_bps: int | None = None

    def as_reject(self) -> Reject | None:
        """The verdict this result earns: None for a pass, Reject(code, message) otherwise."""
        return None if self.code is None else Reject(code=self.code, message=self.message)


def _passed(message: str, cosine_bps: int | None = None) -> TrapResult:
    return TrapResult(passed=True, code=None, message=message, cosine_bps=cosine_bps)


def _failed(code: RejectCode, message: str, cosine_bps: int | None = None) -> TrapResult:
    return TrapResult(passed=False, code=code, message=message, cosine_bps=cosine_bps)


def decode_vector(raw: bytes, dims: int = EMBEDDING_DIMS) -> tuple[float, ...] | str:
    """The float32 LE vector as Python floats (float64), or the reason it is not a finite `dims`-vector."""
    if len(raw) != dims * FLOAT32_BYTES:
        return f"expected {dims} float32 values ({dims * FLOAT32_BYTES} bytes), got {len(raw)} bytes"
    values = struct.unpack(f"<{dims}f", raw)
    for index, value in enumerate(values):
        if not math.isfinite(value):
            return f"value {index} is {value!r}: NaN and infinity are not allowed"
    return values


def cosine_f64(a: Sequence[float], b: Sequence[float]) -> float:
    """dot / sqrt(|a|² × |b|²), every product and sum in float64, summed in index order.

    Plain left-to-right loops on purpose: numpy's dot and sum reorder additions (pairwise, SIMD lanes), which
    changes the last bits, and a threshold decision must come out the same in every implementation. Squares of
    float32 values neither overflow nor underflow to zero in float64, so the denominator is zero only for an
    all-zero vector; the caller rejects that first.
    """
    dot = 0.0
    norm_a = 0.0
    norm_b = 0.0
    for x, y in zip(a, b, strict=True):
        dot += x * y
        norm_a += x * x
        norm_b += y * y
    return dot / math.sqrt(norm_a * norm_b)


def check_embedding_trap(expected: bytes, got: bytes, min_cosine_bps: int, dims: int = EMBEDDING_DIMS) -> TrapResult:
    """Pass when cosine(expected, got) ≥ min_cosine_bps / 10000 (SPEC §8: 9900 bps = 0.99).

    1. both vectors are `dims` finite float32 values (the expected one is ours: a bad one is a bug, reported
       as MALFORMED all the same so nothing unchecked passes);
    2. neither is the zero vector (no direction, so no cosine);
    3. the cosine against the threshold.
    """
    want = decode_vector(expected, dims)  # (1)
    if isinstance(want, str):
        return _failed(RejectCode.MALFORMED, f"expected embedding: {want}")
    have = decode_vector(got, dims)
    if isinstance(have, str):
        return _failed(RejectCode.MALFORMED, f"embedding: {have}")
    if not any(want) or not any(have):  # (2)
        which = "expected" if not any(want) else "returned"
        return _failed(RejectCode.TRAP_FAILURE, f"embedding trap: the {which} vector is all zeros")
    cosine = cosine_f64(want, have)  # (3)
    cosine_bps = math.floor(cosine * BPS)
    if cosine >= min_cosine_bps / BPS:
        return _passed(f"embedding trap: cosine {cosine:.6f} >= {min_cosine_bps} bps", cosine_bps)
    return _failed(
        RejectCode.TRAP_FAILURE,
        f"embedding trap: cosine expected >= {min_cosine_bps} bps, got {cosine:.6f} ({cosine_bps} bps)",
        cosine_bps,
    )


def _bad_token(token: object) -> bool:
    return isinstance(token, bool) or not isinstance(token, int) or not 0 <= token <= MAX_TOKEN_ID


def check_generation_trap(expected_token_ids: Sequence[int], got_token_ids: Sequence[object]) -> TrapResult:
    """Pass when the generated token ids equal the expected ones exactly (greedy decoding, SPEC §8).

    A token id that is not an integer in [0, 2^32) is MALFORMED; the first differing position is reported.
    """
    for index, token in enumerate(got_token_ids):
        if _bad_token(token):
            return _failed(RejectCode.MALFORMED, f"generation: token {index} is {token!r}, not a uint32 token id")
    got = tuple(got_token_ids)
    want = tuple(expected_token_ids)
    if got == want:
        return _passed(f"generation trap: {len(want)} token ids equal")
    for index, (x, y) in enumerate(zip(want, got, strict=False)):
        if x != y:
            return _failed(
                RejectCode.TRAP_FAILURE,
                f"generation trap: token {index} expected {x}, got {y} ({len(want)} expected, {len(got)} returned)",
            )
    return _failed(
        RejectCode.TRAP_FAILURE,
        f"generation trap: expected {len(want)} token ids, got {len(got)} (equal up to the shorter)",
    )


def encode_generation_output(token_ids: Sequence[int], text: bytes) -> bytes:
    """The output bytes of a generation job: canonical CBOR {"text": text, "token_ids": [ids]}."""
    return canonical_cbor({"text": text, "token_ids": list(token_ids)})


def decode_generation_output(output: bytes) -> tuple[tuple[int, ...], bytes] | str:
    """(token_ids, text) of a generation output, or the reason it is not one.

    Only the canonical encoding is accepted: the output digest commits to these exact bytes, so two encodings of
    one answer must not both pass. The decoder reads just this one shape and nothing else, so no input can make
    it raise.
    """
    reader = _Reader(output)
    if reader.head(5) != len(GENERATION_KEYS):
        return 'expected a CBOR map of two keys {"text", "token_ids"}'
    if reader.text() != "text":
        return 'expected the key "text" first (canonical order)'
    text = reader.byte_string()
    if reader.text() != "token_ids":
        return 'expected the key "token_ids" second'
    count = reader.head(4)
    tokens: list[int] = []
    if count is not None and count <= len(output):  # each id takes at least one byte
        for _ in range(count):
            token = reader.head(0)
            if token is None or token > MAX_TOKEN_ID:
                break
            tokens.append(token)
    if reader.failed or text is None or count is None or len(tokens) != count:
        return "not the canonical CBOR of {text: bytes, token_ids: [uint32, ...]}"
    if reader.position != len(output):
        return f"{len(output) - reader.position} trailing bytes after the output map"
    decoded = (tuple(tokens), text)
    if encode_generation_output(*decoded) != output:
        return "not the canonical (shortest-form) CBOR encoding"
    return decoded


class _Reader:
    """A cursor over CBOR heads of definite length; any surprise sets `failed` and yields None."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.position = 0
        self.failed = False

    def head(self, major: int) -> int | None:
        if self.failed or self.position >= len(self.raw):
            self.failed = True
            return None
        first = self.raw[self.position]
        info = first & 0x1F
        if first >> 5 != major or info > 27:  # 28-31: reserved or indefinite length
            self.failed = True
            return None
        self.position += 1
        if info < 24:
            return info
        size = 1 << (info - 24)
        if self.position + size > len(self.raw):
            self.failed = True
            return None
        value = int.from_bytes(self.raw[self.position : self.position + size], "big")
        self.position += size
        return value

    def byte_string(self, major: int = 2) -> bytes | None:
        length = self.head(major)
        if length is None or self.position + length > len(self.raw):
            self.failed = True
            return None
        value = self.raw[self.position : self.position + length]
        self.position += length
        return value

    def text(self) -> str | None:
        raw = self.byte_string(major=3)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.failed = True
            return None


def check_generation_output(expected_token_ids: Sequence[int], expected_text: bytes, output: bytes) -> TrapResult:
    """Decode a generation output and compare it with the re-execution: token ids first, then the text.

    The text is the tokenizer's decoding of the ids, so with equal ids a different text is a provider that
    answered the requester something other than what it generated: a TRAP_FAILURE too.
    """
    decoded = decode_generation_output(output)
    if isinstance(decoded, str):
        return _failed(RejectCode.MALFORMED, f"generation output: {decoded}")
    token_ids, text = decoded
    result = check_generation_trap(expected_token_ids, token_ids)
    if not result.passed:
        return result
    if text != expected_text:
        return _failed(
            RejectCode.TRAP_FAILURE,
            f"generation trap: token ids equal but text expected {expected_text[:64]!r}, got {text[:64]!r}",
        )
    return result


def check_output_digest(output: bytes, claimed_digest: bytes) -> TrapResult:
    """The body's output_digest must be H("aicf/output/v1", output) of the output it carries."""
    want = output_digest(output)
    if claimed_digest == want:
        return _passed("output digest matches")
    return _failed(
        RejectCode.DIGEST_MISMATCH, f"output digest mismatch: expected 0x{want.hex()}, got 0x{claimed_digest.hex()}"
    )
