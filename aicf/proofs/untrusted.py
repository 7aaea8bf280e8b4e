"""Decode CBOR from outside: the bounded scan of aicf.core.cbor_limits first, then cbor2 (issue 15)."""

import cbor2

from aicf.core.cbor_limits import CborLimits, UntrustedCborError, scan_cbor


def decode_untrusted(data: bytes, limits: CborLimits, what: str) -> object:
    """The value of one CBOR item from outside, after `scan_cbor` passed it; UntrustedCborError otherwise."""
    scan_cbor(data, limits, what)
    try:
        value: object = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise UntrustedCborError(what, f"does not decode: {exc}") from None
    return value
