"""Requests as contracts submit them (SPEC §2): the canonical request map, its payload, and the limits.

`build_request_map` is the encoding rule alone (what `request_task_id` vectors check): required keys,
unknown keys refused, defaults omitted, lists sorted. `validate_request` adds every limit of SPEC §2 that
depends only on the request and the params; the limits that need state (balance, open jobs, the caller's
registered tier) are checked by the service against the store.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aicf.core.encoding import canonical_cbor
from aicf.core.errors import RequestError
from aicf.core.ids import payload_hash, task_id
from aicf.core.params import Params
from aicf.core.pricing import ai_max_units, quantum_max_units, reserve_fee
from aicf.core.types import MAX_AMOUNT, MicroAnm, MilliUnits

AI_REQUIRED = ("model", "prompt", "max_tokens", "max_runtime_ms", "fee_per_unit", "tier")
QUANTUM_REQUIRED = ("circuit", "shots", "fee_per_unit", "tier")
OPTIONAL = ("regions", "allowlist", "tee", "deadline_blocks")
_INT_KEYS = ("max_tokens", "max_runtime_ms", "fee_per_unit", "tier", "shots", "deadline_blocks")


def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(name, f"expected an integer, got {type(value).__name__}")
    if not 0 <= value < MAX_AMOUNT:
        raise RequestError(name, f"must be >= 0 and < 2^63, got {value}")
    return value


def _bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise RequestError(name, f"expected bytes, got {type(value).__name__}")
    return value


def build_request_map(request: Mapping[str, object], params: Params) -> dict[str, object]:
    """The canonical request map of SPEC §2 from a request's fields.

    Raises RequestError for a missing or unknown key or a value of the wrong type.
    """
    kind = request.get("kind")
    required: tuple[str, ...]
    if kind == "ai":
        required = AI_REQUIRED
    elif kind == "quantum":
        required = QUANTUM_REQUIRED
    else:
        raise RequestError("kind", f"must be 'ai' or 'quantum', got {kind!r}")
    allowed = {"kind", *required, *OPTIONAL}
    for key in request:
        if key not in allowed:
            raise RequestError(key, f"unknown key for a {kind} request")
    for key in required:
        if key not in request:
            raise RequestError(key, f"missing for a {kind} request")
    out: dict[str, object] = {"kind": kind}
    for key in required:
        value = request[key]
        if key in _INT_KEYS:
            out[key] = _int(key, value)
        elif key in ("prompt", "circuit"):
            out[key] = _bytes(key, value)
        elif key == "model":
            if not isinstance(value, str) or not value:
                raise RequestError(key, "expected a model name")
            out[key] = value
    if "deadline_blocks" in request:
        deadline = _int("deadline_blocks", request["deadline_blocks"])
        if deadline != params.default_deadline_blocks:
            out["deadline_blocks"] = deadline
    if "tee" in request:
        tee = request["tee"]
        if tee not in ("required", "optional"):
            raise RequestError("tee", f"must be 'required' or 'optional', got {tee!r}")
        if tee == "required":
            out["tee"] = tee
    if "regions" in request:
        regions = request["regions"]
        if not isinstance(regions, list | tuple) or not all(isinstance(r, str) and r for r in regions):
            raise RequestError("regions", "expected a list of region names")
        if len(set(regions)) != len(regions):
            raise RequestError("regions", "region names must be unique")
        if regions:
            out["regions"] = sorted(regions)
    if "allowlist" in request:
        allow = request["allowlist"]
        if not isinstance(allow, list | tuple) or not all(isinstance(a, bytes) and len(a) == 32 for a in allow):
            raise RequestError("allowlist", "expected a list of 32-byte provider ids")
        if len(set(allow)) != len(allow):
            raise RequestError("allowlist", "provider ids must be unique")
        if allow:
            out["allowlist"] = sorted(allow)
    return out


def encode_payload(request_map: Mapping[str, object]) -> bytes:
    return canonical_cbor(request_map)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobReceipt:
    task_id: bytes
    chain_id: int
    height: int
    tx_hash: bytes
    caller: bytes
    kind: str
    payload_hash: bytes
    max_units_mu: MilliUnits
    escrow: MicroAnm


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidRequest:
    """A request that passed every stateless limit, with what the coordinator derived from it."""

    request_map: Mapping[str, object]
    payload: bytes
    max_units_mu: MilliUnits
    escrow: MicroAnm
    depth: int  # quantum circuit depth; 0 for AI


CircuitDepth = Callable[[bytes], int]  # parses a circuit and returns its depth; raises RequestError if it cannot


def validate_request(
    request: Mapping[str, object], params: Params, price_bps: int, circuit_depth: CircuitDepth
) -> ValidRequest:
    """Apply the stateless limits of SPEC §2. Raises RequestError naming the field; nothing is stored."""
    rmap = build_request_map(request, params)
    fee = _int("fee_per_unit", rmap["fee_per_unit"])
    tier = _int("tier", rmap["tier"])
    if tier > params.max_tier:
        raise RequestError("tier", f"must be at most {params.max_tier}, got {tier}")
    deadline = rmap.get("deadline_blocks", params.default_deadline_blocks)
    if isinstance(deadline, int) and deadline > params.max_deadline_blocks:
        raise RequestError("deadline_blocks", f"must be at most {params.max_deadline_blocks}, got {deadline}")
    regions = rmap.get("regions", [])
    if isinstance(regions, list) and len(regions) > params.max_regions:
        raise RequestError("regions", f"at most {params.max_regions} regions, got {len(regions)}")
    allowlist = rmap.get("allowlist", [])
    if isinstance(allowlist, list) and len(allowlist) > params.max_allowlist:
        raise RequestError("allowlist", f"at most {params.max_allowlist} provider ids, got {len(allowlist)}")
    depth = 0
    if rmap["kind"] == "ai":
        model = str(rmap["model"])
        weight = params.weight_milli(model)
        if weight is None:
            known = ", ".join(sorted(params.model_weights))
            raise RequestError("model", f"unknown model {model!r}; known models: {known}")
        prompt = _bytes("prompt", rmap["prompt"])
        if len(prompt) > params.max_prompt_bytes:
            raise RequestError("prompt", f"{len(prompt)} bytes exceeds the limit of {params.max_prompt_bytes}")
        max_tokens = _int("max_tokens", rmap["max_tokens"])
        if max_tokens > params.max_tokens:
            raise RequestError("max_tokens", f"must be at most {params.max_tokens}, got {max_tokens}")
        runtime = _int("max_runtime_ms", rmap["max_runtime_ms"])
        if not 1 <= runtime <= params.max_runtime_ms:
            raise RequestError("max_runtime_ms", f"must be in 1..{params.max_runtime_ms}, got {runtime}")
        max_units = ai_max_units(runtime, weight, params)
        base_rate = params.base_rate_ai
    else:
        circuit = _bytes("circuit", rmap["circuit"])
        if len(circuit) > params.max_circuit_bytes:
            raise RequestError("circuit", f"{len(circuit)} bytes exceeds the limit of {params.max_circuit_bytes}")
        shots = _int("shots", rmap["shots"])
        if not 1 <= shots <= params.max_shots:
            raise RequestError("shots", f"must be in 1..{params.max_shots}, got {shots}")
        depth = circuit_depth(circuit)
        max_units = quantum_max_units(shots, depth, params)
        base_rate = params.base_rate_quantum
    if max_units > params.gamma_mu:
        raise RequestError("max_units_mu", f"{max_units} exceeds the epoch cap of {params.gamma_mu} mu")
    reserve = reserve_fee(base_rate, price_bps, params)
    if fee < reserve:
        raise RequestError("fee_per_unit", f"{fee} is below the reserve of {reserve} µANM per unit")
    escrow = MicroAnm(fee * max_units // 1000)
    return ValidRequest(
        request_map=rmap, payload=encode_payload(rmap), max_units_mu=max_units, escrow=escrow, depth=depth
    )


def make_receipt(valid: ValidRequest, *, chain_id: int, height: int, tx_hash: bytes, caller: bytes) -> JobReceipt:
    return JobReceipt(
        task_id=task_id(chain_id, height, tx_hash, caller, valid.payload),
        chain_id=chain_id,
        height=height,
        tx_hash=tx_hash,
        caller=caller,
        kind=str(valid.request_map["kind"]),
        payload_hash=payload_hash(valid.payload),
        max_units_mu=valid.max_units_mu,
        escrow=valid.escrow,
    )
