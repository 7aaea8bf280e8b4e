"""The committed ABI and bytecode (aicf/chain/contracts/*.json) are exactly what the pinned solc builds from
contracts/src, and the deployment file and anvil runner refuse what does not fit."""

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from web3 import Web3

from aicf.chain.anvil import AnvilError, start_anvil
from aicf.chain.artifacts import CONTRACT_NAMES, load_artifact
from aicf.chain.deploy import DeploymentError, load_deployment
from chain.evm_support import Stack

ROOT = Path(__file__).resolve().parents[2]
SOLCJS = ROOT / "contracts" / "node_modules" / ".bin" / "solcjs"


@pytest.mark.slow
def test_recompiling_the_sources_gives_the_committed_artifacts_byte_for_byte(tmp_path: Path) -> None:
    if not SOLCJS.exists():
        if os.environ.get("AICF_REQUIRE_CHAIN") == "1":
            pytest.fail("AICF_REQUIRE_CHAIN=1 but solcjs is not installed: run scripts/install-chain")
        pytest.skip("solcjs is not installed: run scripts/install-chain")
    script = ROOT / "scripts" / "compile-contracts"
    subprocess.run([str(script), str(tmp_path)], check=True, capture_output=True)  # noqa: S603 - our own script
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built == sorted(f"{name}.json" for name in CONTRACT_NAMES)
    for name in built:
        committed = (ROOT / "aicf" / "chain" / "contracts" / name).read_bytes()
        assert (tmp_path / name).read_bytes() == committed, f"{name} differs: run scripts/compile-contracts"


def test_artifacts_load_with_abi_and_creation_code() -> None:
    aicf = load_artifact("Aicf")
    assert aicf.compiler.startswith("solc 0.8.28+")
    assert aicf.bytecode.endswith("64736f6c634300081c0033")  # the CBOR metadata tail: {"solc": 0.8.28}
    names = {item.get("name") for item in aicf.abi}
    assert {"aiEnqueue", "quantumEnqueue", "cancel", "readResult", "includeProof", "postBatch", "claim"} <= names
    with pytest.raises(ValueError, match="unknown contract 'Nope'"):
        load_artifact("Nope")


def test_a_deployment_file_is_read_back_and_checked_against_the_node(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "contracts.json"
    stack.deployment.write(path)
    assert load_deployment(path, stack.w3) == stack.deployment
    replace(stack.deployment, chain_id=1).write(path)
    with pytest.raises(DeploymentError, match="chain_id 1 does not match the node's 31337"):
        load_deployment(path, stack.w3)
    replace(stack.deployment, aicf="0x" + "12" * 20).write(path)
    with pytest.raises(DeploymentError, match="no contract at aicf address"):
        load_deployment(path, stack.w3)
    path.write_text("{}")
    with pytest.raises(DeploymentError, match="not a deployment file"):
        load_deployment(path, stack.w3)


def test_the_node_clock_and_chain_id_are_the_ones_the_deployment_names(stack: Stack) -> None:
    assert stack.w3.eth.chain_id == stack.deployment.chain_id
    assert Web3.to_checksum_address(stack.deployment.aicf) == stack.aicf.address


def test_an_anvil_that_cannot_start_is_an_error_with_its_output(tmp_path: Path) -> None:
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'no such hardfork' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(AnvilError, match="anvil exited with 3: no such hardfork"):
        start_anvil(fake)
    with pytest.raises(AnvilError, match="cannot run anvil"):
        start_anvil(tmp_path / "missing")
