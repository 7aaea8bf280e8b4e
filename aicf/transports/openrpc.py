"""The OpenRPC 1.2 document of a registry, served at GET /openrpc.json and by the `rpc.discover` method.

Params schemas come from the methods' pydantic models (by name: one OpenRPC param per model field); shared
sub-schemas go to components.schemas. Who may call a method is the extension `x-access`; provider methods
also document the `auth` member (`x-auth`), and every method lists the error codes it can answer with.
"""

import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter

from aicf.transports.errors import RPC_ERRORS
from aicf.transports.rpc import Registry, RpcMethod
from aicf.transports.schemas import Auth, PageParams

OPENRPC_VERSION: Final = "1.2.6"
REF_TEMPLATE: Final = "#/components/schemas/{model}"

_COMMON_CODES: Final = {-32700: "parse error", -32600: "invalid request", -32601: "method not found",
                        -32602: "invalid params", -32603: "internal error"}  # fmt: skip
_ACCESS_CODES: Final[Mapping[str, tuple[int, ...]]] = {
    "read": (),
    "operator": (-32052,),
    "provider": (-32053, -32054, -32055, -32056, -32057, -32059),
}


def _codes_table() -> dict[int, str]:
    """code -> the exception class names that produce it, for the error descriptions."""
    names: dict[int, list[str]] = {}
    for cls, (code, _) in RPC_ERRORS.items():
        names.setdefault(code, []).append(cls.__name__)
    return {code: ", ".join(found) for code, found in names.items()}


# A type's JSON schema, generated once per process (pydantic takes some 10 ms a model, and every app a process
# builds documents the same ones), kept as text so each document gets its own copy to edit.
_PARAMS_SCHEMAS: dict[object, str] = {}  # params model -> schema
_RESULT_SCHEMAS: dict[object, str] = {}  # result type -> schema (serialization mode)


def _params_schema_text(model: type[BaseModel]) -> str:
    if (text := _PARAMS_SCHEMAS.get(model)) is None:
        text = _PARAMS_SCHEMAS[model] = json.dumps(model.model_json_schema(ref_template=REF_TEMPLATE))
    return text


def _result_schema_text(result_type: Any) -> str:
    if (text := _RESULT_SCHEMAS.get(result_type)) is None:
        schema = TypeAdapter(result_type).json_schema(ref_template=REF_TEMPLATE, mode="serialization")
        text = _RESULT_SCHEMAS[result_type] = json.dumps(schema)
    return text


def _result_schema(method: RpcMethod[Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The result's schema: generated from `result_type` (its sub-schemas go to components), else the one given."""
    if method.result_type is not None:
        schema: dict[str, Any] = json.loads(_result_schema_text(method.result_type))
        schemas.update(schema.pop("$defs", {}))
        return schema
    return dict(method.result_schema) if method.result_schema else {}


def _method_doc(method: RpcMethod[Any], schemas: dict[str, Any], described: Mapping[int, str]) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(_params_schema_text(method.params_model))
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    params = [
        {"name": name, "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]
    codes = sorted({*_COMMON_CODES, *_ACCESS_CODES[method.access]}, reverse=True)
    doc: dict[str, Any] = {
        "name": method.name,
        "summary": method.summary,
        "paramStructure": "by-name",
        "params": params,
        "result": {"name": "result", "schema": _result_schema(method, schemas)},
        "errors": [{"code": c, "message": _COMMON_CODES.get(c) or described.get(c, "")} for c in codes],
        "x-access": method.access,
    }
    if method.description:
        doc["description"] = method.description
    if method.access == "provider":
        doc["x-auth"] = {
            "member": "auth",
            "schema": json.loads(_params_schema_text(Auth)),
            "signs": 'Ed25519 over H("aicf/rpc/v2", deployment, method, canonical_cbor(params), ts, nonce); '
            "deployment: aicf.getDeployment's deployment_id",
        }
    elif method.access == "operator":
        doc["x-auth"] = {"header": "Authorization: Bearer <operator token>"}
    if issubclass(method.params_model, PageParams):
        doc["x-pagination"] = {"cursor": "params.cursor", "limit": "params.limit", "result": "{items, next_cursor}"}
    return doc


def openrpc_document(registry: Registry, *, title: str = "aicf", version: str = "0.1.0") -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    described = _codes_table()
    methods = [_method_doc(method, schemas, described) for method in registry]
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": title, "version": version},
        "servers": [{"name": "this server", "url": "/rpc"}],
        "methods": methods,
        "components": {"schemas": schemas},
        "x-error-codes": {str(code): name for code, name in sorted(described.items(), reverse=True)},
    }
