"""The provider request signature of SPEC §12, shared by the client that signs and the server that verifies.

sig = Ed25519(key, H("aicf/rpc/v2", deployment, method, canonical_cbor(params), ts, nonce)), params being the
JSON value sent as `params` (an absent `params` is signed as the empty map), ts integer unix seconds, nonce 16
bytes, and deployment = H("aicf/deployment/v1", chain_id, coordinator_key), the 32-byte id of the deployment
the call is meant for (aicf.getDeployment): a call signed for one deployment does not verify at another
(issue 15), even inside the timestamp window and with a nonce the other has never seen.
"""

from collections.abc import Mapping
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aicf.core.encoding import canonical_cbor, tagged_hash, to_hex
from aicf.core.errors import AicfError
from aicf.core.ids import provider_id

RPC_TAG: Final = "aicf/rpc/v2"
DEPLOYMENT_TAG: Final = "aicf/deployment/v1"
NONCE_LEN: Final = 16
UNBOUND: Final = bytes(32)  # the deployment id of a server built without one (tests of the framework alone)


class AuthInputError(AicfError, ValueError):
    """An `auth` member the client cannot build from what it was given; `field` names the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"auth: {field}: {reason}")
        self.field, self.reason = field, reason


def deployment_id(chain_id: int, coordinator_key: bytes) -> bytes:
    """The deployment a signed call is bound to: the chain and the coordinator's (operator's) public key."""
    return tagged_hash(DEPLOYMENT_TAG, chain_id, coordinator_key)


def rpc_digest(method: str, params_cbor: bytes, ts: int, nonce: bytes, deployment: bytes) -> bytes:
    """The 32 bytes a provider signs; raises EncodingError for a ts canonical CBOR cannot hold."""
    return tagged_hash(RPC_TAG, deployment, method, params_cbor, ts, nonce)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_auth(
    key: Ed25519PrivateKey, method: str, params: Mapping[str, object], ts: int, nonce: bytes, deployment: bytes
) -> dict[str, object]:
    """The `auth` member for a call of `method` with `params` to `deployment`; raises EncodingError for params
    with floats or nulls. `auth.deployment` names it, so a server of another deployment says so."""
    if len(nonce) != NONCE_LEN:
        raise AuthInputError("nonce", f"must be {NONCE_LEN} bytes, got {len(nonce)}")
    if len(deployment) != 32:
        raise AuthInputError("deployment", f"must be 32 bytes, got {len(deployment)}")
    digest = rpc_digest(method, canonical_cbor(params), ts, nonce, deployment)
    return {
        "provider_id": to_hex(provider_id(public_key_bytes(key))),
        "ts": ts,
        "nonce": to_hex(nonce),
        "deployment": to_hex(deployment),
        "sig": to_hex(key.sign(digest)),
    }
