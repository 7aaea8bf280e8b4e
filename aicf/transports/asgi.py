"""The API app: POST /rpc, GET /openrpc.json, WebSocket /ws, plus whatever routes the caller adds.

The caller (aicf.bootstrap.system) supplies the methods, the event source, the clock and the secrets; this module only
wires them to Starlette.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute

from aicf.client.signing import UNBOUND
from aicf.core.clock import Clock
from aicf.transports.auth import MemoryNonceStore, NonceStore, ProviderKeys
from aicf.transports.openrpc import openrpc_document
from aicf.transports.results import DiscoverOut
from aicf.transports.rpc import CallContext, Limits, Registry, RpcMethod, RpcServer
from aicf.transports.schemas import NoParams
from aicf.transports.ws import EventSource, WsLimits, WsServer


def build_app(
    registry: Registry,
    event_source: EventSource,
    clock: Clock,
    operator_token: str | None,
    provider_keys: ProviderKeys,
    *,
    nonce_store: NonceStore | None = None,
    limits: Limits | None = None,
    ws_limits: WsLimits | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    title: str = "aicf",
    version: str = "0.1.0",
    deployment_id: bytes = UNBOUND,
) -> Starlette:
    """The app; `app.state.rpc` is the RpcServer, `app.state.events` the EventHub (call `notify()` after a commit),
    `app.state.ws` the WsServer."""
    methods = registry.copy()
    document = openrpc_document(methods, title=title, version=version)

    def discover(_: NoParams, __: CallContext) -> dict[str, Any]:
        return document

    methods.add(
        RpcMethod(name="rpc.discover", params_model=NoParams, handler=discover, access="read",
                  summary="This server's OpenRPC document", result_type=DiscoverOut),
        reserved_ok=True,
    )  # fmt: skip
    rpc = RpcServer(
        registry=methods,
        clock=clock,
        provider_keys=provider_keys,
        operator_token=operator_token,
        nonces=nonce_store if nonce_store is not None else MemoryNonceStore(),
        limits=limits or Limits(),
        deployment_id=deployment_id,
    )
    ws = WsServer(event_source, ws_limits)

    async def openrpc(_: Request) -> JSONResponse:
        return JSONResponse(document)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await ws.hub.stop()

    app = Starlette(
        routes=[
            Route("/rpc", rpc.endpoint, methods=["POST"]),
            Route("/openrpc.json", openrpc, methods=["GET"]),
            WebSocketRoute("/ws", ws.endpoint),
            *extra_routes,
        ],
        lifespan=lifespan,
    )
    app.state.rpc = rpc
    app.state.events = ws.hub
    app.state.ws = ws
    return app
