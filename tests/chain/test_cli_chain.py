"""`aicf chain deploy --rpc-url URL` on anvil: it deploys, writes a deployment file the node agrees with, signs
with a key file when given one, and refuses a node that does not answer or an address that is not one."""

import json
from pathlib import Path

from eth_account import Account
from typer.testing import CliRunner
from web3 import Web3

from aicf.chain.anvil import Anvil, free_port
from aicf.chain.deploy import contract, deploy_to_node, load_deployment
from aicf.transports.cli_chain import build_chain_app

APP = build_chain_app(deploy_to_node)
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's public dev mnemonic


def test_deploy_writes_a_deployment_file_that_matches_the_node(anvil: Anvil, w3: Web3, tmp_path: Path) -> None:
    out = tmp_path / "contracts.json"
    result = CliRunner().invoke(APP, ["deploy", "--rpc-url", anvil.url, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    deployment = load_deployment(out, w3)
    assert printed["aicf"] == deployment.aicf
    assert (deployment.chain_id, deployment.finality_depth, deployment.unbonding_period_s) == (31337, 6, 7 * 86400)
    aicf = contract(w3, "Aicf", deployment.aicf)
    assert aicf.functions.coordinator().call() == w3.eth.accounts[0]
    assert aicf.functions.token().call() == deployment.token


def test_deploy_signs_with_a_key_file_and_takes_the_roles_given(anvil: Anvil, w3: Web3, tmp_path: Path) -> None:
    Account.enable_unaudited_hdwallet_features()
    deployer = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/9")
    key_file = tmp_path / "deployer.key"
    key_file.write_text(deployer.key.hex())
    out = tmp_path / "contracts.json"
    accounts = list(w3.eth.accounts)
    coordinator, fund = accounts[1], accounts[2]
    args = ["deploy", "--rpc-url", anvil.url, "--out", str(out), "--private-key-file", str(key_file)]
    args += ["--coordinator", coordinator.lower(), "--fund", fund, "--no-consumer", "--finality-depth", "12"]
    result = CliRunner().invoke(APP, args)
    assert result.exit_code == 0, result.output
    assert "deployed on chain 31337" in result.output
    deployment = load_deployment(out, w3)
    assert (deployment.admin, deployment.coordinator, deployment.fund) == (deployer.address, coordinator, fund)
    assert deployment.consumer is None
    aicf = contract(w3, "Aicf", deployment.aicf)
    assert (aicf.functions.admin().call(), aicf.functions.finalityDepth().call()) == (deployer.address, 12)


def test_a_node_that_does_not_answer_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "contracts.json"
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(APP, ["deploy", "--rpc-url", url, "--out", str(out)])
    assert result.exit_code == 1
    assert f"RPC URL {url} does not answer" in result.output
    assert not out.exists()


def test_a_bad_address_or_key_file_is_named_and_deploys_nothing(anvil: Anvil, w3: Web3, tmp_path: Path) -> None:
    out = tmp_path / "contracts.json"
    nonce = w3.eth.get_transaction_count(w3.eth.accounts[0])
    result = CliRunner().invoke(APP, ["deploy", "--rpc-url", anvil.url, "--out", str(out), "--fund", "0x1234"])
    assert result.exit_code == 1
    assert "fund: '0x1234' is not an address" in result.output
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key")
    result = CliRunner().invoke(
        APP, ["deploy", "--rpc-url", anvil.url, "--out", str(out), "--private-key-file", str(bad_key)]
    )
    assert result.exit_code == 1
    assert "not a readable hex private key" in result.output
    assert not out.exists()
    assert w3.eth.get_transaction_count(w3.eth.accounts[0]) == nonce
