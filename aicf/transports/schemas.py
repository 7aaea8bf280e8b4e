"""The wire's pydantic models: params of RPC methods, the provider `auth` member, WebSocket messages.

Every model is `extra="forbid"`, `frozen=True` and strict, and is validated in pydantic's JSON mode, so an
integer field takes only a JSON integer (not `"5"`, not `5.0`, not `true`) and a list field takes a JSON
array. Bytes travel as `0x` hex strings (lowercase or uppercase digits, an even number of them).
"""

import json
from collections.abc import Callable
from typing import Annotated, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationError, WithJsonSchema

from aicf.core.encoding import to_hex
from aicf.transports.errors import InvalidParamsError

MAX_INT: Final = 2**63 - 1  # every stored amount is < 2^63 (SPEC §1)
TOPICS: Final = ("jobAssigned", "jobCompleted", "providerSlashed", "epochSettled")  # SPEC §12
PAGE_LIMIT_DEFAULT: Final = 50
PAGE_LIMIT_MAX: Final = 500
CURSOR_MAX_LEN: Final = 512


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _described(length: int | None) -> str:
    return f"{length} bytes as 0x-prefixed hex" if length is not None else "bytes as 0x-prefixed hex"


def hex_parser(length: int | None = None, max_length: int = 1 << 20) -> Callable[[object], bytes]:
    """A pydantic validator for bytes carried as `0x` hex; `length` fixes the byte count."""
    described = _described(length)

    def parse(value: object) -> bytes:
        if not isinstance(value, str) or not value.startswith("0x"):
            raise ValueError(f"expected {described}")
        digits = value[2:]
        if len(digits) > 2 * max_length:
            raise ValueError(f"too long: at most {max_length} bytes")
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            raise ValueError(f"expected {described}, got invalid hex") from None
        if len(digits) != 2 * len(raw):  # fromhex skips whitespace
            raise ValueError(f"expected {described}, got invalid hex")
        if length is not None and len(raw) != length:
            raise ValueError(f"expected {length} bytes, got {len(raw)}")
        return raw

    return parse


def hex_schema(length: int | None = None) -> WithJsonSchema:
    pattern = f"^0x[0-9a-fA-F]{{{2 * length}}}$" if length is not None else "^0x([0-9a-fA-F]{2})*$"
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": _described(length)})


_HEX_OUT = PlainSerializer(to_hex, return_type=str)
Hex = Annotated[bytes, PlainValidator(hex_parser()), _HEX_OUT, hex_schema()]
Hex16 = Annotated[bytes, PlainValidator(hex_parser(16)), _HEX_OUT, hex_schema(16)]
Hex32 = Annotated[bytes, PlainValidator(hex_parser(32)), _HEX_OUT, hex_schema(32)]
Hex64 = Annotated[bytes, PlainValidator(hex_parser(64)), _HEX_OUT, hex_schema(64)]
Uint = Annotated[int, Field(ge=0, le=MAX_INT)]
Topic = Literal["jobAssigned", "jobCompleted", "providerSlashed", "epochSettled"]
M = TypeVar("M", bound=BaseModel)


class Auth(WireModel):
    """The `auth` member of a provider request (SPEC §12), beside `params`."""

    provider_id: Hex32
    ts: Uint
    nonce: Hex16
    sig: Hex64
    deployment: Hex32 | None = None  # the deployment signed for (the signature covers the server's own)


class PageParams(WireModel):
    """Cursor pagination: pass the previous page's `next_cursor` to get the next page."""

    cursor: Annotated[str, Field(max_length=CURSOR_MAX_LEN)] | None = None
    limit: Annotated[int, Field(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_DEFAULT


class NoParams(WireModel):
    pass


class WsSubscribe(WireModel):
    """The one message a WebSocket client sends: which topics, and from which sequence number (inclusive)."""

    op: Literal["subscribe"]
    topics: Annotated[tuple[Topic, ...], Field(min_length=1, max_length=len(TOPICS))]
    from_seq: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None


def field_name(loc: tuple[int | str, ...]) -> str:
    """('items', 3, 'task_id') -> 'items[3].task_id'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "params"


def validate_params(model: type[M], params: object, prefix: str = "") -> M:
    """Validate a decoded JSON value against `model` in JSON mode; raises InvalidParamsError naming each field."""
    try:
        return model.model_validate_json(json.dumps(params, separators=(",", ":")))
    except ValidationError as exc:
        problems = [
            (prefix + field_name(err["loc"]), err["msg"].removeprefix("Value error, "))
            for err in exc.errors(include_url=False)
        ]
        raise InvalidParamsError(problems or [(prefix or "params", "invalid")]) from None
