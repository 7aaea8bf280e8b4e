"""Exceptions -> JSON-RPC error objects, in one table (STYLE §4).

The transport's own failures are `AicfError`s too, so one lookup handles every expected failure:

AicfError
 ├── RpcProtocolError            the request is not a JSON-RPC 2.0 request this server accepts
 │    ├── ParseError             -32700  the body is not JSON
 │    ├── InvalidRequestError    -32600  JSON, but not a request object (or an empty batch)
 │    ├── MethodNotFoundError    -32601  no such method
 │    ├── InvalidParamsError     -32602  params fail the method's schema (the field is named)
 │    ├── BodyTooLargeError      -32050  the body is over the size limit
 │    └── BatchTooLargeError     -32051  the batch holds more calls than the limit
 └── RpcAuthError                the caller is not who the method needs
      ├── OperatorAuthError      -32052  operator token missing or wrong
      ├── ProviderAuthMissingError -32053  provider method without a well-formed `auth` member
      ├── StaleTimestampError    -32054  auth.ts outside the window around the server's clock
      ├── UnknownProviderError   -32055  no key registered for auth.provider_id
      ├── BadSignatureError      -32056  auth.sig does not verify
      ├── ReplayedNonceError     -32057  auth.nonce was already used
      └── WrongDeploymentError   -32059  auth.deployment names another deployment

Anything that is not an `AicfError` is a bug: -32603 with a bland message, the traceback in the log only.
Codes are append-only: a published code never changes meaning.
"""

import logging
from collections.abc import Mapping
from typing import Final

from aicf.core.errors import (
    AicfError,
    AssignmentError,
    DecodingError,
    EncodingError,
    IllegalTransitionError,
    ParamsError,
    RequestError,
    SettlementInputError,
)
from aicf.core.ledger import LedgerError
from aicf.core.qasm import NotCliffordError
from aicf.core.registry import IllegalProviderMoveError
from aicf.core.slashing import UnknownSlashReasonError
from aicf.core.txs import BadTxSignatureError, NonceError, TxError, WrongChainError
from aicf.service.errors import (
    InvalidPolicyError,
    InvalidRegistrationError,
    InvalidRootError,
    LeaseNotFoundError,
    NotFoundError,
    NotLeaseHolderError,
    ProviderBannedError,
    StakeError,
)
from aicf.service.errors import UnknownProviderError as ServiceUnknownProviderError
from aicf.service.ingest import IngestError
from aicf.service.ports import ConcurrentUpdateError, IdempotencyConflictError, StoreError, StoreUnavailableError

log = logging.getLogger("aicf.transports.rpc")

JsonValue = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
INTERNAL_MESSAGE: Final = "internal error: the request failed on the server; it has been logged"


class RpcProtocolError(AicfError):
    """A request this server cannot take as a JSON-RPC 2.0 call; `data` is sent as the error's data."""

    def __init__(self, message: str, data: JsonValue = None) -> None:
        super().__init__(message)
        self.data = data


class ParseError(RpcProtocolError):
    pass


class InvalidRequestError(RpcProtocolError):
    pass


class MethodNotFoundError(RpcProtocolError):
    def __init__(self, method: str) -> None:
        super().__init__(f"method not found: {method[:100]!r}; GET /openrpc.json lists the methods")
        self.method = method


class InvalidParamsError(RpcProtocolError):
    """Each problem is `{field, reason}`; the message names the first field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        field, reason = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"invalid params: {field}: {reason}{more}",
            {"errors": [{"field": f, "reason": r} for f, r in problems]},
        )
        self.problems = problems


class BodyTooLargeError(RpcProtocolError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body too large: the limit is {limit} bytes", {"limit": limit})
        self.limit = limit


class BatchTooLargeError(RpcProtocolError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"batch too large: {size} calls, the limit is {limit}", {"size": size, "limit": limit})
        self.size, self.limit = size, limit


class RpcAuthError(AicfError):
    """The caller did not prove the identity the method needs."""


class OperatorAuthError(RpcAuthError):
    pass


class ProviderAuthMissingError(RpcAuthError):
    pass


class StaleTimestampError(RpcAuthError):
    def __init__(self, ts: int, now: int, window_s: int) -> None:
        super().__init__(
            f"auth.ts {ts} is {ts - now:+d} s from the server's clock ({now}); it must be within ±{window_s} s"
        )
        self.ts, self.now, self.window_s = ts, now, window_s


class UnknownProviderError(RpcAuthError):
    def __init__(self, provider_id: bytes) -> None:
        super().__init__(f"unknown provider 0x{provider_id.hex()}: no key is registered for it")
        self.provider_id = provider_id


class BadSignatureError(RpcAuthError):
    def __init__(self, provider_id: bytes) -> None:
        super().__init__(
            f"auth.sig does not verify under the key of provider 0x{provider_id.hex()} "
            '(it must sign H("aicf/rpc/v2", deployment, method, canonical_cbor(params), ts, nonce) with this '
            "server's deployment id from aicf.getDeployment)"
        )
        self.provider_id = provider_id


class ReplayedNonceError(RpcAuthError):
    def __init__(self, nonce: bytes) -> None:
        super().__init__(f"auth.nonce 0x{nonce.hex()} was already used; sign each request with a fresh nonce")
        self.nonce = nonce


class WrongDeploymentError(RpcAuthError):
    def __init__(self, signed_for: bytes, here: bytes) -> None:
        super().__init__(
            f"auth.deployment 0x{signed_for.hex()} is not this server's deployment 0x{here.hex()} "
            "(aicf.getDeployment): a call signed for another deployment is refused"
        )
        self.signed_for, self.here = signed_for, here


# class -> (code, fixed public message or None to send str(exc)). Append-only; most specific class first.
RPC_ERRORS: Final[Mapping[type[BaseException], tuple[int, str | None]]] = {
    ParseError: (PARSE_ERROR, None),
    InvalidRequestError: (INVALID_REQUEST, None),
    MethodNotFoundError: (METHOD_NOT_FOUND, None),
    InvalidParamsError: (INVALID_PARAMS, None),
    EncodingError: (INVALID_PARAMS, None),  # a value canonical CBOR cannot hold (float, null, > 64-bit int)
    BodyTooLargeError: (-32050, None),
    BatchTooLargeError: (-32051, None),
    OperatorAuthError: (-32052, None),
    ProviderAuthMissingError: (-32053, None),
    StaleTimestampError: (-32054, None),
    UnknownProviderError: (-32055, None),
    BadSignatureError: (-32056, None),
    ReplayedNonceError: (-32057, None),
    WrongDeploymentError: (-32059, None),
    RpcProtocolError: (INVALID_REQUEST, None),
    RpcAuthError: (-32058, None),
    ServiceUnknownProviderError: (-32001, None),
    InvalidRegistrationError: (-32002, None),
    StakeError: (-32003, None),
    NotFoundError: (-32004, None),
    NotLeaseHolderError: (-32005, None),
    ConcurrentUpdateError: (-32006, "another writer changed the same records; retry the request"),
    ProviderBannedError: (-32007, None),
    LeaseNotFoundError: (-32011, None),
    IdempotencyConflictError: (-32012, None),
    IllegalTransitionError: (-32010, None),
    RequestError: (-32013, None),
    ParamsError: (-32014, None),
    AssignmentError: (-32015, None),
    SettlementInputError: (-32016, None),
    LedgerError: (-32017, None),
    IllegalProviderMoveError: (-32018, None),
    UnknownSlashReasonError: (-32019, None),
    NotCliffordError: (-32020, None),
    InvalidRootError: (-32021, None),
    InvalidPolicyError: (-32022, None),
    StoreUnavailableError: (-32030, "the coordinator's database is unavailable; retry later"),
    StoreError: (-32031, "the coordinator's database refused the operation; retry later"),
    IngestError: (-32032, "the coordinator is out of step with the chain; an operator has to act"),
    DecodingError: (INVALID_PARAMS, None),  # outside CBOR that is not canonical or uses tags, floats, nulls
    BadTxSignatureError: (-32041, None),
    NonceError: (-32042, None),
    WrongChainError: (-32043, None),
    TxError: (-32040, None),
    AicfError: (-32000, None),
}


def error_object(exc: BaseException) -> dict[str, JsonValue]:
    """The JSON-RPC error object for `exc`: the most specific row of RPC_ERRORS, else -32603 (logged)."""
    for cls in type(exc).__mro__:
        row = RPC_ERRORS.get(cls)
        if row is not None:
            code, public = row
            error: dict[str, JsonValue] = {"code": code, "message": public if public is not None else str(exc)}
            if isinstance(exc, RpcProtocolError) and exc.data is not None:
                error["data"] = exc.data
            if public is not None:
                log.warning("rpc: %s: %s", type(exc).__name__, exc)
            return error
    log.error("rpc: unexpected failure", exc_info=exc)
    return {"code": INTERNAL_ERROR, "message": INTERNAL_MESSAGE}


def code_of(exc_type: type[BaseException]) -> int:
    """The code an exception of this class is sent with (-32603 for a class outside the table)."""
    return next((RPC_ERRORS[c][0] for c in exc_type.__mro__ if c in RPC_ERRORS), INTERNAL_ERROR)
