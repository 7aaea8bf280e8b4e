"""What a deployment's first start on a database sets up, and what every later start checks against it: the
fingerprints of the operator key and the trap secret (a replica with other secrets is refused), and the shipped
vendor roots pinned from height 0 (aicf.bootstrap.system builds the node around them; docs/DEPLOY.md)."""

from collections.abc import Sequence

from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError
from aicf.core.trust import RootRecord
from aicf.proofs.attestation.shipped import shipped_vendor_roots
from aicf.service.coordinator import Coordinator
from aicf.service.errors import InvalidRootError
from aicf.store.interface import ConcurrentUpdateError, Tx


class DeploymentMismatchError(AicfError):
    """This process's operator key or trap secret is not the one the database was set up with."""


# meta key, what it fingerprints: the secrets whose change would corrupt what is stored (grants and acceptances
# signed by another key, trap seeds committed under another secret). The operator token is not among them: it
# only opens operator calls, and rotating it is a restart with a new one (docs/DECISIONS.md, issue 13).
IDENTITY = (
    ("deployment:operator_key", "operator key (operator.key)"),
    ("deployment:trap_secret", "trap secret (trap.secret)"),
)


def fingerprint(key: str, secret: bytes) -> int:
    """63 bits of a tagged hash: enough to tell two secrets apart, nothing to recover one from."""
    return int.from_bytes(tagged_hash("aicf/deployment/fingerprint/v1", key.encode(), secret)[:8], "big") >> 1


def check_identity(tx: Tx, secrets: Sequence[bytes]) -> None:
    """Record the fingerprints of the operator key and trap secret on a database set up for the first time (or
    by an aicf from before they were recorded); refuse a process whose own differ, writing nothing."""
    for (key, what), secret in zip(IDENTITY, secrets, strict=True):
        mine, kept = fingerprint(key, secret), tx.get_meta(key)
        if kept is None:
            tx.set_meta(key, mine)
        elif kept != mine:
            raise DeploymentMismatchError(
                f"this database was set up with another {what}: every replica of one coordinator needs the same "
                "operator.key and trap.secret; copy them from the first replica's --var folder"
            )


def pin_shipped_roots(coord: Coordinator) -> list[RootRecord]:
    """The shipped vendor roots on a fresh store (from height 0; later runs: none). Two replicas starting at
    once may both try: the loser's insert conflicts (a version already stored), and its second look finds the
    roots pinned; a root refused for any other reason is refused again."""
    try:
        return coord.trust.pin_defaults(shipped_vendor_roots())
    except (ConcurrentUpdateError, InvalidRootError):
        return coord.trust.pin_defaults(shipped_vendor_roots())
