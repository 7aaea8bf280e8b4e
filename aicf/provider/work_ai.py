"""AI work: run a lease's prompt through a served model and build the AI_V1 body of SPEC §8.

`AiWork` runs the real models of `aicf.provider.models` (minilm-l6-v2 embeddings: the 384 float32 LE values;
smollm2-135m greedy generation: the canonical CBOR `Generation.output`). `EchoAiWork` answers without any model:
a deterministic output of the right shape, for tests and demo load where the model packages are absent. Its
model digest is `echo_model_digest(model)`, never a real model's, so a coordinator pinning the real digests
rejects its proofs with DIGEST_MISMATCH: an echo answer can never pass for a model's output.

The cheating modes act here: RANDOM_OUTPUT sends random bytes (with their true output digest, so only a trap
re-execution can tell), WRONG_BINDING runs the model honestly but commits to the digest of another input,
INFLATE_RUNTIME answers honestly but claims the job's max_runtime_ms (the coordinator pays the time it observed).
"""

import hashlib
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from aicf.core.clock import Clock
from aicf.core.encoding import tagged_hash
from aicf.core.ids import input_digest, output_digest
from aicf.provider.models import (
    EMBEDDING_DIMS,
    MODEL_TAG,
    MODELS,
    EmbeddingRunner,
    Generation,
    ModelRunner,
    TextGenRunner,
    runner,
)
from aicf.provider.work_common import LeaseOffer, Mode, WorkError

MAX_INLINE_OUTPUT: Final = 64 * 1024  # SPEC §8: `output` is required when it is at most 64 KiB
ECHO_TOKENS: Final = 8
RANDOM_GENERATION_BYTES: Final = 64
OTHER_INPUT_PREFIX: Final = b"aicf/wrong-binding/"


@dataclass(frozen=True, slots=True, kw_only=True)
class AiAnswer:
    """What a model produced for one prompt: the output bytes and how many tokens it generated."""

    output: bytes
    tokens: int


def model_kind(model: str) -> str:
    """ "embedding", "generation", or "" for a model this package does not describe."""
    spec = MODELS.get(model)
    return spec.kind if spec is not None else ""


def ai_body(
    offer: LeaseOffer, *, model_digest: bytes, answer: AiAnswer, runtime_ms: int, mode: Mode
) -> dict[str, object]:
    """The AI_V1 body: model_id, model_digest, input_digest, output_digest, output (or output_size), qos.

    WRONG_BINDING replaces input_digest by the digest of another input; every other field stays honest.
    """
    prompt = OTHER_INPUT_PREFIX + offer.prompt if mode is Mode.WRONG_BINDING else offer.prompt
    body: dict[str, object] = {
        "model_id": offer.model,
        "model_digest": model_digest,
        "input_digest": input_digest(prompt),
        "output_digest": output_digest(answer.output),
        "qos": {"runtime_ms": runtime_ms, "tokens": min(answer.tokens, offer.max_tokens)},
    }
    if len(answer.output) <= MAX_INLINE_OUTPUT:
        body["output"] = answer.output
    else:
        body["output_size"] = len(answer.output)
    return body


def random_answer(offer: LeaseOffer, random_bytes: Callable[[int], bytes]) -> AiAnswer:
    """A cheat's answer: as many random bytes as an embedding has (or 64), claiming the most tokens allowed."""
    if model_kind(offer.model) == "embedding":
        return AiAnswer(output=random_bytes(EMBEDDING_DIMS * 4), tokens=0)
    return AiAnswer(output=random_bytes(RANDOM_GENERATION_BYTES), tokens=offer.max_tokens)


class AiWork:
    """Real models, each loaded from its package on first use (or at `load()`, so a CLI fails early)."""

    def __init__(
        self,
        models: tuple[str, ...],
        *,
        runner_for: Callable[[str], ModelRunner] = runner,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            raise WorkError(f"unknown model {unknown[0]!r}; served: {sorted(MODELS)}")
        self.models = models
        self._runner_for = runner_for
        self._random_bytes = random_bytes

    @property
    def kind(self) -> str:
        return "ai"

    def load(self) -> None:
        """Load every model now; raises ModelUnavailableError naming the package that is missing."""
        for model in self.models:
            self._runner_for(model).load()

    def model_digest(self, model: str) -> bytes:
        return self._runner_for(model).model_digest()

    def answer(self, offer: LeaseOffer) -> AiAnswer:
        if offer.model not in self.models:
            raise WorkError(f"model {offer.model!r} is not served here (serving {list(self.models)})")
        found = self._runner_for(offer.model)
        if isinstance(found, EmbeddingRunner):
            return AiAnswer(output=found.embed(offer.prompt), tokens=0)
        if isinstance(found, TextGenRunner):
            generation = found.generate(offer.prompt, offer.max_tokens)
            return AiAnswer(output=generation.output, tokens=len(generation.token_ids))
        raise WorkError(f"model {offer.model!r}: no way to run a {type(found).__name__}")

    def body(self, offer: LeaseOffer, clock: Clock, mode: Mode) -> dict[str, object]:
        """Run the model (not at all under RANDOM_OUTPUT) and build the body; runtime in the clock's ms."""
        if offer.kind != "ai":
            raise WorkError(f"AiWork got a {offer.kind} lease")
        started = clock.now_ms()
        if mode is Mode.RANDOM_OUTPUT:
            if offer.model not in self.models:
                raise WorkError(f"model {offer.model!r} is not served here (serving {list(self.models)})")
            answer = random_answer(offer, self._random_bytes)
        else:
            answer = self.answer(offer)
        runtime_ms = max(0, clock.now_ms() - started)
        if mode is Mode.INFLATE_RUNTIME:
            runtime_ms = offer.max_runtime_ms  # a cheat claims the most it could be paid for
        digest = self.model_digest(offer.model)
        return ai_body(offer, model_digest=digest, answer=answer, runtime_ms=runtime_ms, mode=mode)


def echo_model_digest(model: str) -> bytes:
    """The model digest EchoAiWork claims: H("aicf/model/v1", "echo:" + model, []), never a real model's."""
    return tagged_hash(MODEL_TAG, "echo:" + model, [])


def echo_answer(model: str, prompt: bytes, max_tokens: int) -> AiAnswer:
    """A deterministic answer shaped like the model's: a unit float32 vector for an embedding model, a
    Generation of up to 8 token ids for a generation model, 32 digest bytes otherwise. No model is run."""
    digest = hashlib.sha3_256(b"aicf/echo/" + prompt).digest()
    kind = model_kind(model)
    if kind == "embedding":
        hot = int.from_bytes(digest[:2], "big") % EMBEDDING_DIMS
        vector = [0] * EMBEDDING_DIMS
        vector[hot] = 1
        return AiAnswer(output=struct.pack(f"<{EMBEDDING_DIMS}f", *vector), tokens=0)
    if kind == "generation":
        ids = tuple(digest[: min(max_tokens, ECHO_TOKENS)])
        text = " ".join(str(i) for i in ids).encode("utf-8")
        return AiAnswer(output=Generation(token_ids=ids, text=text).output, tokens=len(ids))
    return AiAnswer(output=digest, tokens=0)


class EchoAiWork:
    """No model: `echo_answer` outputs under `echo_model_digest` digests. For tests and demo load only."""

    def __init__(
        self,
        models: tuple[str, ...],
        *,
        runtime_ms: int = 1,
        model_digests: Mapping[str, bytes] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.models = models
        self._runtime_ms = runtime_ms
        self._digests = dict(model_digests or {})
        self._random_bytes = random_bytes

    @property
    def kind(self) -> str:
        return "ai"

    def load(self) -> None:
        """Nothing to load."""

    def model_digest(self, model: str) -> bytes:
        return self._digests.get(model, echo_model_digest(model))

    def body(self, offer: LeaseOffer, clock: Clock, mode: Mode) -> dict[str, object]:
        if offer.kind != "ai":
            raise WorkError(f"EchoAiWork got a {offer.kind} lease")
        if offer.model not in self.models:
            raise WorkError(f"model {offer.model!r} is not served here (serving {list(self.models)})")
        if mode is Mode.RANDOM_OUTPUT:
            answer = random_answer(offer, self._random_bytes)
        else:
            answer = echo_answer(offer.model, offer.prompt, offer.max_tokens)
        runtime_ms = offer.max_runtime_ms if mode is Mode.INFLATE_RUNTIME else self._runtime_ms
        return ai_body(
            offer, model_digest=self.model_digest(offer.model), answer=answer, runtime_ms=runtime_ms, mode=mode
        )
