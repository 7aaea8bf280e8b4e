"""Vendor roots by height (activation, expiry, rotation with overlap) and expiry alarms."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from aicf.proofs.attestation import (
    AMD,
    AttestationResult,
    PinnedRoot,
    Policy,
    Reject,
    RejectCode,
    VendorRoots,
    VendorRootsError,
    certificate_expiries,
    collateral_expiries,
    expiring_within,
    make_vendor_roots,
    root_expiries,
    roots_in_force,
    rotate_root,
    verify_evidence,
)

DAY = 86_400


def pin(name: str, der: bytes, version: int, activation: int, expiry: int | None = None) -> PinnedRoot:
    return PinnedRoot(
        vendor=AMD, name=name, version=version, der=der, activation_height=activation, expiry_height=expiry
    )


def test_root_is_in_force_from_activation_until_before_expiry() -> None:
    r = pin("ARK", b"x", 1, 10, 20)
    assert [h for h in range(8, 23) if r.is_in_force(h)] == list(range(10, 20))
    assert pin("ARK", b"x", 1, 10).is_in_force(10**9)


def test_rotation_overlaps_old_and_new_roots() -> None:
    old = make_vendor_roots((pin("ARK", b"old", 1, 0),))
    rotated = rotate_root(old, pin("ARK", b"new", 2, 100), overlap_blocks=50)
    assert {r.der for r in roots_in_force(rotated, 99).roots} == {b"old"}
    assert {r.der for r in roots_in_force(rotated, 100).roots} == {b"old", b"new"}
    assert {r.der for r in roots_in_force(rotated, 149).roots} == {b"old", b"new"}
    assert {r.der for r in roots_in_force(rotated, 150).roots} == {b"new"}


def test_rotation_refuses_a_version_that_does_not_increase() -> None:
    roots = make_vendor_roots((pin("ARK", b"old", 2, 0),))
    with pytest.raises(VendorRootsError, match="must exceed"):
        rotate_root(roots, pin("ARK", b"new", 2, 100), overlap_blocks=10)
    with pytest.raises(VendorRootsError, match="overlap"):
        rotate_root(roots, pin("ARK", b"new", 3, 100), overlap_blocks=-1)


def test_root_sets_refuse_ambiguity() -> None:
    with pytest.raises(VendorRootsError, match="twice"):
        make_vendor_roots((pin("ARK", b"a", 1, 0), pin("ARK", b"b", 1, 5)))
    with pytest.raises(VendorRootsError, match="expiry height"):
        make_vendor_roots((pin("ARK", b"a", 1, 10, 10),))
    with pytest.raises(VendorRootsError, match="unknown vendor"):
        make_vendor_roots((replace(pin("ARK", b"a", 1, 0), vendor="acme"),))


def test_evidence_is_judged_by_the_roots_in_force_at_its_inclusion_height(
    samples: dict[str, Any], test_amd: Any, permissive: Policy
) -> None:
    """The real Milan ARK is rotated out for a test ARK: Milan evidence verifies during the overlap, not after."""
    s = samples["snp-milan2"]
    milan = make_vendor_roots((pin("ARK-Milan", s.certs[-1], 1, 0),))
    rotated = rotate_root(milan, replace(test_amd.root, name="ARK-Milan", version=2, activation_height=1000), 100)

    def at_height(h: int) -> AttestationResult | Reject:
        return verify_evidence(s.kind, s.evidence, s.certs, rotated, s.at_time, permissive, height=h)

    assert isinstance(at_height(999), AttestationResult)
    assert isinstance(at_height(1099), AttestationResult)  # overlap
    late = at_height(1100)
    assert isinstance(late, Reject)
    assert late.code == RejectCode.UNKNOWN_ROOT


def test_no_height_means_every_listed_root_counts(samples: dict[str, Any], permissive: Policy) -> None:
    s = samples["snp-milan2"]
    roots = make_vendor_roots((pin("ARK-Milan", s.certs[-1], 1, 0, 5),))
    assert isinstance(verify_evidence(s.kind, s.evidence, s.certs, roots, s.at_time, permissive), AttestationResult)
    late = verify_evidence(s.kind, s.evidence, s.certs, roots, s.at_time, permissive, height=5)
    assert isinstance(late, Reject)


def test_collateral_alarm_lists_what_expires_within_the_window(
    fixture_bytes: Callable[[str], bytes], at: Callable[[str], int]
) -> None:
    items = collateral_expiries(fixture_bytes("sgx-dcap/sgx_quote_collateral.json"))
    now = at("2025-07-01T00:00:00Z")
    assert expiring_within(items, now, DAY) == ()
    soon = expiring_within(items, now, 30 * DAY)
    whats = [a.what for a in soon]
    assert "tcbInfo nextUpdate" in whats
    assert "qeIdentity nextUpdate" in whats
    assert "PCK CRL nextUpdate" in whats
    assert all(0 < a.seconds_left < 30 * DAY for a in soon)
    assert [a.not_after for a in soon] == sorted(a.not_after for a in soon)
    expired = expiring_within(items, at("2025-08-01T00:00:00Z"), 0)
    assert {a.what for a in expired} >= {"tcbInfo nextUpdate", "PCK CRL nextUpdate"}
    assert all(a.seconds_left < 0 for a in expired)


def test_certificate_alarm_covers_leaves_and_roots(
    samples: dict[str, Any], roots: VendorRoots, at: Callable[[str], int]
) -> None:
    vlek = samples["snp-milan-vlek-v3"]
    items = certificate_expiries(vlek.certs, "VLEK chain")
    alarms = expiring_within(items, at("2025-12-01T00:00:00Z"), 30 * DAY)
    assert len(alarms) == 1
    assert "VLEK chain certificate 0" in alarms[0].what
    root_items = root_expiries(roots)
    assert len(root_items) == 6  # every pinned certificate root; the CCA CPAK is a bare key
    assert expiring_within(root_items, at("2026-11-25T00:00:00Z"), 365 * DAY) == ()
