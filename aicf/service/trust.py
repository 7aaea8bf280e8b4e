"""Vendor roots and attestation policy in the registry (SPEC §8, §13; docs/ROOTS.md).

`TrustRegistry` holds the per-height view the verifier judges evidence by, cached, and is the facade of the
operator's use-cases, which are plain functions by what they change: vendor roots (aicf.service.trust_roots),
quantum device keys (trust_devices) and attestation policy (trust_policy), with their shared steps in
trust_steps.

Heights. Proofs are verified when submitted, before they are on chain; the acceptance goes on chain with the
envelope at the next block at the earliest, so evidence is judged by the roots and policy in force at
`head + 1`, its earliest inclusion height (`Coordinator.submit_proof`). A change therefore must activate at or
above `head + 1`: a change to heights already produced would judge accepted evidence by rules it never met.

The view is cached against the store's trust version (the highest seq of the trust transition table): one
indexed read per proof, and a change made by any replica is seen by the next proof every replica verifies.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar

from aicf.core.clock import Clock
from aicf.core.trust import RootRecord, TrustChange
from aicf.proofs.attestation.alarms import Expiry
from aicf.proofs.attestation.registry import TrustAnchors, decode_policy
from aicf.proofs.attestation.result import Policy
from aicf.proofs.attestation.roots import PinnedRoot, VendorRoots
from aicf.service import trust_devices, trust_policy, trust_roots
from aicf.service.trust_devices import device_public_key
from aicf.service.trust_policy import PolicySpec, PolicyVersion
from aicf.service.trust_roots import RootView, Rotation
from aicf.service.trust_steps import pinned
from aicf.store.interface import Store, Tx, read_transaction

__all__ = [
    "COLLATERAL_ALARM_S",
    "ExpiryItem",
    "PolicySpec",
    "PolicyVersion",
    "RootView",
    "Rotation",
    "TrustRegistry",
    "device_public_key",
]

ExpiryItem = Expiry  # what `root_expiries` returns, as the transports may name it
COLLATERAL_ALARM_S = 7 * 86400  # the getStatus alarm; deploy/prometheus alerts on the same window


@dataclass(frozen=True, slots=True)
class _Cached:
    version: int
    roots: tuple[PinnedRoot, ...]
    policies: tuple[tuple[str, int, Policy], ...]  # (kind, activation height, policy), by (kind, version)


P = ParamSpec("P")
R = TypeVar("R")


def _on_store_and_clock(fn: Callable[Concatenate[Store, Clock, P], R]) -> Callable[Concatenate["TrustRegistry", P], R]:
    """A use-case function as a method: called with the registry's store and clock."""

    def method(self: "TrustRegistry", /, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self.store, self.clock, *args, **kwargs)

    return wraps(fn)(method)


def _on_store(fn: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate["TrustRegistry", P], R]:
    """A read function as a method: called with the registry's store."""

    def method(self: "TrustRegistry", /, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self.store, *args, **kwargs)

    return wraps(fn)(method)


class TrustRegistry:
    """The registry's roots and policy on one store; see the module docstring."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._cached = _Cached(version=-1, roots=(), policies=())  # replaced whole: safe across threads

    # -- the verifier's view ---------------------------------------------------------------------------------
    def anchors_at(self, tx: Tx, height: int, version: int | None = None) -> TrustAnchors:
        """The roots and per-kind policies in force at `height`, read in the caller's transaction; `version` is
        `tx.trust_version()` when the caller already read it."""
        cached = self._cached
        version = tx.trust_version() if version is None else version
        if version != cached.version:
            cached = _Cached(
                version=version,
                roots=tuple(pinned(r) for r in tx.vendor_roots()),
                policies=tuple(
                    (p.kind, p.activation_height, decode_policy(p.policy)) for p in tx.attestation_policies()
                ),
            )
            self._cached = cached
        policies: dict[str, Policy] = {}
        for kind, activation, policy in cached.policies:  # by (kind, version): the highest active version wins
            if activation <= height:
                policies[kind] = policy
        return TrustAnchors(
            roots=VendorRoots(roots=tuple(r for r in cached.roots if r.is_in_force(height))), policies=policies
        )

    # -- operator use-cases and reads, each the plain function of its module on this registry's store ---------
    add_root = _on_store_and_clock(trust_roots.add_root)
    rotate_root = _on_store_and_clock(trust_roots.rotate_root)
    pin_defaults = _on_store_and_clock(trust_roots.pin_defaults)
    pin_device = _on_store_and_clock(trust_devices.pin_device)
    set_policy = _on_store_and_clock(trust_policy.set_policy)
    root_views = _on_store(trust_roots.root_views)
    root_expiries = _on_store(trust_roots.live_root_expiries)
    device_keys = _on_store(trust_devices.device_keys)
    policies = _on_store(trust_policy.policies)

    # -- the registry's own reads ----------------------------------------------------------------------------
    def roots(self) -> list[RootRecord]:
        with read_transaction(self.store) as tx:
            return tx.vendor_roots()

    def changes(self) -> list[TrustChange]:
        with read_transaction(self.store) as tx:
            return tx.trust_changes()
