"""The aicf client: JSON-RPC calls (signed for providers), a requester's jobs (`Requester`), WebSocket events."""

from aicf.client.clock import WallClock
from aicf.client.requester import Requester, RequestFailedError, load_or_create_requester_key
from aicf.client.rpc import RpcClient, RpcError, RpcTransportError
from aicf.client.signing import rpc_digest, sign_auth
from aicf.client.ws import EventSubscriber, SubscriptionError, WsEvent

__all__ = [
    "EventSubscriber",
    "RequestFailedError",
    "Requester",
    "RpcClient",
    "RpcError",
    "RpcTransportError",
    "SubscriptionError",
    "WallClock",
    "WsEvent",
    "load_or_create_requester_key",
    "rpc_digest",
    "sign_auth",
]
