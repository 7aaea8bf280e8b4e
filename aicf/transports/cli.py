"""The `aicf` command line. Exit 0 on success, 1 on an AicfError or failed check, 2 on bad usage."""

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from aicf.app import wire_cli
from aicf.core.conformance import VectorError, parse_vector_file, run_case
from aicf.core.errors import AicfError
from aicf.core.params import Params, params_from_toml
from aicf.transports.cli_ops import register_ops
from aicf.transports.cli_provider import provider_app
from aicf.transports.cli_request import request_app
from aicf.transports.cli_roots import policy_app, roots_app
from aicf.transports.demo import worked_example

app = typer.Typer(help="AI Compute Fund coordinator.", no_args_is_help=True, add_completion=False)
wire_cli(app)  # aicf db …, aicf devnet …
app.add_typer(provider_app, name="provider")
app.add_typer(request_app, name="request")  # aicf request ai|quantum|deposit|balance|cancel|status|result
register_ops(app)  # aicf providers, jobs, job, epoch, audit payout, devnet reorg (over JSON-RPC)
app.add_typer(roots_app, name="roots")  # aicf roots list|add|rotate
app.add_typer(policy_app, name="policy")  # aicf policy show|set
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def load_params(path: Path | None) -> Params:
    """SPEC defaults, or a TOML params file laid over them. Exits 2 with the offending key on a bad file."""
    if path is None:
        return Params.default()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        err.print(f"error: cannot read params file {path}: {exc.strerror}")
        raise typer.Exit(2) from None
    try:
        return params_from_toml(text)
    except AicfError as exc:
        err.print(f"error: {path}: {exc}")
        raise typer.Exit(2) from None


ParamsOption = typer.Option(None, "--params", help="A TOML params file (keys it omits keep SPEC's defaults).")
VectorFiles = typer.Argument(..., help="Vector files of SPEC §14: {kind, cases: [{name, input, expect}]}")


@app.command()
def conformance(
    files: list[Path] = VectorFiles,
    params_file: Path | None = ParamsOption,
) -> None:
    """Run conformance vectors: one line per case, then `N passed, N failed`."""
    params = load_params(params_file)
    passed = failed = 0
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            kind, cases = parse_vector_file(data)
        except OSError as exc:
            out.print(f"FAIL {path}: cannot read: {exc.strerror or exc}", markup=False)
            failed += 1
            continue
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            out.print(f"FAIL {path}: not valid JSON: {exc}", markup=False)
            failed += 1
            continue
        except VectorError as exc:
            out.print(f"FAIL {path}: {exc}", markup=False)
            failed += 1
            continue
        for index, case in enumerate(cases):
            result = run_case(kind, case, params, index)
            if result.passed:
                passed += 1
                out.print(f"ok   {kind}/{result.name}", markup=False)
            else:
                failed += 1
                out.print(f"FAIL {kind}/{result.name}: {result.detail}", markup=False)
    out.print(f"{passed} passed, {failed} failed", markup=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(params_file: Path | None = ParamsOption) -> None:
    """Run the worked example of docs/DESIGN.md §10 through the core and print every step."""
    params = load_params(params_file)
    for title, rows in worked_example(params):
        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in rows:
            table.add_row(key, value)
        out.print(table)
        out.print()


def main() -> None:
    try:
        app()
    except AicfError as exc:  # a use-case refused: say why, exit 1
        err.print(f"error: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
