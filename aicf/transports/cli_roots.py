"""`aicf roots list|add|rotate` and `aicf policy show|set`: the registry's vendor roots and attestation policy
(SPEC §8; docs/ROOTS.md, docs/CLI.md), over the coordinator's JSON-RPC API like the other operator commands.

Changing roots or policy needs the operator token ($AICF_OPERATOR_TOKEN or `--operator-token-file`). A refused
change exits 1 with the coordinator's message, which names the field; bad usage (an unreadable DER file, bad hex)
exits 2.
"""

from pathlib import Path
from typing import Annotated

import typer

from aicf.core.encoding import to_hex
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
    short,
    when,
)

roots_app = typer.Typer(help="Pinned vendor roots (SPEC §8).", no_args_is_help=True, add_completion=False)
policy_app = typer.Typer(help="Attestation policy per evidence kind.", no_args_is_help=True, add_completion=False)

VendorOption = Annotated[str, typer.Option("--vendor", help="amd, intel, aws, nvidia or arm-cca.")]
NameOption = Annotated[str, typer.Option("--name", help="The root's name, e.g. ARK-Milan.")]
DerOption = Annotated[
    Path,
    typer.Option("--der-file", exists=True, dir_okay=False, readable=True, help="The root certificate (DER)."),
]
ActivationOption = Annotated[
    int, typer.Option("--activation-height", min=0, help="First block height the version judges evidence at.")
]
VersionOption = Annotated[
    int | None, typer.Option("--version", min=1, help="The new version (default: one above the stored ones).")
]


def read_der(path: Path) -> str:
    try:
        return to_hex(path.read_bytes())
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--der-file") from None


@roots_app.command("list")
def roots_list(url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """Every pinned root version, whether it judges the next block, its certificate expiry, and the change log."""
    with connect(url) as client:
        found = client.call("aicf.listRoots", {})
    if as_json:
        emit_json(found)
        return
    table = grid("Vendor roots", ["vendor", "name", "v", "active from", "expires at", "next block", "cert until",
                                  "sha256"])  # fmt: skip
    for r in found["items"]:
        expiry = r["expiry_height"]
        table.add_row(r["vendor"], r["name"], str(r["version"]), str(r["activation_height"]),
                      "-" if expiry is None else str(expiry), "in force" if r["in_force_next_block"] else "-",
                      when(r["not_after"]), short(r["sha256"], 16))  # fmt: skip
    out.print(table)
    changes = grid("Changes", ["seq", "what", "action", "subject", "detail", "head", "time"], wrap=True)
    for c in found["changes"]:
        changes.add_row(str(c["seq"]), c["what"], c["action"], c["subject"], c["detail"], str(c["height"]),
                        when(c["time"]))  # fmt: skip
    out.print(changes)


def _print_root(prefix: str, r: Json) -> None:
    expiry = r["expiry_height"]
    until = "" if expiry is None else f" until height {expiry}"
    out.print(
        f"{prefix} {r['vendor']}/{r['name']} v{r['version']}: in force from height {r['activation_height']}{until}"
        f" (sha256 {r['sha256']})",
        markup=False,
        soft_wrap=True,
    )


@roots_app.command("add")
def roots_add(
    vendor: VendorOption,
    name: NameOption,
    der_file: DerOption,
    activation_height: ActivationOption,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    expiry_height: Annotated[
        int | None, typer.Option("--expiry-height", min=1, help="First height it no longer judges at.")
    ] = None,
    version: VersionOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Pin a vendor root version from an activation height."""
    params: dict[str, object] = {"vendor": vendor, "name": name, "der": read_der(der_file),
                                 "activation_height": activation_height}  # fmt: skip
    if expiry_height is not None:
        params["expiry_height"] = expiry_height
    if version is not None:
        params["version"] = version
    with connect(url, operator_token=operator_token(token_file, retired_token)) as client:
        added = client.call_operator("aicf.addRoot", params)
    if as_json:
        emit_json(added)
        return
    _print_root("pinned", added)


@roots_app.command("rotate")
def roots_rotate(
    vendor: VendorOption,
    name: NameOption,
    der_file: DerOption,
    activation_height: ActivationOption,
    overlap_blocks: Annotated[
        int, typer.Option("--overlap-blocks", min=0, help="Blocks the older versions keep verifying after it.")
    ],
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    version: VersionOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Pin a new version of a root; the older versions expire `--overlap-blocks` after it activates."""
    params: dict[str, object] = {"vendor": vendor, "name": name, "der": read_der(der_file),
                                 "activation_height": activation_height, "overlap_blocks": overlap_blocks}  # fmt: skip
    if version is not None:
        params["version"] = version
    with connect(url, operator_token=operator_token(token_file, retired_token)) as client:
        rotation = client.call_operator("aicf.rotateRoot", params)
    if as_json:
        emit_json(rotation)
        return
    _print_root("pinned", rotation["new"])
    for r in rotation["retired"]:
        _print_root("retiring", r)


@policy_app.command("show")
def policy_show(url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """Every policy version per evidence kind (kinds with none are judged by the coordinator's default)."""
    with connect(url) as client:
        found = client.call("aicf.listPolicies", {})
    if as_json:
        emit_json(found)
        return
    table = grid("Attestation policy", ["kind", "v", "active from", "debug", "measurements", "TCB statuses",
                                        "min SNP TCB", "max VMPL"], wrap=True)  # fmt: skip
    for p in found["items"]:
        listed = p["allowed_measurements"]
        tcb = p["min_snp_tcb"]
        table.add_row(p["kind"], str(p["version"]), str(p["activation_height"]), "yes" if p["allow_debug"] else "no",
                      "not checked" if listed is None else ", ".join(short(m, 12) for m in listed) or "none",
                      ", ".join(p["accepted_tcb_statuses"]),
                      "-" if tcb is None else f"{tcb['bootloader']}/{tcb['tee']}/{tcb['snp']}/{tcb['microcode']}",
                      str(p["max_vmpl"]))  # fmt: skip
    out.print(table)


def parse_tcb(value: str) -> dict[str, int]:
    parts = value.split("/")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise typer.BadParameter(
            f"expected bootloader/tee/snp/microcode, e.g. 3/0/8/115, got {value!r}", param_hint="--min-snp-tcb"
        )
    return dict(zip(("bootloader", "tee", "snp", "microcode"), (int(p) for p in parts), strict=True))


@policy_app.command("set")
def policy_set(
    kind: Annotated[str, typer.Option("--kind", help="sev-snp, sgx, tdx, nitro, nvidia-gpu or cca.")],
    activation_height: ActivationOption,
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    measurement: Annotated[
        list[str] | None,
        typer.Option("--measurement", help="An allowed measurement (0x hex); repeat. None given: not checked."),
    ] = None,
    tcb_status: Annotated[
        list[str] | None, typer.Option("--tcb-status", help="An accepted Intel TCB status; repeat. Default UpToDate.")
    ] = None,
    min_snp_tcb: Annotated[
        str | None, typer.Option("--min-snp-tcb", help="SEV-SNP minimum reported TCB: bootloader/tee/snp/microcode.")
    ] = None,
    max_vmpl: Annotated[int, typer.Option("--max-vmpl", min=0, max=3, help="Highest SEV-SNP VMPL accepted.")] = 3,
    allow_debug: Annotated[bool, typer.Option("--allow-debug", help="Accept debug-enabled guests.")] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Set the next policy version of an evidence kind, in force from an activation height."""
    params: dict[str, object] = {"kind": kind, "activation_height": activation_height, "allow_debug": allow_debug,
                                 "max_vmpl": max_vmpl}  # fmt: skip
    if measurement:
        params["allowed_measurements"] = [m if m.startswith("0x") else "0x" + m for m in measurement]
    if tcb_status:
        params["accepted_tcb_statuses"] = tcb_status
    if min_snp_tcb is not None:
        params["min_snp_tcb"] = parse_tcb(min_snp_tcb)
    with connect(url, operator_token=operator_token(token_file, retired_token)) as client:
        stored = client.call_operator("aicf.setPolicy", params)
    if as_json:
        emit_json(stored)
        return
    out.print(
        f"policy {stored['kind']} v{stored['version']}: in force from height {stored['activation_height']}",
        markup=False,
        soft_wrap=True,
    )


devices_app = typer.Typer(
    help="Pinned quantum device keys (issue 14; docs/QUANTUM.md §3).", no_args_is_help=True, add_completion=False
)


@devices_app.command("pin")
def devices_pin(
    device: Annotated[str, typer.Argument(help="The device's name, as its certificates name it (e.g. stim-1).")],
    device_class: Annotated[
        str, typer.Option("--class", help="Its device class: a key of params' trap_threshold_bps_by_class.")
    ],
    public_key: Annotated[str, typer.Option("--public-key", help="Its raw 32-byte Ed25519 public key, 0x hex.")],
    token_file: TokenFileOption = None,
    retired_token: RetiredTokenOption = None,
    activation_height: Annotated[
        int | None, typer.Option("--activation-height", min=0, help="First height it judges (default: the next).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Pin a quantum device's key: its proofs must carry its signature over their results, judged by its class."""
    params: dict[str, object] = {"device": device, "device_class": device_class, "public_key": public_key}
    if activation_height is not None:
        params["activation_height"] = activation_height
    with connect(url, operator_token=operator_token(token_file, retired_token)) as client:
        pinned = client.call_operator("aicf.pinDeviceKey", params)
    if as_json:
        emit_json(pinned)
        return
    out.print(
        f"pinned device {pinned['device']} ({pinned['device_class']}) v{pinned['version']}: key "
        f"{pinned['public_key']}, in force from height {pinned['activation_height']}",
        markup=False,
        soft_wrap=True,
    )


@devices_app.command("list")
def devices_list(url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """Every pinned device key version."""
    with connect(url) as client:
        found = client.call("aicf.listDeviceKeys", {})
    if as_json:
        emit_json(found)
        return
    table = grid("Quantum device keys", ["device", "class", "v", "active from", "public key"])
    for d in found["items"]:
        table.add_row(d["device"], d["device_class"], str(d["version"]), str(d["activation_height"]), d["public_key"])
    out.print(table)
