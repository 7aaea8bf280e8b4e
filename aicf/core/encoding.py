"""Canonical CBOR and the tagged hash H of SPEC §1.

The encoder is deterministic CBOR (RFC 8949 §4.2.1) for exactly the value kinds SPEC admits: ints, bytes,
text, bool, lists (tuples too) and text-keyed maps. Anything else (float, None, a non-text key) raises
`EncodingError` instead of being encoded some other way, so two nodes can never disagree on the bytes.
It is written out here rather than borrowed so that its output is pinned by our tests (which check it
byte for byte against `cbor2.dumps(obj, canonical=True)`) and it runs fast on the id hot path.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from aicf.core.errors import DecodingError, EncodingError

_UINT64_LIMIT = 2**64


@dataclass(frozen=True, slots=True)
class Encoded:
    """A value already in canonical CBOR (made by `canonical_cbor`), emitted as it is where it appears inside a
    bigger value, so an immutable part (a proof's body) is encoded once however often its container is."""

    cbor: bytes


def cbor_head(major: int, n: int) -> bytes:
    """The shortest initial byte(s) for major type `major` with argument `n` (RFC 8949 §4.2.1 rule 1)."""
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


_SMALL_UINTS = tuple(cbor_head(0, n) for n in range(256))
_BYTES_HEADS = tuple(cbor_head(2, n) for n in range(256))
_TEXT_HEADS = tuple(cbor_head(3, n) for n in range(256))


def _encode_int(n: int, trail: list[str]) -> bytes:
    if n >= 0:
        if n >= _UINT64_LIMIT:
            raise EncodingError(_where(trail), f"integer {n} does not fit in 64 bits")
        return cbor_head(0, n)
    if -n - 1 >= _UINT64_LIMIT:
        raise EncodingError(_where(trail), f"integer {n} does not fit in 64 bits")
    return cbor_head(1, -n - 1)


def _where(trail: list[str]) -> str:
    return "$" + "".join(trail)


_KEY_CACHE: dict[str, bytes] = {}  # encodings of map keys: a few dozen names recur in every payload
_KEY_CACHE_MAX = 4096
_KEY_CACHE_KEY_BYTES = 64  # only short keys are kept: outside input (a proof body's keys) cannot fill memory


def _encode_key(key: str) -> bytes:
    encoded = _KEY_CACHE.get(key)
    if encoded is None:
        raw = key.encode("utf-8")
        encoded = cbor_head(3, len(raw)) + raw
        if len(_KEY_CACHE) < _KEY_CACHE_MAX and len(raw) <= _KEY_CACHE_KEY_BYTES:
            _KEY_CACHE[key] = encoded
    return encoded


def _encode(value: object, trail: list[str], out: list[bytes]) -> None:
    # `trail` names where we are (only joined into a path when something fails: building it eagerly costs
    # as much as the encoding). The exact built-in types go first, dispatched on `type` (the hot path: one
    # comparison each instead of a chain of isinstance); subclasses and everything else take `_encode_other`.
    kind = type(value)
    if kind is int:
        n = cast(int, value)
        out.append(_SMALL_UINTS[n] if 0 <= n < 256 else _encode_int(n, trail))
    elif kind is bytes:
        raw = cast(bytes, value)
        size = len(raw)
        out.append(_BYTES_HEADS[size] if size < 256 else cbor_head(2, size))
        out.append(raw)
    elif kind is str:
        raw = cast(str, value).encode("utf-8")
        size = len(raw)
        out.append(_TEXT_HEADS[size] if size < 256 else cbor_head(3, size))
        out.append(raw)
    elif kind is dict:
        _encode_map(cast(dict[object, object], value), trail, out)
    elif kind is list or kind is tuple:
        items = cast(list[object], value)
        out.append(cbor_head(4, len(items)))
        for i, item in enumerate(items):
            trail.append(f"[{i}]")
            _encode(item, trail, out)
            trail.pop()
    elif kind is Encoded:
        out.append(cast(Encoded, value).cbor)
    else:
        _encode_other(value, trail, out)


_MAP_ORDERS: dict[tuple[object, ...], tuple[tuple[bytes, str], ...]] = {}  # map shapes seen: keys in canonical order
_MAP_ORDERS_MAX = 4096
_MAP_ORDER_KEY_BYTES = 512  # a shape is kept only if its encoded keys fit: outside input cannot fill memory


def _map_order(keys: tuple[object, ...], trail: list[str]) -> tuple[tuple[bytes, str], ...]:
    """The encoded keys of a map with these keys, in the bytewise order of their encodings (RFC 8949 §4.2.1
    rule 2). Maps of one shape (a proof body, a decision) recur, so each shape is ordered once; at most
    _MAP_ORDERS_MAX shapes of at most _MAP_ORDER_KEY_BYTES of keys are kept (the rest are sorted every time)."""
    order = _MAP_ORDERS.get(keys)
    if order is None:
        for key in keys:
            if not isinstance(key, str):
                raise EncodingError(_where(trail), f"map key {key!r} is not a text string")
        order = tuple(sorted((_encode_key(cast(str, key)), cast(str, key)) for key in keys))
        if len(_MAP_ORDERS) < _MAP_ORDERS_MAX and sum(len(k) for k, _ in order) <= _MAP_ORDER_KEY_BYTES:
            _MAP_ORDERS[keys] = order
    return order


def _encode_map(value: dict[object, object], trail: list[str], out: list[bytes]) -> None:
    order = _map_order(tuple(value), trail)
    out.append(cbor_head(5, len(order)))
    for encoded_key, key in order:
        out.append(encoded_key)
        item = value[key]
        kind = type(item)
        # Scalars inline (the common case); bool is not `int` by type, so it takes the generic path.
        if kind is int:
            n = cast(int, item)
            if 0 <= n < 256:
                out.append(_SMALL_UINTS[n])
                continue
        elif kind is bytes:
            raw = cast(bytes, item)
            if len(raw) < 256:
                out.append(_BYTES_HEADS[len(raw)])
                out.append(raw)
                continue
        trail.append("." + key)
        _encode(item, trail, out)
        trail.pop()


def _encode_other(value: object, trail: list[str], out: list[bytes]) -> None:
    """Values whose type is not exactly a built-in one: bool, subclasses of int/str/bytes (enums), other
    sequences and mappings, and the kinds SPEC §1 refuses. bool before int: bool is an int subclass in Python
    but a simple value in CBOR."""
    if value is True:
        out.append(b"\xf5")
    elif value is False:
        out.append(b"\xf4")
    elif isinstance(value, int):
        out.append(_encode_int(value, trail))
    elif isinstance(value, bytes):
        out.append(cbor_head(2, len(value)))
        out.append(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out.append(cbor_head(3, len(raw)))
        out.append(raw)
    elif isinstance(value, bytearray | memoryview):
        raw = bytes(value)
        out.append(cbor_head(2, len(raw)))
        out.append(raw)
    elif isinstance(value, list | tuple):
        out.append(cbor_head(4, len(value)))
        for i, item in enumerate(value):
            trail.append(f"[{i}]")
            _encode(item, trail, out)
            trail.pop()
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise EncodingError(_where(trail), f"map key {key!r} is not a text string")
        entries = sorted((_encode_key(key), key) for key in value)
        out.append(cbor_head(5, len(entries)))
        for encoded_key, key in entries:
            out.append(encoded_key)
            trail.append("." + key)
            _encode(value[key], trail, out)
            trail.pop()
    elif isinstance(value, Encoded):
        out.append(value.cbor)
    elif value is None:
        raise EncodingError(_where(trail), "null is not allowed: omit an optional key instead")
    elif isinstance(value, float):
        raise EncodingError(_where(trail), f"floats are not allowed (got {value!r}): use integer units")
    else:
        raise EncodingError(_where(trail), f"unsupported type {type(value).__name__}")


def canonical_cbor(value: object) -> bytes:
    """Deterministic CBOR of `value`; raises EncodingError for a value SPEC §1 does not admit."""
    out: list[bytes] = []
    _encode(value, [], out)
    return b"".join(out)


def tagged_hash(tag: str, *fields: object) -> bytes:
    """H(tag, *fields) = SHA3-256(canonical_cbor([tag, *fields])) (SPEC §1)."""
    return hashlib.sha3_256(canonical_cbor([tag, *fields])).digest()


def hash_int(h: bytes) -> int:
    """A hash read as an unsigned big-endian integer."""
    return int.from_bytes(h, "big")


def to_hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def from_hex(text: str, field: str = "value") -> bytes:
    """Parse a `0x`-prefixed hex string; raises EncodingError naming `field` when it is not one."""
    if not isinstance(text, str):
        raise EncodingError(field, f"expected a 0x-prefixed hex string, got {type(text).__name__}")
    if not text.startswith("0x"):
        raise EncodingError(field, f"expected a 0x-prefixed hex string, got {text[:20]!r}")
    digits = text[2:]
    if len(digits) % 2:
        raise EncodingError(field, f"hex string has an odd number of digits ({len(digits)})")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise EncodingError(field, f"not valid hex: {text[:40]!r}") from None


def encode_fast_int(n: int) -> bytes:
    """canonical_cbor(n) for a non-negative int below 2^64, without the generic walk (hot paths)."""
    if n < 256:
        return _SMALL_UINTS[n]
    if n < 0x10000:
        return b"\x19" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x1a" + n.to_bytes(4, "big")
    return b"\x1b" + n.to_bytes(8, "big")


def encode_fast_bytes(raw: bytes) -> bytes:
    """canonical_cbor(raw) for bytes, without the generic walk (hot paths)."""
    return cbor_head(2, len(raw)) + raw


def decode_canonical(raw: bytes, *, max_items: int = 100_000, max_depth: int = 16) -> object:
    """Decode outside input that must be canonical CBOR of the kinds SPEC §1 admits, and nothing else.

    Only unsigned and negative ints, byte and text strings, arrays, text-keyed maps, true and false, all with
    definite lengths; no tags (so no shared references, tags 28/29), no floats, no null. Work is bounded before
    it is done: a length is checked against the bytes left before anything is allocated, at most `max_items`
    items and `max_depth` levels are read, and the bytes must be exactly one item in canonical form (its
    re-encoding is equal). Raises DecodingError naming the offset and the reason."""
    budget = [max_items]

    def fail(pos: int, reason: str) -> DecodingError:
        return DecodingError(f"cbor@{pos}", reason)

    def head(pos: int) -> tuple[int, int, int]:
        if pos >= len(raw):
            raise fail(pos, "truncated")
        first = raw[pos]
        major, info = first >> 5, first & 0x1F
        if info < 24:
            return major, info, pos + 1
        if info > 27:
            raise fail(pos, "indefinite lengths and reserved values are not allowed")
        size = 1 << (info - 24)
        if pos + 1 + size > len(raw):
            raise fail(pos, "truncated")
        return major, int.from_bytes(raw[pos + 1 : pos + 1 + size], "big"), pos + 1 + size

    def item(pos: int, depth: int) -> tuple[object, int]:
        budget[0] -= 1
        if budget[0] < 0:
            raise fail(pos, f"more than {max_items} items")
        if depth > max_depth:
            raise fail(pos, f"nested deeper than {max_depth} levels")
        major, n, pos2 = head(pos)
        if major == 0:
            return n, pos2
        if major == 1:
            return -1 - n, pos2
        if major in (2, 3):
            if n > len(raw) - pos2:
                raise fail(pos, f"a string of {n} bytes runs past the end")
            chunk = raw[pos2 : pos2 + n]
            if major == 2:
                return chunk, pos2 + n
            try:
                return chunk.decode("utf-8"), pos2 + n
            except UnicodeDecodeError:
                raise fail(pos, "text is not valid UTF-8") from None
        if major == 4:
            if n > len(raw) - pos2:
                raise fail(pos, f"an array of {n} items cannot fit in the bytes left")
            out: list[object] = []
            for _ in range(n):
                value, pos2 = item(pos2, depth + 1)
                out.append(value)
            return out, pos2
        if major == 5:
            if 2 * n > len(raw) - pos2:
                raise fail(pos, f"a map of {n} entries cannot fit in the bytes left")
            mapping: dict[str, object] = {}
            for _ in range(n):
                key, pos2 = item(pos2, depth + 1)
                if not isinstance(key, str):
                    raise fail(pos2, "map keys must be text")
                if key in mapping:
                    raise fail(pos2, f"duplicate map key {key!r}")
                mapping[key], pos2 = item(pos2, depth + 1)
            return mapping, pos2
        if major == 6:
            raise fail(pos, f"tags are not allowed (tag {n})")
        if pos2 == pos + 1 and n in (20, 21):
            return n == 21, pos2
        raise fail(pos, "floats, null and other simple values are not allowed")

    value, end = item(0, 0)
    if end != len(raw):
        raise DecodingError(f"cbor@{end}", f"{len(raw) - end} bytes after the item")
    if canonical_cbor(value) != raw:
        raise DecodingError("cbor", "not in canonical form (RFC 8949 §4.2.1: shortest heads, sorted map keys)")
    return value
