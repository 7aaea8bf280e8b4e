"""AWS Nitro Enclaves attestation documents: untagged COSE_Sign1, ES384, chain in the document to the Nitro root."""

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from aicf.proofs.attestation.chain import ec_key, load_cert, verify_chain
from aicf.proofs.attestation.cose import decode_cbor, parse_cose_sign1, verify_es384
from aicf.proofs.attestation.result import AttestationResult, malformed
from aicf.proofs.attestation.roots import PinnedRoot

PCR_SIZES = {"SHA256": 32, "SHA384": 48, "SHA512": 64}
MAX_PCRS = 32
MAX_FIELD = 1024  # user_data, nonce and public_key are at most 1 KiB each (AWS NSM API)
DEBUG_PCRS = (0, 1, 2)  # in debug mode the enclave image PCRs read as zeros


@dataclass(frozen=True, slots=True, kw_only=True)
class NitroDocument:
    module_id: str
    digest: str
    timestamp_ms: int
    pcrs: tuple[tuple[int, bytes], ...]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes
    user_data: bytes
    nonce: bytes


def _opt_bytes(doc: Mapping[object, object], key: str) -> bytes:
    value = doc.get(key)
    if value is None:
        return b""
    if not isinstance(value, bytes):
        raise malformed(f"Nitro document: {key} must be bytes or null, got {type(value).__name__}")
    if len(value) > MAX_FIELD:
        raise malformed(f"Nitro document: {key} of {len(value)} bytes exceeds {MAX_FIELD}")
    return value


def parse_nitro_document(payload: bytes) -> NitroDocument:
    """Raises AttestationError(MALFORMED) on a missing or ill-typed field."""
    doc = decode_cbor(payload, "Nitro payload")
    if not isinstance(doc, Mapping):
        raise malformed("Nitro payload must be a map")
    module_id, digest, timestamp = doc.get("module_id"), doc.get("digest"), doc.get("timestamp")
    pcrs, certificate, cabundle = doc.get("pcrs"), doc.get("certificate"), doc.get("cabundle")
    if not isinstance(module_id, str) or not module_id:
        raise malformed("Nitro document: module_id must be a non-empty string")
    if not isinstance(digest, str) or digest not in PCR_SIZES:
        raise malformed(f"Nitro document: digest {digest!r}, expected one of {sorted(PCR_SIZES)}")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
        raise malformed("Nitro document: timestamp must be a positive integer (ms)")
    if not isinstance(pcrs, Mapping) or not 0 < len(pcrs) <= MAX_PCRS:
        raise malformed(f"Nitro document: pcrs must be a map of 1..{MAX_PCRS} entries")
    pcr_items: list[tuple[int, bytes]] = []
    for index, value in pcrs.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < MAX_PCRS:
            raise malformed(f"Nitro document: PCR index {index!r} out of range")
        if not isinstance(value, bytes) or len(value) != PCR_SIZES[digest]:
            raise malformed(f"Nitro document: PCR{index} must be {PCR_SIZES[digest]} bytes")
        pcr_items.append((index, value))
    if not isinstance(certificate, bytes):
        raise malformed("Nitro document: certificate must be bytes")
    if not isinstance(cabundle, list) or not cabundle or not all(isinstance(c, bytes) for c in cabundle):
        raise malformed("Nitro document: cabundle must be a non-empty list of certificates")
    return NitroDocument(
        module_id=module_id,
        digest=digest,
        timestamp_ms=timestamp,
        pcrs=tuple(sorted(pcr_items)),
        certificate=certificate,
        cabundle=tuple(cabundle),
        public_key=_opt_bytes(doc, "public_key"),
        user_data=_opt_bytes(doc, "user_data"),
        nonce=_opt_bytes(doc, "nonce"),
    )


def verify_nitro(
    evidence: bytes, certs: bytes | tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int
) -> AttestationResult:
    """(1) parse the COSE_Sign1 and its payload; (2) chain certificate <- cabundle (reversed) to the pinned Nitro
    root, valid at `at_time`; (3) ES384 signature under the leaf key. `certs` must be empty: the chain travels in
    the document. Raises AttestationError.
    """
    if certs not in (b"", ()):
        raise malformed("nitro: the certificate chain is inside the document; certs must be empty")
    msg = parse_cose_sign1(evidence, "Nitro document", allow_tag=True)  # (1)
    doc = parse_nitro_document(msg.payload)
    chain = (doc.certificate, *reversed(doc.cabundle))
    root = verify_chain(chain, anchors, at_time, "Nitro chain")  # (2)
    leaf = load_cert(doc.certificate)
    verify_es384(msg, ec_key(leaf, ec.SECP384R1, "Nitro leaf"), "Nitro document")  # (3)
    pcrs = dict(doc.pcrs)
    debug = all(i in pcrs and not any(pcrs[i]) for i in DEBUG_PCRS)
    return AttestationResult(
        kind="nitro",
        measurement=pcrs.get(0, b""),
        report_data=doc.user_data,
        debug=debug,
        pcrs=doc.pcrs,
        public_key=doc.public_key,
        nonce=doc.nonce,
        root_sha256=root.sha256,
        leaf_not_after=int(leaf.not_valid_after_utc.timestamp()),
    )
