"""Fail closed, exhaustively: every single-byte flip of every certificate of a real chain (and of the DCAP CRLs and
the CCA platform key named in `certs`) earns a specific Reject. No hypothesis luck: every position is flipped.

A certificate's signature covers its TBS bytes only; the bytes around them (outer SEQUENCE header, the outer copy of
signatureAlgorithm, the BIT STRING header and its unused-bits octet) are checked by nothing but the encoding rules.
A flipped unused-bits octet (0 -> 1) once left the signature bytes unchanged and was accepted, in an AMD ASK/VLEK,
an Intel PCK certificate and the Intel root itself (matched to the pinned root by issuer name, then "verified").
"""

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aicf.proofs.attestation import AWS, PinnedRoot, Policy, Reject, RejectCode, VendorRoots, verify_evidence
from aicf.proofs.attestation.chain import load_cert, verify_chain
from aicf.proofs.attestation.result import AttestationError
from proofs.attestation.conftest import CA_KEY_USAGE

Inputs = tuple[bytes, bytes | tuple[bytes, ...]]
Region = tuple[str, bytes, Callable[[bytes], Inputs]]


def pem(der: bytes) -> bytes:
    """PEM as the quote and the collateral carry it: 64-column base64, so a same-length DER keeps the same size."""
    b64 = base64.b64encode(der)
    lines = b"".join(b64[i : i + 64] + b"\n" for i in range(0, len(b64), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"-----END CERTIFICATE-----\n"


def pem_ders(data: bytes) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(data)]


def flips(der: bytes, label: str) -> Iterator[tuple[int, int]]:
    """Every byte ^ 0x01 (which turns an unused-bits octet 0 into 1: the bug above); the unsigned bytes around the
    signed part and the signature value (headers, outer signatureAlgorithm, unused bits) also ^ 0xFF and ^ 0x80."""
    if label.endswith("crl"):
        crl = x509.load_der_x509_crl(der)
        signed, sig = crl.tbs_certlist_bytes, crl.signature
    else:
        cert = load_cert(der) if not label.endswith("CPAK") else None
        signed, sig = (cert.tbs_certificate_bytes, cert.signature) if cert else (der, b"")
    start = der.index(signed)
    unsigned = {*range(start + 4), *range(start + len(signed), len(der) - len(sig))}
    for pos in range(len(der)):
        yield pos, 0x01
        if pos in unsigned:
            yield pos, 0xFF
            yield pos, 0x80


def regions(s: Any, roots: VendorRoots) -> Iterator[Region]:
    """(label, der, rebuild): `rebuild(altered der)` gives the sample's (evidence, certs) with that DER swapped in."""
    if s.kind in ("sev-snp", "nvidia-gpu"):
        for w, der in enumerate(s.certs):

            def in_certs(d: bytes, w: int = w) -> Inputs:
                return s.evidence, tuple(d if j == w else c for j, c in enumerate(s.certs))

            yield f"certs[{w}]", der, in_certs
    elif s.kind in ("sgx", "tdx"):
        for w, der in enumerate(pem_ders(s.evidence[s.evidence.index(b"-----BEGIN") :].rstrip(b"\x00"))):
            assert pem(der) in s.evidence

            def in_quote(d: bytes, old: bytes = pem(der)) -> Inputs:
                return s.evidence.replace(old, pem(d)), s.certs

            yield f"quote PCK chain[{w}]", der, in_quote
        if s.kind == "sgx":  # the collateral is the same shape for both; one is enough
            doc = json.loads(s.certs)

            def in_doc(field: str, value: str) -> Inputs:
                return s.evidence, json.dumps({**doc, field: value}).encode()

            for field in ("tcb_info_issuer_chain", "qe_identity_issuer_chain"):
                ders = pem_ders(doc[field].encode())
                for w, der in enumerate(ders[:1]):  # [1] is the Intel root, flipped in the quote's chain already

                    def in_chain(d: bytes, field: str = field, w: int = w, ders: list[bytes] = ders) -> Inputs:
                        return in_doc(field, b"".join(pem(d if j == w else c) for j, c in enumerate(ders)).decode())

                    yield f"{field}[{w}]", der, in_chain
            for field in ("root_ca_crl", "pck_crl"):

                def in_crl(d: bytes, field: str = field) -> Inputs:
                    return in_doc(field, d.hex())

                yield field, bytes.fromhex(doc[field]), in_crl
    elif s.kind == "nitro":  # the chain travels inside the signed document
        payload = cbor2.loads(cbor2.loads(s.evidence)[2])
        for w, der in enumerate((payload["certificate"], *payload["cabundle"])):
            assert s.evidence.count(der) == 1

            def in_doc_bytes(d: bytes, old: bytes = der) -> Inputs:
                return s.evidence.replace(old, d), s.certs

            yield f"document cert[{w}]", der, in_doc_bytes
    elif s.kind == "cca":  # no X.509 chain: the platform key named in certs must be the pinned CPAK, byte for byte
        (cpak,) = (r.der for r in roots.for_vendor("arm-cca"))

        def as_named(d: bytes) -> Inputs:
            return s.evidence, (d,)

        yield "named CPAK", cpak, as_named


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["snp-milan", "snp-milan-vlek-v3", "sgx-v3", "tdx-v4", "nitro-blocky", "nvidia-h100", "cca-example"]
)
def test_every_single_byte_flip_in_a_chain_certificate_is_rejected(
    name: str, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    s = samples[name]
    accepted: list[str] = []
    unspecific: list[str] = []
    for label, der, rebuild in regions(s, roots):
        ok = verify_evidence(s.kind, *rebuild(der), roots, s.at_time, permissive)
        assert not isinstance(ok, Reject), f"{label}: the unaltered sample must verify: {ok}"
        for pos, mask in flips(der, label):
            out = verify_evidence(
                s.kind, *rebuild(der[:pos] + bytes([der[pos] ^ mask]) + der[pos + 1 :]), roots, s.at_time, permissive
            )
            if not isinstance(out, Reject):
                accepted.append(f"{label} byte {pos} ^ 0x{mask:02x}")
            elif out.code not in set(RejectCode) or not out.message or out.message.startswith(f"{s.kind}: unexpected "):
                unspecific.append(f"{label} byte {pos} ^ 0x{mask:02x}: {out}")
    assert not accepted, f"{len(accepted)} flipped certificate bytes were accepted: {accepted[:10]}"
    assert not unspecific, f"{len(unspecific)} flips got no specific reject: {unspecific[:5]}"


def test_a_presented_root_must_be_the_pinned_root_byte_for_byte() -> None:
    """A self-issued end of chain is matched to the pinned root by its bytes, never by its issuer name: a second
    certificate for the pinned root's name and key (signed by that key, so its signature verifies under the pinned
    root) is not the pinned root."""
    key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Pinned root")])
    start = datetime(2025, 1, 1, tzinfo=UTC)

    def cert(subject: x509.Name, public_key: ec.EllipticCurvePublicKey, serial: int, ca: bool) -> bytes:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(root_name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(CA_KEY_USAGE, critical=True)
        return builder.sign(key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)

    pinned = cert(root_name, key.public_key(), 1, ca=True)
    twin = cert(root_name, key.public_key(), 2, ca=True)  # same name and key, other bytes
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]), leaf_key.public_key(), 3, ca=False)
    anchors = (PinnedRoot(vendor=AWS, name="Pinned root", version=1, der=pinned, activation_height=0),)
    at = int((start + timedelta(days=1)).timestamp())

    assert verify_chain((leaf, pinned), anchors, at, "chain") == anchors[0]
    assert verify_chain((leaf,), anchors, at, "chain") == anchors[0]  # a chain may stop below the root
    with pytest.raises(AttestationError) as raised:
        verify_chain((leaf, twin), anchors, at, "chain")
    assert raised.value.code == RejectCode.UNKNOWN_ROOT
