"""The SQL backends' half of `TrustTx` (vendor roots, attestation policy, trust transitions), written once over
the primitives `SqlTx` supplies; the queries are in `sql/<backend>/queries.sql` under the migration 0006 header."""

from abc import ABC, abstractmethod
from collections.abc import Mapping

from aicf.core.trust import PolicyRecord, RootRecord, TrustChange
from aicf.store import rows, tables

Params = Mapping[str, object]


class SqlTrustTx(ABC):
    @abstractmethod
    def _one(self, name: str, params: Params) -> rows.Row | None: ...
    @abstractmethod
    def _all(self, name: str, params: Params) -> list[rows.Row]: ...
    @abstractmethod
    def _exec(self, name: str, params: Params) -> int: ...

    def insert_root(self, root: RootRecord) -> bool:
        return self._exec("insert_root", _root_params(root)) == 1

    def set_root_expiry(self, vendor: str, name: str, version: int, expiry_height: int) -> bool:
        params = {"vendor": vendor, "name": name, "version": version, "expiry_height": expiry_height}
        return self._exec("set_root_expiry", params) == 1

    def vendor_roots(self) -> list[RootRecord]:
        return [_root_of(r) for r in self._all("vendor_roots", {})]

    def insert_policy(self, policy: PolicyRecord) -> bool:
        return self._exec("insert_policy", _policy_params(policy)) == 1

    def attestation_policies(self) -> list[PolicyRecord]:
        return [_policy_of(r) for r in self._all("attestation_policies", {})]

    def record_trust_change(self, change: TrustChange) -> int:
        params = _change_params(change)
        got = self._all("insert_trust_change", params)  # read to the end: SQLite finishes a RETURNING statement then
        return rows.as_int(got[0][0])

    def trust_changes(self) -> list[TrustChange]:
        return [_change_of(r) for r in self._all("trust_changes", {})]

    def trust_version(self) -> int:
        row = self._one("trust_version", {})
        return 0 if row is None else rows.as_int(row[0])


_root_params, _root_of = tables.VENDOR_ROOTS.params, tables.VENDOR_ROOTS.decode
_policy_params, _policy_of = tables.ATTESTATION_POLICIES.params, tables.ATTESTATION_POLICIES.decode
_change_params, _change_of = tables.TRUST_TRANSITIONS.params, tables.TRUST_TRANSITIONS.decode
