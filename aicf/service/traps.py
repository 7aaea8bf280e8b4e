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

docs/TRAPS.md describes what an outsider can check.
"""

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError
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


TRAP_DRAW_TAG = "aicf/trapdraw/v1"
RECYCLE_BPS = 5000  # the share of traps that recycle a verified real job's input when both sources exist
LENGTH_CANDIDATES = 4  # corpus entries drawn per trap; the one nearest the template's prompt length is kept
DEFAULT_TRAP_RUNTIME_MS = 20_000  # with no real job of the model to imitate yet
DEFAULT_TRAP_MAX_TOKENS = 16  # a corpus entry's budget when its file line names none
MAX_CORPUS_PROMPT_BYTES = 65_536  # SPEC §2's prompt limit


class CorpusFormatError(AicfError):
    """A line of the operator's trap corpus file that cannot be used; `line` counts from 1."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"trap corpus line {line}: {reason}")
        self.line, self.reason = line, reason


def parse_corpus(text: str, models: Collection[str]) -> tuple[TrapPrompt, ...]:
    """The operator's private corpus (docs/TRAPS.md "Trap inputs"): one JSON object per line, `{"model": M,
    "prompt": TEXT}` or `{"model": M, "prompt_hex": "0x…"}`, with an optional `"max_tokens"` (the budget used
    until real jobs of M exist; default 16); blank lines and lines starting with `#` are skipped. Entries of
    models not in `models` (not served here) are skipped. Raises CorpusFormatError naming the first bad line."""
    out: list[TrapPrompt] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusFormatError(number, f"not JSON: {exc.msg}") from None
        if not isinstance(entry, dict):
            raise CorpusFormatError(number, "expected a JSON object")
        if unknown := sorted(set(entry) - {"model", "prompt", "prompt_hex", "max_tokens"}):
            raise CorpusFormatError(number, f"unknown key {unknown[0]!r}")
        model = entry.get("model")
        if not isinstance(model, str) or not model:
            raise CorpusFormatError(number, "'model' must be a non-empty string")
        prompt = _corpus_prompt(number, entry)
        max_tokens = entry.get("max_tokens", DEFAULT_TRAP_MAX_TOKENS)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 0 <= max_tokens <= 32_768:
            raise CorpusFormatError(number, f"'max_tokens' must be an integer in 0..32768, got {max_tokens!r}")
        if model in models:
            out.append(TrapPrompt(model=model, prompt=prompt, max_tokens=max_tokens))
    return tuple(out)


def _corpus_prompt(number: int, entry: Mapping[str, object]) -> bytes:
    if ("prompt" in entry) == ("prompt_hex" in entry):
        raise CorpusFormatError(number, "give exactly one of 'prompt' and 'prompt_hex'")
    if "prompt" in entry:
        text = entry["prompt"]
        if not isinstance(text, str):
            raise CorpusFormatError(number, "'prompt' must be a string")
        prompt = text.encode("utf-8")
    else:
        hex_text = entry["prompt_hex"]
        if not isinstance(hex_text, str) or not hex_text.startswith("0x"):
            raise CorpusFormatError(number, "'prompt_hex' must be a 0x-prefixed hex string")
        try:
            prompt = bytes.fromhex(hex_text[2:])
        except ValueError:
            raise CorpusFormatError(number, "'prompt_hex' is not valid hex") from None
    if not 0 < len(prompt) <= MAX_CORPUS_PROMPT_BYTES:
        raise CorpusFormatError(number, f"the prompt must be 1..{MAX_CORPUS_PROMPT_BYTES} bytes, got {len(prompt)}")
    return prompt


@dataclass(frozen=True, slots=True, kw_only=True)
class JobShape:
    """What a trap imitates of one real (non-trap) AI job of its model: the request fields an observer sees."""

    prompt: bytes
    max_tokens: int
    max_runtime_ms: int
    fee_per_unit: int
    tier: int = 0
    deadline_blocks: int | None = None  # None: the default
    regions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapInput:
    """A trap job's input and parameters. `source`: "corpus" (the operator's corpus) or "recycled" (the prompt
    of a verified real job)."""

    model: str
    prompt: bytes
    max_tokens: int
    max_runtime_ms: int
    fee_per_unit: int
    deadline_blocks: int | None
    regions: tuple[str, ...]
    source: str

    def body(self) -> dict[str, object]:
        """The ai_enqueue body (tier 0: a fresh caller has no registered tier)."""
        out: dict[str, object] = {
            "model": self.model,
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "max_runtime_ms": self.max_runtime_ms,
            "fee_per_unit": self.fee_per_unit,
            "tier": 0,
        }
        if self.deadline_blocks is not None:
            out["deadline_blocks"] = self.deadline_blocks
        if self.regions:
            out["regions"] = list(self.regions)
        return out


def _draw(seed: bytes, n: int, label: str, bound: int) -> int:
    """A uniform-enough index below `bound` (> 0): int(H("aicf/trapdraw/v1", s_E, n, label)) mod bound; the bias
    of a 256-bit hash reduced mod a small bound is below 2^-200."""
    return int.from_bytes(tagged_hash(TRAP_DRAW_TAG, seed, n, label), "big") % bound


def draw_trap_input(
    seed: bytes,
    n: int,
    model: str,
    corpus: Sequence[TrapPrompt],
    recent: Sequence[JobShape],
    verified: Sequence[JobShape],
    fee_floor: int,
) -> TrapInput | None:
    """Trap n's input, drawn with the secret s_E from the distribution of the model's real jobs (issue 14).

    A pure function of its inputs, so a replica holding the same secret and store draws the same trap:
    1. the *template*: a uniform pick among `recent`, the model's real tier-0 jobs (a fresh caller has tier 0, so
       a trap cannot imitate a higher tier); its max_tokens, max_runtime_ms, fee_per_unit (at least `fee_floor`,
       what ingest accepts at the current price), deadline and regions become the trap's. With no real job yet
       the corpus entry's budget, DEFAULT_TRAP_RUNTIME_MS and twice the floor stand in;
    2. the *prompt*: with RECYCLE_BPS odds (always, if the corpus has no entry for the model) the prompt of a
       uniform pick among `verified`, the model's real jobs whose proof verified; else the corpus entry nearest
       the template's prompt length among LENGTH_CANDIDATES uniform picks (the first drawn on a tie).
    Every pick is int(H("aicf/trapdraw/v1", s_E, n, label)) mod the choices. None when there is no prompt to use.
    """
    entries = [c for c in corpus if c.model == model]
    if not entries and not verified:
        return None
    template = recent[_draw(seed, n, "template", len(recent))] if recent else None
    if verified and (not entries or _draw(seed, n, "source", BPS) < RECYCLE_BPS):
        donor = verified[_draw(seed, n, "recycle", len(verified))]
        prompt, source, fallback_tokens = donor.prompt, "recycled", donor.max_tokens
    else:
        want = len(template.prompt) if template is not None else None
        picks = [entries[_draw(seed, n, f"corpus/{i}", len(entries))] for i in range(LENGTH_CANDIDATES)]
        chosen = picks[0] if want is None else min(picks, key=lambda c: abs(len(c.prompt) - want))
        prompt, source, fallback_tokens = chosen.prompt, "corpus", chosen.max_tokens
    if template is None:
        return TrapInput(
            model=model,
            prompt=prompt,
            max_tokens=fallback_tokens,
            max_runtime_ms=DEFAULT_TRAP_RUNTIME_MS,
            fee_per_unit=2 * fee_floor,
            deadline_blocks=None,
            regions=(),
            source=source,
        )
    return TrapInput(
        model=model,
        prompt=prompt,
        max_tokens=template.max_tokens,
        max_runtime_ms=template.max_runtime_ms,
        fee_per_unit=max(template.fee_per_unit, fee_floor),
        deadline_blocks=template.deadline_blocks,
        regions=template.regions,
        source=source,
    )


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
