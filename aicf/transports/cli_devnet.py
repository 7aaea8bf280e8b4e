"""`aicf devnet …`: run the embedded devnet and ingest its blocks into the store."""

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.core.params import Params
from aicf.service.audit import verify
from aicf.service.ports import DefaultUrl, StoreOpener

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ScenarioRunner = Callable[..., object]
DbOption = typer.Option(None, "--db", help="memory:, sqlite:///path.db or postgresql://…")
SeedOption = typer.Option(0, "--seed", help="Seed of the chain and of the scripted traffic.")
StepsOption = typer.Option(100, "--steps", min=0, help="Scripted steps (deposits, enqueues, blocks, reorgs).")
ProgressOption = typer.Option(None, "--progress", help="Keep the step count here: a killed run resumes from it.")
QuietOption = typer.Option(False, "--quiet")


def build_devnet_app(open_store: StoreOpener, default_url: DefaultUrl, run_scenario: ScenarioRunner) -> typer.Typer:
    devnet_app = typer.Typer(help="The embedded devnet.", no_args_is_help=True, add_completion=False)

    @devnet_app.command("run")
    def run_command(
        db: str | None = DbOption,
        seed: int = SeedOption,
        steps: int = StepsOption,
        progress: Path | None = ProgressOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Drive the devnet through a seeded script, ingesting every block (with its reorgs) into the store."""
        try:
            store = open_store(db or default_url())
        except AicfError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(1) from None
        try:
            run_scenario(store, Params.default(), seed=seed, steps=steps, progress=progress)
            report = verify(store)
        except AicfError as exc:
            err.print(f"error: {exc}", markup=False)
            err.print("the block being ingested was rolled back whole; fix the cause and run the command again")
            raise typer.Exit(1) from None
        finally:
            store.close()
        if not quiet:
            out.print(f"jobs: {report.jobs}  ledger entries: {report.entries}  minted: {report.minted} µANM")
        out.print(f"state digest: {to_hex(report.digest)}")
        if not report.ok:
            for problem in report.problems:
                err.print(f"VIOLATION: {problem}", markup=False)
            raise typer.Exit(1)

    return devnet_app
