"""Pinned vendor roots, versioned by activation and expiry heights (SPEC §8).

A root is in force at height h when `activation_height <= h < expiry_height` (no expiry height: in force from
activation on). A rotation adds the new root and gives the old one an expiry some blocks later, so for an overlap
both are in force and evidence chained to either verifies; evidence is judged by the roots in force at its
inclusion height.
"""

import hashlib
from dataclasses import dataclass, replace

from aicf.core.errors import AicfError

AMD = "amd"
INTEL = "intel"
AWS = "aws"
NVIDIA = "nvidia"
ARM_CCA = "arm-cca"
VENDORS = frozenset({AMD, INTEL, AWS, NVIDIA, ARM_CCA})


class VendorRootsError(AicfError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"vendor roots: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedRoot:
    """One version of one vendor root.

    `der` is the root certificate (DER); for `arm-cca`, whose platform key is not certified by a public root, it is
    the SubjectPublicKeyInfo (DER) of the pinned CPAK.
    """

    vendor: str
    name: str
    version: int
    der: bytes
    activation_height: int
    expiry_height: int | None = None

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.der).digest()

    def is_in_force(self, height: int) -> bool:
        return self.activation_height <= height and (self.expiry_height is None or height < self.expiry_height)


@dataclass(frozen=True, slots=True, kw_only=True)
class VendorRoots:
    roots: tuple[PinnedRoot, ...] = ()

    def for_vendor(self, vendor: str) -> tuple[PinnedRoot, ...]:
        return tuple(r for r in self.roots if r.vendor == vendor)

    def roots_in_force(self, height: int) -> "VendorRoots":
        return roots_in_force(self, height)


def make_vendor_roots(roots: tuple[PinnedRoot, ...]) -> VendorRoots:
    """Build a root set, refusing what would make the set ambiguous.

    Raises VendorRootsError on an unknown vendor, an empty activation window or a repeated (vendor, name, version).
    """
    seen: set[tuple[str, str, int]] = set()
    for r in roots:
        if r.vendor not in VENDORS:
            raise VendorRootsError(f"unknown vendor {r.vendor!r}, expected one of {sorted(VENDORS)}")
        if r.expiry_height is not None and r.expiry_height <= r.activation_height:
            raise VendorRootsError(
                f"{r.vendor}/{r.name} v{r.version}: expiry height {r.expiry_height} "
                f"must be above activation height {r.activation_height}"
            )
        key = (r.vendor, r.name, r.version)
        if key in seen:
            raise VendorRootsError(f"{r.vendor}/{r.name} v{r.version} is listed twice")
        seen.add(key)
    return VendorRoots(roots=roots)


def roots_in_force(roots: VendorRoots, height: int) -> VendorRoots:
    """The roots that judge evidence included at `height`."""
    return VendorRoots(roots=tuple(r for r in roots.roots if r.is_in_force(height)))


def rotate_root(roots: VendorRoots, new: PinnedRoot, overlap_blocks: int) -> VendorRoots:
    """Add `new` and retire every in-force version of the same (vendor, name) `overlap_blocks` after its activation.

    The old versions keep verifying during the overlap so evidence already in flight is not stranded.
    Raises VendorRootsError if the overlap is negative or `new` is not a higher version.
    """
    if overlap_blocks < 0:
        raise VendorRootsError(f"overlap must be >= 0 blocks, got {overlap_blocks}")
    retire_at = new.activation_height + overlap_blocks
    kept: list[PinnedRoot] = []
    for r in roots.roots:
        if r.vendor == new.vendor and r.name == new.name:
            if r.version >= new.version:
                raise VendorRootsError(
                    f"{new.vendor}/{new.name}: new version {new.version} must exceed existing {r.version}"
                )
            if r.expiry_height is None or r.expiry_height > retire_at:
                r = replace(r, expiry_height=max(retire_at, r.activation_height + 1))
        kept.append(r)
    return make_vendor_roots((*kept, new))
