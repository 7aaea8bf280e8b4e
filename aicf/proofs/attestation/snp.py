"""AMD SEV-SNP attestation reports (versions 2 and 3, Milan/Genoa TCB layout).

Layout (AMD SEV-SNP ABI, ATTESTATION_REPORT): 0x4A0 bytes; the signature at 0x2A0 covers bytes 0..0x2A0 and is
ECDSA P-384/SHA-384 with R and S as 72-byte little-endian integers. The signing key is the chip's VCEK (chained
VCEK -> ASK -> ARK) or a cloud provider's VLEK (VLEK -> ASVK -> ARK), all RSA-PSS/SHA-384 above the leaf.
"""

import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aicf.proofs.attestation.chain import chain_expiries, ec_key, ecdsa_verify, load_cert, split_certs, verify_chain
from aicf.proofs.attestation.der import TAG_INTEGER, TAG_OCTET_STRING, decode_uint, read_one
from aicf.proofs.attestation.result import AttestationResult, SnpTcb, bad, malformed
from aicf.proofs.attestation.roots import PinnedRoot

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SIG_COMPONENT = 72
CHIP_ID_SIZE = 64
CPUID_FAMILY_TURIN = 0x1A  # v3 reports name the CPU family at 0x188; Turin packs its TCB differently
SUPPORTED_VERSIONS = frozenset({2, 3})
SIG_ALGO_ECDSA_P384_SHA384 = 1
POLICY_DEBUG_BIT = 1 << 19
SIGNING_KEY_VCEK = 0
SIGNING_KEY_VLEK = 1

_CHAIN_NAMES = {  # stable alarm names of the chain below the ARK, by the report's signing key
    SIGNING_KEY_VCEK: ("sev-snp VCEK certificate", "sev-snp ASK certificate"),
    SIGNING_KEY_VLEK: ("sev-snp VLEK certificate", "sev-snp ASVK certificate"),
}

OID_HWID = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4")
OID_BL_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.1")
OID_TEE_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.2")
OID_SNP_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.3")
OID_UCODE_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.8")


@dataclass(frozen=True, slots=True, kw_only=True)
class SnpReport:
    version: int
    guest_svn: int
    policy: int
    vmpl: int
    signature_algo: int
    current_tcb: SnpTcb
    signing_key: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    reported_tcb: SnpTcb
    chip_id: bytes
    signed: bytes
    r: int
    s: int

    @property
    def debug(self) -> bool:
        return bool(self.policy & POLICY_DEBUG_BIT)


def _tcb(raw: int) -> SnpTcb:
    b = raw.to_bytes(8, "little")
    return SnpTcb(bootloader=b[0], tee=b[1], snp=b[6], microcode=b[7])


def parse_snp_report(report: bytes) -> SnpReport:
    """Raises AttestationError(MALFORMED) on a wrong size, version, signature algorithm or non-zero padding."""
    if len(report) != REPORT_SIZE:
        raise malformed(f"SEV-SNP report: expected {REPORT_SIZE} bytes, got {len(report)}")
    version, guest_svn, policy = struct.unpack_from("<IIQ", report, 0x00)
    if version not in SUPPORTED_VERSIONS:
        raise malformed(
            f"SEV-SNP report: version {version} not supported, expected one of {sorted(SUPPORTED_VERSIONS)}"
        )
    vmpl, sig_algo, current_tcb = struct.unpack_from("<IIQ", report, 0x30)
    if sig_algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise malformed(f"SEV-SNP report: signature algorithm {sig_algo}, expected {SIG_ALGO_ECDSA_P384_SHA384}")
    if version >= 3 and report[0x188] == CPUID_FAMILY_TURIN:
        raise malformed("SEV-SNP report: Turin (family 0x1A) TCB layout is not supported yet")
    (key_info,) = struct.unpack_from("<I", report, 0x48)
    (reported_tcb,) = struct.unpack_from("<Q", report, 0x180)
    sig = report[SIGNED_SIZE:]
    if any(sig[2 * SIG_COMPONENT :]):
        raise malformed("SEV-SNP report: reserved bytes after the signature must be zero")
    return SnpReport(
        version=version,
        guest_svn=guest_svn,
        policy=policy,
        vmpl=vmpl,
        signature_algo=sig_algo,
        current_tcb=_tcb(current_tcb),
        signing_key=(key_info >> 2) & 0x7,
        report_data=report[0x50:0x90],
        measurement=report[0x90:0xC0],
        host_data=report[0xC0:0xE0],
        reported_tcb=_tcb(reported_tcb),
        chip_id=report[0x1A0:0x1E0],
        signed=report[:SIGNED_SIZE],
        r=int.from_bytes(sig[:SIG_COMPONENT], "little"),
        s=int.from_bytes(sig[SIG_COMPONENT : 2 * SIG_COMPONENT], "little"),
    )


def _ext_bytes(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    if not isinstance(ext, x509.UnrecognizedExtension):
        raise malformed(f"AMD extension {oid.dotted_string} has an unexpected type {type(ext).__name__}")
    return ext.value


def _spl(cert: x509.Certificate, oid: x509.ObjectIdentifier, name: str) -> int:
    raw = _ext_bytes(cert, oid)
    if raw is None:
        raise bad(f"SEV-SNP key certificate lacks the {name} extension {oid.dotted_string}")
    return decode_uint(read_one(raw, TAG_INTEGER, name), name)


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def verify_snp(
    evidence: bytes, certs: bytes | tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int
) -> AttestationResult:
    """Verify a SEV-SNP report against its VCEK/VLEK chain. Policy and binding are judged by the caller.

    (1) parse the report; (2) the chain VCEK/VLEK -> ASK/ASVK [-> ARK] reaches a pinned AMD root in force and every
    certificate is valid at `at_time`; (3) the leaf is the kind of key the report names (VCEK or VLEK); (4) the
    report signature verifies under the leaf key; (5) the leaf's hwID equals chip_id (VCEK only) and its SPL
    extensions equal reported_tcb.
    Raises AttestationError.
    """
    report = parse_snp_report(evidence)  # (1)
    ders = split_certs(certs, "SEV-SNP chain")
    root = verify_chain(ders, anchors, at_time, "SEV-SNP chain")  # (2)
    leaf = load_cert(ders[0])
    cn = _common_name(leaf)  # (3)
    want_cn = {SIGNING_KEY_VCEK: "SEV-VCEK", SIGNING_KEY_VLEK: "SEV-VLEK"}.get(report.signing_key)
    if want_cn is None:
        raise bad(f"SEV-SNP report: signing key field {report.signing_key}, expected 0 (VCEK) or 1 (VLEK)")
    if cn != want_cn:
        raise bad(f"SEV-SNP report names a {want_cn} key, the leaf certificate is {cn!r}")
    key = ec_key(leaf, ec.SECP384R1, "SEV-SNP leaf")
    if not ecdsa_verify(key, report.r, report.s, report.signed, hashes.SHA384()):  # (4)
        raise bad("SEV-SNP report signature does not verify under the leaf key")
    if report.signing_key == SIGNING_KEY_VCEK:  # (5)
        hwid_ext = _ext_bytes(leaf, OID_HWID)
        if hwid_ext is None:
            raise bad("VCEK lacks the hwID extension")
        # AMD stores the 64 raw bytes as the extension value; accept a DER OCTET STRING wrapping them too.
        hwid = hwid_ext if len(hwid_ext) == CHIP_ID_SIZE else read_one(hwid_ext, TAG_OCTET_STRING, "hwID")
        if hwid != report.chip_id:
            raise bad(f"VCEK hwID mismatch: expected 0x{report.chip_id.hex()}, got 0x{hwid.hex()}")
    cert_tcb = SnpTcb(
        bootloader=_spl(leaf, OID_BL_SPL, "blSPL"),
        tee=_spl(leaf, OID_TEE_SPL, "teeSPL"),
        snp=_spl(leaf, OID_SNP_SPL, "snpSPL"),
        microcode=_spl(leaf, OID_UCODE_SPL, "ucodeSPL"),
    )
    if cert_tcb != report.reported_tcb:
        raise bad(f"key certificate TCB mismatch: report says {report.reported_tcb}, certificate says {cert_tcb}")
    return AttestationResult(
        kind="sev-snp",
        measurement=report.measurement,
        report_data=report.report_data,
        debug=report.debug,
        snp_tcb=report.reported_tcb,
        vmpl=report.vmpl,
        policy=report.policy,
        chip_id=report.chip_id,
        root_sha256=root.sha256,
        leaf_not_after=int(leaf.not_valid_after_utc.timestamp()),
        expiries=chain_expiries(ders, _CHAIN_NAMES[report.signing_key], root),
    )
