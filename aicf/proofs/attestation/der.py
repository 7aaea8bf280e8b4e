"""A minimal strict DER reader for the vendor extensions `cryptography` hands back as raw bytes."""

from dataclasses import dataclass

from aicf.proofs.attestation.result import malformed

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_BIT_STRING = 0x03
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_IA5STRING = 0x16
TAG_SEQUENCE = 0x30


@dataclass(frozen=True, slots=True, kw_only=True)
class Tlv:
    tag: int
    value: bytes
    raw: bytes  # the whole encoding: tag, length and value


def read_tlvs(data: bytes, what: str) -> tuple[Tlv, ...]:
    """Split `data` into consecutive TLVs; single-byte tags only, definite lengths, no trailing bytes.

    Raises AttestationError(MALFORMED) naming `what` on any truncation.
    """
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        start = pos
        if pos + 2 > len(data):
            raise malformed(f"{what}: truncated DER header at offset {pos}")
        tag, first = data[pos], data[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        else:
            n = first & 0x7F
            if n == 0 or n > 4 or pos + n > len(data):
                raise malformed(f"{what}: bad DER length at offset {pos - 1}")
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        if pos + length > len(data):
            raise malformed(f"{what}: DER value needs {length} bytes at offset {pos}, only {len(data) - pos} left")
        out.append(Tlv(tag=tag, value=data[pos : pos + length], raw=data[start : pos + length]))
        pos += length
    return tuple(out)


def der_header(tag: int, length: int) -> bytes:
    """The DER (shortest-form) tag and length octets of a value of `length` bytes."""
    if length < 0x80:
        return bytes([tag, length])
    n = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | n]) + length.to_bytes(n, "big")


def signed_parts(der: bytes, what: str) -> tuple[bytes, bytes, bytes]:
    """Split a signed DER object (Certificate, CertificateList) into the exact bytes of (tbs, signatureAlgorithm,
    signature value), refusing any encoding but the one canonical DER: one SEQUENCE of exactly a SEQUENCE, an
    AlgorithmIdentifier SEQUENCE and a BIT STRING with no unused bits, every length in shortest form, nothing after.

    Raises AttestationError(MALFORMED) naming `what`.
    """
    outer = read_tlvs(der, what)
    if len(outer) != 1 or outer[0].tag != TAG_SEQUENCE:
        raise malformed(f"{what}: expected exactly one DER SEQUENCE")
    parts = read_tlvs(outer[0].value, what)
    if [t.tag for t in parts] != [TAG_SEQUENCE, TAG_SEQUENCE, TAG_BIT_STRING]:
        got = ",".join(f"0x{t.tag:02x}" for t in parts)
        raise malformed(f"{what}: expected SEQUENCE, SEQUENCE, BIT STRING; got [{got}]")
    for tlv in (outer[0], *parts):
        if tlv.raw != der_header(tlv.tag, len(tlv.value)) + tlv.value:
            raise malformed(f"{what}: DER length not in shortest form (tag 0x{tlv.tag:02x})")
    tbs, alg, sig = parts
    if not sig.value or sig.value[0] != 0:
        raise malformed(f"{what}: signature BIT STRING must have 0 unused bits, got 0x{sig.value[:1].hex()}")
    return tbs.raw, alg.raw, sig.value[1:]


def tbs_signature_algorithm(tbs: bytes, what: str) -> bytes:
    """The exact bytes of the `signature` AlgorithmIdentifier inside a TBSCertificate or TBSCertList: the first
    SEQUENCE after the optional version (context tag [0] in a certificate, INTEGER in a CRL) and serial number."""
    fields = read_tlvs(read_one(tbs, TAG_SEQUENCE, what), what)
    for tlv in fields[:3]:
        if tlv.tag == TAG_SEQUENCE:
            return tlv.raw
    raise malformed(f"{what}: no signature AlgorithmIdentifier in the signed part")


def read_one(data: bytes, tag: int, what: str) -> bytes:
    tlvs = read_tlvs(data, what)
    if len(tlvs) != 1 or tlvs[0].tag != tag:
        got = ",".join(f"0x{t.tag:02x}" for t in tlvs)
        raise malformed(f"{what}: expected one DER element with tag 0x{tag:02x}, got [{got}]")
    return tlvs[0].value


def decode_oid(raw: bytes) -> str:
    if not raw:
        raise malformed("empty OID")
    parts: list[int] = []
    first = True
    acc = 0
    for b in raw:
        acc = (acc << 7) | (b & 0x7F)
        if not b & 0x80:
            if first:
                parts.extend((min(acc // 40, 2), acc - 40 * min(acc // 40, 2)))
                first = False
            else:
                parts.append(acc)
            acc = 0
    return ".".join(str(p) for p in parts)


def decode_uint(raw: bytes, what: str) -> int:
    if not raw or raw[0] & 0x80:
        raise malformed(f"{what}: expected a non-negative DER INTEGER, got 0x{raw.hex()}")
    return int.from_bytes(raw, "big")
