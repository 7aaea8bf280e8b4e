"""An account's own Ethereum transactions to the Aicf contracts (a requester's or a payee's), signed locally with
a secp256k1 key kept in a 0600 file (`load_or_create_evm_key`): the faucet, approve + aiEnqueue / quantumEnqueue,
cancel, claim, and the reads that check them (balances, readResult). Used by `aicf chain claim` and `aicf request`
on an EVM chain; the coordinator tells where the node and the contracts are (aicf.getRequestTerms)."""

import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxParams

from aicf.chain.deploy import contract, open_node
from aicf.chain.evm import EvmError, NodeUnreachableError, describe_revert
from aicf.core.errors import AicfError


class EvmAccountError(AicfError):
    """A transaction of the account was refused (the contract's named error) or its key file is unusable."""


def load_or_create_evm_key(path: Path) -> LocalAccount:
    """The secp256k1 key in `path` (hex), made (32 random bytes, mode 0600) if the file does not exist. A file
    others may read, or that is not 32 bytes of hex, is refused."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_bytes(32).hex() + "\n")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise EvmAccountError(f"{path}: mode {mode:04o} lets others read the key; chmod 600 it")
    try:
        raw = bytes.fromhex(path.read_text(encoding="utf-8").strip().removeprefix("0x"))
    except ValueError as exc:
        raise EvmAccountError(f"{path}: not a hex key: {exc}") from None
    if len(raw) != 32:
        raise EvmAccountError(f"{path}: expected a 32-byte hex key, got {len(raw)} bytes")
    account: LocalAccount = Account.from_key(raw)
    return account


@dataclass
class EvmAccount:
    """One key's view of the contracts on the node at `rpc_url` (call `close`)."""

    w3: Web3
    session: requests.Session
    key: LocalAccount
    aicf: Contract
    token: Contract
    chain_id: int

    @classmethod
    def open(cls, rpc_url: str, aicf: str, token: str, key: LocalAccount) -> "EvmAccount":
        w3, session = open_node(rpc_url, timeout_s=30.0)
        try:
            if not w3.is_connected():
                raise NodeUnreachableError(f"RPC URL {rpc_url} does not answer JSON-RPC")
            chain_id = int(w3.eth.chain_id)
        except BaseException:
            session.close()
            raise
        return cls(w3, session, key, contract(w3, "Aicf", aicf), contract(w3, "AicfTestToken", token), chain_id)

    def close(self) -> None:
        self.session.close()

    @property
    def address(self) -> str:
        return str(self.key.address)

    def balance(self, account: str | None = None) -> int:
        return int(self.token.functions.balanceOf(Web3.to_checksum_address(account or self.address)).call())

    def send(self, call: ContractFunction) -> Mapping[str, Any]:
        """Sign and send `call`, wait for its receipt; the contract's named error if it would revert."""
        try:
            gas = int(call.estimate_gas({"from": self.address}))
        except (ContractCustomError, ContractLogicError) as exc:
            raise EvmAccountError(f"{call.fn_name} refused: {describe_revert(exc)}") from None
        params: TxParams = {
            "from": self.address,
            "nonce": self.w3.eth.get_transaction_count(self.key.address, "pending"),
            "gas": gas + gas // 5,
            "chainId": self.chain_id,
        }
        tx = call.build_transaction(params)
        signed = self.key.sign_transaction(cast("dict[str, Any]", tx))
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt: Mapping[str, Any] = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if int(receipt["status"]) != 1:
            raise EvmError(f"{call.fn_name} failed on chain in transaction 0x{bytes(tx_hash).hex()}")
        return receipt

    def faucet(self, amount: int) -> Mapping[str, Any]:
        """The test token's faucet (dev chains only): `amount` µANM to this account."""
        return self.send(self.token.functions.faucet(amount))

    def approve_for(self, amount: int) -> None:
        """Let the Aicf contract pull `amount` (an escrow) unless it may already."""
        if int(self.token.functions.allowance(self.address, self.aicf.address).call()) < amount:
            self.send(self.token.functions.approve(self.aicf.address, 2**256 - 1))

    def claim(self, epoch: int, account: str, amount: int, proof: Sequence[bytes]) -> Mapping[str, Any]:
        """Aicf.claim: pays `account` (whoever sends it) its `amount` of epoch `epoch` against the claim root."""
        return self.send(self.aicf.functions.claim(epoch, Web3.to_checksum_address(account), amount, list(proof)))
