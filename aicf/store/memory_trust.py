"""The memory backend's half of `TrustTx`: vendor roots, attestation policy and trust transitions."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

from aicf.core.trust import PolicyRecord, RootRecord, TrustChange
from aicf.store.interface import ConcurrentUpdateError


@dataclass(slots=True)
class TrustState:
    roots: dict[tuple[str, str, int], RootRecord] = field(default_factory=dict)
    policies: dict[tuple[str, int], PolicyRecord] = field(default_factory=dict)
    changes: list[TrustChange] = field(default_factory=list)

    def copy(self) -> "TrustState":
        return TrustState(roots=dict(self.roots), policies=dict(self.policies), changes=list(self.changes))


class MemoryTrustTx(ABC):
    @property
    @abstractmethod
    def _trust(self) -> TrustState: ...
    @abstractmethod
    def _seq(self) -> int: ...

    def insert_root(self, root: RootRecord) -> bool:
        key = (root.vendor, root.name, root.version)
        if key in self._trust.roots:
            return False
        self._trust.roots[key] = root
        return True

    def set_root_expiry(self, vendor: str, name: str, version: int, expiry_height: int) -> bool:
        found = self._trust.roots.get((vendor, name, version))
        if found is None:
            return False
        if expiry_height <= found.activation_height:  # the SQL backends' CHECK
            raise ConcurrentUpdateError(f"set_root_expiry: {expiry_height} is not above {found.activation_height}")
        self._trust.roots[(vendor, name, version)] = replace(found, expiry_height=expiry_height)
        return True

    def vendor_roots(self) -> list[RootRecord]:
        return [self._trust.roots[k] for k in sorted(self._trust.roots)]

    def roots_in_force(self, height: int) -> list[RootRecord]:
        return [r for r in self.vendor_roots() if r.is_in_force(height)]

    def insert_policy(self, policy: PolicyRecord) -> bool:
        key = (policy.kind, policy.version)
        if key in self._trust.policies:
            return False
        self._trust.policies[key] = policy
        return True

    def attestation_policies(self) -> list[PolicyRecord]:
        return [self._trust.policies[k] for k in sorted(self._trust.policies)]

    def policies_in_force(self, height: int) -> list[PolicyRecord]:
        latest: dict[str, PolicyRecord] = {}
        for p in self.attestation_policies():  # by (kind, version): a later one replaces an earlier one
            if p.activation_height <= height:
                latest[p.kind] = p
        return [latest[k] for k in sorted(latest)]

    def record_trust_change(self, change: TrustChange) -> int:
        seq = self._seq()
        self._trust.changes.append(replace(change, seq=seq))
        return seq

    def trust_changes(self) -> list[TrustChange]:
        return list(self._trust.changes)

    def trust_version(self) -> int:
        return self._trust.changes[-1].seq if self._trust.changes else 0
