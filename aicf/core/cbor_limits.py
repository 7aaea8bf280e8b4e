"""Decoding CBOR that came from outside (issue 15, the shared-reference bomb).

`cbor2.loads` resolves the shared-reference tags 28/29 (RFC 8949 §3.4, the "stringref"/"shareable" extension),
so a few hundred bytes can stand for an object graph that doubles with every level; re-encoding it then costs
seconds and gigabytes. `decode_untrusted` first walks the item's structure in one bounded pass over the bytes,
without building anything: it refuses any tag that is not allowed (28 and 29 never are), counts the data items
against a budget, bounds the nesting depth, checks that every declared length fits in the bytes that remain,
and refuses trailing bytes. Only an item that passes `scan_cbor` is handed to cbor2 (aicf.proofs.untrusted
does both; the core stays free of cbor2).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from aicf.core.errors import AicfError

SHARED_REFERENCE_TAGS: Final = frozenset({28, 29})  # shareable, sharedref: what makes the bomb
_INDEFINITE_CONTAINER: Final = -1
_INDEFINITE_BYTES: Final = -2
_INDEFINITE_TEXT: Final = -3
_BREAK: Final = 0xFF


class UntrustedCborError(AicfError):
    """Bytes from outside that are not one CBOR item within the limits; `reason` says which rule failed."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what, self.reason = what, reason


@dataclass(frozen=True, slots=True, kw_only=True)
class CborLimits:
    max_bytes: int = 1 << 20
    max_items: int = 100_000  # every data item counts: an int, a string, an array, a map key, a tag
    max_depth: int = 32
    allowed_tags: frozenset[int] = field(default_factory=frozenset)

    def allowing(self, tags: Iterable[int]) -> "CborLimits":
        return CborLimits(
            max_bytes=self.max_bytes,
            max_items=self.max_items,
            max_depth=self.max_depth,
            allowed_tags=self.allowed_tags | frozenset(tags),
        )


def _argument(data: bytes, pos: int, info: int, what: str) -> tuple[int, int]:
    """The head's argument and the position after the head (`info` is 0..27)."""
    if info < 24:
        return info, pos
    size = 1 << (info - 24)  # 24..27 -> 1, 2, 4, 8 bytes
    if pos + size > len(data):
        raise UntrustedCborError(what, f"truncated: a head at byte {pos - 1} needs {size} more bytes")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def scan_cbor(data: bytes, limits: CborLimits, what: str) -> None:
    """Raises UntrustedCborError unless `data` is exactly one well-formed CBOR item within `limits`.

    Work is linear in len(data) and stops at the first item over the budget, before anything is built."""
    if len(data) > limits.max_bytes:
        raise UntrustedCborError(what, f"{len(data)} bytes, at most {limits.max_bytes}")
    if not data:
        raise UntrustedCborError(what, "empty: expected one CBOR item")
    pos, items, end = 0, 0, len(data)
    open_items: list[int] = [1]  # per open container: items still expected, or an _INDEFINITE_* marker
    while open_items:
        if open_items[-1] == 0:
            open_items.pop()
            continue
        if pos >= end:
            raise UntrustedCborError(what, "truncated: the bytes end inside an item")
        initial = data[pos]
        pos += 1
        top = open_items[-1]
        if initial == _BREAK:
            if top >= 0:
                raise UntrustedCborError(what, f"a break (0xff) at byte {pos - 1} outside an indefinite-length item")
            open_items.pop()
            continue
        major, info = initial >> 5, initial & 0x1F
        if top in (_INDEFINITE_BYTES, _INDEFINITE_TEXT) and (
            major != (2 if top == _INDEFINITE_BYTES else 3) or info == 31
        ):
            raise UntrustedCborError(what, f"byte {pos - 1}: an indefinite-length string holds only definite chunks")
        if top > 0:
            open_items[-1] = top - 1
        items += 1
        if items > limits.max_items:
            raise UntrustedCborError(what, f"more than {limits.max_items} data items")
        if info in (28, 29, 30) or (info == 31 and major in (0, 1, 6)):
            raise UntrustedCborError(what, f"byte {pos - 1}: reserved or invalid additional information {info}")
        if major == 7:
            pos += {24: 1, 25: 2, 26: 4, 27: 8}.get(info, 0)
            if pos > end:
                raise UntrustedCborError(what, "truncated: the bytes end inside a simple value or float")
            continue
        if info == 31:  # indefinite length: a string (2, 3), an array (4) or a map (5)
            open_items.append({2: _INDEFINITE_BYTES, 3: _INDEFINITE_TEXT}.get(major, _INDEFINITE_CONTAINER))
        else:
            n, pos = _argument(data, pos, info, what)
            if major in (2, 3):
                if n > end - pos:
                    raise UntrustedCborError(what, f"a string of {n} bytes at byte {pos} runs past the end")
                pos += n
            elif major in (4, 5):
                count = n if major == 4 else 2 * n
                if count > end - pos:  # every item takes at least one byte
                    raise UntrustedCborError(what, f"a container of {count} items at byte {pos} runs past the end")
                open_items.append(count)
            elif major == 6:
                if n not in limits.allowed_tags or n in SHARED_REFERENCE_TAGS:
                    raise UntrustedCborError(what, f"CBOR tag {n} is not allowed here")
                open_items.append(1)
        if len(open_items) > limits.max_depth + 1:
            raise UntrustedCborError(what, f"nested deeper than {limits.max_depth} levels")
    if pos != end:
        raise UntrustedCborError(what, f"{end - pos} bytes after the CBOR item")


# A proof envelope: a map of a few byte strings and ints around a body of at most MAX_BODY_BYTES (AI outputs and
# evidence are byte strings, one item each; a quantum body maps bitstrings to counts, two items per outcome).
# No tag is needed. Without shared references the decoded value grows linearly with the bytes.
ENVELOPE_CBOR_LIMITS: Final = CborLimits(max_bytes=(1 << 20) + 4096, max_items=262_144, max_depth=16)
# Attestation evidence: COSE_Sign1 (tag 18) and the Arm CCA token collection (tag 399) are the tags it uses.
EVIDENCE_CBOR_LIMITS: Final = CborLimits(
    max_bytes=1 << 20, max_items=65_536, max_depth=16, allowed_tags=frozenset({18, 399})
)
