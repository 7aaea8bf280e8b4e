"""Who may call what: the operator token and the provider request signature (SPEC §12).

A provider request is checked in this order; the first failure decides and nothing is recorded for it:
  1. `auth` is present and well formed                   (ProviderAuthMissingError)
     and `auth.deployment`, when given, is this server's   (WrongDeploymentError)
  2. `params` is a JSON value canonical CBOR can hold     (InvalidParamsError: floats, nulls)
  3. `auth.ts` is within ±window_s of the server's clock  (StaleTimestampError)
  4. a key is registered for `auth.provider_id`           (UnknownProviderError)
  5. `auth.sig` verifies under that key, over this server's deployment id (BadSignatureError)
The nonce is recorded only after the params passed their schema too, so a request refused by these checks never
burns a nonce; a nonce seen within `NONCE_TTL_S` is refused (ReplayedNonceError). A store that records nonces in
transactions (`begin` gives a `RequestNonce`: aicf.service.nonces) records it in the transaction of the use-case
the call runs, so the call's effect and its nonce commit together; otherwise `consume_nonce` records it
immediately before the handler runs. A nonce older than the window cannot be replayed either: its ts fails step 3.
"""

import hmac
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aicf.client.signing import UNBOUND, rpc_digest
from aicf.core.encoding import canonical_cbor
from aicf.core.errors import EncodingError
from aicf.service.nonces import RequestNonce
from aicf.transports.errors import (
    BadSignatureError,
    InvalidParamsError,
    OperatorAuthError,
    ProviderAuthMissingError,
    ReplayedNonceError,
    StaleTimestampError,
    UnknownProviderError,
    WrongDeploymentError,
)
from aicf.transports.schemas import Auth, validate_params

TS_WINDOW_S: Final = 60
NONCE_TTL_S: Final = 120  # > 2 × TS_WINDOW_S: a nonce is remembered for as long as its ts could pass step 3


class NonceStore(Protocol):
    def begin(self, provider_id: bytes, nonce: bytes, now: int) -> RequestNonce | None:
        """The call's nonce for its use-case's transaction to record, or None: record it with `remember`."""
        ...

    def remember(self, provider_id: bytes, nonce: bytes, now: int) -> bool:
        """Record (provider_id, nonce) at `now`; False if it was already recorded within NONCE_TTL_S.

        Must be atomic: of two concurrent calls with the same pair, exactly one returns True.
        """
        ...

    def forget(self, provider_id: bytes, nonce: bytes) -> None:
        """Drop a recorded pair: the call was refused by a method whose refusals give the nonce back."""
        ...


ProviderKeys = Callable[[bytes], bytes | None]  # provider_id -> raw Ed25519 public key, None if unknown


class MemoryNonceStore:
    """Nonces of one process, forgotten NONCE_TTL_S after they were recorded."""

    def __init__(self, ttl_s: int = NONCE_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._seen: dict[tuple[bytes, bytes], int] = {}
        self._order: deque[tuple[int, tuple[bytes, bytes]]] = deque()
        self._lock = threading.Lock()

    def begin(self, provider_id: bytes, nonce: bytes, now: int) -> None:
        """None: these nonces live outside any store transaction, so `remember` records them before the call."""
        return None

    def remember(self, provider_id: bytes, nonce: bytes, now: int) -> bool:
        key = (provider_id, nonce)
        with self._lock:
            while self._order and self._order[0][0] + self._ttl_s < now:
                at, old = self._order.popleft()
                if self._seen.get(old) == at:
                    del self._seen[old]
            if key in self._seen:
                return False
            self._seen[key] = now
            self._order.append((now, key))
            return True

    def forget(self, provider_id: bytes, nonce: bytes) -> None:
        with self._lock:
            self._seen.pop((provider_id, nonce), None)  # its _order entry no longer matches and is skipped

    def __len__(self) -> int:
        return len(self._seen)


def check_operator(authorization: str | None, operator_token: str | None) -> None:
    """Raises OperatorAuthError unless the header is `Bearer <operator_token>` (constant-time compare)."""
    if operator_token is None:
        raise OperatorAuthError("operator methods are disabled on this server (no operator token is configured)")
    if authorization is None:
        raise OperatorAuthError("operator method: send the header `Authorization: Bearer <operator token>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise OperatorAuthError("operator method: the Authorization header must be `Bearer <operator token>`")
    if not hmac.compare_digest(token.strip().encode("utf-8"), operator_token.encode("utf-8")):
        raise OperatorAuthError("operator method: the operator token is wrong")


@dataclass(frozen=True, slots=True)
class VerifiedAuth:
    provider_id: bytes
    nonce: bytes


def verify_provider(
    method: str,
    params: object,
    auth: object,
    now: int,
    keys: ProviderKeys,
    window_s: int = TS_WINDOW_S,
    deployment: bytes = UNBOUND,
) -> VerifiedAuth:
    """Steps 1-5 of the module docstring; returns who signed. Records nothing."""
    if auth is None:  # (1)
        raise ProviderAuthMissingError(
            "provider method: add `auth: {provider_id, ts, nonce, sig}` beside params (SPEC §12)"
        )
    try:
        parsed = validate_params(Auth, auth)
    except InvalidParamsError as exc:
        field, reason = exc.problems[0]
        raise ProviderAuthMissingError(f"malformed auth: auth.{field}: {reason}") from None
    if parsed.deployment is not None and parsed.deployment != deployment:
        raise WrongDeploymentError(parsed.deployment, deployment)
    try:  # (2)
        params_cbor = canonical_cbor(params)
    except EncodingError as exc:
        field = "params" + exc.path.removeprefix("$")
        raise InvalidParamsError(
            [(field, f"{exc.reason} (a signed request's params must be canonical CBOR)")]
        ) from None
    if abs(parsed.ts - now) > window_s:  # (3)
        raise StaleTimestampError(parsed.ts, now, window_s)
    key = keys(parsed.provider_id)  # (4)
    if key is None:
        raise UnknownProviderError(parsed.provider_id)
    try:  # (5)
        Ed25519PublicKey.from_public_bytes(key).verify(
            parsed.sig, rpc_digest(method, params_cbor, parsed.ts, parsed.nonce, deployment)
        )
    except (InvalidSignature, ValueError):
        raise BadSignatureError(parsed.provider_id) from None
    return VerifiedAuth(provider_id=parsed.provider_id, nonce=parsed.nonce)


def consume_nonce(nonces: NonceStore, verified: VerifiedAuth, now: int) -> None:
    if not nonces.remember(verified.provider_id, verified.nonce, now):
        raise ReplayedNonceError(verified.nonce)
