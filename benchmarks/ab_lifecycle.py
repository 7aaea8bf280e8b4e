"""Before and after on a shared machine (issue 18): the one-process SQLite lifecycle of `bench_lifecycle.py` for
two source trees, each round in a fresh process per tree, alternating (base, new, base, new, …), timed in the
coordinator's CPU seconds (`time.process_time`) instead of wall seconds.

On two cores shared with other work a wall-clock rate moves with the load by ±50 %; CPU time moves far less, and
the two trees alternate within seconds, so their ratio round by round is what a change bought. It counts only
this process's CPU: right for SQLite (in-process), meaningless for PostgreSQL (the server's work is elsewhere),
so only SQLite is offered.

Run: .venv/bin/python benchmarks/ab_lifecycle.py --base REV [--new DIR] [--jobs N] [--runs R]
`--base` is any git revision, extracted with `git archive` into a temporary folder; `--new` defaults to this
checkout. Prints a markdown table: coordinator jobs per CPU second, min / median / max, and new ÷ base.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from reference import fmt_ratio, fmt_spread, load_average, rounds

ROOT = Path(__file__).resolve().parent.parent

# Runs inside each tree (its own aicf and benchmarks), so the base need not know this script: its lifecycle is
# timed by its own Timer, whose time.perf_counter is swapped for process_time in that child process only.
CHILD = """
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "benchmarks")
import bench_lifecycle as b
from aicf.store.sqlite import SqliteStore
b.time.perf_counter = time.process_time
with tempfile.TemporaryDirectory() as d:
    store = SqliteStore(Path(d) / "ab.db")
    try:
        total, phases = b.lifecycle(store, int(sys.argv[1]), int(sys.argv[2]))
    finally:
        store.close()
print(json.dumps({"rate": int(sys.argv[1]) / total, "phases": phases}))
"""


def extract(rev: str, into: Path) -> Path:
    """The tree of git revision `rev` (the repository of this script), written under `into`."""
    archive = into / "base.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev], stdout=out, check=True)  # noqa: S603, S607
    tree = into / "base"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def run_tree(tree: Path, jobs: int, providers: int) -> dict[str, object]:
    """One lifecycle of `tree` in a fresh process: {"rate": jobs per CPU second, "phases": {...}}."""
    done = subprocess.run(  # noqa: S603 - our own interpreter on our own code
        [sys.executable, "-c", CHILD, str(jobs), str(providers)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"{tree}: the lifecycle failed (exit {done.returncode}): {tail[0]}")
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def table(base: list[float], new: list[float], loads: list[float]) -> str:
    return "\n".join(
        [
            "| tree | coordinator jobs per CPU second | new / base, round by round |",
            "|---|---|---|",
            f"| base | {fmt_spread(base)} | |",
            f"| new | {fmt_spread(new)} | {fmt_ratio(new, base)} |",
            "",
            f"load average (1 min) after each round: {', '.join(f'{x:.2f}' for x in loads)}",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="The SQLite lifecycle of two trees, alternating, in CPU seconds.")
    ap.add_argument("--base", required=True, help="a git revision: the tree before the change")
    ap.add_argument("--new", type=Path, default=ROOT, help="the tree after it (default: this checkout)")
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--providers", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5, help="rounds; each runs base then new")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.providers < 1 or args.runs < 1:
        ap.error("--jobs, --providers and --runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"\n### Lifecycle before / after, SQLite, one process ({args.jobs:,} jobs, {rounds(args.runs)})\n")
    print(f"base {args.base}, new {args.new}; at the start: {load_average()}\n")
    base: list[float] = []
    new: list[float] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        tree = extract(args.base, Path(d))
        for _ in range(args.runs):
            base.append(float(run_tree(tree, args.jobs, args.providers)["rate"]))  # type: ignore[arg-type]
            new.append(float(run_tree(args.new, args.jobs, args.providers)["rate"]))  # type: ignore[arg-type]
            loads.append(os.getloadavg()[0])
    print(table(base, new, loads))


if __name__ == "__main__":
    main()
