"""The registry's vendor roots and attestation policy in the store contract (SPEC §8; docs/ROOTS.md).

`aicf.store.interface.Tx` extends this Protocol, so every backend implements it and the contract suite
(tests/store/test_contract_trust.py) pins it down. The rows are off-chain, written by operator commands, and
never rolled back. Every change is also a row of the trust transition table; its highest seq is the version a
reader caches against. The store checks only what keeps a row well-formed (unique versions, expiry above
activation); the service judges the rest (a DER that parses, a rotation to a higher version).
"""

from typing import Protocol

from aicf.core.trust import PolicyRecord, RootRecord, TrustChange


class TrustTx(Protocol):
    def insert_root(self, root: RootRecord) -> bool:
        """False (nothing written) if (vendor, name, version) is already stored."""

    def set_root_expiry(self, vendor: str, name: str, version: int, expiry_height: int) -> bool:
        """Set one root version's expiry height; False if there is no such version."""

    def vendor_roots(self) -> list[RootRecord]:
        """Every stored root version, by (vendor, name, version)."""

    def insert_policy(self, policy: PolicyRecord) -> bool:
        """False (nothing written) if (kind, version) is already stored."""

    def attestation_policies(self) -> list[PolicyRecord]:
        """Every stored policy version, by (kind, version)."""

    def record_trust_change(self, change: TrustChange) -> int:
        """Append a row to the trust transition table; returns its seq."""

    def trust_changes(self) -> list[TrustChange]:
        """Every trust change, by seq."""

    def trust_version(self) -> int:
        """The highest trust change seq (0: none yet). It grows with every change to roots or policy."""
