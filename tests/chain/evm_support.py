"""Helpers for the contract tests: a deployed stack on anvil, sending transactions, decoding custom errors."""

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import decode
from eth_hash.auto import keccak
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractCustomError
from web3.types import TxReceipt

from aicf.chain.artifacts import CONTRACT_NAMES, load_artifact
from aicf.chain.deploy import Deployment

ANM = 10**6  # token units (µANM) per ANM


@dataclass(frozen=True)
class Roles:
    admin: ChecksumAddress
    coordinator: ChecksumAddress
    fund: ChecksumAddress
    requester: ChecksumAddress
    provider: ChecksumAddress
    other: ChecksumAddress
    miner: ChecksumAddress


@dataclass(frozen=True)
class Stack:
    w3: Web3
    deployment: Deployment
    token: Contract
    aicf: Contract
    consumer: Contract
    roles: Roles

    def balance(self, account: str) -> int:
        value: int = self.token.functions.balanceOf(Web3.to_checksum_address(account)).call()
        return value

    def fund_with(self, account: ChecksumAddress, amount: int, approve: int | None = None) -> None:
        """Mint `amount` to `account` and let Aicf pull `approve` (default: the same amount) from it."""
        send(self.token.functions.mint(account, amount), self.roles.admin)
        send(self.token.functions.approve(self.aicf.address, amount if approve is None else approve), account)


def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    table: dict[bytes, tuple[str, list[str]]] = {}
    for name in CONTRACT_NAMES:
        for item in load_artifact(name).abi:
            if item["type"] == "error":
                types = [arg["type"] for arg in item["inputs"]]
                selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
                table[selector] = (item["name"], types)
    return table


ERRORS = _error_table()


def decode_error(data: str) -> tuple[str, tuple[Any, ...]]:
    raw = bytes.fromhex(data.removeprefix("0x"))
    name, types = ERRORS[raw[:4]]
    values = decode(types, raw[4:])
    return name, tuple(
        Web3.to_checksum_address(value) if kind == "address" else value
        for kind, value in zip(types, values, strict=True)
    )


def send(call: ContractFunction, sender: ChecksumAddress) -> TxReceipt:
    """Send `call` from `sender`, wait for it, and require success."""
    tx_hash = call.transact({"from": sender})
    receipt = call.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1, f"{call.fn_name} failed"
    return receipt


def revert_of(call: ContractFunction | ContractConstructor, sender: ChecksumAddress) -> tuple[str, tuple[Any, ...]]:
    """The custom error `call` reverts with when `sender` sends it (the node refuses it before mining)."""
    block_before = call.w3.eth.block_number
    with pytest.raises(ContractCustomError) as caught:
        call.transact({"from": sender})
    assert call.w3.eth.block_number == block_before, "a reverted call was mined"
    data = caught.value.data
    assert isinstance(data, str)
    return decode_error(data)


def mine(w3: Web3, blocks: int) -> None:
    w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


def advance_time(w3: Web3, seconds: int) -> None:
    """Move the node's clock forward (it is the chain's clock, not this process's) and mine a block."""
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    mine(w3, 1)


def set_coinbase(w3: Web3, miner: str) -> None:
    w3.provider.make_request("anvil_setCoinbase", [miner])  # type: ignore[arg-type]
