"""NVIDIA Hopper (H100) confidential-computing GPU evidence: an SPDM 1.1 GET_MEASUREMENTS exchange.

Evidence = request (`0x11 0xE0 param1 param2`, 32-byte requester nonce, slot id) || MEASUREMENTS response
(`0x11 0x60 param1 param2`, block count, 3-byte record length, measurement blocks, 32-byte responder nonce, u16
opaque length, opaque TLVs, 96-byte ECDSA P-384 signature r||s). The signature covers SHA-384 of every byte before
it, request included, and verifies under the first certificate of the device chain (GH100 FMC leaf ... NVIDIA
Device Identity CA). Comparing the measurements with NVIDIA's reference values (RIM) needs the RIM service and is
left to the allowlist: `measurement` is SHA-384 over the measurement record.
"""

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from aicf.proofs.attestation.chain import (
    MAX_CHAIN_LEN,
    chain_expiries,
    ec_key,
    ecdsa_verify,
    load_cert,
    split_certs,
    verify_chain,
)
from aicf.proofs.attestation.result import AttestationResult, bad, malformed
from aicf.proofs.attestation.roots import PinnedRoot

SPDM_VERSION_11 = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
REQUEST_SIZE = 37
NONCE_SIZE = 32
SIG_SIZE = 96
OPAQUE_DRIVER_VERSION = 3
OPAQUE_VBIOS_VERSION = 6
# stable alarm names of the device chain by position (device certificates carry per-GPU serials in their subjects)
_CHAIN_NAMES = ("nvidia-gpu leaf certificate", *(f"nvidia-gpu chain certificate {i}" for i in range(1, MAX_CHAIN_LEN)))


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuReport:
    requester_nonce: bytes
    responder_nonce: bytes
    record: bytes
    measurements: tuple[tuple[int, bytes], ...]
    opaque: tuple[tuple[int, bytes], ...]
    signed: bytes
    signature: bytes

    def opaque_field(self, kind: int) -> bytes:
        return next((v for k, v in self.opaque if k == kind), b"")


def _u(data: bytes, pos: int, n: int, what: str) -> int:
    if pos + n > len(data):
        raise malformed(f"GPU report: {what} needs {n} bytes at offset {pos}, only {len(data) - pos} left")
    return int.from_bytes(data[pos : pos + n], "little")


def _parse_blocks(record: bytes, count: int) -> tuple[tuple[int, bytes], ...]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    for _ in range(count):
        index, spec, size = (
            _u(record, pos, 1, "block index"),
            _u(record, pos + 1, 1, "spec"),
            _u(record, pos + 2, 2, "size"),
        )
        if spec != 1:
            raise malformed(f"GPU report: measurement block {index} specification {spec}, expected 1 (DMTF)")
        block = record[pos + 4 : pos + 4 + size]
        if len(block) != size or size < 3:
            raise malformed(f"GPU report: measurement block {index} truncated")
        value_size = _u(block, 1, 2, "DMTF value size")
        if value_size != size - 3:
            raise malformed(f"GPU report: block {index} value size {value_size}, expected {size - 3}")
        out.append((index, block[3:]))
        pos += 4 + size
    if pos != len(record):
        raise malformed(f"GPU report: measurement record has {len(record) - pos} bytes after {count} blocks")
    return tuple(out)


def parse_gpu_report(report: bytes) -> GpuReport:
    """Raises AttestationError(MALFORMED) on any length that does not add up exactly."""
    if len(report) < REQUEST_SIZE + 8 + NONCE_SIZE + 2 + SIG_SIZE:
        raise malformed(f"GPU report: {len(report)} bytes is too short")
    if report[0] != SPDM_VERSION_11 or report[1] != GET_MEASUREMENTS:
        raise malformed(f"GPU report: request header 0x{report[:2].hex()}, expected 0x11e0 (SPDM 1.1 GET_MEASUREMENTS)")
    resp = report[REQUEST_SIZE:]
    if resp[0] != SPDM_VERSION_11 or resp[1] != MEASUREMENTS:
        raise malformed(f"GPU report: response header 0x{resp[:2].hex()}, expected 0x1160 (SPDM 1.1 MEASUREMENTS)")
    count, record_len = resp[4], _u(resp, 5, 3, "record length")
    record = resp[8 : 8 + record_len]
    if len(record) != record_len:
        raise malformed(f"GPU report: measurement record of {record_len} bytes is truncated")
    pos = 8 + record_len
    responder_nonce = resp[pos : pos + NONCE_SIZE]
    opaque_len = _u(resp, pos + NONCE_SIZE, 2, "opaque length")
    opaque_start = pos + NONCE_SIZE + 2
    opaque = resp[opaque_start : opaque_start + opaque_len]
    signature = resp[opaque_start + opaque_len :]
    if len(opaque) != opaque_len or len(signature) != SIG_SIZE:
        raise malformed(
            f"GPU report: expected {SIG_SIZE} signature bytes after {opaque_len} opaque bytes, got {len(signature)}"
        )
    fields: list[tuple[int, bytes]] = []
    i = 0
    while i < len(opaque):
        kind, size = _u(opaque, i, 2, "opaque type"), _u(opaque, i + 2, 2, "opaque size")
        value = opaque[i + 4 : i + 4 + size]
        if len(value) != size:
            raise malformed(f"GPU report: opaque field {kind} truncated")
        fields.append((kind, value))
        i += 4 + size
    return GpuReport(
        requester_nonce=report[4 : 4 + NONCE_SIZE],
        responder_nonce=responder_nonce,
        record=record,
        measurements=_parse_blocks(record, count),
        opaque=tuple(fields),
        signed=report[: len(report) - SIG_SIZE],
        signature=signature,
    )


def driver_version(report: GpuReport) -> str:
    return report.opaque_field(OPAQUE_DRIVER_VERSION).rstrip(b"\x00").decode("ascii", "replace")


def vbios_version(report: GpuReport) -> str:
    raw = report.opaque_field(OPAQUE_VBIOS_VERSION)
    if len(raw) < 5:
        return ""
    return ".".join(f"{b:02x}" for b in (raw[3], raw[2], raw[1], raw[0], raw[4]))


def verify_nvidia_gpu(
    evidence: bytes, certs: bytes | tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int
) -> AttestationResult:
    """(1) parse the SPDM exchange; (2) device chain to the pinned NVIDIA root, valid at `at_time`; (3) the
    response signature verifies under the leaf (FMC) key. Raises AttestationError.
    """
    report = parse_gpu_report(evidence)  # (1)
    ders = split_certs(certs, "GPU chain")
    root = verify_chain(ders, anchors, at_time, "GPU chain")  # (2)
    leaf = load_cert(ders[0])
    key = ec_key(leaf, ec.SECP384R1, "GPU leaf")
    r, s = int.from_bytes(report.signature[:48], "big"), int.from_bytes(report.signature[48:], "big")
    if not ecdsa_verify(key, r, s, report.signed, hashes.SHA384()):  # (3)
        raise bad("GPU report signature does not verify under the device leaf key")
    return AttestationResult(
        kind="nvidia-gpu",
        measurement=hashlib.sha384(report.record).digest(),
        report_data=report.requester_nonce,
        debug=False,
        nonce=report.requester_nonce,
        extra_measurements=report.measurements,
        root_sha256=root.sha256,
        leaf_not_after=int(leaf.not_valid_after_utc.timestamp()),
        expiries=chain_expiries(ders, _CHAIN_NAMES, root),
    )
