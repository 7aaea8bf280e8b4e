"""Fixtures for the attestation tests: the real public samples of MANIFEST.md and test vendor chains.

Files are read here, in the tests; the verifiers only ever see bytes.
"""

import base64
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from aicf.proofs.attestation import (
    AMD,
    ARM_CCA,
    AWS,
    INTEL,
    NVIDIA,
    PinnedRoot,
    Policy,
    VendorRoots,
    make_vendor_roots,
)
from aicf.proofs.attestation.nitro import parse_nitro_document

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "attestation"


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def pem_ders(data: bytes) -> tuple[bytes, ...]:
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(data))


def read(rel: str) -> bytes:
    return (FIX / rel).read_bytes()


def cpak_spki() -> bytes:
    jwk = json.loads(read("cca/cpak-pub.json"))

    def coord(s: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")

    key = ec.EllipticCurvePublicNumbers(coord(jwk["x"]), coord(jwk["y"]), ec.SECP384R1()).public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


ARK_MILAN = pem_ders(read("sev-snp/ask_ark_milan.pem"))[1]
ARK_GENOA = pem_ders(read("sev-snp/ask_ark_genoa.pem"))[1]
ARK_TURIN = pem_ders(read("sev-snp/ask_ark_turin.pem"))[1]
INTEL_ROOT = read("sgx-dcap/Intel_SGX_RootCA.der")
NITRO_ROOT = pem_ders(read("nitro/aws_nitro_enclaves_root_G1.pem"))[0]
NVIDIA_ROOT = pem_ders(read("nvidia-gpu/nvidia_device_identity_root.pem"))[0]


def real_roots() -> VendorRoots:
    def pin(vendor: str, name: str, der: bytes) -> PinnedRoot:
        return PinnedRoot(vendor=vendor, name=name, version=1, der=der, activation_height=0)

    return make_vendor_roots(
        (
            pin(AMD, "ARK-Milan", ARK_MILAN),
            pin(AMD, "ARK-Genoa", ARK_GENOA),
            pin(AMD, "ARK-Turin", ARK_TURIN),
            pin(INTEL, "Intel SGX Root CA", INTEL_ROOT),
            pin(AWS, "AWS Nitro root G1", NITRO_ROOT),
            pin(NVIDIA, "NVIDIA Device Identity CA", NVIDIA_ROOT),
            pin(ARM_CCA, "CPAK (trustee test key)", cpak_spki()),
        )
    )


def nitro_doc(rel: str) -> bytes:
    raw = read(rel)
    return base64.b64decode(raw) if rel.endswith(".b64") else raw


def nitro_time(doc: bytes) -> int:
    payload = cbor2.loads(doc)[2]
    return parse_nitro_document(payload).timestamp_ms // 1000


PERMISSIVE = Policy(
    allow_debug=True,
    accepted_tcb_statuses=frozenset({"UpToDate", "SWHardeningNeeded", "ConfigurationAndSWHardeningNeeded"}),
)


@dataclass(frozen=True)
class Sample:
    """One real sample of MANIFEST.md with the time it verifies at."""

    name: str
    kind: str
    evidence: bytes
    certs: bytes | tuple[bytes, ...]
    at_time: int
    chain_in_certs: bool  # whether flipping `certs` flips a certificate (DER tuple)


def real_samples() -> tuple[Sample, ...]:
    snp_chain = pem_ders(read("sev-snp/ask_ark_milan.pem"))
    vlek_chain = pem_ders(read("sev-snp/asvk_ark_milan.pem"))
    blindai = nitro_doc("nitro/blindai_attestation_doc.cbor")
    blocky = nitro_doc("nitro/blocky_attestation_doc.b64")
    blocky_debug = nitro_doc("nitro/blocky_attestation_doc_debug.b64")
    return (
        Sample(
            "snp-milan",
            "sev-snp",
            read("sev-snp/milan-report.bin"),
            (read("sev-snp/milan-vcek.der"), *snp_chain),
            ts("2022-09-24T01:00:00Z"),
            True,
        ),
        Sample(
            "snp-milan-reissued-vcek",
            "sev-snp",
            read("sev-snp/milan-report.bin"),
            (read("sev-snp/milan-vcek-reissued-2026.der"), *snp_chain),
            ts("2026-11-25T00:00:00Z"),
            True,
        ),
        Sample(
            "snp-milan2",
            "sev-snp",
            read("sev-snp/milan2-report.bin"),
            (read("sev-snp/milan2-vcek.der"), *snp_chain),
            ts("2024-01-01T00:00:00Z"),
            True,
        ),
        Sample(
            "snp-milan-vlek-v3",
            "sev-snp",
            read("sev-snp/milan-vlek-report.bin"),
            (read("sev-snp/milan-vlek.der"), *vlek_chain),
            ts("2025-01-01T00:00:00Z"),
            True,
        ),
        Sample(
            "sgx-v3",
            "sgx",
            read("sgx-dcap/sgx_quote.bin"),
            read("sgx-dcap/sgx_quote_collateral.json"),
            ts("2025-07-01T00:00:00Z"),
            False,
        ),
        Sample(
            "tdx-v4",
            "tdx",
            read("tdx-dcap/tdx_quote.bin"),
            read("tdx-dcap/tdx_quote_collateral.json"),
            ts("2025-07-01T00:00:00Z"),
            False,
        ),
        Sample("nitro-blindai", "nitro", blindai, (), nitro_time(blindai), False),
        Sample("nitro-blocky", "nitro", blocky, (), nitro_time(blocky), False),
        Sample("nitro-blocky-debug", "nitro", blocky_debug, (), nitro_time(blocky_debug), False),
        Sample(
            "nvidia-h100",
            "nvidia-gpu",
            bytes.fromhex(read("nvidia-gpu/hopper_attestation_report.hex").decode()),
            pem_ders(read("nvidia-gpu/hopper_cert_chain.pem")),
            ts("2026-11-25T00:00:00Z"),
            True,
        ),
        Sample("cca-example", "cca", read("cca/cca-example-token.cbor"), (), 0, False),
    )


@pytest.fixture(scope="session")
def roots() -> VendorRoots:
    return real_roots()


@pytest.fixture(scope="session")
def samples() -> dict[str, Sample]:
    return {s.name: s for s in real_samples()}


@pytest.fixture(scope="session")
def permissive() -> Policy:
    """Accepts what the real samples are (debug guests, Intel's hardening-needed statuses): tests of the crypto."""
    return PERMISSIVE


@pytest.fixture(scope="session")
def at() -> Callable[[str], int]:
    return ts


@pytest.fixture(scope="session")
def fixture_bytes() -> Callable[[str], bytes]:
    return read


# ---- test vendor chains: evidence the tests sign themselves, so it can carry our binding ----

NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = NOT_BEFORE + timedelta(days=3650)
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extensions: tuple[x509.ExtensionType, ...] = (),
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:  # an issuer must say it may sign certificates (aicf.proofs.attestation.chain)
        builder = builder.add_extension(CA_KEY_USAGE, critical=True)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        cert = builder.sign(issuer_key, hashes.SHA384(), rsa_padding=PSS)
    else:
        cert = builder.sign(issuer_key, hashes.SHA384())
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class TestAmd:
    ark: bytes
    ask: bytes
    vcek: bytes
    vcek_key: ec.EllipticCurvePrivateKey
    chip_id: bytes
    root: PinnedRoot


def _int_ext(oid: str, value: int) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), bytes([0x02, 0x01, value]))


@pytest.fixture(scope="session")
def test_amd() -> TestAmd:
    """A fake ARK -> ASK -> VCEK chain with AMD's algorithms: RSA-PSS/SHA-384 above a P-384 VCEK."""
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    vcek_key = ec.generate_private_key(ec.SECP384R1())
    chip_id = bytes(range(64))
    ark = _cert("ARK-Test", ark_key, "ARK-Test", ark_key, ca=True)
    ask = _cert("SEV-Test", ask_key, "ARK-Test", ark_key, ca=True)
    exts = (
        x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4"), chip_id),
        _int_ext("1.3.6.1.4.1.3704.1.3.1", 3),
        _int_ext("1.3.6.1.4.1.3704.1.3.2", 0),
        _int_ext("1.3.6.1.4.1.3704.1.3.3", 8),
        _int_ext("1.3.6.1.4.1.3704.1.3.8", 115),
    )
    vcek = _cert("SEV-VCEK", vcek_key, "SEV-Test", ask_key, ca=False, extensions=exts)
    root = PinnedRoot(vendor=AMD, name="ARK-Test", version=1, der=ark, activation_height=0)
    return TestAmd(ark=ark, ask=ask, vcek=vcek, vcek_key=vcek_key, chip_id=chip_id, root=root)


def make_snp_report(
    key: ec.EllipticCurvePrivateKey,
    *,
    report_data: bytes,
    chip_id: bytes,
    measurement: bytes = b"\x11" * 48,
    policy: int = 0x30000,
    vmpl: int = 0,
    tcb: tuple[int, int, int, int] = (3, 0, 8, 115),
    version: int = 2,
) -> bytes:
    """A SEV-SNP report in the ABI layout, signed like the firmware signs it."""
    bl, tee, snp, ucode = tcb
    tcb_raw = struct.unpack("<Q", bytes([bl, tee, 0, 0, 0, 0, snp, ucode]))[0]
    body = bytearray(0x2A0)
    struct.pack_into("<IIQ", body, 0x00, version, 1, policy)
    struct.pack_into("<IIQQ", body, 0x30, vmpl, 1, tcb_raw, 0)
    body[0x50:0x90] = report_data.ljust(64, b"\x00")
    body[0x90:0xC0] = measurement
    struct.pack_into("<Q", body, 0x180, tcb_raw)
    body[0x1A0:0x1E0] = chip_id
    r, s = decode_dss_signature(key.sign(bytes(body), ec.ECDSA(hashes.SHA384())))
    sig = r.to_bytes(72, "little") + s.to_bytes(72, "little")
    return bytes(body) + sig + bytes(0x4A0 - 0x2A0 - len(sig))


@dataclass(frozen=True)
class TestNitro:
    root_der: bytes
    leaf_der: bytes
    leaf_key: ec.EllipticCurvePrivateKey
    root: PinnedRoot


@pytest.fixture(scope="session")
def test_nitro() -> TestNitro:
    return new_test_nitro()


def new_test_nitro(name: str = "test.nitro-enclaves", version: int = 1, activation_height: int = 0) -> TestNitro:
    """A fresh self-signed Nitro root and enclave leaf (P-384), pinned as `name` v`version` from the height."""
    root_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    root_der = _cert(name, root_key, name, root_key, ca=True)
    leaf_der = _cert("i-test.enclave", leaf_key, name, root_key, ca=False)
    root = PinnedRoot(
        vendor=AWS, name="Test Nitro root", version=version, der=root_der, activation_height=activation_height
    )
    return TestNitro(root_der=root_der, leaf_der=leaf_der, leaf_key=leaf_key, root=root)


def make_nitro_doc(
    nitro: TestNitro, *, user_data: bytes | None, pcr0: bytes = b"\x22" * 48, timestamp_ms: int | None = None
) -> bytes:
    """An untagged COSE_Sign1 ES384 attestation document shaped like AWS's."""
    payload = cbor2.dumps(
        {
            "module_id": "i-test-enc0",
            "digest": "SHA384",
            "timestamp": timestamp_ms if timestamp_ms is not None else ts("2026-01-01T00:00:00Z") * 1000,
            "pcrs": {0: pcr0, 1: pcr0, 2: pcr0, 3: bytes(48), 4: b"\x33" * 48},
            "certificate": nitro.leaf_der,
            "cabundle": [nitro.root_der],
            "public_key": None,
            "user_data": user_data,
            "nonce": b"\x44" * 16,
        }
    )
    protected = cbor2.dumps({1: -35})
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(nitro.leaf_key.sign(to_sign, ec.ECDSA(hashes.SHA384())))
    return bytes(cbor2.dumps([protected, {}, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")]))


@pytest.fixture(scope="session")
def snp_report() -> Callable[..., bytes]:
    return make_snp_report


@pytest.fixture(scope="session")
def nitro_doc_of() -> Callable[..., bytes]:
    return make_nitro_doc
