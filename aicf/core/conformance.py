"""The conformance vector runner of SPEC §14, as pure functions over parsed JSON.

Each kind maps a case's `input` to the same shape as its `expect` through exactly one rule of the core,
with no clamp or validation that the rule itself does not state. `run_case` compares the result with
`expect` and names the first field that differs. Reading files and printing are the CLI's job.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aicf.core.assignment import Candidate, draw_winner
from aicf.core.encoding import from_hex, to_hex
from aicf.core.errors import AicfError, RequestError
from aicf.core.ids import payload_hash, task_id
from aicf.core.merkle import merkle_root
from aicf.core.operator import apply_params_changes, params_changes
from aicf.core.params import Params, params_from_mapping, params_hash
from aicf.core.pricing import (
    ai_units,
    availability_multiplier_bps,
    depth_weight_milli,
    latency_bps,
    next_price,
    quantum_units,
    reward_of,
    split_reward,
)
from aicf.core.registry import ProviderStatus
from aicf.core.requests import build_request_map, encode_payload
from aicf.core.settlement import Payout, PayoutEscrow, VerifiedJob, settle_epoch, settlement_postings
from aicf.core.slashing import SlashReason, StakeState, slash_outcome

JsonMap = Mapping[str, object]


class VectorError(AicfError):
    """A vector file or case that is not of the SPEC §14 form: the message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    name: str
    passed: bool
    detail: str  # empty when passed; otherwise the first differing field, or why the case could not run


def _get(data: JsonMap, key: str, where: str) -> object:
    if not isinstance(data, Mapping):
        raise VectorError(f"{where}: expected an object, got {type(data).__name__}")
    if key not in data:
        raise VectorError(f"{where}: missing field {key!r}")
    return data[key]


def _int(data: JsonMap, key: str, where: str, minimum: int = 0) -> int:
    value = _get(data, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise VectorError(f"{where}.{key}: expected an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise VectorError(f"{where}.{key}: must be >= {minimum}, got {value}")
    if value >= 2**63:
        raise VectorError(f"{where}.{key}: must be < 2^63, got {value}")
    return value


def _hex(data: JsonMap, key: str, where: str) -> bytes:
    value = _get(data, key, where)
    if not isinstance(value, str):
        raise VectorError(f"{where}.{key}: expected a 0x hex string, got {type(value).__name__}")
    try:
        return from_hex(value, f"{where}.{key}")
    except AicfError as exc:
        raise VectorError(str(exc)) from None


def _str(data: JsonMap, key: str, where: str) -> str:
    value = _get(data, key, where)
    if not isinstance(value, str):
        raise VectorError(f"{where}.{key}: expected a string, got {type(value).__name__}")
    return value


def _list(data: JsonMap, key: str, where: str) -> Sequence[object]:
    value = _get(data, key, where)
    if not isinstance(value, list):
        raise VectorError(f"{where}.{key}: expected a list, got {type(value).__name__}")
    return value


def _map(value: object, where: str) -> JsonMap:
    if not isinstance(value, Mapping):
        raise VectorError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _kind_task_id(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    tid = task_id(
        _int(i, "chain_id", w), _int(i, "height", w), _hex(i, "tx_hash", w), _hex(i, "caller", w), _hex(i, "payload", w)
    )
    return {"task_id": to_hex(tid)}


def _kind_request_task_id(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    raw = dict(_map(_get(i, "request", w), "input.request"))
    for key in ("prompt", "circuit"):
        if key in raw:
            raw[key] = _hex(raw, key, "input.request")
    if "allowlist" in raw:
        entries = _list(raw, "allowlist", "input.request")
        raw["allowlist"] = [_hex({"id": e}, "id", f"input.request.allowlist[{n}]") for n, e in enumerate(entries)]
    payload = encode_payload(build_request_map(raw, params))
    tid = task_id(_int(i, "chain_id", w), _int(i, "height", w), _hex(i, "tx_hash", w), _hex(i, "caller", w), payload)
    return {"payload": to_hex(payload), "payload_hash": to_hex(payload_hash(payload)), "task_id": to_hex(tid)}


def _kind_ai_units(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    model = _str(i, "model", w)
    weight = params.weight_milli(model)
    if weight is None:
        raise VectorError(f"input.model: unknown model {model!r}; known: {', '.join(sorted(params.model_weights))}")
    units = ai_units(
        _int(i, "runtime_ms", w),
        weight,
        latency_bps(_int(i, "p95_latency_ms", w), params),
        availability_multiplier_bps(_int(i, "availability_bps", w), params),
    )
    return {"units_mu": units}


def _kind_quantum_units(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    depth_milli = depth_weight_milli(_int(i, "depth", w), params)
    return {"units_mu": quantum_units(_int(i, "shots", w), depth_milli, _int(i, "quality_bps", w))}


def _kind_reward_split(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    kind = _str(i, "kind", w)
    if kind not in ("ai", "quantum"):
        raise VectorError(f"input.kind: must be 'ai' or 'quantum', got {kind!r}")
    reward = reward_of(_int(i, "units_mu", w), params.base_rate(kind), _int(i, "price_bps", w))
    parts = split_reward(reward, params)
    return {"reward": reward, "provider": parts.provider, "miner": parts.miner, "fund": parts.fund}


def _kind_price_clamp(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    gamma = _int(i, "gamma_units", w, minimum=1)
    return {"price_bps": next_price(_int(i, "price_bps", w), _int(i, "demand_mu", w), gamma, params)}


def _kind_params_change(i: JsonMap, params: Params) -> JsonMap:
    """An operator params change (docs/OPERATOR.md) applied to the run's params: accepted with the new
    params_hash, or refused naming the field."""
    changes = _map(_get(i, "changes", "input"), "input.changes")
    try:
        after = apply_params_changes(params, params_changes({"op": "params", "changes": changes}))
    except RequestError as exc:
        return {"accepted": False, "field": exc.field}
    return {"accepted": True, "params_hash": to_hex(params_hash(after))}


def _kind_assignment(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    candidates = []
    for n, raw in enumerate(_list(i, "candidates", w)):
        c = _map(raw, f"input.candidates[{n}]")
        where = f"input.candidates[{n}]"
        candidates.append(Candidate(provider_id=_hex(c, "provider_id", where), stake=_int(c, "stake", where)))
    winner = draw_winner(_hex(i, "beacon", w), _hex(i, "task_id", w), _int(i, "attempt", w), candidates)
    return {"provider_id": to_hex(winner)}


def _kind_merkle(i: JsonMap, params: Params) -> JsonMap:
    leaves = _list(i, "leaves", "input")
    items = [_hex({"leaf": leaf}, "leaf", f"input.leaves[{n}]") for n, leaf in enumerate(leaves)]
    return {"root": to_hex(merkle_root(items))}


def _kind_settlement(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    gamma = _int(i, "gamma_units", w, minimum=1)
    p = params if gamma == params.gamma_units else params_from_mapping({"gamma_units": gamma}, base=params)
    jobs = []
    for n, raw in enumerate(_list(i, "jobs", w)):
        j = _map(raw, f"input.jobs[{n}]")
        where = f"input.jobs[{n}]"
        kind = _str(j, "kind", where)
        if kind not in ("ai", "quantum"):
            raise VectorError(f"{where}.kind: must be 'ai' or 'quantum', got {kind!r}")
        jobs.append(
            VerifiedJob(
                task_id=_hex(j, "task_id", where),
                provider_id=_hex(j, "provider_id", where),
                miner_id=_hex(j, "miner_id", where),
                proof_id=_hex(j, "proof_id", where),
                kind=kind,
                priority_class=_int(j, "tier", where),
                proof_height=_int(j, "proof_height", where),
                tx_index=_int(j, "tx_index", where),
                units_mu=_int(j, "units_mu", where),
                fee_per_unit=_int(j, "fee_per_unit", where),
            )
        )
    batch = settle_epoch(
        epoch=0,
        finalized_height=0,
        jobs=jobs,
        treasury=_int(i, "treasury", w),
        price_bps=_int(i, "price_bps", w, minimum=1),
        params=p,
    )
    return {
        "payouts": [
            {
                "task_id": to_hex(po.task_id),
                "reward": po.reward,
                "provider": po.provider,
                "miner": po.miner,
                "fund": po.fund,
                "charged": po.charged,
            }
            for po in batch.payouts
        ],
        "carried": [to_hex(t) for t in batch.carried],
        "totals": batch.totals.to_map(),
        "next_price_bps": batch.next_price_bps,
    }


def _opt_int(data: JsonMap, key: str, where: str) -> int | None:
    return None if _get(data, key, where) is None else _int(data, key, where)


def _kind_settlement_postings(i: JsonMap, params: Params) -> JsonMap:
    payouts: list[Payout] = []
    escrows: dict[bytes, PayoutEscrow] = {}
    for n, raw in enumerate(_list(i, "payouts", "input")):
        where = f"input.payouts[{n}]"
        p = _map(raw, where)
        task = _hex(p, "task_id", where)
        payouts.append(
            Payout(
                payout_id=_hex(p, "payout_id", where),
                epoch=0,
                task_id=task,
                provider_id=_hex(p, "provider_id", where),
                miner_id=_hex(p, "miner_id", where),
                proof_id=b"",
                units_mu=0,
                base_rate=0,
                price_bps=0,
                reward=0,
                provider=_int(p, "provider", where),
                miner=_int(p, "miner", where),
                fund=_int(p, "fund", where),
                charged=_int(p, "charged", where),
                params_hash=b"",
            )
        )
        escrows[task] = PayoutEscrow(held=_int(p, "escrow", where), caller=_hex(p, "caller", where))
    postings = settlement_postings(payouts, escrows)
    return {
        "postings": [
            {"debit": x.debit, "credit": x.credit, "amount": x.amount, "ref_kind": x.ref_kind, "ref": to_hex(x.ref)}
            for x in postings
        ]
    }


def _kind_slash_outcome(i: JsonMap, params: Params) -> JsonMap:
    w = "input"
    status, reason = _str(i, "status", w), _str(i, "reason", w)
    if status not in ProviderStatus.__members__:
        raise VectorError(f"input.status: unknown status {status!r}; known: {', '.join(ProviderStatus)}")
    if reason not in SlashReason.__members__:
        raise VectorError(f"input.reason: unknown reason {reason!r}; known: {', '.join(SlashReason)}")
    state = StakeState(
        status=ProviderStatus(status),
        bonded=_int(i, "bonded", w),
        unbonding=_int(i, "unbonding", w),
        jailed_until=_opt_int(i, "jailed_until", w),
        unbonding_until=_int(i, "unbonding_until", w),
    )
    times = [_int({"t": t}, "t", f"input.slash_times[{n}]") for n, t in enumerate(_list(i, "slash_times", w))]
    out = slash_outcome(_hex(i, "provider_id", w), state, SlashReason(reason), _int(i, "now", w), times, params)
    after = out.state
    return {
        "amount": out.amount.total,
        "from_bonded": out.amount.from_bonded,
        "from_unbonding": out.amount.from_unbonding,
        "record_jailed_until": out.jailed_until,
        "status": after.status.value,
        "bonded": after.bonded,
        "unbonding": after.unbonding,
        "jailed_until": after.jailed_until,
        "unbonding_until": after.unbonding_until,
    }


KINDS: Mapping[str, Callable[[JsonMap, Params], JsonMap]] = {
    "params_change": _kind_params_change,
    "task_id": _kind_task_id,
    "request_task_id": _kind_request_task_id,
    "ai_units": _kind_ai_units,
    "quantum_units": _kind_quantum_units,
    "reward_split": _kind_reward_split,
    "price_clamp": _kind_price_clamp,
    "assignment": _kind_assignment,
    "merkle": _kind_merkle,
    "settlement": _kind_settlement,
    "settlement_postings": _kind_settlement_postings,
    "slash_outcome": _kind_slash_outcome,
}


def first_difference(expect: object, got: object, path: str = "expect") -> str | None:
    """The path of the first field where `got` differs from `expect`, with both values; None if equal.

    Only the fields `expect` names are compared, so a vector may check a subset of an output.
    """
    if isinstance(expect, Mapping):
        if not isinstance(got, Mapping):
            return f"{path}: expected an object, got {got!r}"
        for key, want in expect.items():
            if key not in got:
                return f"{path}.{key}: the rule does not produce this field"
            diff = first_difference(want, got[key], f"{path}.{key}")
            if diff is not None:
                return diff
        return None
    if isinstance(expect, list):
        if not isinstance(got, list):
            return f"{path}: expected a list, got {got!r}"
        for n, (want, have) in enumerate(zip(expect, got, strict=False)):
            diff = first_difference(want, have, f"{path}[{n}]")
            if diff is not None:
                return diff
        if len(expect) != len(got):
            return f"{path}: expected {len(expect)} entries, got {len(got)}"
        return None
    if isinstance(expect, str) and isinstance(got, str) and expect.lower() == got.lower():
        return None  # hex case is not significant
    if type(expect) is not type(got) or expect != got:
        return f"{path}: expected {expect!r}, got {got!r}"
    return None


def parse_vector_file(data: object) -> tuple[str, list[JsonMap]]:
    """Check the file shape {"kind", "cases": [...]}; raises VectorError naming what is wrong."""
    doc = _map(data, "file")
    kind = _str(doc, "kind", "file")
    if kind not in KINDS:
        raise VectorError(f"file.kind: unknown kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    cases = [_map(c, f"cases[{n}]") for n, c in enumerate(_list(doc, "cases", "file"))]
    return kind, cases


def run_case(kind: str, case: JsonMap, params: Params, index: int = 0) -> CaseResult:
    raw_name = case.get("name", f"case {index}")
    name = raw_name if isinstance(raw_name, str) else f"case {index}"
    try:
        got = KINDS[kind](_map(_get(case, "input", name), f"{name}.input"), params)
        expect = _get(case, "expect", name)
    except AicfError as exc:
        return CaseResult(name=name, passed=False, detail=f"cannot run: {exc}")
    diff = first_difference(expect, got)
    return CaseResult(name=name, passed=diff is None, detail=diff or "")
