"""Trap inputs (SPEC §8, issue 14; the rules around them are in aicf.service.traps): the operator's private corpus
file, and trap n's input drawn with the secret s_E from the distribution of its model's real jobs.

docs/TRAPS.md "Trap inputs" describes the corpus format and the draw.
"""

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError
from aicf.service.traps import BPS, TrapPrompt

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
