"""The provider request signature of SPEC §12, shared by the client that signs and the server that verifies.

sig = Ed25519(key, H("aicf/rpc/v1", method, canonical_cbor(params), ts, nonce)), params being the JSON value
sent as `params` (an absent `params` is signed as the empty map), ts integer unix seconds, nonce 16 bytes.
"""

from collections.abc import Mapping
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aicf.core.encoding import canonical_cbor, tagged_hash, to_hex
from aicf.core.ids import provider_id

RPC_TAG: Final = "aicf/rpc/v1"
NONCE_LEN: Final = 16


def rpc_digest(method: str, params_cbor: bytes, ts: int, nonce: bytes) -> bytes:
    """The 32 bytes a provider signs; raises EncodingError for a ts canonical CBOR cannot hold."""
    return tagged_hash(RPC_TAG, method, params_cbor, ts, nonce)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_auth(
    key: Ed25519PrivateKey, method: str, params: Mapping[str, object], ts: int, nonce: bytes
) -> dict[str, object]:
    """The `auth` member for a call of `method` with `params`; raises EncodingError for params with floats or nulls."""
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"nonce must be {NONCE_LEN} bytes, got {len(nonce)}")
    digest = rpc_digest(method, canonical_cbor(params), ts, nonce)
    return {
        "provider_id": to_hex(provider_id(public_key_bytes(key))),
        "ts": ts,
        "nonce": to_hex(nonce),
        "sig": to_hex(key.sign(digest)),
    }
