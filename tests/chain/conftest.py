"""Fixtures for the contract tests: one anvil per session (a real node in its own process) and a fresh
deployment per test. Without anvil they skip, unless AICF_REQUIRE_CHAIN=1 (CI), which makes them fail."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from web3 import Web3

from aicf.chain.anvil import Anvil, find_anvil, start_anvil
from aicf.chain.deploy import contract, deploy
from chain.evm_support import Roles, Stack, set_coinbase


def _missing(reason: str) -> None:
    if os.environ.get("AICF_REQUIRE_CHAIN") == "1":
        pytest.fail(f"AICF_REQUIRE_CHAIN=1 but {reason}: run scripts/install-chain")
    pytest.skip(f"{reason}: run scripts/install-chain")


@contextmanager
def own_anvil() -> Iterator[Anvil]:
    """An anvil node of its own (skipped, or failed under AICF_REQUIRE_CHAIN=1, without the binary), stopped after."""
    binary = find_anvil()
    if binary is None or not binary.exists():
        _missing("anvil is not installed")
    assert binary is not None
    node = start_anvil(binary)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    with own_anvil() as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil: Anvil) -> Iterator[Web3]:
    with requests.Session() as session:  # closed at the end: no socket is left to the garbage collector
        yield Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 60}, session=session))


@pytest.fixture
def stack(w3: Web3) -> Stack:
    accounts = list(w3.eth.accounts)
    roles = Roles(
        admin=accounts[0],
        coordinator=accounts[1],
        fund=accounts[2],
        requester=accounts[3],
        provider=accounts[4],
        other=accounts[5],
        miner=accounts[6],
    )
    set_coinbase(w3, roles.miner)
    deployment = deploy(w3, deployer=roles.admin, coordinator=roles.coordinator, fund=roles.fund)
    assert deployment.consumer is not None
    return Stack(
        w3=w3,
        deployment=deployment,
        token=contract(w3, "AicfTestToken", deployment.token),
        aicf=contract(w3, "Aicf", deployment.aicf),
        consumer=contract(w3, "ResultConsumer", deployment.consumer),
        roles=roles,
    )
