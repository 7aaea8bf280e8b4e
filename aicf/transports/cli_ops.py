"""Operator commands against a running coordinator, over its JSON-RPC API (issue 7, docs/CLI.md).

`aicf providers`, `aicf jobs`, `aicf job ID`, `aicf epoch N`, `aicf audit payout ID`, `aicf devnet reorg`.
Each talks to `--url` (default http://127.0.0.1:8000, where `aicf up` listens; or $AICF_URL) with the same
client the providers use, and prints rich tables, or with `--json` one JSON document on stdout.
Exit 0 on success, 1 when the coordinator refuses (an RPC error), cannot be reached or an audit check fails,
2 on bad usage (typer's own, or an argument that does not parse). Progress goes to stderr.
"""

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Final

import httpx
import typer
from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from aicf.client import RpcClient, RpcError, RpcTransportError
from aicf.client.rpc import tls_context
from aicf.core.encoding import canonical_cbor, from_hex, to_hex
from aicf.core.errors import AicfError, ParamsError
from aicf.core.ids import payout_id
from aicf.core.jobs import JobStatus
from aicf.core.merkle import merkle_root
from aicf.core.params import Params, params_from_mapping, params_from_toml, params_hash
from aicf.core.types import BPS
from aicf.transports import fmt
from aicf.transports.secret_files import (
    RETIRED_TOKEN_FLAG,
    TOKEN_HOWTO,
    SecretFileError,
    operator_token_for_client,
)

DEFAULT_URL: Final = "http://127.0.0.1:8000"
PAGE: Final = 200
NOT_FOUND: Final = -32004


class _FreshConsole:
    """A rich Console made when used, so it sizes itself to the terminal (COLUMNS) of this run, not of import."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    def __getattr__(self, name: str) -> Any:
        return getattr(Console(highlight=False, **self._options), name)


out: Console = _FreshConsole(soft_wrap=False)  # type: ignore[assignment]
err: Console = _FreshConsole(stderr=True, soft_wrap=True)  # type: ignore[assignment]

Json = Any
UrlOption = Annotated[
    str, typer.Option("--url", envvar="AICF_URL", help="The coordinator's API (what `aicf up` printed).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--operator-token-file",
        dir_okay=False,
        help="A file (mode 0600) holding the operator token, e.g. `aicf up`'s var/operator.token; "
        "or set AICF_OPERATOR_TOKEN.",
    ),
]
RetiredTokenOption = Annotated[  # kept only to refuse it with a clear message
    str | None, typer.Option("--token", "--operator-token", hidden=True, help="Refused: see --operator-token-file.")
]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every column and whole ids, however wide the terminal.")]


class CommandFailedError(AicfError):
    """The command cannot do what was asked; the message says why and what to do."""


# -- plumbing --------------------------------------------------------------------------------------------------
def parse_id(value: str) -> bytes:
    """A 32-byte id as 0x hex (bad usage, exit 2, when it is not one)."""
    try:
        raw = from_hex(value if value.startswith("0x") else "0x" + value, "id")
    except AicfError as exc:
        raise typer.BadParameter(str(exc)) from None
    if len(raw) != 32:
        raise typer.BadParameter(f"expected a 32-byte id (0x + 64 hex digits), got {len(raw)} bytes")
    return raw


IdArgument = Annotated[str, typer.Argument(help="A 32-byte id as 0x hex.", metavar="ID")]


def operator_token(token_file: Path | None, retired: str | None) -> str:
    """The operator token of an operator command, from --operator-token-file or $AICF_OPERATOR_TOKEN.
    Exit 2 when it was given as an argument or not at all, 1 when its file is unusable."""
    if retired is not None:
        err.print(f"usage error: {RETIRED_TOKEN_FLAG}", markup=False)
        raise typer.Exit(2)
    try:
        token = operator_token_for_client(token_file, os.environ)
    except SecretFileError as exc:
        err.print(f"error: operator token file {exc}", markup=False)
        raise typer.Exit(1) from None
    if token is None:
        err.print(f"usage error: this command needs the operator token: {TOKEN_HOWTO}", markup=False)
        raise typer.Exit(2)
    return token


@contextlib.contextmanager
def connect(url: str, operator_token: str | None = None) -> Iterator[RpcClient]:
    """A client on `url`/rpc; a refused call or an unreachable server ends the command with exit 1."""
    client = RpcClient(url.rstrip("/") + "/rpc", operator_token=operator_token, timeout_s=30.0)
    try:
        with reporting(url):
            yield client
    finally:
        client.close()


@contextlib.contextmanager
def reporting(url: str) -> Iterator[None]:
    """End the command with exit 1 and one clear message when the coordinator at `url` cannot be reached or
    refuses (for commands whose client is not `connect`'s, such as the requester's)."""
    base = url.rstrip("/")
    try:
        yield
    except RpcTransportError as exc:
        err.print(f"error: cannot reach the coordinator at {base} ({exc}).", markup=False)
        err.print("Is it running? Start it with `aicf up`, or point at it with --url URL (or AICF_URL).", markup=False)
        raise typer.Exit(1) from None
    except RpcError as exc:
        err.print(f"error: the coordinator refused: {exc.message} (code {exc.code})", markup=False)
        if exc.data:
            err.print(f"  {json.dumps(exc.data)}", markup=False)
        raise typer.Exit(1) from None
    except AicfError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None


def emit_json(value: Json) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def progress() -> Progress:
    """A progress display on stderr; it draws only on a terminal, so piped output stays clean."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True, highlight=False),  # a real one: a Progress keeps state on its console
        transient=True,
    )


def when(ts: object) -> str:
    if not isinstance(ts, int) or isinstance(ts, bool):
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def num(value: object) -> str:
    return (
        f"{value:,}"
        if isinstance(value, int) and not isinstance(value, bool)
        else ("-" if value is None else str(value))
    )


def short(value: object, keep: int = 10) -> str:
    """An id shortened for a column where the full one would crowd the table (`--json` has them whole)."""
    text = str(value) if value is not None else "-"
    return text if len(text) <= keep + 4 else f"{text[: keep + 2]}…{text[-4:]}"


WIDE: Final = 150  # a terminal this wide shows whole ids in list tables; a narrower one gets shortened ids


def ident(value: object) -> str:
    """An id for a list table: whole on a wide terminal (to copy into `aicf job ID`), else shortened."""
    return str(value) if out.width >= WIDE else short(value, 12)


def note_short_ids() -> None:
    if out.width < WIDE:
        err.print("(ids shortened to fit the terminal: widen it, or use --json, for whole ids)", markup=False)


def kv_table(title: str, rows: Sequence[tuple[str, object]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, num(value) if isinstance(value, int) else ("-" if value is None else str(value)))
    return table


def grid(title: str, columns: Sequence[str], *, wrap: bool = False) -> Table:
    """A table; unless `wrap`, one line per row, cut with an ellipsis on a narrow terminal (`--json` has all)."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(name, no_wrap=not wrap, overflow="fold" if wrap else "ellipsis")
    return table


@dataclass(frozen=True, slots=True)
class Col:
    """A list-table column. `keep`: the lower, the sooner it is left out on a narrow terminal (0: never)."""

    name: str
    keep: int
    right: bool = False  # numbers align right


def fit_columns(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """The indexes of the columns shown: every column whose whole cells fit `width` together, dropping the
    least useful first. A table with n columns of widths w takes Σw + 3n + 1 cells (borders and padding)."""
    natural = [max([cell_len(c.name), *(cell_len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    shown = list(range(len(cols)))
    for i in sorted((i for i, c in enumerate(cols) if c.keep > 0), key=lambda i: (cols[i].keep, -i)):
        if sum(natural[j] for j in shown) + 3 * len(shown) + 1 <= width:
            break
        shown.remove(i)
    return shown


def print_fitted(title: str, cols: Sequence[Col], rows: Sequence[Sequence[str]], *, wide: bool) -> None:
    """Print a list table that fits the terminal with no cell cut: the least useful columns are left out (and
    named on stderr) when it is narrow, and the ids shortened (said on stderr); `wide` keeps every column and
    whole ids and lets the table be as wide as it needs."""
    width = out.width
    shown = list(range(len(cols))) if wide else fit_columns(cols, rows, width)
    table = Table(title=title, title_justify="left", header_style="bold")
    for i in shown:
        table.add_column(cols[i].name, no_wrap=True, overflow="fold", justify="right" if cols[i].right else "left")
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    need = sum(max([cell_len(cols[i].name), *(cell_len(r[i]) for r in rows)]) for i in shown) + 3 * len(shown) + 1
    Console(highlight=False, soft_wrap=False, width=max(width, need) if wide else width).print(table)
    hidden = [cols[i].name for i in range(len(cols)) if i not in shown]
    if hidden:
        err.print(f"(left out to fit {width} columns: {', '.join(hidden)}; --wide shows them, --json has all)",
                  markup=False)  # fmt: skip
    if not wide:
        note_short_ids()


def ids_for(wide: bool) -> Callable[[object], str]:
    return (lambda v: str(v) if v is not None else "-") if wide else ident


# -- aicf providers ------------------------------------------------------------------------------------------
PROVIDER_COLS: Final = (
    Col("provider", 0),
    Col("status", 0),
    Col("serves", 2),
    Col("bonded", 0, right=True),
    Col("leases", 6, right=True),
    Col("accepted", 5, right=True),
    Col("slashes", 4, right=True),
    Col("p50/p95 ms", 7, right=True),
    Col("avail", 8, right=True),
    Col("last heartbeat", 1),
)


def providers_command(url: UrlOption = DEFAULT_URL, as_json: JsonOption = False, wide: WideOption = False) -> None:
    """Providers with stake, status and QoS."""
    with connect(url) as client:
        items = list(client.pages("aicf.listProviders", {"limit": PAGE}))
    if as_json:
        emit_json(items)
        return
    ids = ids_for(wide)
    rows = [
        [
            ids(p["provider_id"]),
            p["status"],
            ", ".join([*p.get("kinds", []), *p.get("models", [])]),
            fmt.anm(p.get("bonded_stake")),
            fmt.count(p.get("live_leases")),
            fmt.count(p.get("proofs_accepted")),
            fmt.count(p.get("slashes")),
            f"{fmt.count(p.get('latency_p50_ms'))}/{fmt.count(p.get('latency_p95_ms'))}",
            fmt.pct(p.get("availability_bps")),
            when(p.get("last_heartbeat_at")),
        ]
        for p in items
    ]
    print_fitted(f"providers ({len(items)})", PROVIDER_COLS, rows, wide=wide)


# -- aicf jobs -----------------------------------------------------------------------------------------------
STATUS_NAMES: Final = tuple(s.value for s in JobStatus)
JOB_COLS: Final = (
    Col("task", 0),
    Col("kind", 6),
    Col("status", 0),
    Col("provider", 5),
    Col("tier", 3, right=True),
    Col("attempts", 4, right=True),
    Col("enqueued at", 1, right=True),
    Col("fee/unit", 2, right=True),
    Col("max units", 3, right=True),
)


def parse_status(value: str) -> str:
    upper = value.upper()
    if upper not in STATUS_NAMES:
        raise typer.BadParameter(f"{value!r} is not a job status; one of {', '.join(STATUS_NAMES)}")
    return upper


def jobs_command(
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", parser=parse_status, help="Only jobs in this status (repeatable)."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many jobs.")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=500, help="Jobs per API call.")] = PAGE,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Jobs, optionally by status, paged through the API to the end (or --limit)."""
    params: dict[str, Any] = {"limit": min(page_size, limit or page_size)}
    if status:
        params["statuses"] = sorted(set(status), key=STATUS_NAMES.index)
    items: list[Json] = []
    with connect(url) as client, progress() as bar:
        counts = client.call("aicf.getStatus")["queue"]["by_status"]
        expected = sum(int(counts.get(s, 0)) for s in params.get("statuses", STATUS_NAMES))
        task = bar.add_task("fetching jobs", total=min(expected, limit) if limit else expected)
        while True:
            page = client.call("aicf.listJobs", params)
            items.extend(page["items"])
            bar.update(task, completed=len(items))
            if page.get("next_cursor") is None or (limit is not None and len(items) >= limit):
                break
            params["cursor"] = page["next_cursor"]
    items = items[:limit] if limit is not None else items
    if as_json:
        emit_json(items)
        return
    ids = ids_for(wide)
    rows = [
        [
            ids(j["task_id"]),
            j["kind"] + (f" {j['model']}" if j.get("model") else ""),
            j["status"],
            ids(j.get("provider_id")) if j.get("provider_id") else "-",
            fmt.count(j.get("tier")),
            fmt.count(j.get("attempts")),
            f"#{fmt.count(j.get('enqueue_height'))}",
            fmt.anm(j.get("fee_per_unit")),
            fmt.units(j.get("max_units_mu")),
        ]
        for j in items
    ]
    print_fitted(f"jobs ({len(items)})", JOB_COLS, rows, wide=wide)
    by_status: dict[str, int] = {}
    for j in items:
        by_status[j["status"]] = by_status.get(j["status"], 0) + 1
    out.print(", ".join(f"{s.lower()} {by_status[s]}" for s in STATUS_NAMES if s in by_status) or "no jobs")


# -- aicf job ID ---------------------------------------------------------------------------------------------
def job_command(job_id: IdArgument, url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """A job's whole story: receipt, transitions, assignment decisions, lease attempts, proofs, result, payout."""
    task = parse_id(job_id)
    with connect(url) as client:
        try:
            story = client.call("aicf.getJob", {"id": to_hex(task)})
        except RpcError as exc:
            if exc.code != NOT_FOUND:
                raise
            raise CommandFailedError(f"no job {to_hex(task)} on {url}: check the id with `aicf jobs`") from None
    if as_json:
        emit_json(story)
        return
    print_story(story)


RECEIPT_FIELDS: Final = (
    "task_id",
    "kind",
    "model",
    "status",
    "tier",
    "attempts",
    "caller",
    "enqueue_height",
    "deadline_height",
    "fee_per_unit",
    "max_units_mu",
    "escrow",
    "not_before",
    "payload_hash",
)


def print_story(story: Mapping[str, Json]) -> None:
    out.print(kv_table("receipt", [(k, story.get(k)) for k in RECEIPT_FIELDS]))
    out.print()
    transitions = grid("transitions", ["from", "to", "reason", "height", "time (UTC)"])
    for t in story.get("transitions", []):
        transitions.add_row(
            t.get("from") or "-",
            t["to"],
            t.get("reason") or "",
            f"#{t['height']}" if isinstance(t.get("height"), int) else "-",
            when(t.get("time")),
        )
    out.print(transitions)
    for d in story.get("decisions", []):
        print_decision(d)
    leases = grid("lease attempts", ["attempt", "lease_id", "provider", "granted", "expires", "status", "ended"])
    for lease in story.get("leases", []):
        leases.add_row(
            num(lease["attempt"]),
            ident(lease["lease_id"]),
            short(lease["provider_id"]),
            when(lease.get("granted_at")),
            when(lease.get("expires_at")),
            lease["status"],
            when(lease.get("ended_at")),
        )
    out.print(leases)
    proofs = grid("proof verdicts", ["proof_id", "provider", "kind", "verdict", "units_mu", "latency ms", "message"])
    for pr in story.get("proofs", []):
        proofs.add_row(
            ident(pr["proof_id"]),
            short(pr["provider_id"]),
            pr.get("kind", ""),
            str(pr.get("verdict")),
            num(pr.get("units_mu")),
            num(pr.get("latency_ms")),
            pr.get("message") or "",
        )
    out.print(proofs)
    result = story.get("result")
    out.print(kv_table("result", list(result.items())) if result else "result: none yet")
    out.print()
    payout = story.get("payout")
    out.print(kv_table("payout", list(payout.items())) if payout else "payout: not settled yet")
    note_short_ids()


def print_decision(d: Mapping[str, Json]) -> None:
    winner = d.get("winner")
    title = f"assignment decision, attempt {d.get('attempt')}: winner {winner or 'none (the job waits)'}"
    table = grid(title, ["provider", "stake", "excluded", "draws (j: r)", "outcome"])
    excluded = {e["provider_id"]: e.get("reason", "") for e in d.get("excluded", [])}
    draws: dict[str, list[str]] = {}
    refused: dict[str, str] = {}
    for draw in d.get("draws", []):
        draws.setdefault(draw["provider_id"], []).append(f"{draw['j']}: {short(to_hex_int(draw.get('r')), 8)}")
        if draw.get("refused"):
            refused[draw["provider_id"]] = str(draw["refused"])
    ids = [c["provider_id"] for c in d.get("candidates", [])] + [e for e in excluded if e not in draws]
    stakes = {c["provider_id"]: c.get("stake") for c in d.get("candidates", [])}
    for pid in dict.fromkeys([*ids, *draws]):
        outcome = "WINNER" if pid == winner else (f"refused: {refused[pid]}" if pid in refused else "")
        table.add_row(ident(pid), num(stakes.get(pid)), excluded.get(pid, ""), "; ".join(draws.get(pid, [])), outcome)
    out.print(f"beacon {d.get('beacon')}", markup=False)
    out.print(table)


def to_hex_int(value: object) -> str:
    return hex(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


# -- aicf epoch N --------------------------------------------------------------------------------------------
def epoch_command(
    epoch: Annotated[int, typer.Argument(min=0, help="The epoch number.")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """A settled epoch: its batch, root, split totals and payouts."""
    with connect(url) as client:
        batch = fetch_epoch(client, epoch, url)
    if as_json:
        emit_json(batch)
        return
    rows = [
        (k, batch.get(k))
        for k in (
            "epoch",
            "finalized_height",
            "price_bps",
            "next_price_bps",
            "payout_count",
            "carried_count",
            "treasury_before",
            "params_hash",
            "root",
        )
    ]
    rows.append(("cap use", fmt.pct(batch.get("cap_use_bps"))))
    out.print(kv_table(f"epoch {epoch} batch", rows))
    out.print()
    totals = batch.get("totals", {})
    split = [("units", fmt.units(totals.get("units_mu"))), *((k, fmt.anm(totals.get(k))) for k in SPLIT_KEYS)]
    out.print(kv_table("split totals", split))  # one row each: fits any terminal
    out.print()
    ids = ids_for(wide)
    payouts = [
        [ids(p["payout_id"]), ids(p["task_id"]), ids(p["provider_id"]), fmt.units(p["units_mu"]),
         *(fmt.anm(p[k]) for k in ("reward", "provider", "miner", "fund"))]
        for p in batch.get("payouts", [])
    ]  # fmt: skip
    print_fitted(f"payouts ({len(payouts)}, admission order)", PAYOUT_COLS, payouts, wide=wide)


SPLIT_KEYS: Final = ("reward", "provider", "miner", "fund", "charged")
PAYOUT_COLS: Final = (
    Col("payout_id", 0),
    Col("task", 2),
    Col("provider", 3),
    Col("units", 0, right=True),
    Col("reward", 0, right=True),
    Col("to provider", 4, right=True),
    Col("miner", 1, right=True),
    Col("fund", 1, right=True),
)


def fetch_epoch(client: RpcClient, epoch: int, url: str) -> Json:
    try:
        return client.call("aicf.getEpoch", {"epoch": epoch})
    except RpcError as exc:
        if exc.code != NOT_FOUND:
            raise
    status = client.call("aicf.getStatus")
    last = status.get("last_settled_epoch")
    settled = "no epoch is settled yet" if last is None else f"the last settled epoch is {last}"
    raise CommandFailedError(f"epoch {epoch} is not settled on {url}: {settled}")


# -- aicf audit payout ID ------------------------------------------------------------------------------------
audit_app = typer.Typer(
    help="Recompute what the coordinator published and compare.", no_args_is_help=True, add_completion=False
)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expected: object
    actual: object
    rule: str

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def devnet_params() -> Params:
    """The params `aicf up` runs with (aicf/devnet.toml over SPEC's defaults)."""
    return params_from_toml((files("aicf") / "devnet.toml").read_text(encoding="utf-8"))


def load_local_params(path: Path | None) -> tuple[Params, str]:
    if path is None:
        return devnet_params(), "aicf/devnet.toml (what `aicf up` runs)"
    try:
        return params_from_toml(path.read_text(encoding="utf-8")), str(path)
    except OSError as exc:
        err.print(f"error: cannot read params file {path}: {exc.strerror}", markup=False)
        raise typer.Exit(2) from None
    except AicfError as exc:
        err.print(f"error: {path}: {exc}", markup=False)
        raise typer.Exit(2) from None


def find_payout(client: RpcClient, wanted: bytes, epoch: int | None) -> tuple[Json, Json]:
    """(payout, its epoch's batch) for a payout id, or for a task id whose job was paid."""
    try:
        job = client.call("aicf.getJob", {"id": to_hex(wanted)})
    except RpcError as exc:
        if exc.code != NOT_FOUND:
            raise
        job = None
    if job is not None:
        if job.get("payout") is None:
            raise CommandFailedError(f"job {to_hex(wanted)} is {job['status']}: it has no payout yet")
        e = int(job["payout"]["epoch"])
        return job["payout"], client.call("aicf.getEpoch", {"epoch": e})
    if epoch is not None:
        epochs = [epoch]
    else:
        last = client.call("aicf.getStatus").get("last_settled_epoch")
        epochs = list(range(last, -1, -1)) if last is not None else []
    with progress() as bar:
        task = bar.add_task("searching settled epochs", total=len(epochs))
        for e in epochs:
            try:
                batch = client.call("aicf.getEpoch", {"epoch": e})
            except RpcError as exc:
                if exc.code != NOT_FOUND:
                    raise
                batch = {"payouts": []}
            for p in batch["payouts"]:
                if p["payout_id"] == to_hex(wanted):
                    return p, batch
            bar.advance(task)
    where = f"epoch {epoch}" if epoch is not None else f"the {len(epochs)} settled epoch(s)"
    raise CommandFailedError(
        f"no payout {to_hex(wanted)} in {where}, and no job with that id: check the id with `aicf epoch N`"
    )


def payout_bytes(p: Mapping[str, Json]) -> bytes:
    """The payout map's canonical CBOR, ids back to bytes (SPEC §5: what the batch root commits to)."""
    return canonical_cbor({k: from_hex(v, k) if isinstance(v, str) else v for k, v in p.items()})


def audit_checks(
    payout: Mapping[str, Json],
    batch: Mapping[str, Json],
    job: Mapping[str, Json],
    result: Mapping[str, Json],
    params: Params,
) -> list[Check]:
    """Every figure of the payout recomputed from the chain's records and the local params, in SPEC's order."""
    epoch, task = int(batch["epoch"]), from_hex(payout["task_id"], "task_id")
    local_hash = to_hex(params_hash(params))
    kind = str(job.get("kind"))
    units = int(result["units_mu"])
    base_rate = params.base_rate(kind)
    price = int(batch["price_bps"])
    reward = units * base_rate * price // (1000 * BPS)
    provider = reward * params.provider_bps // BPS
    miner = reward * params.miner_bps // BPS
    items = [payout_bytes(p) for p in batch["payouts"]]
    position = next((i for i, p in enumerate(batch["payouts"]) if p["payout_id"] == payout["payout_id"]), None)
    return [
        Check("payout_id", to_hex(payout_id(epoch, task)), payout["payout_id"], 'H("aicf/payout/v1", epoch, task_id)'),
        Check("epoch", epoch, payout["epoch"], "the batch that holds the payout"),
        Check("params_hash", local_hash, payout["params_hash"], "H(local params) = the payout's params_hash"),
        Check("batch params_hash", local_hash, batch["params_hash"], "H(local params) = the batch's params_hash"),
        Check("price_bps", price, payout["price_bps"], "the batch's price"),
        Check("units_mu", units, payout["units_mu"], "the ResultRecord's units_mu"),
        Check("base_rate", base_rate, payout["base_rate"], f"params.base_rate_{'ai' if kind == 'ai' else 'quantum'}"),
        Check("reward", reward, payout["reward"], "units_mu × base_rate × price_bps // (1000 × 10000)"),
        Check("provider", provider, payout["provider"], f"reward × provider_bps {params.provider_bps} // 10000"),
        Check("miner", miner, payout["miner"], f"reward × miner_bps {params.miner_bps} // 10000"),
        Check("fund", reward - provider - miner, payout["fund"], "reward − provider − miner"),
        Check(
            "charged", int(job["fee_per_unit"]) * units // 1000, payout["charged"], "fee_per_unit × units_mu // 1000"
        ),
        Check("provider_id", result["provider_id"], payout["provider_id"], "the ResultRecord's provider"),
        Check("miner_id", result["miner_id"], payout["miner_id"], "the producer of the proof's inclusion block"),
        Check("proof_id", result["proof_id"], payout["proof_id"], "the ResultRecord's proof"),
        Check(
            "included by finalized_height",
            True,
            int(result["height"]) <= int(batch["finalized_height"]),
            f"proof height {result['height']} ≤ {batch['finalized_height']}",
        ),
        Check("in batch", True, position is not None, f"position {position} of {len(items)} in admission order"),
        Check("root", batch["root"], to_hex(merkle_root(items)), "Merkle root of the payouts' canonical CBOR"),
    ]


@audit_app.command("payout")
def audit_payout_command(
    payout_ref: Annotated[
        str, typer.Argument(help="A payout id (or the task id of a paid job), 0x hex.", metavar="ID")
    ],
    params_file: Annotated[
        Path | None, typer.Option("--params", help="The params TOML to audit against (default aicf/devnet.toml).")
    ] = None,
    epoch: Annotated[int | None, typer.Option("--epoch", min=0, help="Search only this epoch.")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Recompute a payout from the chain's records and the params; print each check; exit 1 on a mismatch."""
    wanted = parse_id(payout_ref)
    params, params_source = load_local_params(params_file)
    with connect(url) as client:
        payout, batch = find_payout(client, wanted, epoch)
        task = payout["task_id"]
        job = client.call("aicf.getJob", {"id": task})
        result = client.call("aicf.getResult", {"id": task})
        version = client.call("aicf.getParams", {"epoch": int(batch["epoch"])})
    params = epoch_params(params, version)  # the params file with the operator's on-chain changes in force
    params_source += f", version {version['version']}" + (
        f" (+{len(version['changes'])} on-chain change(s), last {version['changes'][-1]['tx_hash']})"
        if version["changes"]
        else ""
    )
    checks = audit_checks(payout, batch, job, result, params)
    failed = [c for c in checks if not c.ok]
    hint = params_hint(batch["params_hash"], params) if any(c.name.endswith("params_hash") for c in failed) else None
    if as_json:
        emit_json(
            {
                "payout_id": payout["payout_id"],
                "task_id": task,
                "epoch": batch["epoch"],
                "params": params_source,
                "params_version": version["version"],
                "params_changes": [c["tx_hash"] for c in version["changes"]],
                "ok": not failed,
                "failed": [c.name for c in failed],
                "checks": [
                    {"name": c.name, "expected": c.expected, "actual": c.actual, "ok": c.ok, "rule": c.rule}
                    for c in checks
                ],
                **({"hint": hint} if hint else {}),
            }
        )
    else:
        table = grid(
            f"audit of payout {payout['payout_id']} (epoch {batch['epoch']}, params {params_source})",
            ["check", "", "expected", "actual", "rule"],
            wrap=True,
        )
        for c in checks:
            table.add_row(c.name, "ok" if c.ok else "[red]MISMATCH[/red]", shown(c.expected), shown(c.actual), c.rule)
        out.print(table)
        if failed:
            out.print(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}", markup=False)
            if hint:
                out.print(hint, markup=False)
        else:
            out.print(f"all {len(checks)} checks pass: the payout matches the chain and the params", markup=False)
    if failed:
        raise typer.Exit(1)


def epoch_params(local: Params, version: Mapping[str, Json]) -> Params:
    """`local` with the params changes the chain put in force by the audited epoch (aicf.getParams), in order."""
    for change in version["changes"]:
        try:
            local = params_from_mapping(change["changes"], local)
        except ParamsError as exc:
            raise CommandFailedError(f"the on-chain params change {change['tx_hash']} does not apply: {exc}") from None
    return local


def shown(value: object) -> str:
    return num(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def params_hint(published: str, local: Params) -> str:
    """Which known params set the batch was settled under, when it is not the local one."""
    known = {"aicf/devnet.toml (aicf up)": devnet_params(), "SPEC defaults": Params.default()}
    for name, candidate in known.items():
        if to_hex(params_hash(candidate)) == published:
            return f"the batch was settled under {name}; the local params differ from it (pass the right --params)"
    return (
        f"the batch's params_hash {published} is not the local params' {to_hex(params_hash(local))} nor a "
        "known preset: audit with the coordinator's params file (--params)"
    )


# -- aicf devnet reorg ---------------------------------------------------------------------------------------
def devnet_reorg_command(
    depth: Annotated[int, typer.Option("--depth", min=1, max=6, help="Blocks to replace (1..6, below finality).")],
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Reorganize the running devnet: replace its last N blocks (the coordinator replays the new branch)."""
    with connect(url, operator_token=operator_token(token_file, retired_token)) as client:
        outcome = client.call_operator("aicf.devnetReorg", {"depth": depth})
    if as_json:
        emit_json(outcome)
        return
    out.print(
        f"replaced {outcome['depth']} block(s); new head #{outcome['head_height']} {outcome['head_hash']}",
        markup=False,
        soft_wrap=True,
    )
    for old, new in zip(outcome["orphaned"], outcome["branch"], strict=False):
        out.print(f"  {short(old, 16)} -> {short(new, 16)}", markup=False)


# -- aicf report --out DIR ---------------------------------------------------------------------------------
def report_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the charts into (created if missing).")],
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Save the dashboard's charts of the last hour as SVG files (the same figures `/charts/` serves)."""
    base = url.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=30.0, verify=tls_context()) as http:
            index = http.get("/charts/")
            index.raise_for_status()
            names = [str(n) for n in index.json()["charts"]]
            charts = {}
            for name in names:
                answer = http.get(f"/charts/{name}")
                answer.raise_for_status()
                charts[name] = answer.text
    except httpx.HTTPError as exc:
        err.print(f"error: cannot read the charts from {base}/charts/ ({exc}).", markup=False)
        err.print("Is it running? Start it with `aicf up`, or point at it with --url URL (or AICF_URL).", markup=False)
        raise typer.Exit(1) from None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, svg in charts.items():
            (out_dir / Path(name).name).write_text(svg, encoding="utf-8")
    except OSError as exc:
        err.print(f"error: cannot write into {out_dir}: {exc.strerror}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"wrote {len(charts)} charts to {out_dir}: {', '.join(charts)}", markup=False, soft_wrap=True)


# -- registration ---------------------------------------------------------------------------------------------
def register_ops(app: typer.Typer) -> None:
    """Add the commands to the `aicf` app; `reorg` joins the existing `aicf devnet` group."""
    app.command("providers")(providers_command)
    app.command("jobs")(jobs_command)
    app.command("job")(job_command)
    app.command("epoch")(epoch_command)
    app.command("report")(report_command)
    app.add_typer(audit_app, name="audit")
    devnet = next((g.typer_instance for g in app.registered_groups if g.name == "devnet"), None)
    if devnet is None:
        devnet = typer.Typer(help="The embedded devnet.", no_args_is_help=True, add_completion=False)
        app.add_typer(devnet, name="devnet")
    devnet.command("reorg")(devnet_reorg_command)
