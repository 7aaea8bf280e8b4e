"""JSON-RPC 2.0 over HTTP POST at /rpc (SPEC §12): the method registry, the dispatcher and cursor pagination.

One call goes through these steps; the first failure answers the call and nothing after it runs:
  1. the envelope: an object with `jsonrpc: "2.0"`, a string `method`, `params` an object or absent, `id` a
     string, an integer or null (absent: a notification, which gets no answer), no other member but `auth`
  2. the method is registered
  3. access: read methods are public; operator methods need `Authorization: Bearer <token>`; provider
     methods need a valid `auth` signature (aicf.transports.auth, steps 1-5)
  4. params validate against the method's pydantic model (the field is named)
  5. a provider call's nonce is recorded (refused if already seen)
  6. the handler runs, in a worker thread; only now can state change
The body, the batch and every page have limits; anything that fails unexpectedly is -32603 without details.
HTTP status: 200 for every answered request (errors included), 204 when nothing is answered (notifications
only), 413 for a body over the limit, 415 for a body that is not `Content-Type: application/json` (a browser
can send text/plain or a form cross-site without asking; application/json needs a CORS preflight, which this
server never grants), 408 for a body that does not arrive within `body_timeout_s` (then the connection is
closed). The last three carry a JSON-RPC error body with a null id.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Generic, Literal, TypeVar, cast

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from aicf.client.signing import UNBOUND
from aicf.core.clock import Clock
from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.core.ids import provider_id
from aicf.service.errors import NonceReusedError
from aicf.service.nonces import request_nonce
from aicf.service.ports import StoreError
from aicf.transports.auth import (
    TS_WINDOW_S,
    MemoryNonceStore,
    NonceStore,
    ProviderKeys,
    VerifiedAuth,
    check_operator,
    consume_nonce,
    verify_provider,
)
from aicf.transports.errors import (
    BatchTooLargeError,
    BodyTooLargeError,
    InvalidParamsError,
    InvalidRequestError,
    JsonValue,
    MethodNotFoundError,
    ParseError,
    ReplayedNonceError,
    error_object,
)
from aicf.transports.schemas import PageParams, validate_params

log = logging.getLogger("aicf.transports.rpc")

Access = Literal["read", "provider", "operator"]
JSON_MEDIA_TYPE: Final = "application/json"
P = TypeVar("P", bound=BaseModel)
T = TypeVar("T")

MAX_JSON_DEPTH: Final = 64
REQUEST_MEMBERS: Final = frozenset({"jsonrpc", "method", "params", "id", "auth"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """What a handler may know about the call beyond its params."""

    method: str
    provider_id: bytes | None = None  # the verified signer, for provider methods


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcMethod(Generic[P]):
    """A method: its params model, its handler (params, context) -> a wire value, who may call it."""

    name: str
    params_model: type[P]
    handler: Callable[[P, CallContext], object]
    access: Access
    summary: str
    description: str = ""
    # A provider method a provider calls before it is registered (aicf.register): the signature is checked with
    # params.public_key, and auth.provider_id must be H("aicf/provider/v1", public_key).
    self_certifying: bool = False
    result_schema: Mapping[str, Any] | None = None  # JSON schema of the result, for the OpenRPC document
    result_type: Any = None  # or the type (aicf.transports.results) the schema is generated from
    # The handler's refusal (an AicfError: its use-case rolled back) gives the nonce back (aicf.heartbeat, whose
    # refusals say the named leases are not live; replaying one can never succeed). Other methods keep it used:
    # a refused withdrawal replayed after a deposit would succeed.
    refusal_frees_nonce: bool = False


class Registry:
    """The methods a server answers, by name. Names under `rpc.` are reserved for the server itself."""

    def __init__(self, methods: Iterable[RpcMethod[Any]] = ()) -> None:
        self._methods: dict[str, RpcMethod[Any]] = {}
        for method in methods:
            self.add(method)

    def add(self, method: RpcMethod[Any], *, reserved_ok: bool = False) -> None:
        if not method.name or len(method.name) > 100:
            raise ValueError(f"method name must be 1..100 characters, got {method.name!r}")
        if method.name.startswith("rpc.") and not reserved_ok:
            raise ValueError(f"{method.name}: names starting with 'rpc.' are reserved by JSON-RPC 2.0")
        if method.name in self._methods:
            raise ValueError(f"{method.name}: already registered")
        if method.access not in ("read", "provider", "operator"):
            raise ValueError(f"{method.name}: access must be read, provider or operator, got {method.access!r}")
        self._methods[method.name] = method

    def get(self, name: str) -> RpcMethod[Any] | None:
        return self._methods.get(name)

    def copy(self) -> "Registry":
        out = Registry()
        out._methods = dict(self._methods)
        return out

    def __iter__(self) -> Iterator[RpcMethod[Any]]:
        return iter(sorted(self._methods.values(), key=lambda m: m.name))

    def __len__(self) -> int:
        return len(self._methods)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_body_bytes: int = 1 << 20
    body_timeout_s: float = 10.0  # the whole body must arrive within this; a stalled upload is cut off (408)
    max_batch: int = 50
    ts_window_s: int = TS_WINDOW_S


# ---- rendering --------------------------------------------------------------------------------------------


def to_wire(value: object) -> JsonValue:
    """A handler's result as JSON: bytes become 0x hex, models are dumped, floats are refused (a bug)."""
    kind = type(value)  # the exact built-in kinds first (a job's story is a few dozen of them), then the rest
    if kind is str or kind is bool or value is None:
        return cast(JsonValue, value)
    if kind is int:
        return cast(int, value)
    if kind is bytes:
        return to_hex(cast(bytes, value))
    if kind is dict:
        out: dict[str, JsonValue] = {}
        for key, item in cast(dict[object, object], value).items():
            if type(key) is not str:
                raise TypeError(f"result map key {key!r} is not a string")
            out[key] = to_wire(item)
        return out
    if kind is list or kind is tuple:
        return [to_wire(item) for item in cast(list[object], value)]
    return _to_wire_other(value)


def _to_wire_other(value: object) -> JsonValue:
    """`to_wire` for values not exactly of a built-in kind: subclasses (enums), models, other mappings."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, BaseModel):
        return to_wire(value.model_dump(mode="json"))
    if isinstance(value, Enum):
        return to_wire(value.value)
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"result map key {key!r} is not a string")
            out[key] = to_wire(item)
        return out
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    raise TypeError(f"a {type(value).__name__} cannot go on the wire (integers, 0x hex bytes, text, lists, maps)")


def dumps(value: JsonValue) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# ---- pagination ---------------------------------------------------------------------------------------------

CursorKey = tuple[int | str | bytes, ...]
_CURSOR_VERSION: Final = "c2"
_CURSOR_MAC_LEN: Final = 16
_KINDS: Final[Mapping[type, str]] = {int: "i", str: "s", bytes: "b"}


def _cursor_mac(secret: bytes, body: bytes) -> str:
    return hmac.new(secret or b"aicf/cursor/v2", body, hashlib.sha256).digest()[:_CURSOR_MAC_LEN].hex()


def encode_cursor(key: CursorKey, scope: str = "", secret: bytes = b"") -> str:
    """An opaque cursor for the position just after `key` (a tuple of ints, strings and bytes) in the list
    named `scope` (the method), authenticated with `secret` (issue 15: a forged or another list's cursor is
    refused). A server without a secret still checks the scope and the checksum."""
    parts: list[JsonValue] = [_CURSOR_VERSION, scope]
    for item in key:
        parts.append(["b", item.hex()] if isinstance(item, bytes) else [_KINDS[type(item)], item])
    parts.append(_cursor_mac(secret, dumps(parts)))
    return base64.urlsafe_b64encode(dumps(parts)).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, shape: tuple[type, ...], scope: str = "", secret: bytes = b"") -> CursorKey:
    """The key inside a cursor made by encode_cursor for `scope` with `secret`; InvalidParamsError otherwise."""
    bad = InvalidParamsError([("cursor", "not a cursor this server issued; pass a next_cursor back unchanged")])
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):
        raise bad from None
    if not isinstance(parts, list) or len(parts) != len(shape) + 3 or parts[0] != _CURSOR_VERSION:
        raise bad
    if parts[1] != scope:
        shown = str(parts[1])[:40]
        raise InvalidParamsError([("cursor", f"a cursor of {shown or 'another list'}, not of {scope or 'this list'}")])
    mac = parts[-1]
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _cursor_mac(secret, dumps(parts[:-1]))):
        raise bad
    key: list[int | str | bytes] = []
    for part, kind in zip(parts[2:-1], shape, strict=True):
        if not (isinstance(part, list) and len(part) == 2 and part[0] == _KINDS.get(kind)):
            raise bad
        value = part[1]
        if kind is bytes and isinstance(value, str):
            try:
                key.append(bytes.fromhex(value))
            except ValueError:
                raise bad from None
        elif (kind is int and isinstance(value, int) and not isinstance(value, bool)) or (
            kind is str and isinstance(value, str)
        ):
            key.append(value)
        else:
            raise bad
    return tuple(key)


def page_of(
    rows: Sequence[T], limit: int, key: Callable[[T], CursorKey], render: Callable[[T], object]
) -> dict[str, JsonValue]:
    """`{items, next_cursor}` from up to limit + 1 rows read after the cursor, in the method's order.

    The extra row only says that more follow; next_cursor is null on the last page.
    """
    items = rows[:limit]
    more = len(rows) > limit and len(items) > 0
    return {
        "items": [to_wire(render(row)) for row in items],
        "next_cursor": encode_cursor(key(items[-1])) if more else None,
    }


def paginate(
    rows: Sequence[T], page: PageParams, key: Callable[[T], CursorKey], render: Callable[[T], object]
) -> dict[str, JsonValue]:
    """page_of over an in-memory sequence sorted by `key` (for small tables and tests)."""
    start = 0
    if page.cursor is not None and rows:
        after = decode_cursor(page.cursor, tuple(type(k) for k in key(rows[0])))
        start = next((i for i, row in enumerate(rows) if key(row) > after), len(rows))
    return page_of(rows[start : start + page.limit + 1], page.limit, key, render)


# ---- the server ------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: object, max_depth: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether the text's brackets (outside strings) nest deeper than `max_depth`, found without parsing: the
    json module recurses per level, and a library that raises the recursion limit (web3 does) turns a deep
    body into a crash of the C stack instead of a RecursionError. Linear in the size of the text."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        if depth > max_depth:
            return True
    return False


def parse_body(body: bytes) -> object:
    """The JSON value of a request body; raises ParseError with a reason a person can act on."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("parse error: the body is not UTF-8") from None
    # brackets at most MAX_JSON_DEPTH in all cannot nest deeper: the common small call skips both depth checks
    shallow = text.count("[") + text.count("{") <= MAX_JSON_DEPTH
    if not shallow and _nesting_exceeds(text, MAX_JSON_DEPTH):
        raise ParseError(f"parse error: the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ParseError("parse error: the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer too long to convert
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ParseError(f"parse error: the body is not valid JSON: {reason[:200]}") from None
    if not shallow and _too_deep(value, MAX_JSON_DEPTH):
        raise ParseError(f"parse error: the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _is_id(value: object) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


@dataclass
class RpcServer:
    registry: Registry
    clock: Clock
    provider_keys: ProviderKeys
    operator_token: str | None = None
    nonces: NonceStore = field(default_factory=MemoryNonceStore)
    limits: Limits = field(default_factory=Limits)
    deployment_id: bytes = UNBOUND  # what provider signatures must cover (aicf.client.signing.deployment_id)

    async def endpoint(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.partition(";")[0].strip().lower() != JSON_MEDIA_TYPE:
            shown = repr(content_type[:60]) if content_type else "none"
            refused = InvalidRequestError(f"invalid request: Content-Type must be application/json, got {shown}")
            return Response(dumps(self._error(None, refused)), status_code=415, media_type=JSON_MEDIA_TYPE)
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                body = await self._read_body(request)
        except BodyTooLargeError as exc:
            return Response(dumps(self._error(None, exc)), status_code=413, media_type=JSON_MEDIA_TYPE)
        except TimeoutError:
            stalled = InvalidRequestError(
                f"invalid request: the body did not arrive within {self.limits.body_timeout_s:g} s"
            )
            return Response(
                dumps(self._error(None, stalled)),
                status_code=408,
                media_type=JSON_MEDIA_TYPE,
                headers={"connection": "close"},  # what is left of the body would be read as the next request
            )
        except ClientDisconnect:
            return Response(status_code=400)
        status, payload = await run_in_threadpool(self.handle, body, request.headers.get("authorization"))
        return Response(payload, status_code=status, media_type=JSON_MEDIA_TYPE if payload else None)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLargeError(limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def handle(self, body: bytes, authorization: str | None) -> tuple[int, bytes | None]:
        """(HTTP status, response body or None) for one request body. Never raises."""
        if len(body) > self.limits.max_body_bytes:
            return 413, dumps(self._error(None, BodyTooLargeError(self.limits.max_body_bytes)))
        now = self.clock.now()  # read once: every call of a batch sees the same instant
        try:
            message = parse_body(body)
        except ParseError as exc:
            return 200, dumps(self._error(None, exc))
        if isinstance(message, list):
            if not message:
                return 200, dumps(self._error(None, InvalidRequestError("invalid request: empty batch")))
            if len(message) > self.limits.max_batch:
                return 200, dumps(self._error(None, BatchTooLargeError(len(message), self.limits.max_batch)))
            answers = [a for a in (self.call(item, authorization, now) for item in message) if a is not None]
            return (200, dumps(list(answers))) if answers else (204, None)
        answer = self.call(message, authorization, now)
        return (200, dumps(answer)) if answer is not None else (204, None)

    def call(self, request: object, authorization: str | None, now: int) -> dict[str, JsonValue] | None:
        """The response object for one request object, None for a notification. Never raises."""
        request_id: JsonValue = None
        notification = False
        try:
            if not isinstance(request, dict):
                raise InvalidRequestError("invalid request: a request must be a JSON object")
            if "id" in request and _is_id(request["id"]):
                request_id = request["id"]
            name, params, auth = self._envelope(request)
            notification = "id" not in request
            method = self.registry.get(name)
            if method is None:
                raise MethodNotFoundError(name)
            context, verified = self._authorize(method, params, auth, authorization, now)
            model = validate_params(method.params_model, params)
            answer = self._run(method, model, context, verified, now)
            result = to_wire(answer)
        except Exception as exc:  # noqa: BLE001 - the one catch-all (STYLE §4): the table decides, bugs are logged
            return None if notification else self._error(request_id, exc)
        return None if notification else {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _run(
        self, method: RpcMethod[Any], model: Any, context: CallContext, verified: VerifiedAuth | None, now: int
    ) -> Any:
        """Run the handler; a signed call's nonce is recorded in its use-case's transaction when the nonce store
        allows it (aicf.service.nonces), else just before. A refusal (an AicfError: its use-case rolled back)
        leaves the nonce used unless the method's refusals give it back (`refusal_frees_nonce`); a store failure
        is no refusal, so with its use-case's transaction the nonce is not recorded and the call may come again."""
        if verified is None:
            return method.handler(model, context)
        try:
            pending = self.nonces.begin(verified.provider_id, verified.nonce, now)
        except NonceReusedError:
            raise ReplayedNonceError(verified.nonce) from None
        if pending is None:
            consume_nonce(self.nonces, verified, now)
            try:
                return method.handler(model, context)
            except AicfError:
                if method.refusal_frees_nonce:
                    self.nonces.forget(verified.provider_id, verified.nonce)
                raise
        try:
            with request_nonce(pending):
                answer = method.handler(model, context)
        except NonceReusedError:
            raise ReplayedNonceError(verified.nonce) from None
        except StoreError:  # not a refusal: the use-case and its nonce rolled back together; the call may come again
            raise
        except AicfError:
            if not method.refusal_frees_nonce and not pending.consumed:
                self.nonces.remember(verified.provider_id, verified.nonce, now)
            raise
        if not pending.consumed:  # the call committed nothing (a read, a dropped proof): record it on its own
            consume_nonce(self.nonces, verified, now)
        return answer

    def _envelope(self, request: dict[str, object]) -> tuple[str, object, object]:
        """(method, params, auth) of a well-formed request object; raises InvalidRequestError naming the flaw."""
        if request.get("jsonrpc") != "2.0":
            raise InvalidRequestError('invalid request: "jsonrpc" must be exactly "2.0"')
        if "id" in request and not _is_id(request["id"]):
            raise InvalidRequestError('invalid request: "id" must be a string, an integer or null')
        name = request.get("method")
        if not isinstance(name, str):
            raise InvalidRequestError('invalid request: "method" must be a string')
        extra = sorted(set(request) - REQUEST_MEMBERS)
        if extra:
            shown = ", ".join(repr(k[:40]) for k in extra[:5])
            raise InvalidRequestError(f"invalid request: unknown member(s) {shown}")
        params = request.get("params", {})
        if isinstance(params, list):
            raise InvalidParamsError([("params", "pass params by name (a JSON object), not by position")])
        if not isinstance(params, dict):
            raise InvalidRequestError('invalid request: "params" must be an object when present')
        return name, params, request.get("auth")

    def _authorize(
        self, method: RpcMethod[Any], params: object, auth: object, authorization: str | None, now: int
    ) -> tuple[CallContext, VerifiedAuth | None]:
        if method.access != "provider" and auth is not None:
            raise InvalidRequestError(f'invalid request: "auth" is only for provider methods; {method.name} is not one')
        if method.access == "operator":
            check_operator(authorization, self.operator_token)
        elif method.access == "provider":
            keys = _self_certified(params) if method.self_certifying else self.provider_keys
            verified = verify_provider(
                method.name, params, auth, now, keys, self.limits.ts_window_s, deployment=self.deployment_id
            )
            return CallContext(method=method.name, provider_id=verified.provider_id), verified
        return CallContext(method=method.name), None

    @staticmethod
    def _error(request_id: JsonValue, exc: BaseException) -> dict[str, JsonValue]:
        return {"jsonrpc": "2.0", "error": error_object(exc), "id": request_id}


def _self_certified(params: object) -> ProviderKeys:
    """Keys for a self-certifying call: the key in params.public_key, for the provider id it hashes to."""
    raw = params.get("public_key") if isinstance(params, dict) else None
    key: bytes | None = None
    if isinstance(raw, str) and raw.startswith("0x") and len(raw) == 66:
        try:
            key = bytes.fromhex(raw[2:])
        except ValueError:
            key = None

    def lookup(pid: bytes) -> bytes | None:
        return key if key is not None and provider_id(key) == pid else None

    return lookup
