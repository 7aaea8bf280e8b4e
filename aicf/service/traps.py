"""AI traps and trap seeds (SPEC §8): the rules the coordinator's trap pass applies, and the ports it needs.

- Trap seed: s_E = H("aicf/trapsecret/v1", secret, E) stays private until batch E is built; its commitment
  H("aicf/trapseed/v1", s_E) is posted (a `TrapSeedRecord`) before epoch E starts, and the reveal is a separate
  record, outside the SPEC batch map, so settlement stays a pure function of the chain.
- Trap jobs: for each model of the private corpus, the coordinator keeps its trap jobs at trap_bps of the
  model's enqueues: with `ordinary` enqueues of other callers, `ordinary × trap_bps // (10000 − trap_bps)` traps
  are due (500 bps: one trap per 19 ordinary jobs, so traps are 5% of all). Trap n of epoch E comes from the
  fresh caller H("aicf/trapcaller/v1", s_E, n)[:20] with the corpus prompt picked by H("aicf/trappick/v1", s_E,
  n), is funded fund → requester:<caller> (ref kind "trap_funding") and enqueued by an ordinary chain
  transaction, with the fee, runtime and deadline of the model's queued jobs.
- At enqueue (when the job is ingested) H("aicf/trap/v1", s_E, task_id) is logged; when the proof arrives the
  coordinator re-executes the prompt through a `TrapOracle` and compares (aicf.proofs.ai_traps); once the job
  is final the answer's digest is revealed.

Trap inputs (the operator's corpus and trap n's draw) are in aicf.service.trap_inputs; docs/TRAPS.md describes
what an outsider can check.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aicf.core.encoding import tagged_hash
from aicf.core.ids import trap_seed_commitment
from aicf.core.params import Params
from aicf.core.records import TrapSeedRecord
from aicf.proofs.ai_traps import TrapResult, check_embedding_trap, check_generation_output
from aicf.proofs.envelope import ProofEnvelope
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.verifier import BodyAccepted

TRAP_SECRET_TAG = "aicf/trapsecret/v1"  # noqa: S105 - a hash domain tag, not a secret
TRAP_LOG_TAG = "aicf/trap/v1"
TRAP_CALLER_TAG = "aicf/trapcaller/v1"
BPS = 10_000
log = logging.getLogger("aicf.coordinator")
ADDRESS_BYTES = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapPrompt:
    """One entry of the private corpus: the model, the prompt and the token budget its answer depends on."""

    model: str
    prompt: bytes
    max_tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedAnswer:
    """The coordinator's own answer to a trap: an embedding's output bytes, or a generation's ids and text."""

    kind: str  # "embedding" or "generation"
    output: bytes
    token_ids: tuple[int, ...] = ()
    text: bytes = b""


class TrapOracle(Protocol):
    """Runs a trap prompt through the coordinator's own copy of the model (aicf.bootstrap wires the real models)."""

    def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
        """Raises an AicfError when the model cannot run here (the proof is then UNVERIFIABLE, nobody slashed)."""
        ...


def derive_seed(secret: bytes, epoch: int) -> bytes:
    """s_E = H("aicf/trapsecret/v1", secret, E)."""
    return tagged_hash(TRAP_SECRET_TAG, secret, epoch)


def seed_checks(record: TrapSeedRecord) -> bool:
    """What anyone checks once the seed is revealed: H("aicf/trapseed/v1", s_E) == the posted commitment."""
    return bool(record.seed) and trap_seed_commitment(record.seed) == record.commitment


def trap_caller(seed: bytes, n: int) -> bytes:
    """The fresh caller of trap n: H("aicf/trapcaller/v1", s_E, n)[:20]."""
    return tagged_hash(TRAP_CALLER_TAG, seed, n)[:ADDRESS_BYTES]


GRANT_CALLER_TAG = "aicf/grantcaller/v1"


def grant_caller(seed: bytes, m: int) -> bytes:
    """The fresh caller of grant m (issue 14 item 2): H("aicf/grantcaller/v1", s_E, m)[:20]. Like a trap caller,
    it looks like any fresh address until s_E is revealed."""
    return tagged_hash(GRANT_CALLER_TAG, seed, m)[:ADDRESS_BYTES]


AUDIT_TAG = "aicf/audit/v1"


def is_audited(seed: bytes, task_id: bytes, audit_bps: int) -> bool:
    """Whether an ordinary AI job is in its epoch's re-execution sample (issue 14): int(H("aicf/audit/v1", s_E,
    task_id)) mod 10000 < audit_bps. s_E is secret until batch E reveals it, so a provider cannot know before its
    proof is in whether the job is sampled; afterwards anyone checks the draw."""
    return int.from_bytes(tagged_hash(AUDIT_TAG, seed, task_id), "big") % BPS < audit_bps


def trap_log_hash(seed: bytes, task_id: bytes) -> bytes:
    """H("aicf/trap/v1", s_E, task_id): logged at enqueue, checkable once s_E is revealed."""
    return tagged_hash(TRAP_LOG_TAG, seed, task_id)


def traps_due(ordinary: int, params: Params) -> int:
    """How many traps a model needs so that they are trap_bps of all its enqueues (traps included)."""
    if params.trap_bps <= 0 or params.trap_bps >= BPS:
        return 0
    return ordinary * params.trap_bps // (BPS - params.trap_bps)


def trap_needs(
    job_counts: Mapping[str, int], trap_counts: Mapping[str, int], unlinked: Mapping[str, int], params: Params
) -> dict[str, int]:
    """New traps to enqueue per model. Jobs of a model count its ingested traps too: ordinary = jobs − (traps
    − traps not ingested yet)."""
    needs: dict[str, int] = {}
    for model, jobs in sorted(job_counts.items()):
        traps = trap_counts.get(model, 0)
        ordinary = jobs - (traps - unlinked.get(model, 0))
        more = traps_due(max(0, ordinary), params) - traps
        if more > 0:
            needs[model] = more
    return needs


def check_trap_answer(expected: ExpectedAnswer, output: object, params: Params) -> Reject | None:
    """Compare a provider's output with the re-execution: None for a pass, else a TRAP_FAILURE saying why.

    Every failure on a trap is a TRAP_FAILURE (SPEC §9 slashes it), a malformed answer included: the provider
    answered a job it was paid to run with something that is not the model's output.
    """
    if not isinstance(output, bytes):
        return Reject(code=RejectCode.TRAP_FAILURE, message="trap: the proof carries no inline output")
    result: TrapResult
    if expected.kind == "embedding":
        result = check_embedding_trap(expected.output, output, params.embedding_cosine_min_bps)
    else:
        result = check_generation_output(expected.token_ids, expected.text, output)
    if result.passed:
        return None
    return Reject(code=RejectCode.TRAP_FAILURE, message=f"trap: {result.message}")


def audit_verdict(
    answer: ExpectedAnswer | Reject, env: ProofEnvelope, body: BodyAccepted, params: Params
) -> tuple[BodyAccepted | Reject, bytes | None]:
    """Compare a sampled job's output with the re-execution, as a trap's is; a mismatch is AUDIT_MISMATCH with
    the reference output for the evidence. A re-execution that could not run leaves the proof unaudited."""
    if isinstance(answer, Reject):
        log.warning("proof 0x%s left unaudited: %s", env.proof_id.hex()[:12], answer.message)
        return body, None
    failed = check_trap_answer(answer, env.body.get("output"), params)
    if failed is None:
        return body, None
    log.warning("audit failed by provider 0x%s: %s", env.provider_id.hex()[:12], failed.message)
    message = failed.message.removeprefix("trap: ")
    return Reject(code=RejectCode.AUDIT_MISMATCH, message=f"audit: {message}"), answer.output


def trap_verdict(
    expected: ExpectedAnswer, env: ProofEnvelope, body: BodyAccepted, params: Params
) -> BodyAccepted | Reject:
    failed = check_trap_answer(expected, env.body.get("output"), params)
    if failed is not None:
        log.warning("trap failed by provider 0x%s: %s", env.provider_id.hex()[:12], failed.message)
    return body if failed is None else failed
