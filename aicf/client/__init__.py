"""The aicf client: JSON-RPC calls (signed for providers) and WebSocket events with resume."""

from aicf.client.clock import WallClock
from aicf.client.rpc import RpcClient, RpcError, RpcTransportError
from aicf.client.signing import rpc_digest, sign_auth
from aicf.client.ws import EventSubscriber, SubscriptionError, WsEvent

__all__ = [
    "EventSubscriber",
    "RpcClient",
    "RpcError",
    "RpcTransportError",
    "SubscriptionError",
    "WallClock",
    "WsEvent",
    "rpc_digest",
    "sign_auth",
]
