"""Intel DCAP ECDSA quotes: SGX quote v3 and TDX quote v4, with Intel PCS collateral.

Quote = header (48) || body (SGX report 384 | TD report 584) || u32 signature data length || signature data.
Signature data: quote signature (r||s, P-256, big-endian), attestation key (x||y), then for v3 the QE report,
its signature, QE auth data and certification data type 5 (PCK chain, PEM); for v4 certification data type 6
wrapping the same QE report block. The collateral is the JSON object Intel PCS serves (tcb_info, qe_identity as
JSON *strings* whose exact bytes are signed, hex signatures, PEM issuer chains, hex DER CRLs).
"""

import functools
import hashlib
import json
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aicf.proofs.attestation.chain import (
    cert_window,
    chain_expiries,
    ec_key,
    ecdsa_verify,
    load_cert,
    pem_to_ders,
    verify_chain,
)
from aicf.proofs.attestation.der import (
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    check_signed_der,
    decode_oid,
    decode_uint,
    read_one,
    read_tlvs,
)
from aicf.proofs.attestation.result import AttestationResult, Expiry, bad, malformed, stale
from aicf.proofs.attestation.roots import PinnedRoot

HEADER_SIZE = 48
SGX_BODY_SIZE = 384
TD10_BODY_SIZE = 584
QE_REPORT_SIZE = 384
SIG_SIZE = 64
KEY_SIZE = 64
ATT_KEY_ECDSA_P256 = 2
TEE_SGX = 0x00000000
TEE_TDX = 0x00000081
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
CERT_PCK_CHAIN = 5
CERT_QE_REPORT = 6
SGX_ATTR_DEBUG = 0x02  # attributes.flags bit 1
TD_ATTR_DEBUG = 0x01  # td_attributes bit 0
OID_SGX_EXTENSIONS = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
MAX_COLLATERAL_FIELD = 64 * 1024
TCB_INFO_VERSION = 3  # the PCS v4 API's format, for SGX and TDX alike


@dataclass(frozen=True, slots=True, kw_only=True)
class SgxReportBody:
    cpusvn: bytes
    miscselect: int
    attributes: bytes
    mrenclave: bytes
    mrsigner: bytes
    isvprodid: int
    isvsvn: int
    report_data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class TdReportBody:
    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmrs: tuple[bytes, ...]
    report_data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    version: int
    tee_type: int
    signed: bytes  # header || body: what the attestation key signs
    platform: bytes  # the signature data after the quote signature: the same in every quote of one platform
    sgx_body: SgxReportBody | None
    td_body: TdReportBody | None
    quote_sig: bytes
    attest_key: bytes
    qe_report: bytes
    qe_report_sig: bytes
    qe_auth: bytes
    pck_chain: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DcapCollateral:
    tcb_info: bytes
    tcb_info_signature: bytes
    tcb_info_issuer_chain: tuple[bytes, ...]
    qe_identity: bytes
    qe_identity_signature: bytes
    qe_identity_issuer_chain: tuple[bytes, ...]
    root_ca_crl: bytes
    pck_crl: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PckExtensions:
    fmspc: bytes
    pceid: bytes
    cpusvn_components: tuple[int, ...]
    pcesvn: int


class _Reader:
    """Sequential little-endian reader; every short read is MALFORMED with the field's name."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise malformed(
                f"{self.what}: {field} needs {n} bytes at offset {self.pos}, only {len(self.data) - self.pos} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def rest(self) -> bytes:
        return self.data[self.pos :]


def _parse_sgx_body(b: bytes) -> SgxReportBody:
    return SgxReportBody(
        cpusvn=b[0:16],
        miscselect=int.from_bytes(b[16:20], "little"),
        attributes=b[48:64],
        mrenclave=b[64:96],
        mrsigner=b[128:160],
        isvprodid=int.from_bytes(b[256:258], "little"),
        isvsvn=int.from_bytes(b[258:260], "little"),
        report_data=b[320:384],
    )


def _parse_td_body(b: bytes) -> TdReportBody:
    return TdReportBody(
        tee_tcb_svn=b[0:16],
        mrseam=b[16:64],
        mrsignerseam=b[64:112],
        seam_attributes=b[112:120],
        td_attributes=b[120:128],
        xfam=b[128:136],
        mrtd=b[136:184],
        mrconfigid=b[184:232],
        mrowner=b[232:280],
        mrownerconfig=b[280:328],
        rtmrs=tuple(b[328 + 48 * i : 376 + 48 * i] for i in range(4)),
        report_data=b[520:584],
    )


def _parse_qe_block(r: _Reader) -> tuple[bytes, bytes, bytes, tuple[bytes, ...]]:
    qe_report = r.take(QE_REPORT_SIZE, "QE report")
    qe_report_sig = r.take(SIG_SIZE, "QE report signature")
    qe_auth = r.take(r.u16("QE auth data length"), "QE auth data")
    cert_type = r.u16("certification data type")
    if cert_type != CERT_PCK_CHAIN:
        raise malformed(f"{r.what}: certification data type {cert_type}, expected {CERT_PCK_CHAIN} (PCK chain)")
    pem = r.take(r.u32("certification data size"), "PCK certificate chain")
    if r.rest():
        raise malformed(f"{r.what}: {len(r.rest())} unexpected bytes after the PCK chain")
    return qe_report, qe_report_sig, qe_auth, pem_to_ders(pem, "PCK chain", strict=True)


def parse_quote(quote: bytes) -> Quote:
    """Raises AttestationError(MALFORMED) on anything but a well-formed SGX v3 or TDX v4 ECDSA-P256 quote."""
    r = _Reader(quote, "DCAP quote")
    header = r.take(HEADER_SIZE, "header")
    version, att_key_type, tee_type = struct.unpack_from("<HHI", header, 0)
    if (version, tee_type) not in ((3, TEE_SGX), (4, TEE_TDX)):
        raise malformed(f"DCAP quote: version {version} with TEE type 0x{tee_type:x}; expected SGX v3 or TDX v4")
    if att_key_type != ATT_KEY_ECDSA_P256:
        raise malformed(f"DCAP quote: attestation key type {att_key_type}, expected {ATT_KEY_ECDSA_P256} (P-256)")
    if header[12:28] != INTEL_QE_VENDOR_ID:
        raise malformed(f"DCAP quote: QE vendor 0x{header[12:28].hex()}, expected 0x{INTEL_QE_VENDOR_ID.hex()}")
    body = r.take(TD10_BODY_SIZE if tee_type == TEE_TDX else SGX_BODY_SIZE, "report body")
    sig_data = r.take(r.u32("signature data length"), "signature data")
    if any(r.rest()):
        raise malformed(f"DCAP quote: {len(r.rest())} bytes after the signature data are not zero padding")
    s = _Reader(sig_data, "DCAP signature data")
    quote_sig = s.take(SIG_SIZE, "quote signature")
    attest_key = s.take(KEY_SIZE, "attestation key")
    if version == 3:
        qe_report, qe_report_sig, qe_auth, chain = _parse_qe_block(s)
    else:
        cert_type = s.u16("certification data type")
        if cert_type != CERT_QE_REPORT:
            raise malformed(f"DCAP quote v4: certification data type {cert_type}, expected {CERT_QE_REPORT}")
        inner = s.take(s.u32("certification data size"), "QE report certification data")
        if s.rest():
            raise malformed(f"DCAP quote v4: {len(s.rest())} unexpected bytes after the certification data")
        qe_report, qe_report_sig, qe_auth, chain = _parse_qe_block(_Reader(inner, "QE report certification data"))
    return Quote(
        version=version,
        tee_type=tee_type,
        signed=header + body,
        platform=sig_data[SIG_SIZE:],
        sgx_body=_parse_sgx_body(body) if tee_type == TEE_SGX else None,
        td_body=_parse_td_body(body) if tee_type == TEE_TDX else None,
        quote_sig=quote_sig,
        attest_key=attest_key,
        qe_report=qe_report,
        qe_report_sig=qe_report_sig,
        qe_auth=qe_auth,
        pck_chain=chain,
    )


def _field(obj: dict[str, object], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise malformed(f"{what}: field {key!r} must be a string, got {type(value).__name__}")
    if len(value) > MAX_COLLATERAL_FIELD:
        raise malformed(f"{what}: field {key!r} of {len(value)} characters exceeds {MAX_COLLATERAL_FIELD}")
    return value


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise malformed(f"{what}: not hex: {exc}") from exc


@functools.lru_cache(maxsize=64)
def parse_collateral(raw: bytes) -> DcapCollateral:
    """The Intel PCS collateral JSON. Raises AttestationError(MALFORMED) on a missing or ill-typed field."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed(f"DCAP collateral is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise malformed(f"DCAP collateral: expected a JSON object, got {type(doc).__name__}")
    w = "DCAP collateral"
    return DcapCollateral(
        tcb_info=_field(doc, "tcb_info", w).encode(),
        tcb_info_signature=_hex(_field(doc, "tcb_info_signature", w), "tcb_info_signature"),
        tcb_info_issuer_chain=pem_to_ders(
            _field(doc, "tcb_info_issuer_chain", w).encode(), "TCB info chain", strict=False
        ),
        qe_identity=_field(doc, "qe_identity", w).encode(),
        qe_identity_signature=_hex(_field(doc, "qe_identity_signature", w), "qe_identity_signature"),
        qe_identity_issuer_chain=pem_to_ders(
            _field(doc, "qe_identity_issuer_chain", w).encode(), "QE identity chain", strict=False
        ),
        root_ca_crl=_hex(_field(doc, "root_ca_crl", w), "root_ca_crl"),
        pck_crl=_hex(_field(doc, "pck_crl", w), "pck_crl"),
    )


@functools.lru_cache(maxsize=1024)
def parse_pck_extensions(cert: x509.Certificate) -> PckExtensions:
    """FMSPC, PCE-ID and the TCB (16 component SVNs and PCESVN) from the PCK certificate's SGX extension."""
    try:
        ext = cert.extensions.get_extension_for_oid(OID_SGX_EXTENSIONS).value
    except x509.ExtensionNotFound as exc:
        raise bad("PCK certificate lacks the SGX extension 1.2.840.113741.1.13.1") from exc
    if not isinstance(ext, x509.UnrecognizedExtension):
        raise malformed("PCK SGX extension has an unexpected type")
    fields: dict[str, tuple[int, bytes]] = {}
    for item in read_tlvs(read_one(ext.value, TAG_SEQUENCE, "SGX extension"), "SGX extension"):
        oid, value = _oid_value(item.value, "SGX extension item")
        fields[oid] = value
    root = OID_SGX_EXTENSIONS.dotted_string
    tcb = fields.get(root + ".2")
    fmspc, pceid = fields.get(root + ".4"), fields.get(root + ".3")
    if tcb is None or fmspc is None or pceid is None:
        raise bad("PCK SGX extension lacks TCB, FMSPC or PCE-ID")
    comps: dict[str, int] = {}
    if tcb[0] != TAG_SEQUENCE:
        raise malformed("PCK TCB is not a SEQUENCE")
    for item in read_tlvs(tcb[1], "PCK TCB"):
        oid, value = _oid_value(item.value, "PCK TCB item")
        if value[0] == TAG_INTEGER:
            comps[oid] = decode_uint(value[1], oid)
    try:
        svns = tuple(comps[f"{root}.2.{i}"] for i in range(1, 17))
        pcesvn = comps[f"{root}.2.17"]
    except KeyError as exc:
        raise bad(f"PCK TCB lacks component {exc}") from exc
    if fmspc[0] != TAG_OCTET_STRING or pceid[0] != TAG_OCTET_STRING:
        raise malformed("PCK FMSPC / PCE-ID must be OCTET STRINGs")
    return PckExtensions(fmspc=fmspc[1], pceid=pceid[1], cpusvn_components=svns, pcesvn=pcesvn)


def _oid_value(data: bytes, what: str) -> tuple[str, tuple[int, bytes]]:
    tlvs = read_tlvs(data, what)
    if len(tlvs) != 2 or tlvs[0].tag != TAG_OID:
        raise malformed(f"{what}: expected SEQUENCE {{OID, value}}")
    return decode_oid(tlvs[0].value), (tlvs[1].tag, tlvs[1].value)


def parse_time(text: object, what: str) -> int:
    if not isinstance(text, str):
        raise malformed(f"{what}: expected an ISO 8601 time string, got {type(text).__name__}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise malformed(f"{what}: bad time {text!r}") from exc
    if parsed.tzinfo is None:
        raise malformed(f"{what}: time {text!r} has no zone")
    return int(parsed.timestamp())


def _p256_raw_verify(key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes) -> bool:
    return ecdsa_verify(key, int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), data, hashes.SHA256())


@functools.lru_cache(maxsize=256)
def _raw_p256_key(xy: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + xy)
    except ValueError as exc:
        raise bad(f"attestation key is not a P-256 point: {exc}") from exc


@functools.lru_cache(maxsize=1024)
def _p256_signed_by(signer_der: bytes, sig: bytes, data: bytes) -> bool:
    """Memoised: QE reports, TCB info and QE identity repeat verbatim in every quote from the same platform."""
    key = ec_key(load_cert(signer_der), ec.SECP256R1, "P-256 signer")
    return len(sig) == SIG_SIZE and _p256_raw_verify(key, sig, data)


@functools.lru_cache(maxsize=256)
def _json_object(body: bytes, what: str) -> dict[str, object]:
    """Memoised JSON parse; callers only read the result."""
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise malformed(f"{what}: expected a JSON object")
    return doc


def _signed_json(
    body: bytes, sig: bytes, chain: tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int, what: str
) -> tuple[dict[str, object], PinnedRoot]:
    """Verify a signed PCS JSON document: chain to the pinned root, signature over its exact bytes, its dates.
    Returns the document and the root its chain reached."""
    root = verify_chain(chain, anchors, at_time, f"{what} issuer chain")
    if not _p256_signed_by(chain[0], sig, body):
        raise bad(f"{what} signature does not verify under {load_cert(chain[0]).subject.rfc4514_string()}")
    doc = _json_object(body, what)
    issue, next_update = (
        parse_time(doc.get("issueDate"), f"{what} issueDate"),
        parse_time(doc.get("nextUpdate"), f"{what} nextUpdate"),
    )
    if not issue <= at_time <= next_update:
        raise stale(f"{what} valid {issue}..{next_update} (issueDate..nextUpdate), verification time {at_time}")
    return doc, root


@functools.lru_cache(maxsize=256)
def _load_crl(der: bytes, what: str) -> x509.CertificateRevocationList:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            crl = x509.load_der_x509_crl(der)
            _ = crl.issuer, crl.extensions, crl.signature_algorithm_parameters
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion, x509.DuplicateExtension) as exc:
            raise malformed(f"{what} does not parse: {type(exc).__name__}: {exc}") from exc
    if caught:
        raise malformed(f"{what} parses only with a warning: {caught[0].message}")
    check_signed_der(der, crl.tbs_certlist_bytes, crl.signature, what)
    if crl.public_bytes(serialization.Encoding.DER) != der:
        raise malformed(f"{what} has bytes after its DER encoding")
    return crl


@functools.lru_cache(maxsize=256)
def _crl_signed_by(der: bytes, issuer_der: bytes, what: str) -> bool:
    try:
        return _load_crl(der, what).is_signature_valid(ec_key(load_cert(issuer_der), ec.SECP256R1, f"{what} issuer"))
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise bad(f"{what} signature cannot be checked: {exc}") from exc


def _check_crl(der: bytes, issuer_der: bytes, at_time: int, what: str) -> x509.CertificateRevocationList:
    crl, issuer = _load_crl(der, what), load_cert(issuer_der)
    if crl.issuer != issuer.subject:
        raise bad(
            f"{what} issuer mismatch: expected {issuer.subject.rfc4514_string()}, got {crl.issuer.rfc4514_string()}"
        )
    if not _crl_signed_by(der, issuer_der, what):
        raise bad(f"{what} signature does not verify under {issuer.subject.rfc4514_string()}")
    start = int(crl.last_update_utc.timestamp())
    end = int(crl.next_update_utc.timestamp()) if crl.next_update_utc is not None else None
    if end is None or not start <= at_time <= end:
        raise stale(f"{what} valid {start}..{end} (thisUpdate..nextUpdate), verification time {at_time}")
    return crl


def _not_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate, what: str) -> None:
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        raise bad(f"{what} {cert.subject.rfc4514_string()} (serial {cert.serial_number:x}) is revoked")


def _obj(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise malformed(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise malformed(f"{what}: expected a JSON list, got {type(value).__name__}")
    return value


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise malformed(f"{what}: expected an integer, got {value!r}")
    return value


def _hexfield(doc: dict[str, object], key: str, what: str) -> bytes:
    return _hex(_field(doc, key, what), f"{what} {key}")


def _svns(components: object, what: str) -> tuple[int, ...]:
    items = _list(components, what)
    if len(items) != 16:
        raise malformed(f"{what}: expected 16 components, got {len(items)}")
    return tuple(_int(_obj(c, what).get("svn"), f"{what} svn") for c in items)


def _advisories(level: dict[str, object]) -> tuple[str, ...]:
    ids = level.get("advisoryIDs", [])
    return tuple(str(a) for a in _list(ids, "advisoryIDs"))


def _select_tcb_level(
    tcb_info: dict[str, object], pck: PckExtensions, tee_tcb_svn: bytes | None
) -> tuple[str, tuple[str, ...]]:
    """The first (highest) TCB level the platform meets; for TDX the TD's TEE_TCB_SVN must meet it too.

    When the TDX module major version (TEE_TCB_SVN[1]) is non-zero, its first two bytes are judged by the module
    identity instead, so the comparison starts at index 2 (as Intel's QVL does).
    """
    start = 2 if tee_tcb_svn is not None and tee_tcb_svn[1] > 0 else 0
    for raw in _list(tcb_info.get("tcbLevels"), "tcbLevels"):
        level = _obj(raw, "tcbLevel")
        tcb = _obj(level.get("tcb"), "tcbLevel.tcb")
        sgx = _svns(tcb.get("sgxtcbcomponents"), "sgxtcbcomponents")
        if not all(have >= need for have, need in zip(pck.cpusvn_components, sgx, strict=True)):
            continue
        if pck.pcesvn < _int(tcb.get("pcesvn"), "pcesvn"):
            continue
        if tee_tcb_svn is not None:
            tdx = _svns(tcb.get("tdxtcbcomponents"), "tdxtcbcomponents")
            if not all(tee_tcb_svn[i] >= tdx[i] for i in range(start, 16)):
                continue
        return _field(level, "tcbStatus", "tcbLevel"), _advisories(level)
    raise bad(
        f"platform TCB (components {list(pck.cpusvn_components)}, pcesvn {pck.pcesvn}) matches no TCB level "
        f"of FMSPC {pck.fmspc.hex().upper()}: TCB not supported"
    )


def _check_qe_identity(identity: dict[str, object], qe: SgxReportBody, want_id: str) -> tuple[str, tuple[str, ...]]:
    if identity.get("id") != want_id:
        raise bad(f"QE identity id {identity.get('id')!r}, expected {want_id!r}")
    w = "QE identity"
    if (want := _hexfield(identity, "mrsigner", w)) != qe.mrsigner:
        raise bad(f"QE mrsigner mismatch: expected 0x{want.hex()}, got 0x{qe.mrsigner.hex()}")
    if (want_prod := _int(identity.get("isvprodid"), "isvprodid")) != qe.isvprodid:
        raise bad(f"QE isvprodid mismatch: expected {want_prod}, got {qe.isvprodid}")
    misc = int.from_bytes(_hexfield(identity, "miscselect", w), "big")
    misc_mask = int.from_bytes(_hexfield(identity, "miscselectMask", w), "big")
    if qe.miscselect & misc_mask != misc & misc_mask:
        raise bad(f"QE miscselect 0x{qe.miscselect:08x} does not match 0x{misc:08x} under mask 0x{misc_mask:08x}")
    attrs, mask = _hexfield(identity, "attributes", w), _hexfield(identity, "attributesMask", w)
    if len(attrs) != 16 or len(mask) != 16:
        raise malformed("QE identity attributes / attributesMask must be 16 bytes")
    if any((a & m) != (b & m) for a, b, m in zip(qe.attributes, attrs, mask, strict=True)):
        raise bad(f"QE attributes 0x{qe.attributes.hex()} do not match 0x{attrs.hex()} under mask 0x{mask.hex()}")
    for raw in _list(identity.get("tcbLevels"), "QE tcbLevels"):
        level = _obj(raw, "QE tcbLevel")
        if qe.isvsvn >= _int(_obj(level.get("tcb"), "QE tcb").get("isvsvn"), "QE isvsvn"):
            return _field(level, "tcbStatus", "QE tcbLevel"), _advisories(level)
    raise bad(f"QE isvsvn {qe.isvsvn} is below every QE identity TCB level")


def _check_tdx_module(tcb_info: dict[str, object], td: TdReportBody) -> tuple[str, tuple[str, ...]]:
    """The TDX module (SEAM) identity: signer and attributes, and for a non-zero major version its own TCB level."""
    version = td.tee_tcb_svn[1]
    identities = tcb_info.get("tdxModuleIdentities")
    if version == 0 or identities is None:
        module = _obj(tcb_info.get("tdxModule"), "tdxModule")
        status: tuple[str, tuple[str, ...]] = ("UpToDate", ())
        identity = module
    else:
        want_id = f"TDX_{version:02X}"
        found = [
            i for i in _list(identities, "tdxModuleIdentities") if _obj(i, "tdxModuleIdentity").get("id") == want_id
        ]
        if not found:
            raise bad(f"no TDX module identity {want_id} in tcbInfo")
        identity = _obj(found[0], "tdxModuleIdentity")
        status = ("", ())
        for raw in _list(identity.get("tcbLevels"), "TDX module tcbLevels"):
            level = _obj(raw, "TDX module tcbLevel")
            if td.tee_tcb_svn[0] >= _int(_obj(level.get("tcb"), "TDX module tcb").get("isvsvn"), "isvsvn"):
                status = (_field(level, "tcbStatus", "TDX module tcbLevel"), _advisories(level))
                break
        if not status[0]:
            raise bad(f"TDX module {want_id} SVN {td.tee_tcb_svn[0]} is below every module TCB level")
    w = "TDX module identity"
    if (want := _hexfield(identity, "mrsigner", w)) != td.mrsignerseam:
        raise bad(f"TDX module signer mismatch: expected 0x{want.hex()}, got 0x{td.mrsignerseam.hex()}")
    attrs, mask = _hexfield(identity, "attributes", w), _hexfield(identity, "attributesMask", w)
    if len(attrs) != 8 or len(mask) != 8:
        raise malformed("TDX module attributes / attributesMask must be 8 bytes")
    if any((a & m) != (b & m) for a, b, m in zip(td.seam_attributes, attrs, mask, strict=True)):
        raise bad(f"SEAM attributes 0x{td.seam_attributes.hex()} do not match 0x{attrs.hex()} under 0x{mask.hex()}")
    return status


def converge_status(platform: str, qe: str, module: str) -> str:
    """Combine the platform, QE and TDX module statuses the way Intel's QVL does (worst wins)."""
    if "Revoked" in (platform, qe, module):
        return "Revoked"
    if qe == "OutOfDate" or module == "OutOfDate":
        if platform in ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDateConfigurationNeeded"):
            return "OutOfDateConfigurationNeeded"
        return "OutOfDate"
    return platform


@dataclass(frozen=True, slots=True, kw_only=True)
class _Judgement:
    """What the platform part of a quote (PCK chain, QE, collateral) proved, and the time window it holds in."""

    status: str
    advisories: tuple[str, ...]
    root: PinnedRoot
    leaf_not_after: int
    valid_from: int
    valid_until: int
    expiries: tuple[Expiry, ...]  # for the collateral alarm (AttestationResult.expiries)


_MEMO_SIZE = 1024
# Platform judgements by everything they depend on except time. Every time-dependent check of `_judge_platform`
# is a window test, so a judgement made at one instant holds at any instant inside the intersection of its windows.
_PLATFORM_MEMO: dict[tuple[bytes, bytes, tuple[PinnedRoot, ...], bool, bytes], _Judgement] = {}


def _judge_platform(
    quote: Quote, col: DcapCollateral, anchors: tuple[PinnedRoot, ...], at_time: int, tdx: bool
) -> _Judgement:
    """(3) PCK chain to the pinned Intel root, valid at `at_time`; (4) root CA CRL and PCK CRL signed, current, and
    revoking neither the PCK CA nor the PCK leaf; (5) QE report signed by the PCK key; (6) QE report_data binds the
    attestation key and QE auth data; (7) tcbInfo and (8) qeIdentity signed under the TCB signing chain, current,
    for this platform; (9) QE identity matches; (10) TCB level by FMSPC/PCE-ID/CPUSVN/PCESVN (TDX: and TEE_TCB_SVN,
    module identity) -> status.
    """
    root = verify_chain(quote.pck_chain, anchors, at_time, "PCK chain")  # (3)
    if len(quote.pck_chain) < 2:
        raise bad("PCK chain must hold the PCK leaf and its CA")
    pck_leaf, pck_ca = load_cert(quote.pck_chain[0]), load_cert(quote.pck_chain[1])
    root_crl = _check_crl(col.root_ca_crl, root.der, at_time, "root CA CRL")  # (4)
    _not_revoked(root_crl, pck_ca, "PCK CA")
    pck_crl = _check_crl(col.pck_crl, quote.pck_chain[1], at_time, "PCK CRL")
    _not_revoked(pck_crl, pck_leaf, "PCK certificate")
    if not _p256_signed_by(quote.pck_chain[0], quote.qe_report_sig, quote.qe_report):  # (5)
        raise bad("QE report signature does not verify under the PCK key")
    qe = _parse_sgx_body(quote.qe_report)
    want = hashlib.sha256(quote.attest_key + quote.qe_auth).digest() + bytes(32)  # (6)
    if qe.report_data != want:
        raise bad(
            f"QE report data does not bind the attestation key: expected 0x{want.hex()}, got 0x{qe.report_data.hex()}"
        )
    tcb_info, tcb_root = _signed_json(  # (7)
        col.tcb_info, col.tcb_info_signature, col.tcb_info_issuer_chain, anchors, at_time, "tcbInfo"
    )
    for cert_der in col.tcb_info_issuer_chain[:-1] + col.qe_identity_issuer_chain[:-1]:
        _not_revoked(root_crl, load_cert(cert_der), "TCB signing certificate")
    identity, identity_root = _signed_json(  # (8)
        col.qe_identity, col.qe_identity_signature, col.qe_identity_issuer_chain, anchors, at_time, "qeIdentity"
    )
    want_tcb_id = "TDX" if tdx else "SGX"
    if tcb_info.get("id") != want_tcb_id:
        raise bad(f"tcbInfo id {tcb_info.get('id')!r}, expected {want_tcb_id!r}")
    if _int(tcb_info.get("version"), "tcbInfo version") != TCB_INFO_VERSION:
        raise malformed(f"tcbInfo version {tcb_info.get('version')} not supported, expected {TCB_INFO_VERSION}")
    pck = parse_pck_extensions(pck_leaf)
    if (fmspc := _hexfield(tcb_info, "fmspc", "tcbInfo")) != pck.fmspc:
        raise bad(f"tcbInfo is for FMSPC {fmspc.hex().upper()}, the PCK certificate says {pck.fmspc.hex().upper()}")
    if (pceid := _hexfield(tcb_info, "pceId", "tcbInfo")) != pck.pceid:
        raise bad(f"tcbInfo is for PCE-ID {pceid.hex()}, the PCK certificate says {pck.pceid.hex()}")
    qe_status, qe_adv = _check_qe_identity(identity, qe, "TD_QE" if tdx else "QE")  # (9)
    td = quote.td_body
    platform_status, advisories = _select_tcb_level(tcb_info, pck, td.tee_tcb_svn if td else None)  # (10)
    module_status, module_adv = _check_tdx_module(tcb_info, td) if td else ("UpToDate", ())
    windows = [
        cert_window(load_cert(d))
        for d in (*quote.pck_chain, root.der, *col.tcb_info_issuer_chain, *col.qe_identity_issuer_chain)
    ]
    for crl in (root_crl, pck_crl):
        next_update = crl.next_update_utc
        if next_update is not None:
            windows.append((int(crl.last_update_utc.timestamp()), int(next_update.timestamp())))
    for doc, what in ((tcb_info, "tcbInfo"), (identity, "qeIdentity")):
        windows.append((parse_time(doc.get("issueDate"), what), parse_time(doc.get("nextUpdate"), what)))
    kind = "tdx" if tdx else "sgx"
    expiries = [
        Expiry(what=f"{kind} {what} nextUpdate", not_after=parse_time(doc.get("nextUpdate"), what))
        for doc, what in ((tcb_info, "tcbInfo"), (identity, "qeIdentity"))
    ]
    for crl, what in ((root_crl, "root CA CRL"), (pck_crl, "PCK CRL")):
        if crl.next_update_utc is not None:
            expiries.append(Expiry(what=f"{kind} {what} nextUpdate", not_after=int(crl.next_update_utc.timestamp())))
    expiries += chain_expiries(quote.pck_chain, (f"{kind} PCK certificate", f"{kind} PCK CA certificate"), root)
    expiries += chain_expiries(col.tcb_info_issuer_chain, (f"{kind} TCB signing certificate",), tcb_root)
    qe_signers = tuple(d for d in col.qe_identity_issuer_chain if d not in col.tcb_info_issuer_chain)
    expiries += chain_expiries(qe_signers, (f"{kind} QE identity signing certificate",), identity_root)
    return _Judgement(
        status=converge_status(platform_status, qe_status, module_status),
        advisories=tuple(sorted(set(advisories) | set(qe_adv) | set(module_adv))),
        root=root,
        leaf_not_after=int(pck_leaf.not_valid_after_utc.timestamp()),
        valid_from=max(w[0] for w in windows),
        valid_until=min(w[1] for w in windows),
        expiries=tuple(expiries),
    )


def _verify_dcap(
    evidence: bytes, collateral_raw: bytes | tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int, tdx: bool
) -> AttestationResult:
    """(1) parse quote and collateral; (2) quote (header || body) signed by the attestation key; (3)..(10) the
    platform judgement of `_judge_platform`, reused from an earlier quote of the same platform with the same
    collateral when `at_time` lies inside every window it was checked against.
    """
    if not isinstance(collateral_raw, bytes):
        raise malformed("DCAP collateral must be the PCS JSON as bytes")
    kind = "tdx" if tdx else "sgx"
    quote = parse_quote(evidence)  # (1)
    if (quote.tee_type == TEE_TDX) != tdx:
        raise malformed(f"{kind}: quote TEE type 0x{quote.tee_type:x} does not match the evidence type")
    col = parse_collateral(collateral_raw)
    if not _p256_raw_verify(_raw_p256_key(quote.attest_key), quote.quote_sig, quote.signed):  # (2)
        raise bad("quote signature does not verify under the attestation key")
    td = quote.td_body
    td_key = td.tee_tcb_svn + td.mrsignerseam + td.seam_attributes if td else b""
    memo_key = (quote.platform, collateral_raw, anchors, tdx, td_key)
    judged = _PLATFORM_MEMO.get(memo_key)
    if judged is None or not judged.valid_from <= at_time <= judged.valid_until:
        judged = _judge_platform(quote, col, anchors, at_time, tdx)  # (3)..(10)
        if len(_PLATFORM_MEMO) >= _MEMO_SIZE:
            del _PLATFORM_MEMO[next(iter(_PLATFORM_MEMO))]
        _PLATFORM_MEMO[memo_key] = judged
    if td is not None:
        return AttestationResult(
            kind=kind,
            measurement=td.mrtd,
            report_data=td.report_data,
            debug=bool(td.td_attributes[0] & TD_ATTR_DEBUG),
            tcb_status=judged.status,
            advisories=judged.advisories,
            extra_measurements=tuple(enumerate(td.rtmrs)),
            root_sha256=judged.root.sha256,
            leaf_not_after=judged.leaf_not_after,
            expiries=judged.expiries,
        )
    sgx = quote.sgx_body
    if sgx is None:
        raise malformed("SGX quote without an SGX report body")
    return AttestationResult(
        kind=kind,
        measurement=sgx.mrenclave,
        report_data=sgx.report_data,
        debug=bool(sgx.attributes[0] & SGX_ATTR_DEBUG),
        tcb_status=judged.status,
        advisories=judged.advisories,
        root_sha256=judged.root.sha256,
        leaf_not_after=judged.leaf_not_after,
        expiries=judged.expiries,
    )


def verify_sgx(
    evidence: bytes, certs: bytes | tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int
) -> AttestationResult:
    """An SGX ECDSA quote v3; `certs` is the PCS collateral JSON. Raises AttestationError."""
    return _verify_dcap(evidence, certs, anchors, at_time, tdx=False)


def verify_tdx(
    evidence: bytes, certs: bytes | tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int
) -> AttestationResult:
    """A TDX ECDSA quote v4; `certs` is the PCS collateral JSON. Raises AttestationError."""
    return _verify_dcap(evidence, certs, anchors, at_time, tdx=True)
