"""`aicf up --chain …` refuses what it cannot follow with one line, before anything is created: anvil not
installed, a URL that does not answer, a contracts file of another chain id, --contracts without a URL."""

import json
from pathlib import Path

import pytest

from aicf.bootstrap.up import StartupError, UpConfig, start_up
from aicf.chain.anvil import Anvil, free_port
from chain.evm_support import Stack


def refused(config: UpConfig) -> str:
    with pytest.raises(StartupError) as caught:
        start_up(config, lambda _line: None)
    assert not config.var.exists()  # nothing left behind
    return str(caught.value)


def test_anvil_not_installed_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICF_ANVIL", str(tmp_path / "no-anvil"))
    message = refused(UpConfig(var=tmp_path / "var", chain="anvil", port=free_port()))
    assert message == "anvil is not installed: run scripts/install-chain"


def test_a_url_that_does_not_answer_is_refused(stack: Stack, tmp_path: Path) -> None:
    contracts = tmp_path / "contracts.json"
    stack.deployment.write(contracts)
    dead = f"http://127.0.0.1:{free_port()}"
    message = refused(UpConfig(var=tmp_path / "var", chain=dead, contracts=contracts, port=free_port()))
    assert message == f"RPC URL {dead} does not answer JSON-RPC"


def test_a_contracts_file_of_another_chain_id_is_refused(stack: Stack, anvil: Anvil, tmp_path: Path) -> None:
    doc = json.loads(stack.deployment.to_json())
    doc["chain_id"] = 5
    contracts = tmp_path / "contracts.json"
    contracts.write_text(json.dumps(doc), encoding="utf-8")
    message = refused(UpConfig(var=tmp_path / "var", chain=anvil.url, contracts=contracts, port=free_port()))
    assert message == f"{contracts}: chain_id 5 does not match the node's {stack.deployment.chain_id}"


def test_a_url_without_contracts_and_contracts_without_a_url_are_refused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    url = f"http://127.0.0.1:{free_port()}"
    assert refused(UpConfig(var=var, chain=url, port=free_port())) == (
        f"--chain {url} needs --contracts FILE (the deployment file of `aicf chain deploy`)"
    )
    assert refused(UpConfig(var=var, contracts=tmp_path / "c.json", port=free_port())) == (
        "--contracts goes with --chain URL (an EVM node), not the embedded devnet"
    )
    assert refused(UpConfig(var=var, chain="ropsten", port=free_port())) == (
        "--chain 'ropsten': expected devnet, anvil or an http(s):// RPC URL"
    )
