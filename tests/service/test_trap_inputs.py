"""Trap inputs drawn from the real jobs' distribution (issue 14; docs/TRAPS.md "Trap inputs").

`draw_trap_input` is pure: the secret seed, the trap number, the operator's corpus and samples of the model's real
jobs in, one trap's request out. The statistical test at the end builds real jobs from a synthetic population,
draws traps from a sample of them, and checks that classifiers which see only the request fields (prompt bytes and
length, every parameter) do no better than chance, by a stated margin, on held-out jobs, while the same classifiers
tell the old traps (the public corpus, max_tokens 16, the open jobs' median fee and runtime) apart at once.
"""

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from aicf.bootstrap.adapters import TRAP_CORPUS_FILE, default_trap_corpus, load_trap_corpus
from aicf.core.encoding import tagged_hash
from aicf.provider.trap_corpus import DEFAULT_CORPUS
from aicf.service.trap_inputs import (
    LENGTH_CANDIDATES,
    CorpusFormatError,
    JobShape,
    TrapInput,
    draw_trap_input,
    parse_corpus,
)
from aicf.service.traps import TrapPrompt
from aicf.transports.secret_files import SecretFileError

MODEL = "smollm2-135m"
SEED = tagged_hash("aicf/test/trapinputs/v1", 1)
FLOOR = 15_000
_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there one all we their can has more when will would if who what so about up "
    "out them into model river budget quantum summer kitchen protocol garden engine market letter history "
    "summary translate explain write list compare describe poem story code function python table weather "
    "recipe travel "
)
WORDS = tuple(_TEXT.split(" ")[:-1])


def shape(prompt: bytes, max_tokens: int = 64, runtime: int = 20_000, fee: int = 30_000, **kw: object) -> JobShape:
    return JobShape(prompt=prompt, max_tokens=max_tokens, max_runtime_ms=runtime, fee_per_unit=fee, **kw)  # type: ignore[arg-type]


def corpus_of(*prompts: bytes, model: str = MODEL) -> tuple[TrapPrompt, ...]:
    return tuple(TrapPrompt(model=model, prompt=p, max_tokens=16) for p in prompts)


# -- the draw -----------------------------------------------------------------------------------------------------


def test_the_draw_is_a_function_of_the_seed_and_the_trap_number() -> None:
    corpus = corpus_of(*(b"corpus prompt %d" % i for i in range(50)))
    recent = [shape(b"real %d" % i, max_tokens=16 * (i + 1), runtime=1000 * (i + 1)) for i in range(40)]
    draws = [draw_trap_input(SEED, n, MODEL, corpus, recent, recent[:20], FLOOR) for n in range(30)]
    assert draws == [draw_trap_input(SEED, n, MODEL, corpus, recent, recent[:20], FLOOR) for n in range(30)]
    other = [
        draw_trap_input(tagged_hash("aicf/test/other", 2), n, MODEL, corpus, recent, recent[:20], FLOOR)
        for n in range(30)
    ]
    assert draws != other
    assert len({d.prompt for d in draws if d is not None}) > 15  # spread over the sources, not one prompt


def test_a_trap_takes_the_parameters_of_one_real_job_and_never_a_fee_below_the_floor() -> None:
    corpus = corpus_of(b"a corpus prompt")
    recent = [
        shape(b"real a", max_tokens=300, runtime=45_000, fee=10_000, deadline_blocks=500, regions=("eu",)),
    ]
    drawn = draw_trap_input(SEED, 0, MODEL, corpus, recent, (), FLOOR)
    assert drawn == TrapInput(
        model=MODEL,
        prompt=b"a corpus prompt",
        max_tokens=300,
        max_runtime_ms=45_000,
        fee_per_unit=FLOOR,  # the real job's 10,000 is below what ingest accepts at today's price
        deadline_blocks=500,
        regions=("eu",),
        source="corpus",
    )
    assert drawn.body() == {
        "model": MODEL,
        "prompt": b"a corpus prompt",
        "max_tokens": 300,
        "max_runtime_ms": 45_000,
        "fee_per_unit": FLOOR,
        "tier": 0,
        "deadline_blocks": 500,
        "regions": ["eu"],
    }


def test_recycled_prompts_come_only_from_verified_jobs_and_about_half_the_traps_recycle() -> None:
    corpus = corpus_of(*(b"corpus %d" % i for i in range(10)))
    open_jobs = [shape(b"open, never verified %d" % i) for i in range(10)]
    verified = [shape(b"verified %d" % i) for i in range(10)]
    draws = [draw_trap_input(SEED, n, MODEL, corpus, open_jobs + verified, verified, FLOOR) for n in range(400)]
    sources = [d.source for d in draws if d is not None]
    recycled = {d.prompt for d in draws if d is not None and d.source == "recycled"}
    assert recycled <= {v.prompt for v in verified}
    assert 160 <= sources.count("recycled") <= 240  # RECYCLE_BPS = 5000 of 400 draws
    assert {d.prompt for d in draws if d is not None and d.source == "corpus"} <= {c.prompt for c in corpus}


def test_without_a_corpus_entry_for_the_model_every_trap_recycles_and_without_either_there_is_none() -> None:
    verified = [shape(b"verified one")]
    other_model = corpus_of(b"not this model", model="minilm-l6-v2")
    drawn = draw_trap_input(SEED, 3, MODEL, other_model, verified, verified, FLOOR)
    assert drawn is not None
    assert (drawn.source, drawn.prompt) == ("recycled", b"verified one")
    assert draw_trap_input(SEED, 3, MODEL, other_model, verified, (), FLOOR) is None


def test_the_corpus_entry_kept_is_the_one_nearest_the_template_prompt_length() -> None:
    corpus = corpus_of(*(b"x" * length for length in (5, 40, 80, 160, 320, 640)))
    for n in range(50):
        template = shape(b"y" * 75)
        drawn = draw_trap_input(SEED, n, MODEL, corpus, [template], (), FLOOR)
        assert drawn is not None
        picks = [
            corpus[int.from_bytes(tagged_hash("aicf/trapdraw/v1", SEED, n, f"corpus/{i}"), "big") % len(corpus)]
            for i in range(LENGTH_CANDIDATES)
        ]
        assert len(drawn.prompt) == min((len(p.prompt) for p in picks), key=lambda k: abs(k - 75))


def test_with_no_real_job_yet_the_corpus_budget_and_twice_the_floor_stand_in() -> None:
    drawn = draw_trap_input(SEED, 0, MODEL, corpus_of(b"first"), (), (), FLOOR)
    assert drawn is not None
    assert (drawn.max_tokens, drawn.max_runtime_ms, drawn.fee_per_unit) == (16, 20_000, 2 * FLOOR)


# -- the operator's corpus file -----------------------------------------------------------------------------------


def test_the_corpus_file_reads_text_and_hex_prompts_and_skips_comments_and_models_not_served() -> None:
    text = (
        "# the operator's private prompts\n"
        '{"model": "smollm2-135m", "prompt": "Write a haiku about rain", "max_tokens": 40}\n'
        "\n"
        '{"model": "minilm-l6-v2", "prompt_hex": "0x68656c6c6f"}\n'
        '{"model": "llama3-8b", "prompt": "not served here"}\n'
    )
    assert parse_corpus(text, {"smollm2-135m", "minilm-l6-v2"}) == (
        TrapPrompt(model="smollm2-135m", prompt=b"Write a haiku about rain", max_tokens=40),
        TrapPrompt(model="minilm-l6-v2", prompt=b"hello", max_tokens=16),
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"model": "m", "prompt": "p", "extra": 1}', "unknown key 'extra'"),
        ('{"prompt": "p"}', "'model' must be a non-empty string"),
        ('{"model": "m"}', "give exactly one of 'prompt' and 'prompt_hex'"),
        ('{"model": "m", "prompt": "p", "prompt_hex": "0x00"}', "give exactly one of 'prompt' and 'prompt_hex'"),
        ('{"model": "m", "prompt_hex": "zz"}', "'prompt_hex' must be a 0x-prefixed hex string"),
        ('{"model": "m", "prompt_hex": "0xzz"}', "'prompt_hex' is not valid hex"),
        ('{"model": "m", "prompt": ""}', "the prompt must be 1..65536 bytes, got 0"),
        ('{"model": "m", "prompt": "p", "max_tokens": -1}', "'max_tokens' must be an integer in 0..32768, got -1"),
        ('{"model": "m", "prompt": "p", "max_tokens": true}', "'max_tokens' must be an integer in 0..32768, got True"),
    ],
)
def test_a_bad_corpus_line_is_refused_naming_the_line(line: str, reason: str) -> None:
    with pytest.raises(CorpusFormatError) as caught:
        parse_corpus('# header\n{"model": "m", "prompt": "fine"}\n' + line + "\n", {"m"})
    assert caught.value.line == 3
    assert caught.value.reason.startswith(reason)


# -- nobody can tell them apart from the request alone ---------------------------------------------------------------


def real_population(rng: random.Random, n: int) -> list[JobShape]:
    """Synthetic real smollm2 jobs: prompts of 3 to 60 words, budgets, runtimes, fees and deadlines as requesters
    pick them (a few common values and a tail)."""
    out = []
    for _ in range(n):
        words = rng.choice([rng.randint(3, 12), rng.randint(3, 12), rng.randint(12, 60)])
        prompt = " ".join(rng.choice(WORDS) for _ in range(words)).capitalize().encode()
        out.append(
            JobShape(
                prompt=prompt,
                max_tokens=rng.choice([16, 32, 64, 64, 128, 128, 256, 512, rng.randint(1, 1024)]),
                max_runtime_ms=rng.choice([5_000, 10_000, 20_000, 20_000, 30_000, 60_000, rng.randint(1_000, 600_000)]),
                fee_per_unit=rng.choice([FLOOR, FLOOR, 20_000, 30_000, rng.randint(FLOOR, 200_000)]),
                deadline_blocks=rng.choice([None, None, None, 100, 1_000]),
            )
        )
    return out


def features(job: JobShape | TrapInput) -> list[float]:
    prompt = job.prompt
    return [
        float(len(prompt)),
        float(len(prompt.split())),
        float(prompt[0]),
        float(sum(prompt) % 97),
        float(job.max_tokens),
        float(job.max_runtime_ms),
        float(job.fee_per_unit),
        float(job.deadline_blocks or 0),
    ]


def stump_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """The best single-feature threshold rule on the training half, scored on the test half."""
    best = (0.0, 0, 0.0, True)
    for f in range(train_x.shape[1]):
        for t in np.unique(np.quantile(train_x[:, f], np.linspace(0, 1, 33))):
            pred = train_x[:, f] <= t
            for flip in (False, True):
                acc = float(np.mean((pred != flip) == train_y))
                if acc > best[0]:
                    best = (acc, f, float(t), flip)
    _, f, t, flip = best
    return float(np.mean(((test_x[:, f] <= t) != flip) == test_y))


def naive_bayes_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Naive Bayes over every feature at once, each cut into the training half's deciles (exact values too)."""
    log_odds = np.zeros(len(test_x))
    for f in range(train_x.shape[1]):
        edges = np.unique(np.quantile(train_x[:, f], np.linspace(0, 1, 11)))
        tr, te = np.searchsorted(edges, train_x[:, f]), np.searchsorted(edges, test_x[:, f])
        bins = len(edges) + 1
        pos = np.bincount(tr[train_y], minlength=bins) + 1.0
        neg = np.bincount(tr[~train_y], minlength=bins) + 1.0
        log_odds += np.log(pos[te] / pos.sum()) - np.log(neg[te] / neg.sum())
    return float(np.mean((log_odds > 0) == test_y))


N_EACH = 600  # traps and held-out real jobs each: 1,200 samples, half to train, half to test
# Over 600 test samples a classifier's accuracy at chance has a standard deviation of about 0.02; the draw copies a
# finite sample of real jobs (512 templates), which leaves a small edge measurable over many samples (about 0.53
# over 8,000 on this population), so the stated margin is 0.1: no classifier here reaches 60 %.
MARGIN = 0.1


@dataclass(frozen=True)
class Separation:
    stump: float
    bayes: float


def separation(traps: Sequence[JobShape | TrapInput], real: Sequence[JobShape], rng: random.Random) -> Separation:
    x = np.array([features(j) for j in [*traps, *real]])
    y = np.array([True] * len(traps) + [False] * len(real))
    order = np.array(rng.sample(range(len(y)), len(y)))
    train, test = order[: len(y) // 2], order[len(y) // 2 :]
    return Separation(
        stump=stump_accuracy(x[train], y[train], x[test], y[test]),
        bayes=naive_bayes_accuracy(x[train], y[train], x[test], y[test]),
    )


def old_trap(seed: bytes, n: int, recent: Sequence[JobShape]) -> JobShape:
    """What the trap pass enqueued before issue 14's item 1: a public corpus prompt, max_tokens 16, the median fee
    and runtime of the open jobs."""
    prompts = [c.prompt for c in DEFAULT_CORPUS if c.model == MODEL]
    fees = sorted(j.fee_per_unit for j in recent)
    runtimes = sorted(j.max_runtime_ms for j in recent)
    pick = int.from_bytes(tagged_hash("aicf/trappick/v1", seed, n), "big") % len(prompts)
    return JobShape(
        prompt=prompts[pick],
        max_tokens=16,
        max_runtime_ms=runtimes[len(runtimes) // 2],
        fee_per_unit=fees[len(fees) // 2],
    )


def test_classifiers_on_the_request_fields_cannot_tell_traps_from_real_jobs_better_than_chance() -> None:
    rng = random.Random(14)  # noqa: S311 - a seeded population, not security
    history = real_population(rng, 2_000)  # what the coordinator's store holds when it draws
    corpus = tuple(TrapPrompt(model=MODEL, prompt=j.prompt, max_tokens=16) for j in real_population(rng, 300))
    recent, verified = history[:512], history[512:1024]
    draw: Callable[[int], TrapInput | None] = lambda n: draw_trap_input(SEED, n, MODEL, corpus, recent, verified, FLOOR)  # noqa: E731
    traps = [t for t in map(draw, range(N_EACH)) if t is not None]
    held_out = real_population(rng, N_EACH)  # real jobs the draw never saw
    assert len(traps) == N_EACH
    now = separation(traps, held_out, rng)
    before = separation([old_trap(SEED, n, recent) for n in range(N_EACH)], held_out, rng)
    assert before.stump > 0.9  # the old traps: max_tokens 16 and eight public prompts give them away
    assert before.bayes > 0.95
    assert now.stump < 0.5 + MARGIN, now
    assert now.bayes < 0.5 + MARGIN, now


# -- `aicf up`'s corpus: the private file, else the public one with a warning ----------------------------------------


def test_aicf_up_reads_the_private_corpus_file_from_the_var_directory(tmp_path: Path) -> None:
    path = tmp_path / TRAP_CORPUS_FILE
    path.touch(mode=0o600)
    path.write_text('{"model": "minilm-l6-v2", "prompt": "a private prompt"}\n', encoding="utf-8")
    assert load_trap_corpus(tmp_path, {"minilm-l6-v2"}) == (
        TrapPrompt(model="minilm-l6-v2", prompt=b"a private prompt", max_tokens=16),
    )


def test_without_a_private_corpus_aicf_up_warns_and_uses_the_public_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="aicf.up"):
        corpus = load_trap_corpus(tmp_path, {"minilm-l6-v2"})
    assert corpus == default_trap_corpus({"minilm-l6-v2"})
    assert len(corpus) == 8
    assert "PUBLIC default corpus" in caplog.text


def test_a_corpus_file_others_may_read_stops_aicf_up(tmp_path: Path) -> None:
    path = tmp_path / TRAP_CORPUS_FILE
    path.write_text('{"model": "minilm-l6-v2", "prompt": "p"}\n', encoding="utf-8")
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="group or others may access it"):
        load_trap_corpus(tmp_path, {"minilm-l6-v2"})
