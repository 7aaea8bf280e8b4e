"""A minimal strict DER reader for the vendor extensions `cryptography` hands back as raw bytes."""

from dataclasses import dataclass

from aicf.proofs.attestation.result import malformed

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_BIT_STRING = 0x03
TAG_OID = 0x06
TAG_SEQUENCE = 0x30


@dataclass(frozen=True, slots=True, kw_only=True)
class Tlv:
    tag: int
    value: bytes
    raw: bytes  # the whole encoding: tag, length and value


def read_tlvs(data: bytes, what: str) -> tuple[Tlv, ...]:
    """Split `data` into consecutive TLVs (each read by `read_header`: single-byte tags, definite lengths in their
    shortest form), with no trailing bytes.

    Raises AttestationError(MALFORMED) naming `what` on any truncation or non-canonical length.
    """
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        tag, value_start, value_end = read_header(data, pos, what)
        out.append(Tlv(tag=tag, value=data[value_start:value_end], raw=data[pos:value_end]))
        pos = value_end
    return tuple(out)


def read_header(data: bytes, pos: int, what: str) -> tuple[int, int, int]:
    """(tag, start, end) of the value of the DER element at `pos`: single-byte tag, definite length in its shortest
    form, value within `data`. Raises AttestationError(MALFORMED) naming `what`."""
    if pos + 2 > len(data):
        raise malformed(f"{what}: truncated DER header at offset {pos}")
    tag, first = data[pos], data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or start + n > len(data):
            raise malformed(f"{what}: bad DER length at offset {pos + 1}")
        length = int.from_bytes(data[start : start + n], "big")
        start += n
        if length < 0x80 or data[pos + 2] == 0:
            raise malformed(f"{what}: DER length at offset {pos + 1} is not in its shortest form")
    if start + length > len(data):
        raise malformed(f"{what}: DER value needs {length} bytes at offset {start}, only {len(data) - start} left")
    return tag, start, start + length


def check_signed_der(der: bytes, tbs: bytes, signature: bytes, what: str) -> None:
    """`der` is the one canonical DER of a signed object (Certificate, CertificateList) whose parsed signed part is
    `tbs` and signature value `signature`: a SEQUENCE holding exactly `tbs`, then an AlgorithmIdentifier
    byte-identical to the `signature` field inside `tbs`, then a BIT STRING with no unused bits holding exactly
    `signature`; every length in its shortest form and nothing after. Only the signed part and the signature are
    checked cryptographically, so every other byte is pinned down here.

    Raises AttestationError(MALFORMED) naming `what`.
    """
    tag, start, end = read_header(der, 0, what)
    if tag != TAG_SEQUENCE or end != len(der):
        raise malformed(f"{what}: expected exactly one DER SEQUENCE")
    if der[start : start + len(tbs)] != tbs:
        raise malformed(f"{what}: the signed part is not where the encoding puts it")
    # The TBS's own `signature` AlgorithmIdentifier: the first SEQUENCE after the optional version (context tag
    # [0] in a certificate, INTEGER in a CRL) and the serial number.
    tag, field_start, tbs_end = read_header(tbs, 0, what)
    if tag != TAG_SEQUENCE or tbs_end != len(tbs):
        raise malformed(f"{what}: the signed part is not one SEQUENCE")
    pos = field_start
    for _ in range(3):
        tag, _, field_end = read_header(tbs, pos, what)
        if tag == TAG_SEQUENCE:
            inner_alg = tbs[pos:field_end]
            break
        pos = field_end
    else:
        raise malformed(f"{what}: no signature AlgorithmIdentifier in the signed part")
    pos = start + len(tbs)
    if der[pos : pos + len(inner_alg)] != inner_alg:
        raise malformed(f"{what}: outer signatureAlgorithm differs from the one inside the signed part")
    pos += len(inner_alg)
    tag, sig_start, sig_end = read_header(der, pos, what)
    if tag != TAG_BIT_STRING or sig_end != len(der):
        raise malformed(f"{what}: expected the signature BIT STRING to end the encoding")
    if der[sig_start : sig_start + 1] != b"\x00":
        raise malformed(
            f"{what}: signature BIT STRING must have 0 unused bits, got 0x{der[sig_start : sig_start + 1].hex()}"
        )
    if der[sig_start + 1 : sig_end] != signature:
        raise malformed(f"{what}: signature value differs from what the parser read")


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
