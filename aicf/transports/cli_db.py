"""`aicf db …`: audit the store. Exit 0 when every invariant holds, 1 on a violation or a store error."""

import json

import typer
from rich.console import Console

from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.service.audit import VerifyReport, verify
from aicf.service.ports import DefaultUrl, StoreOpener

DbOption = typer.Option(None, "--db", help="memory:, sqlite:///path.db or postgresql://… (default $AICF_DB)")
JsonOption = typer.Option(False, "--json", help="Print the report as one JSON object.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _report_json(report: VerifyReport) -> str:
    return json.dumps(
        {
            "ok": report.ok,
            "problems": list(report.problems),
            "checks": list(report.checks),
            "minted": report.minted,
            "accounts": report.accounts,
            "entries": report.entries,
            "jobs": report.jobs,
            "balances": report.balances,
            "state_digest": to_hex(report.digest),
        },
        sort_keys=True,
    )


def build_db_app(open_store: StoreOpener, default_url: DefaultUrl) -> typer.Typer:
    db_app = typer.Typer(help="Audit the coordinator's database.", no_args_is_help=True, add_completion=False)

    @db_app.command("verify")
    def verify_command(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
        """Recompute every balance from the ledger, check the invariants, print the state digest."""
        try:
            store = open_store(db or default_url(), must_exist=True)
        except AicfError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(1) from None
        try:
            report = verify(store)
        except AicfError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(1) from None
        finally:
            store.close()
        if as_json:
            out.print(_report_json(report), markup=False)
        else:
            out.print(f"jobs: {report.jobs}  ledger entries: {report.entries}  accounts: {report.accounts}")
            out.print(f"minted: {report.minted} µANM")
            for kind, total in report.balances.items():
                out.print(f"  {kind:<10} {total:>24} µANM", markup=False)
            for check in report.checks:
                out.print(f"checked: {check}", markup=False)
            for problem in report.problems:
                out.print(f"VIOLATION: {problem}", markup=False)
            out.print(f"state digest: {to_hex(report.digest)}")
            out.print("ok" if report.ok else f"{len(report.problems)} violation(s)")
        if not report.ok:
            raise typer.Exit(1)

    @db_app.command("digest")
    def digest_command(db: str | None = DbOption) -> None:
        """Print the state digest only."""
        try:
            store = open_store(db or default_url(), must_exist=True)
            try:
                report = verify(store)
            finally:
                store.close()
        except AicfError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(1) from None
        out.print(to_hex(report.digest))

    return db_app
