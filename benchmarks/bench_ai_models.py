"""AI model benchmarks (issue 6, items 4, 5 and 8): load time, per-call latency, and AI trap re-execution cost.

Run: .venv/bin/python benchmarks/bench_ai_models.py [--calls N] [--max-tokens T]

For each served model, in a fresh process (so the load is cold apart from the OS page cache):
- load: import of the runtime + reading the package's model file (smollm2: GGUF dequantized to float32);
- per call: median and p95 wall time of one embedding / one greedy generation of T tokens over N calls;
- trap: the coordinator's full cost for one trap = `reexecute_trap` + the pure comparison of `aicf.proofs`.
Everything runs single-threaded (the runners pin it), so the numbers are one core's. Prints a markdown table.
"""

import argparse
import platform
import statistics
import subprocess
import sys
import time

from aicf.core.params import Params
from aicf.proofs.ai_traps import check_embedding_trap, check_generation_output
from aicf.provider.models import MODELS, ModelRunner, reexecute_trap, runner
from aicf.provider.trap_corpus import DEFAULT_CORPUS


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def bench_one(model: str, calls: int, max_tokens: int) -> list[str]:
    started = time.perf_counter()
    loaded: ModelRunner = runner(model)
    loaded.load()
    load_s = time.perf_counter() - started
    prompts = [case.prompt for case in DEFAULT_CORPUS if case.model == model]
    min_bps = Params().embedding_cosine_min_bps
    call_s: list[float] = []
    trap_s: list[float] = []
    tokens = 0
    for i in range(calls):
        prompt = prompts[i % len(prompts)]
        started = time.perf_counter()
        answer = reexecute_trap(model, prompt, max_tokens)
        call_s.append(time.perf_counter() - started)
        tokens += len(answer.token_ids)
        got = reexecute_trap(model, prompt, max_tokens)  # the provider's answer: same model, same machine
        started = time.perf_counter()
        if answer.kind == "embedding":
            result = check_embedding_trap(answer.output, got.output, min_bps)
        else:
            result = check_generation_output(answer.token_ids, answer.text, got.output)
        compare = time.perf_counter() - started
        if not result.passed:
            raise SystemExit(f"{model}: an honest answer failed its trap: {result.message}")
        trap_s.append(call_s[-1] + compare)
    p95 = sorted(call_s)[max(0, round(0.95 * len(call_s)) - 1)]
    per_token = f"{_ms(sum(call_s) / tokens)}" if tokens else "-"
    return [
        model,
        MODELS[model].kind,
        f"{load_s:.1f}",
        _ms(statistics.median(call_s)),
        _ms(p95),
        per_token,
        _ms(statistics.median(trap_s)),
        f"{calls}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--model", help="run one model in this process (used by the parent run)")
    args = parser.parse_args()
    if args.model:
        print("|".join(bench_one(args.model, args.calls, args.max_tokens)))
        return
    rows = []
    for model in MODELS:  # one process per model: each load is measured without the other's memory
        out = subprocess.run(  # noqa: S603 - our own interpreter and script, fixed arguments
            [
                sys.executable,
                __file__,
                "--model",
                model,
                "--calls",
                str(args.calls),
                "--max-tokens",
                str(args.max_tokens),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(out.stdout.strip().splitlines()[-1].split("|"))
    print(
        f"AI models on {platform.machine()} ({platform.python_version()}), one thread, max_tokens {args.max_tokens}\n"
    )
    print("| model | kind | load s | call median ms | call p95 ms | ms/token | trap re-execution ms | calls |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
