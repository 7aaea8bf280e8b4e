"""What an included proof transaction proves (SPEC §8): the envelope and the coordinator's signed acceptance
record go on chain together; the first included pair per task wins. From the pair alone, any node derives
the same ResultRecord, so settlement never depends on a coordinator's private state."""

from collections.abc import Mapping

from aicf.core.cbor_limits import ENVELOPE_CBOR_LIMITS, UntrustedCborError
from aicf.core.chain import ProofInclusion
from aicf.core.records import ResultRecord
from aicf.proofs.envelope import Acceptance, ProofEnvelope, parse_envelope, verify_acceptance
from aicf.proofs.untrusted import decode_untrusted


def _decode_map(raw: object) -> Mapping[str, object] | None:
    if not isinstance(raw, bytes):
        return None
    try:  # chain data anyone can submit: bounded, no shared references (issue 15)
        value = decode_untrusted(raw, ENVELOPE_CBOR_LIMITS, "included envelope")
    except UntrustedCborError:
        return None
    return value if isinstance(value, dict) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None


def result_of_inclusion(
    body: Mapping[str, object], inclusion: ProofInclusion, kind: str, operator_key: bytes
) -> ResultRecord | None:
    """The ResultRecord an inclusion proves, or None when the pair does not hold together: the envelope must
    hash to the included proof_id, and the acceptance must name it and carry the operator's signature."""
    env_map, acc_map, sig = _decode_map(body.get("envelope")), _decode_map(body.get("acc")), body.get("acc_sig")
    if env_map is None or acc_map is None or not isinstance(sig, bytes) or kind not in ("ai", "quantum"):
        return None
    env = parse_envelope(env_map)
    if not isinstance(env, ProofEnvelope) or env.proof_id != inclusion.proof_id:
        return None
    if env.task_id != inclusion.task_id or env.provider_id != inclusion.provider_id:
        return None
    fields = {k: _int(acc_map.get(k)) for k in ("units_mu", "lat_bps", "avail_bps", "accepted_at")}
    if acc_map.get("proof_id") != inclusion.proof_id or any(v is None for v in fields.values()):
        return None
    acc = Acceptance(
        proof_id=inclusion.proof_id,
        units_mu=fields["units_mu"] or 0,
        lat_bps=fields["lat_bps"] or 0,
        avail_bps=fields["avail_bps"] or 0,
        accepted_at=fields["accepted_at"] or 0,
    )
    if not verify_acceptance(operator_key, acc, sig):
        return None
    digest = env.body.get("output_digest", env.body.get("circuit_digest"))
    return ResultRecord(
        task_id=inclusion.task_id,
        proof_id=inclusion.proof_id,
        kind=kind,
        output_digest=digest if isinstance(digest, bytes) else b"",
        units_mu=acc.units_mu,
        qos={"lat_bps": acc.lat_bps, "avail_bps": acc.avail_bps},
        height=inclusion.height,
        tx_index=inclusion.tx_index,
        miner_id=inclusion.producer,
        provider_id=inclusion.provider_id,
    )
