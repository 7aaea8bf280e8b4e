"""The AI trap corpus of SPEC §8: (model, prompt, params) whose answer the coordinator re-executes itself.

An operator's real corpus is private (a provider that knew the prompts could serve only those honestly); this
default one serves the devnet and the tests. Expected outputs are not stored: the coordinator computes them
with `reexecute_trap` at verification time, so a corpus entry never goes stale when a model file is pinned anew.

A prompt belongs in the corpus only if its output is stable: `stable_cases` runs each case `runs` times and
keeps those whose output bytes never change on this machine's runtime. SPEC's "stable across the supported
runtimes" is also checked across runtimes where a second one exists (see the comment on the generation prompts;
for minilm-l6-v2 the float32 sentence-transformers model scores cosine >= 0.9994 against our int8 ONNX on every
embedding prompt, far above the 0.99 threshold).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aicf.core.errors import AicfError
from aicf.provider.models import MODELS, TrapAnswer, reexecute_trap

TRAP_MAX_TOKENS = 16  # short answers: a trap costs the coordinator one re-execution


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapCase:
    model: str
    prompt: bytes
    max_tokens: int


class TrapCorpusError(AicfError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"trap corpus: {reason}")
        self.reason = reason


_EMBEDDING_PROMPTS = (
    b"A man is playing a guitar on stage.",
    b"The committee approved the budget for next year.",
    b"Fresh bread is baked every morning at the corner shop.",
    b"Rain is expected over the mountains this weekend.",
    b"She solved the puzzle in less than five minutes.",
    b"Quantum computers use qubits instead of bits.",
    b"The train to the airport leaves every twenty minutes.",
    b"Photosynthesis turns sunlight into chemical energy.",
)
# Each gives the same 16 greedy token ids on the reference runtime (transformers, GGUF dequantized to float32) and
# on llama-cpp-python 0.3.36 (Q4_1 kernels, one thread), checked by hand on the python-svc machine: of 20
# candidates, 11 agreed and these 8 were kept. Prompts such as "The capital of France is" diverge after 5 tokens,
# so a provider on llama.cpp would fail them honestly: they stay out of the corpus.
_GENERATION_PROMPTS = (
    b"The three primary colors are",
    b"Once upon a time, in a small village,",
    b"The largest planet in the solar system is",
    b"1, 2, 3, 4, 5,",
    b"The chemical symbol for gold is",
    b"Monday, Tuesday, Wednesday,",
    b"The first president of the United States was",
    b"Dogs are animals that",
)

DEFAULT_CORPUS: tuple[TrapCase, ...] = tuple(
    TrapCase(model="minilm-l6-v2", prompt=p, max_tokens=0) for p in _EMBEDDING_PROMPTS
) + tuple(TrapCase(model="smollm2-135m", prompt=p, max_tokens=TRAP_MAX_TOKENS) for p in _GENERATION_PROMPTS)


def looks_like_public_trap(model: str, prompt: bytes, max_tokens: int) -> bool:
    """What a provider cheating on everything but traps checks (Mode.SPARE_TRAP_SHAPES): the prompt is in this
    public corpus, or a generation job asks for the corpus's TRAP_MAX_TOKENS. Before issue 14 every trap did."""
    public = any(c.model == model and c.prompt == prompt for c in DEFAULT_CORPUS)
    generation_budget = any(c.model == model and c.max_tokens > 0 for c in DEFAULT_CORPUS)
    return public or (generation_budget and max_tokens == TRAP_MAX_TOKENS)


def check_corpus(cases: Sequence[TrapCase]) -> None:
    """Raise TrapCorpusError for a case naming an unknown model, an empty prompt or a negative budget."""
    for index, case in enumerate(cases):
        if case.model not in MODELS:
            raise TrapCorpusError(f"case {index}: unknown model {case.model!r}; served: {sorted(MODELS)}")
        if not case.prompt:
            raise TrapCorpusError(f"case {index}: empty prompt")
        if case.max_tokens < 0:
            raise TrapCorpusError(f"case {index}: max_tokens {case.max_tokens} < 0")


def stable_cases(
    cases: Sequence[TrapCase],
    runs: int = 2,
    execute: Callable[[str, bytes, int], TrapAnswer] = reexecute_trap,
) -> tuple[TrapCase, ...]:
    """The cases whose output bytes are identical over `runs` executions, in corpus order."""
    if runs < 2:
        raise TrapCorpusError(f"stability needs at least 2 runs, got {runs}")
    check_corpus(cases)
    kept = []
    for case in cases:
        outputs = {execute(case.model, case.prompt, case.max_tokens).output for _ in range(runs)}
        if len(outputs) == 1:
            kept.append(case)
    return tuple(kept)
