"""Certificate parsing and chain checks shared by every evidence kind.

Chains are checked link by link with `verify_directly_issued_by` (it handles RSA-PSS and ECDSA), anchored at a pinned
root in force, and every certificate must be valid at the verification time. A certificate must be the canonical DER
of what was parsed, so that every byte of it is either signed or fixed by the encoding rules. Signature checks on
certificate pairs and certificate parsing are memoised by their DER bytes (pure functions of their input), so
evidence from a chip whose chain was already checked costs only its own signature.
"""

import functools
import hashlib
import re
import warnings

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.utils import CryptographyDeprecationWarning

from aicf.proofs.attestation.der import TAG_SEQUENCE, check_signed_der, read_tlvs
from aicf.proofs.attestation.result import Expiry, bad, malformed, stale, unknown_root
from aicf.proofs.attestation.roots import PinnedRoot

MAX_CERT_BYTES = 16 * 1024
MAX_CHAIN_LEN = 8
# AMD's VCEK/VLEK certificates carry serial number 0, which RFC 5280 forbids; cryptography 50 parses them with this
# warning. It is filtered here only, where certificates are parsed, and only this exact message.
_SERIAL_ZERO_WARNING = r"Parsed a serial number which wasn't positive"
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?")


@functools.lru_cache(maxsize=4096)
def load_cert(der: bytes) -> x509.Certificate:
    """Parse one DER certificate. Raises AttestationError(MALFORMED) on anything `cryptography` refuses."""
    if len(der) > MAX_CERT_BYTES:
        raise malformed(f"certificate of {len(der)} bytes exceeds the {MAX_CERT_BYTES}-byte limit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=_SERIAL_ZERO_WARNING, category=CryptographyDeprecationWarning)
        try:
            cert = x509.load_der_x509_certificate(der)
            # Force every lazily parsed part here, under this filter, not in the middle of a later check.
            cert.public_key()
            _ = cert.subject, cert.issuer, cert.extensions, cert.signature_algorithm_parameters
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion, x509.DuplicateExtension) as exc:
            raise malformed(f"certificate does not parse: {type(exc).__name__}: {exc}") from exc
    if caught:
        raise malformed(f"certificate parses only with a warning: {caught[0].message}")
    # The signature covers the TBS bytes only. The bytes around them are checked by nothing else: a flipped
    # unused-bits octet of the signature BIT STRING (0 -> 1, when the signature's last bits are zero) once left
    # `cert.signature` unchanged and the certificate verified. Every one of them must be the canonical DER.
    check_signed_der(der, cert.tbs_certificate_bytes, cert.signature, "certificate")
    if cert.public_bytes(serialization.Encoding.DER) != der:
        raise malformed("certificate has bytes after its DER encoding")
    return cert


@functools.lru_cache(maxsize=1024)
def pem_to_ders(data: bytes, what: str, *, strict: bool) -> tuple[bytes, ...]:
    """The DER certificates of a PEM chain, in order.

    strict: the text must be exactly the canonical PEM of its certificates (64-column base64, `\\n` line ends),
    optionally followed by NUL padding, so that no byte of it is unchecked.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SERIAL_ZERO_WARNING, category=CryptographyDeprecationWarning)
        try:
            certs = x509.load_pem_x509_certificates(data.rstrip(b"\x00"))
        except (ValueError, x509.InvalidVersion) as exc:
            raise malformed(f"{what}: PEM chain does not parse: {type(exc).__name__}: {exc}") from exc
    if len(certs) > MAX_CHAIN_LEN:
        raise malformed(f"{what}: chain of {len(certs)} certificates exceeds {MAX_CHAIN_LEN}")
    ders = tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)
    for der in ders:
        load_cert(der)  # size limit and full parse, once, under the warning filter
    if strict:
        canonical = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
        if data.rstrip(b"\x00") != canonical:
            raise malformed(f"{what}: PEM chain is not in canonical form (stray or altered bytes)")
    elif len(_PEM_BLOCK.findall(data)) != len(certs):
        raise malformed(f"{what}: PEM chain has {len(certs)} certificates but unexpected block framing")
    return ders


def split_certs(certs: bytes | tuple[bytes, ...], what: str) -> tuple[bytes, ...]:
    """Caller-supplied certificates: a tuple of DER/PEM items, or one bytes of PEM or concatenated DER."""
    items = certs if isinstance(certs, tuple) else (certs,)
    out: list[bytes] = []
    for item in items:
        if not isinstance(item, bytes):
            raise malformed(f"{what}: expected certificate bytes, got {type(item).__name__}")
        if not item:
            continue
        if item.lstrip().startswith(b"-----BEGIN"):
            out.extend(pem_to_ders(item, what, strict=False))
        else:
            for tlv in read_tlvs(item, what):
                if tlv.tag != TAG_SEQUENCE:
                    raise malformed(f"{what}: expected DER certificates (tag 0x30), got tag 0x{tlv.tag:02x}")
                out.append(tlv.raw)
    if len(out) > MAX_CHAIN_LEN:
        raise malformed(f"{what}: chain of {len(out)} certificates exceeds {MAX_CHAIN_LEN}")
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _link_error(child_der: bytes, issuer_der: bytes) -> str:
    """ "" when `issuer` signed `child`, else why not. Memoised: both certificates are immutable bytes."""
    child, issuer = load_cert(child_der), load_cert(issuer_der)
    if child.issuer != issuer.subject:
        return f"issuer name mismatch: expected {issuer.subject.rfc4514_string()}, got {child.issuer.rfc4514_string()}"
    if err := _issuer_error(issuer):
        return err
    try:
        child.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return f"signature of {child.subject.rfc4514_string()} does not verify under {issuer.subject.rfc4514_string()}"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"cannot verify {child.subject.rfc4514_string()}: {exc}"
    return ""


def _issuer_error(issuer: x509.Certificate) -> str:
    """ "" when `issuer` may sign certificates (RFC 5280 §4.2.1.3, §4.2.1.9): basicConstraints CA=true and keyUsage
    with keyCertSign. Both must be present: a certificate that does not say it is a CA is not one (fail closed)."""
    name = issuer.subject.rfc4514_string()
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return f"{name} has no basicConstraints: it is not a CA and may not issue certificates"
    if not bc.ca:
        return f"{name} is not a CA (basicConstraints ca=false)"
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return f"{name} has no keyUsage: keyCertSign is not granted, it may not issue certificates"
    if not usage.key_cert_sign:
        return f"{name} keyUsage lacks keyCertSign: it may not issue certificates"
    return ""


def cert_window(cert: x509.Certificate) -> tuple[int, int]:
    return int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())


def chain_expiries(ders: tuple[bytes, ...], names: tuple[str, ...], root: PinnedRoot) -> tuple[Expiry, ...]:
    """The not-after of each certificate of a verified leaf-first chain below the pinned `root` (the root's own
    expiry is alarmed with the roots), the i-th named `names[i]` (the last name repeated with its index beyond).
    Parses nothing new: `load_cert` already holds every certificate `verify_chain` checked."""
    out: list[Expiry] = []
    for i, der in enumerate(ders):
        if der == root.der:
            continue
        name = names[i] if i < len(names) else f"{names[-1]} {i}"
        out.append(Expiry(what=name, not_after=cert_window(load_cert(der))[1]))
    return tuple(out)


def check_validity(cert: x509.Certificate, at_time: int, what: str) -> None:
    """Raises AttestationError(STALE_ATTESTATION) unless not_before <= at_time <= not_after."""
    start, end = cert_window(cert)
    if not start <= at_time <= end:
        raise stale(
            f"{what} {cert.subject.rfc4514_string()} valid {start}..{end} (unix s), verification time {at_time}"
        )


def verify_chain(ders: tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int, what: str) -> PinnedRoot:
    """Check a leaf-first chain up to a pinned root in force and return that root.

    (1) each certificate is signed by the next, a CA with keyCertSign; (2) the last one is a pinned root, byte for
    byte, or is not self-issued and is signed by one (a CA with keyCertSign);
    (3) every certificate, root included, is valid at `at_time`.
    Raises AttestationError: BAD_ATTESTATION (1), UNKNOWN_ROOT (2), STALE_ATTESTATION (3), MALFORMED (parsing).
    """
    if not ders:
        raise malformed(f"{what}: empty certificate chain")
    if len(ders) > MAX_CHAIN_LEN:
        raise malformed(f"{what}: chain of {len(ders)} certificates exceeds {MAX_CHAIN_LEN}")
    certs = tuple(load_cert(d) for d in ders)
    for i in range(len(ders) - 1):  # (1)
        if err := _link_error(ders[i], ders[i + 1]):
            raise bad(f"{what}: link {i}: {err}")
    last = ders[-1]
    anchor: PinnedRoot | None = None
    for root in anchors:  # (2)
        if root.der == last:
            anchor = root
            break
    if anchor is None and certs[-1].issuer == certs[-1].subject:
        # A self-issued end of chain is a root: it must be a pinned root byte for byte. Looking it up by its issuer
        # name instead would let an altered copy of a pinned root through whenever the pinned key still verifies it.
        raise unknown_root(
            f"{what}: chain ends at self-issued {certs[-1].subject.rfc4514_string()} "
            f"(sha256 {hashlib.sha256(last).hexdigest()}), which is not byte-identical to any root in force: "
            + (", ".join(f"{r.name} v{r.version}" for r in anchors) or "none")
        )
    if anchor is None:
        for root in anchors:
            root_cert = load_cert(root.der)
            if certs[-1].issuer == root_cert.subject and not _link_error(last, root.der):
                anchor = root
                certs = (*certs, root_cert)
                break
    if anchor is None:
        pinned = ", ".join(f"{r.name} v{r.version}" for r in anchors) or "none"
        raise unknown_root(
            f"{what}: chain ends at {certs[-1].subject.rfc4514_string()} "
            f"(sha256 {hashlib.sha256(last).hexdigest()}), issued by {certs[-1].issuer.rfc4514_string()}; "
            f"roots in force: {pinned}"
        )
    for i, cert in enumerate(certs):  # (3)
        check_validity(cert, at_time, f"{what}: certificate {i}")
    return anchor


def ecdsa_verify(
    public_key: ec.EllipticCurvePublicKey, r: int, s: int, data: bytes, algorithm: hashes.HashAlgorithm
) -> bool:
    try:
        public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
    except (InvalidSignature, ValueError):
        return False
    return True


def ec_key(cert: x509.Certificate, curve: type[ec.EllipticCurve], what: str) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, curve):
        raise bad(f"{what}: expected an EC key on {curve.name}, got {type(key).__name__}")
    return key
