"""A test API: a handful of methods over a little state, a fake clock, provider keys, signing helpers."""

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field
from starlette.applications import Starlette

from aicf.client.signing import UNBOUND, public_key_bytes, sign_auth
from aicf.core.clock import FakeClock
from aicf.core.errors import RequestError
from aicf.core.ids import provider_id
from aicf.transports.asgi import build_app
from aicf.transports.rpc import CallContext, Limits, Registry, RpcMethod, paginate
from aicf.transports.schemas import Hex32, NoParams, PageParams, WireModel
from aicf.transports.ws import MemoryEventSource, WsLimits

OPERATOR_TOKEN = "op-secret-token"  # noqa: S105 - a test fixture
START = 1_700_000_000


def key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def pid(k: Ed25519PrivateKey) -> bytes:
    return provider_id(public_key_bytes(k))


class EchoParams(WireModel):
    text: str
    n: Annotated[int, Field(ge=0)] = 0


class AddParams(WireModel):
    amount: Annotated[int, Field(ge=1, le=1000)]
    note: str = ""


class TaskParams(WireModel):
    task_id: Hex32


class SetParams(WireModel):
    value: Annotated[int, Field(ge=0)]


@dataclass
class State:
    """What the test methods change, so a test can prove a refused request changed nothing."""

    counter: int = 0
    by_provider: dict[bytes, int] = field(default_factory=dict)
    setting: int = 0
    touched: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> tuple[int, dict[bytes, int], int, int]:
        return self.counter, dict(self.by_provider), self.setting, self.touched


def registry(state: State) -> Registry:
    def echo(p: EchoParams, ctx: CallContext) -> dict[str, object]:
        return {"text": p.text, "n": p.n, "method": ctx.method}

    def touch(_: NoParams, __: CallContext) -> int:
        state.touched += 1
        return state.touched

    def items(p: PageParams, _: CallContext) -> dict[str, Any]:
        return paginate(state.items, p, key=lambda row: (row["id"],), render=lambda row: row)

    def task(p: TaskParams, _: CallContext) -> dict[str, object]:
        return {"task_id": p.task_id, "raw": list(p.task_id[:2])}

    def refuse(_: NoParams, __: CallContext) -> None:
        raise RequestError("model", "unknown model 'gpt-9'")

    def boom(_: NoParams, __: CallContext) -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    def floaty(_: NoParams, __: CallContext) -> float:
        return 0.5

    def add(p: AddParams, ctx: CallContext) -> dict[str, object]:
        assert ctx.provider_id is not None
        state.counter += p.amount
        state.by_provider[ctx.provider_id] = state.by_provider.get(ctx.provider_id, 0) + p.amount
        return {"counter": state.counter, "provider_id": ctx.provider_id}

    def ping(_: NoParams, ctx: CallContext) -> bytes:
        assert ctx.provider_id is not None
        return ctx.provider_id

    def set_value(p: SetParams, _: CallContext) -> int:
        state.setting = p.value
        return state.setting

    return Registry(
        [
            RpcMethod(name="test.echo", params_model=EchoParams, handler=echo, access="read", summary="Echo"),
            RpcMethod(name="test.touch", params_model=NoParams, handler=touch, access="read", summary="Count"),
            RpcMethod(name="test.items", params_model=PageParams, handler=items, access="read", summary="Page"),
            RpcMethod(name="test.task", params_model=TaskParams, handler=task, access="read", summary="Bytes"),
            RpcMethod(name="test.refuse", params_model=NoParams, handler=refuse, access="read", summary="Aicf"),
            RpcMethod(name="test.boom", params_model=NoParams, handler=boom, access="read", summary="Bug"),
            RpcMethod(name="test.floaty", params_model=NoParams, handler=floaty, access="read", summary="Bug"),
            RpcMethod(name="test.add", params_model=AddParams, handler=add, access="provider", summary="Add"),
            RpcMethod(name="test.ping", params_model=NoParams, handler=ping, access="provider", summary="Ping"),
            RpcMethod(name="test.set", params_model=SetParams, handler=set_value, access="operator", summary="Set"),
        ]
    )


@dataclass
class Harness:
    app: Starlette
    state: State
    clock: FakeClock
    events: MemoryEventSource
    keys: dict[bytes, bytes]


def harness(
    *, limits: Limits | None = None, ws_limits: WsLimits | None = None, operator_token: str | None = OPERATOR_TOKEN
) -> Harness:
    state = State()
    clock = FakeClock(START)
    events = MemoryEventSource()
    keys = {pid(key(1)): public_key_bytes(key(1)), pid(key(2)): public_key_bytes(key(2))}
    app = build_app(registry(state), events, clock, operator_token, keys.get, limits=limits, ws_limits=ws_limits)
    return Harness(app=app, state=state, clock=clock, events=events, keys=keys)


_nonces = itertools.count(1)


def fresh_nonce() -> bytes:
    return next(_nonces).to_bytes(16, "big")


def signed(
    method: str,
    params: Mapping[str, Any],
    *,
    signer: Ed25519PrivateKey | None = None,
    ts: int = START,
    nonce: bytes | None = None,
    request_id: int | str | None = 1,
    deployment: bytes = UNBOUND,
) -> dict[str, Any]:
    auth = sign_auth(signer or key(1), method, params, ts, nonce if nonce is not None else fresh_nonce(), deployment)
    return {"jsonrpc": "2.0", "method": method, "params": dict(params), "auth": auth, "id": request_id}


def scrape(text: str, name: str) -> dict[tuple[tuple[str, str], ...], int]:
    """The samples of family `name` in a /metrics text, read by prometheus_client's own parser: labels sorted by
    name -> whole-number value (every aicf value is an integer; the library prints it as a float)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[tuple[str, str], ...], int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                if not float(sample.value).is_integer():
                    raise AssertionError(f"{name}{sample.labels}: {sample.value} is not a whole number")
                out[tuple(sorted(sample.labels.items()))] = int(sample.value)
    return out
