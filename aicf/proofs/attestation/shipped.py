"""The public vendor roots shipped with aicf (roots_data/roots.toml), each checked against its SHA-256.

A fresh store pins them from height 0 (aicf.bootstrap.deployment); `aicf roots` manages them after that.
"""

import hashlib
import tomllib
from importlib.resources import files

from aicf.core.errors import AicfError


class ShippedRootsError(AicfError):
    """The vendor roots shipped with aicf (aicf/proofs/attestation/roots_data) are missing or altered."""


def shipped_vendor_roots() -> list[tuple[str, str, bytes]]:
    """(vendor, name, DER) of the public vendor roots listed in roots_data/roots.toml, each checked against its
    SHA-256 there. Raises ShippedRootsError on a missing or altered file."""
    folder = files("aicf.proofs.attestation") / "roots_data"
    manifest = tomllib.loads((folder / "roots.toml").read_text(encoding="utf-8"))
    out: list[tuple[str, str, bytes]] = []
    for entry in manifest.get("root", []):
        try:
            der = (folder / str(entry["file"])).read_bytes()
        except OSError as exc:
            raise ShippedRootsError(f"shipped root {entry['file']} cannot be read: {exc}") from exc
        got = hashlib.sha256(der).hexdigest()
        if got != entry["sha256"]:
            raise ShippedRootsError(f"shipped root {entry['file']}: expected sha256 {entry['sha256']}, got {got}")
        out.append((str(entry["vendor"]), str(entry["name"]), der))
    return out
