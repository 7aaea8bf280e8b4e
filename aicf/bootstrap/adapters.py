"""Adapters the bootstrap wires between layers that may not see each other: the store's event log as the
WebSocket hub's source and the real models as the coordinator's trap oracle; and the process plumbing `aicf up`
and its devtools share (threads, quiet model loading).
"""

import logging
import os
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import cbor2

from aicf.service.trap_inputs import parse_corpus
from aicf.service.traps import ExpectedAnswer, TrapPrompt
from aicf.store.interface import Store, read_transaction
from aicf.transports.methods import cbor_json
from aicf.transports.secret_files import read_secret_file
from aicf.transports.ws import Event

log = logging.getLogger("aicf.up")


class ModelTrapOracle:
    """The coordinator's own re-execution of AI traps on the real models (SPEC §8; aicf.service.traps)."""

    def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
        from aicf.provider.models import reexecute_trap

        answer = reexecute_trap(model, prompt, max_tokens)
        return ExpectedAnswer(kind=answer.kind, output=answer.output, token_ids=answer.token_ids, text=answer.text)


TRAP_CORPUS_FILE = "trap_corpus.jsonl"  # the operator's private corpus, in the var directory (0600)
PUBLIC_CORPUS_WARNING = (
    "no private trap corpus (%s): AI traps use the PUBLIC default corpus, whose prompts any provider can "
    "recognise; write one (docs/TRAPS.md, mode 0600) before serving real requesters"
)


def default_trap_corpus(models: Collection[str]) -> tuple[TrapPrompt, ...]:
    """The devnet's trap corpus (aicf.provider.trap_corpus) for the models served here."""
    from aicf.provider.trap_corpus import DEFAULT_CORPUS

    return tuple(
        TrapPrompt(model=c.model, prompt=c.prompt, max_tokens=c.max_tokens) for c in DEFAULT_CORPUS if c.model in models
    )


def load_trap_corpus(var: Path, models: Collection[str]) -> tuple[TrapPrompt, ...]:
    """The operator's private corpus `var/trap_corpus.jsonl` (format: aicf.service.trap_inputs.parse_corpus) for the
    models served here; without that file, the public default corpus, with a warning (issue 14: a public corpus
    lets a provider recognise every trap). Raises SecretFileError when others may read the file (its prompts may
    already be out) and CorpusFormatError naming a bad line: `aicf up` stops rather than run recognisable traps."""
    path = var / TRAP_CORPUS_FILE
    if not path.exists():
        log.warning(PUBLIC_CORPUS_WARNING, path)
        return default_trap_corpus(models)
    corpus = parse_corpus(read_secret_file(path), models)
    log.info("trap corpus: %d private entries from %s for %s", len(corpus), path, ", ".join(sorted(models)))
    return corpus


class StoreEvents:
    """The WebSocket hub's event source: the store's gapless event log."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def read_since(self, seq: int, topics: Collection[str] | None, limit: int) -> Sequence[Event]:
        with read_transaction(self.store) as tx:  # reads take no write lock (issue 15)
            rows = tx.events_since(seq, sorted(topics) if topics else [], limit)
        return [Event(seq=e.seq, topic=e.topic, data=cbor_json(cbor2.loads(e.data))) for e in rows]

    def latest_seq(self) -> int:
        with read_transaction(self.store) as tx:
            return tx.latest_event_seq()


def start_threads(targets: Sequence[tuple[str, Callable[[], None]]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=fn, name=name, daemon=True) for name, fn in targets]
    for t in threads:
        t.start()
    return threads


def quiet_model_loading() -> None:
    """transformers de-quantizes the GGUF under a plain tqdm bar on stderr, which its own switch does not reach:
    tqdm reads TQDM_DISABLE when it is first imported, so this runs before any model module is imported."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
