"""A small synchronous JSON-RPC 2.0 client for aicf (SPEC §12) on httpx.

Read methods go out as they are; `call_operator` adds the operator token; `call_provider` adds the `auth`
member, signed with the provider's Ed25519 key at the injected clock's time with a fresh random nonce, for the
server's deployment (given, or fetched once from aicf.getDeployment before the first signed call).
A JSON-RPC error comes back as `RpcError(code, message, data)`; a server that does not answer in JSON-RPC
(network failure, HTTP 5xx, not JSON) as `RpcTransportError`.
"""

import itertools
import os
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any, Final

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.client.clock import WallClock
from aicf.client.signing import NONCE_LEN, public_key_bytes, sign_auth
from aicf.core.clock import Clock
from aicf.core.errors import AicfError
from aicf.core.ids import provider_id

JsonParams = Mapping[str, Any]
DEFAULT_TIMEOUT_S: Final = 10.0


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or $SSL_CERT_FILE/$SSL_CERT_DIR), made once per process: loading
    the CA bundle takes some 30 ms of CPU, which every new client (a CLI command, an agent, a requester) paid again.
    One context serves any number of clients and threads."""
    return httpx.create_ssl_context()


def random_nonce() -> bytes:
    return os.urandom(NONCE_LEN)


class RpcError(AicfError):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code, self.message, self.data = code, message, data


class RpcTransportError(AicfError):
    """The server could not be reached or did not answer in JSON-RPC."""


class RpcClient:
    def __init__(
        self,
        url: str,
        *,
        http: httpx.Client | None = None,
        operator_token: str | None = None,
        provider_key: Ed25519PrivateKey | None = None,
        clock: Clock | None = None,
        nonce: Callable[[], bytes] = random_nonce,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        deployment: bytes | None = None,
    ) -> None:
        self.url = url
        self._own_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout_s, verify=tls_context())
        self._operator_token = operator_token
        self._key = provider_key
        self._clock: Clock = clock if clock is not None else WallClock()
        self._nonce = nonce
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._deployment = deployment  # pinned, or learned from the server on the first signed call

    @property
    def provider_id(self) -> bytes:
        if self._key is None:
            raise ValueError("this client has no provider key")
        return provider_id(public_key_bytes(self._key))

    def call(self, method: str, params: JsonParams | None = None) -> Any:
        """Call a read method; returns its result or raises RpcError."""
        return self._send(self.request(method, params), {})

    def call_operator(self, method: str, params: JsonParams | None = None) -> Any:
        if self._operator_token is None:
            raise ValueError("this client has no operator token")
        return self._send(self.request(method, params), {"Authorization": f"Bearer {self._operator_token}"})

    def call_provider(self, method: str, params: JsonParams | None = None) -> Any:
        return self._send(self.signed_request(method, params), {})

    def request(self, method: str, params: JsonParams | None = None) -> dict[str, Any]:
        with self._ids_lock:
            request_id = next(self._ids)
        out: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            out["params"] = dict(params)
        return out

    def signed_request(self, method: str, params: JsonParams | None = None) -> dict[str, Any]:
        """A provider request with its `auth` member (absent params are signed, and sent, as {})."""
        if self._key is None:
            raise ValueError("this client has no provider key")
        body = self.request(method, params if params is not None else {})
        body["auth"] = sign_auth(self._key, method, body["params"], self._clock.now(), self._nonce(), self.deployment)
        return body

    @property
    def deployment(self) -> bytes:
        """The deployment id signed calls are bound to: the one given, else the server's, asked once."""
        if self._deployment is None:
            answer = self.call("aicf.getDeployment")
            raw = answer.get("deployment_id") if isinstance(answer, dict) else None
            try:
                found = bytes.fromhex(raw[2:]) if isinstance(raw, str) and raw.startswith("0x") else b""
            except ValueError:
                found = b""
            if len(found) != 32:
                raise RpcTransportError(f"{self.url}: aicf.getDeployment did not answer a 32-byte deployment_id")
            self._deployment = found
        return self._deployment

    def pages(self, method: str, params: JsonParams | None = None) -> Iterator[Any]:
        """Every item of a paginated read method, following next_cursor to the end."""
        query = dict(params or {})
        while True:
            page = self.call(method, query)
            yield from page["items"]
            if page.get("next_cursor") is None:
                return
            query["cursor"] = page["next_cursor"]

    def post(self, body: object, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """Send any JSON body (a batch, or something deliberately wrong); the raw response."""
        try:
            return self._http.post(self.url, json=body, headers=dict(headers or {}))
        except httpx.HTTPError as exc:
            raise RpcTransportError(f"{self.url}: {exc}") from exc

    def _send(self, body: dict[str, Any], headers: Mapping[str, str]) -> Any:
        response = self.post(body, headers)
        try:
            answer = response.json()
        except ValueError:
            raise RpcTransportError(f"{self.url}: HTTP {response.status_code}, not a JSON-RPC answer") from None
        if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
            raise RpcTransportError(f"{self.url}: HTTP {response.status_code}, not a JSON-RPC answer")
        error = answer.get("error")
        if isinstance(error, dict):
            raise RpcError(int(error.get("code", -32603)), str(error.get("message", "")), error.get("data"))
        if "result" not in answer:
            raise RpcTransportError(f"{self.url}: a JSON-RPC answer with neither result nor error")
        return answer["result"]

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> "RpcClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
