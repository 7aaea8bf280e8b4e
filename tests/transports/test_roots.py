"""Vendor roots and attestation policy through `aicf up`'s build, /metrics, JSON-RPC and the CLI (SPEC §8, §13).

One module-wide system: `build_system` on SQLite :memory: with a fake clock, served by uvicorn on a free port;
the CLI runs through typer's CliRunner against it.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from proofs.attestation.conftest import PERMISSIVE, new_test_nitro, real_roots, real_samples, ts
from store.backends import memory_store
from threaded_server import serve_in_thread
from typer.testing import CliRunner, Result

from aicf.bootstrap.cli import app as cli_app
from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.proofs.attestation import AttestationResult, verify_evidence
from aicf.proofs.attestation.shipped import shipped_vendor_roots
from aicf.service.verifier import StandardVerifier
from aicf.store.sqlite import SqliteStore
from transports.helpers import scrape
from transports.test_cli_ops import ENV, SteppedClock

START = 1_767_225_600  # 2026-01-01T00:00:00Z
TOKEN = "roots-operator-token"  # noqa: S105 - a test fixture


@dataclass
class Up:
    system: System
    store: SqliteStore
    url: str
    var: Path


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    store = memory_store()
    var = tmp_path_factory.mktemp("var")
    system = build_system(
        store, devnet_params(), SystemConfig(var=var, model_digests={}, operator_token=TOKEN), clock=SteppedClock(START)
    )
    system.tick()
    with serve_in_thread(system.app, name="roots-api", lifespan="on") as listening:
        yield Up(system=system, store=store, url=listening.url, var=var)


def cli(*args: str) -> Result:
    return CliRunner().invoke(cli_app, list(args), env={**ENV, "AICF_OPERATOR_TOKEN": TOKEN})


def rpc(up: Up, method: str, params: dict[str, Any], token: str | None = TOKEN) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply: dict[str, Any] = httpx.post(up.url + "/rpc", json=body, headers=headers, timeout=30).json()
    return reply


def next_height(up: Up) -> int:
    with up.store.transaction() as tx:
        head = tx.head_block()
    return 0 if head is None else head.height + 1


def test_up_pins_every_shipped_root_from_height_zero_once(up: Up) -> None:
    shipped = shipped_vendor_roots()
    assert {(v, n) for v, n, _ in shipped} == {
        ("amd", "ARK-Milan"),
        ("amd", "ARK-Genoa"),
        ("amd", "ARK-Turin"),
        ("intel", "Intel SGX Root CA"),
        ("aws", "AWS Nitro root G1"),
        ("nvidia", "NVIDIA Device Identity CA"),
    }
    pinned = {(r.vendor, r.name): r for r in up.system.coord.trust.roots() if r.version == 1}
    for vendor, name, der in shipped:
        root = pinned[(vendor, name)]
        assert (root.der, root.activation_height, root.expiry_height) == (der, 0, None)
    changes = up.system.coord.trust.changes()
    again = build_system(
        up.store, devnet_params(), SystemConfig(var=up.var, model_digests={}), clock=SteppedClock(START + 60)
    )
    assert again.coord.trust.changes() == changes  # a second `aicf up` on the same store pins nothing


def test_metrics_show_the_collateral_expiry_of_every_pinned_root(up: Up) -> None:
    text = httpx.get(up.url + "/metrics", timeout=30).text
    lines = {
        dict(k)["item"]: str(v)
        for k, v in scrape(text, "aicf_collateral_expiry_seconds").items()
        if dict(k)["kind"] == "vendor_root"
    }
    milan_not_after = datetime(2045, 10, 22, 17, 23, 5, tzinfo=UTC)  # MANIFEST.md: valid 2020-10-22 → 2045-10-22
    intel_not_after = datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert lines["amd root ARK-Milan v1"] == str(int(milan_not_after.timestamp()) - START)
    assert lines["intel root Intel SGX Root CA v1"] == str(int(intel_not_after.timestamp()) - START)
    assert {"aws root AWS Nitro root G1 v1", "nvidia root NVIDIA Device Identity CA v1"} <= set(lines)


def test_metrics_and_status_alarm_on_the_tee_collateral_the_latest_accepted_evidence_relied_on(up: Up) -> None:
    # The verifier of `aicf up` records into the system's watch; a real DCAP quote cannot bind a test job, so its
    # verdict is recorded here as StandardVerifier records it (the recording itself: tests/proofs/attestation).
    verifier = up.system.coord.verifier
    assert isinstance(verifier, StandardVerifier)
    assert verifier.watch is up.system.collateral
    sgx = next(s for s in real_samples() if s.name == "sgx-v3")
    result = verify_evidence(sgx.kind, sgx.evidence, sgx.certs, real_roots(), sgx.at_time, PERMISSIVE)
    assert isinstance(result, AttestationResult)
    assert isinstance(sgx.certs, bytes)  # DCAP: the PCS collateral JSON
    tcb_next_update = ts(json.loads(json.loads(sgx.certs)["tcb_info"])["nextUpdate"])
    up.system.collateral.record(result.kind, result.expiries)
    try:
        now = up.system.clock.now()
        text = httpx.get(up.url + "/metrics", timeout=30).text
        lines = {
            dict(k)["item"]: str(v)
            for k, v in scrape(text, "aicf_collateral_expiry_seconds").items()
            if dict(k)["kind"] == "tee_collateral"
        }
        assert lines["sgx tcbInfo nextUpdate"] == str(tcb_next_update - now)
        assert set(lines) == {e.what for e in result.expiries}
        alarms = rpc(up, "aicf.getStatus", {})["result"]["alarms"]
        expired = [a for a in alarms if a["name"] == "collateral_expired" and "sgx tcbInfo nextUpdate" in a["message"]]
        assert expired == [
            {
                "name": "collateral_expired",
                "severity": "critical",
                "message": f"sgx tcbInfo nextUpdate expired {now - tcb_next_update} s ago",
            }
        ]
    finally:
        up.system.collateral.record(result.kind, ())


def test_roots_add_pins_a_version_the_list_shows_and_the_change_log_records(up: Up, tmp_path: Path) -> None:
    der = tmp_path / "root.der"
    der.write_bytes(new_test_nitro("cli-added").root_der)
    h = next_height(up)
    added = cli(
        "roots",
        "add",
        "--vendor",
        "aws",
        "--name",
        "cli-test",
        "--der-file",
        str(der),
        "--activation-height",
        str(h + 5),
        "--url",
        up.url,
    )
    assert added.exit_code == 0, added.output
    assert f"pinned aws/cli-test v1: in force from height {h + 5}" in added.stdout
    listed = cli("roots", "list", "--url", up.url, "--json")
    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.stdout)
    row = next(r for r in found["items"] if r["name"] == "cli-test")
    assert (row["version"], row["activation_height"], row["in_force_next_block"]) == (1, h + 5, False)
    assert any(c["subject"] == "aws/cli-test v1" and c["action"] == "add" for c in found["changes"])
    rotated = cli(
        "roots",
        "rotate",
        "--vendor",
        "aws",
        "--name",
        "cli-test",
        "--der-file",
        str(der),
        "--activation-height",
        str(h + 10),
        "--overlap-blocks",
        "3",
        "--url",
        up.url,
        "--json",
    )
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["retired"][0]["expiry_height"] == h + 13


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--vendor", "acme"), "vendor"),
        (("--activation-height", "0", "--expiry-height", "1"), "activation_height"),
        (("--expiry-height", "1000"), "expiry_height"),
    ],
)
def test_roots_add_refused_by_the_coordinator_exits_1_naming_the_field(
    up: Up, tmp_path: Path, args: tuple[str, ...], field: str
) -> None:
    der = tmp_path / "root.der"
    der.write_bytes(new_test_nitro("refused").root_der)
    base = {"--vendor": "aws", "--name": "refused", "--activation-height": "2000"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    flat = [x for k, v in (base | given).items() for x in (k, v)]
    result = cli("roots", "add", *flat, "--der-file", str(der), "--url", up.url)
    assert result.exit_code == 1, result.output
    assert f"vendor root refused: {field}:" in result.output
    assert all(r.record.name != "refused" for r in up.system.coord.trust.root_views())


def test_a_der_file_that_is_not_a_certificate_is_refused(up: Up, tmp_path: Path) -> None:
    junk = tmp_path / "junk.der"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    result = cli(
        "roots",
        "add",
        "--vendor",
        "intel",
        "--name",
        "junk",
        "--der-file",
        str(junk),
        "--activation-height",
        "5000",
        "--url",
        up.url,
    )
    assert result.exit_code == 1
    assert "vendor root refused: der: not a DER certificate" in result.output


def test_a_rotation_to_a_version_not_above_the_stored_one_is_refused(up: Up, tmp_path: Path) -> None:
    der = tmp_path / "root.der"
    der.write_bytes(new_test_nitro("v").root_der)
    result = cli(
        "roots",
        "rotate",
        "--vendor",
        "amd",
        "--name",
        "ARK-Milan",
        "--der-file",
        str(der),
        "--activation-height",
        "5000",
        "--overlap-blocks",
        "10",
        "--version",
        "1",
        "--url",
        up.url,
    )
    assert result.exit_code == 1
    assert "vendor root refused: version: amd/ARK-Milan v1 is already stored" in result.output


def test_add_root_needs_the_operator_token_and_names_bad_params(up: Up) -> None:
    params = {"vendor": "aws", "name": "x", "der": "0x00", "activation_height": 9000}
    assert rpc(up, "aicf.addRoot", params, token=None)["error"]["code"] == -32052
    bad = rpc(up, "aicf.addRoot", params | {"der": "zz"})["error"]
    assert bad["code"] == -32602
    assert bad["data"]["errors"][0]["field"] == "der"
    refused = rpc(up, "aicf.addRoot", params)["error"]
    assert (refused["code"], refused["message"].split(":")[1].strip()) == (-32021, "der")


def test_policy_set_then_show_lists_the_version_from_its_activation_height(up: Up) -> None:
    h = next_height(up)
    done = cli(
        "policy",
        "set",
        "--kind",
        "sev-snp",
        "--activation-height",
        str(h + 2),
        "--measurement",
        "0x" + "ab" * 48,
        "--min-snp-tcb",
        "3/0/8/115",
        "--max-vmpl",
        "0",
        "--url",
        up.url,
    )
    assert done.exit_code == 0, done.output
    assert f"policy sev-snp v1: in force from height {h + 2}" in done.stdout
    shown = json.loads(cli("policy", "show", "--url", up.url, "--json").stdout)["items"]
    snp = next(p for p in shown if p["kind"] == "sev-snp")
    assert snp["allowed_measurements"] == ["0x" + "ab" * 48]
    assert snp["min_snp_tcb"] == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
    assert (snp["max_vmpl"], snp["accepted_tcb_statuses"], snp["allow_debug"]) == (0, ["UpToDate"], False)


@pytest.mark.parametrize(
    ("args", "exit_code", "needle"),
    [
        (("--kind", "sgx2"), 1, "attestation policy refused: kind:"),
        (("--tcb-status", "Revoked"), 1, "attestation policy refused: accepted_tcb_statuses:"),
        (("--min-snp-tcb", "3/0/8"), 2, "bootloader/tee/snp/microcode"),
    ],
)
def test_bad_policy_input_is_refused_naming_the_field(
    up: Up, args: tuple[str, ...], exit_code: int, needle: str
) -> None:
    base = {"--kind": "tdx", "--activation-height": "7000"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    flat = [x for k, v in (base | given).items() for x in (k, v)]
    result = cli("policy", "set", *flat, "--url", up.url)
    assert result.exit_code == exit_code, result.output
    assert needle in result.output
