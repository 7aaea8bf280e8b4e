"""The SQL backends' half of `TrustTx` (vendor roots, attestation policy, trust transitions), written once over
the primitives `SqlTx` supplies; the queries are in `sql/<backend>/queries.sql` under the migration 0006 header."""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from aicf.core.trust import PolicyRecord, RootRecord, TrustChange
from aicf.store import rows

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
        params = {"what": change.what, "action": change.action, "subject": change.subject,
                  "detail": change.detail, "height": change.height, "time": change.time}  # fmt: skip
        got = self._all("insert_trust_change", params)  # read to the end: SQLite finishes a RETURNING statement then
        return rows.as_int(got[0][0])

    def trust_changes(self) -> list[TrustChange]:
        return [_change_of(r) for r in self._all("trust_changes", {})]

    def trust_version(self) -> int:
        row = self._one("trust_version", {})
        return 0 if row is None else rows.as_int(row[0])


def _root_params(x: RootRecord) -> dict[str, object]:
    return {
        "vendor": x.vendor,
        "name": x.name,
        "version": x.version,
        "der": x.der,
        "sha256": x.sha256,
        "activation_height": x.activation_height,
        "expiry_height": x.expiry_height,
        "added_height": x.added_height,
        "added_at": x.added_at,
    }


def _root_of(r: Sequence[object]) -> RootRecord:
    return RootRecord(
        vendor=rows.as_str(r[0]),
        name=rows.as_str(r[1]),
        version=rows.as_int(r[2]),
        der=rows.as_bytes(r[3]),
        sha256=rows.as_bytes(r[4]),
        activation_height=rows.as_int(r[5]),
        expiry_height=None if r[6] is None else rows.as_int(r[6]),
        added_height=rows.as_int(r[7]),
        added_at=rows.as_int(r[8]),
    )


def _policy_params(x: PolicyRecord) -> dict[str, object]:
    return {
        "kind": x.kind,
        "version": x.version,
        "activation_height": x.activation_height,
        "policy": x.policy,
        "added_height": x.added_height,
        "added_at": x.added_at,
    }


def _policy_of(r: Sequence[object]) -> PolicyRecord:
    return PolicyRecord(
        kind=rows.as_str(r[0]),
        version=rows.as_int(r[1]),
        activation_height=rows.as_int(r[2]),
        policy=rows.as_bytes(r[3]),
        added_height=rows.as_int(r[4]),
        added_at=rows.as_int(r[5]),
    )


def _change_of(r: Sequence[object]) -> TrustChange:
    return TrustChange(
        seq=rows.as_int(r[0]),
        what=rows.as_str(r[1]),
        action=rows.as_str(r[2]),
        subject=rows.as_str(r[3]),
        detail=rows.as_str(r[4]),
        height=rows.as_int(r[5]),
        time=rows.as_int(r[6]),
    )
