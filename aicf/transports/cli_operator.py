"""`aicf params set`, `aicf tier set`, `aicf allowlist add|remove`, `aicf traps fund`, `aicf grant set`: the
operator's decisions that move money, sent as operator transactions (aicf.core.operator; docs/OPERATOR.md) over the
coordinator's JSON-RPC API with the operator token. Each prints the transaction hash; `--wait` follows it until it
is included (or refused, with the reason).

Bad input is refused before anything is sent: an unknown params key or an ill-typed value (exit 2, the key named),
a missing token (exit 2); what the coordinator refuses (Γ below the largest unsettled job, a fund too poor) exits
1 with its message.
"""

import time
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from aicf.client import RpcClient
from aicf.core.errors import ParamsError
from aicf.core.params import coerce_params_changes
from aicf.transports.cli_ops import (
    DEFAULT_URL,
    Json,
    JsonOption,
    RetiredTokenOption,
    TokenFileOption,
    UrlOption,
    connect,
    emit_json,
    grid,
    operator_token,
    out,
    parse_id,
    short,
)

params_app = typer.Typer(help="Params changes (in force from the next epoch).", no_args_is_help=True,
                         add_completion=False)  # fmt: skip
tier_app = typer.Typer(help="Requester tiers.", no_args_is_help=True, add_completion=False)
allowlist_app = typer.Typer(help="The operator allowlist of providers.", no_args_is_help=True, add_completion=False)
traps_app = typer.Typer(help="Trap funding.", no_args_is_help=True, add_completion=False)
grant_app = typer.Typer(help="Grant allowances (the fund sponsors requesters' jobs like traps).", no_args_is_help=True,
                        add_completion=False)  # fmt: skip

WaitOption = Annotated[bool, typer.Option("--wait", help="Follow the transaction until it is included or refused.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="With --wait: give up after this many seconds.")]
POLL_S = 0.5


def parse_assignments(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs, each VALUE a TOML value (1000, [[300, 11500]], {minilm-l6-v2 = 100})."""
    data: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        try:
            data[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError as exc:
            raise typer.BadParameter(f"{key.strip()}: {value!r} is not a TOML value: {exc}") from None
    return data


def read_params_file(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--file") from None
    if set(data) == {"params"} and isinstance(data["params"], dict):
        data = data["params"]
    return data


def _follow(client: RpcClient, tx_hash: str, timeout: float) -> Json:
    deadline = time.monotonic() + timeout
    while True:
        status = client.call("aicf.getTransaction", {"tx_hash": tx_hash})
        if status["state"] in ("included", "refused") or time.monotonic() >= deadline:
            return status
        time.sleep(POLL_S)


def _send(method: str, params: Json, url: str, token: str, wait: bool, timeout: float, as_json: bool) -> None:
    with connect(url, operator_token=token) as client:
        sent = client.call_operator(method, params)
        status = _follow(client, sent["tx_hash"], timeout) if wait else None
    if as_json:
        emit_json(sent if status is None else {**sent, "status": status})
        return
    out.print(f"sent operator {sent['op']} transaction {sent['tx_hash']}", markup=False, soft_wrap=True)
    if status is None:
        return
    if status["state"] == "refused":
        refusal = status.get("refused") or {}
        out.print(f"refused at height {status.get('height')}: {refusal.get('field')}: {refusal.get('reason')}",
                  markup=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(1)
    if status["state"] != "included":
        out.print(f"still {status['state']} after {timeout:g} s", markup=False)
        raise typer.Exit(1)
    out.print(f"included at height {status.get('height')}", markup=False)


@params_app.command("set")
def params_set(
    assignments: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE, VALUE in TOML syntax.")] = None,
    file: Annotated[Path | None, typer.Option("--file", dir_okay=False, help="A params TOML file.")] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 120.0,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Send a params change; it applies from the next epoch (SPEC §15)."""
    if bool(assignments) == (file is not None):
        raise typer.BadParameter("give KEY=VALUE pairs or --file, one of them")
    changes = read_params_file(file) if file is not None else parse_assignments(assignments or [])
    try:
        coerce_params_changes(changes)
    except ParamsError as exc:
        raise typer.BadParameter(f"{exc.key}: {exc.reason}") from None
    if not changes:
        raise typer.BadParameter("the change is empty")
    token = operator_token(token_file, retired_token)
    _send("aicf.setParams", {"changes": changes}, url, token, wait, timeout, as_json)


def _address(value: str) -> str:
    raw = value if value.startswith("0x") else "0x" + value
    if len(raw) != 42 or any(c not in "0123456789abcdefABCDEF" for c in raw[2:]):
        raise typer.BadParameter(f"expected a 20-byte address (0x + 40 hex digits), got {value!r}")
    return raw


@tier_app.command("set")
def tier_set(
    address: Annotated[str, typer.Argument(help="The requester's 20-byte address (0x hex).")],
    tier: Annotated[int, typer.Argument(min=0, max=3, help="0..3 (3 highest).")],
    wait: WaitOption = False,
    timeout: TimeoutOption = 120.0,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Set a requester's registered tier (SPEC §2)."""
    params = {"address": _address(address), "tier": tier}
    _send("aicf.setTier", params, url, operator_token(token_file, retired_token), wait, timeout, as_json)


def _allowlist(action: str, pid: str, wait: bool, timeout: float, token: str, url: str, as_json: bool) -> None:
    params = {"action": action, "provider_id": "0x" + parse_id(pid).hex()}
    _send("aicf.setAllowlist", params, url, token, wait, timeout, as_json)


@allowlist_app.command("add")
def allowlist_add(
    provider_id: Annotated[str, typer.Argument(help="The provider id (0x hex).", metavar="PID")],
    wait: WaitOption = False,
    timeout: TimeoutOption = 120.0,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Add a provider to the operator allowlist (when it is not empty, only listed providers are matched)."""
    _allowlist("add", provider_id, wait, timeout, operator_token(token_file, retired_token), url, as_json)


@allowlist_app.command("remove")
def allowlist_remove(
    provider_id: Annotated[str, typer.Argument(help="The provider id (0x hex).", metavar="PID")],
    wait: WaitOption = False,
    timeout: TimeoutOption = 120.0,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Remove a provider from the operator allowlist."""
    _allowlist("remove", provider_id, wait, timeout, operator_token(token_file, retired_token), url, as_json)


@traps_app.command("fund")
def traps_fund(
    amount: Annotated[int, typer.Argument(min=1, max=10**12, help="µANM.")],
    to: Annotated[str | None, typer.Option("--to", help="A trap caller's address; omitted: top up the fund.")] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 120.0,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Move µANM from the fund to a trap caller, or (devnet) top the fund up from outside, on chain."""
    params: dict[str, object] = {"amount": amount}
    if to is not None:
        params["to"] = _address(to)
    _send("aicf.fundTraps", params, url, operator_token(token_file, retired_token), wait, timeout, as_json)


@grant_app.command("set")
def grant_set(
    address: Annotated[str, typer.Argument(help="The requester's 20-byte address (0x hex).")],
    allowance: Annotated[int, typer.Argument(min=0, max=10**12, help="µANM the fund may sponsor for it in all.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = 120.0,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Set a requester's grant allowance on chain (docs/TRAPS.md "Grants"); 0 ends its grants."""
    params = {"address": _address(address), "allowance": allowance}
    _send("aicf.setGrant", params, url, operator_token(token_file, retired_token), wait, timeout, as_json)


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items())
    if isinstance(value, str) and value.startswith("0x"):
        return short(value)
    return "—" if value is None else str(value)


def status_command(url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """The chain head, the epoch, the params version in force and scheduled, and the operator's changes."""
    with connect(url) as client:
        status = client.call("aicf.getStatus")
    if as_json:
        emit_json(status)
        return
    op = status["operator"]
    out.print(
        f"head {status['head_height']} (final {status['finalized_height']}), epoch {status['current_epoch']}, "
        f"last settled epoch {_shown(status['last_settled_epoch'])}",
        markup=False,
        soft_wrap=True,
    )
    out.print(f"params version {op['params_version']} {op['params_hash']}", markup=False, soft_wrap=True)
    if op["next_params_version"] != op["params_version"]:
        out.print(f"next epoch: params version {op['next_params_version']} {op['next_params_hash']}", markup=False,
                  soft_wrap=True)  # fmt: skip
    for title in ("pending", "applied"):
        table = grid(f"operator transactions, {title}", ["op", "subject", "from", "to", "height", "epoch", "tx"],
                     wrap=True)  # fmt: skip
        for c in op[title]:
            subject = short(c["subject"]) if c["subject"] else ""
            cells = (_shown(c["before"]), _shown(c["after"]), str(c["height"]), str(c["effective_epoch"]))
            table.add_row(c["op"], subject, *cells, short(c["tx_hash"]))
        out.print(table)
