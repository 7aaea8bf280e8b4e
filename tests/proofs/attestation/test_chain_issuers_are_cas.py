"""Issue 14: every issuer in a certificate chain must be a CA allowed to sign certificates: basicConstraints
CA=true and keyUsage keyCertSign. A leaf key (or any certificate without both) that signs a certificate makes a
chain nobody issued; without this check, a VCEK-like leaf key could mint "intermediates" of its own.
"""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aicf.proofs.attestation.chain import verify_chain
from aicf.proofs.attestation.result import AttestationError, RejectCode
from aicf.proofs.attestation.roots import AWS, PinnedRoot

START = datetime(2025, 1, 1, tzinfo=UTC)
AT = int((START + timedelta(days=1)).timestamp())
CA_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip
LEAF_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)  # fmt: skip


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: tuple[x509.ExtensionType, ...],
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + timedelta(days=365))
    )
    for ext in extensions:
        builder = builder.add_extension(ext, critical=True)
    return builder.sign(issuer_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)


CA = (x509.BasicConstraints(ca=True, path_length=None), CA_USAGE)
ISSUER_CASES = {
    "a proper CA": (CA, None),
    "basicConstraints ca=false": ((x509.BasicConstraints(ca=False, path_length=None), CA_USAGE), "not a CA"),
    "no basicConstraints": ((CA_USAGE,), "no basicConstraints"),
    "no keyUsage": ((x509.BasicConstraints(ca=True, path_length=None),), "keyCertSign"),
    "keyUsage without keyCertSign": ((x509.BasicConstraints(ca=True, path_length=None), LEAF_USAGE), "keyCertSign"),
}


@pytest.mark.parametrize("case", ISSUER_CASES, ids=str)
def test_an_intermediate_issuer_must_be_a_ca_with_key_cert_sign(case: str) -> None:
    extensions, refused = ISSUER_CASES[case]
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP384R1()) for _ in range(3))
    root = _cert("Root", root_key, "Root", root_key, CA)
    mid = _cert("Mid", mid_key, "Root", root_key, extensions)
    leaf = _cert("Leaf", leaf_key, "Mid", mid_key, (x509.BasicConstraints(ca=False, path_length=None), LEAF_USAGE))
    anchors = (PinnedRoot(vendor=AWS, name="Root", version=1, der=root, activation_height=0),)
    if refused is None:
        assert verify_chain((leaf, mid, root), anchors, AT, "chain") == anchors[0]
        return
    with pytest.raises(AttestationError) as raised:
        verify_chain((leaf, mid, root), anchors, AT, "chain")
    assert raised.value.code == RejectCode.BAD_ATTESTATION
    assert refused in raised.value.message
    assert "Mid" in raised.value.message


@pytest.mark.parametrize("case", [c for c in ISSUER_CASES if ISSUER_CASES[c][1] is not None], ids=str)
def test_a_pinned_root_that_is_not_a_ca_signs_nothing(case: str) -> None:
    extensions, refused = ISSUER_CASES[case]
    assert refused is not None
    root_key, leaf_key = (ec.generate_private_key(ec.SECP384R1()) for _ in range(2))
    root = _cert("Root", root_key, "Root", root_key, extensions)
    leaf = _cert("Leaf", leaf_key, "Root", root_key, (x509.BasicConstraints(ca=False, path_length=None), LEAF_USAGE))
    anchors = (PinnedRoot(vendor=AWS, name="Root", version=1, der=root, activation_height=0),)
    for chain in ((leaf, root), (leaf,)):  # presented, or found by the leaf's issuer name
        with pytest.raises(AttestationError) as raised:
            verify_chain(chain, anchors, AT, "chain")
        assert raised.value.code in (RejectCode.BAD_ATTESTATION, RejectCode.UNKNOWN_ROOT)
        assert refused in raised.value.message or raised.value.code is RejectCode.UNKNOWN_ROOT
