"""Expiry alarms (SPEC §13 "collateral near expiry"): certificates, TCB info, QE identity and CRLs that stop being
valid within a window, so operators renew them before evidence starts failing as STALE_ATTESTATION.
"""

import json
from dataclasses import dataclass

from cryptography import x509

from aicf.proofs.attestation.chain import load_cert
from aicf.proofs.attestation.dcap import parse_collateral, parse_time
from aicf.proofs.attestation.result import AttestationError, Expiry
from aicf.proofs.attestation.roots import VendorRoots

__all__ = [
    "Expiry",
    "ExpiryAlarm",
    "certificate_expiries",
    "collateral_expiries",
    "expiring_within",
    "root_expiries",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryAlarm:
    what: str
    not_after: int
    seconds_left: int  # negative: already expired


def certificate_expiries(ders: tuple[bytes, ...], what: str) -> tuple[Expiry, ...]:
    """Raises AttestationError(MALFORMED) on a certificate that does not parse."""
    out: list[Expiry] = []
    for i, der in enumerate(ders):
        cert = load_cert(der)
        out.append(
            Expiry(
                what=f"{what} certificate {i} ({cert.subject.rfc4514_string()})",
                not_after=int(cert.not_valid_after_utc.timestamp()),
            )
        )
    return tuple(out)


def root_expiries(roots: VendorRoots) -> tuple[Expiry, ...]:
    """Certificate expiry of every pinned root (public-key roots such as a CPAK have none)."""
    out: list[Expiry] = []
    for root in roots.roots:
        try:
            cert = load_cert(root.der)
        except AttestationError:
            continue
        out.append(
            Expiry(
                what=f"{root.vendor} root {root.name} v{root.version}",
                not_after=int(cert.not_valid_after_utc.timestamp()),
            )
        )
    return tuple(out)


def collateral_expiries(collateral: bytes) -> tuple[Expiry, ...]:
    """nextUpdate of TCB info, QE identity and both CRLs, and expiry of the signing chains, from PCS JSON.

    Raises AttestationError(MALFORMED) on collateral that does not parse.
    """
    col = parse_collateral(collateral)
    out: list[Expiry] = []
    for name, body in (("tcbInfo", col.tcb_info), ("qeIdentity", col.qe_identity)):
        doc = json.loads(body)
        if isinstance(doc, dict):
            out.append(Expiry(what=f"{name} nextUpdate", not_after=parse_time(doc.get("nextUpdate"), name)))
    for name, der in (("root CA CRL", col.root_ca_crl), ("PCK CRL", col.pck_crl)):
        crl = x509.load_der_x509_crl(der)
        if crl.next_update_utc is not None:
            out.append(Expiry(what=f"{name} nextUpdate", not_after=int(crl.next_update_utc.timestamp())))
    out.extend(certificate_expiries(col.tcb_info_issuer_chain, "TCB signing chain"))
    return tuple(out)


def expiring_within(items: tuple[Expiry, ...], at_time: int, window_s: int) -> tuple[ExpiryAlarm, ...]:
    """Everything whose validity ends before `at_time + window_s` (already expired included), soonest first."""
    due = [i for i in items if i.not_after < at_time + window_s]
    return tuple(
        ExpiryAlarm(what=i.what, not_after=i.not_after, seconds_left=i.not_after - at_time)
        for i in sorted(due, key=lambda i: (i.not_after, i.what))
    )
