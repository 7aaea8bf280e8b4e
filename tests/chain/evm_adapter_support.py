"""Helpers for the chain adapter tests: a stack whose coordinator is a local key (the writer signs), a clock
whose sleep mines a block instead of waiting, and anvil's mining switches."""

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from aicf.chain.deploy import Deployment, contract, deploy
from aicf.chain.evm import BatchPost
from chain.evm_support import Roles, Stack, set_coinbase

COORDINATOR_KEY = "0x" + "c0" * 32  # a test key, funded with ether by anvil_setBalance
ZERO32 = bytes(32)


def coordinator_account() -> LocalAccount:
    account: LocalAccount = Account.from_key(COORDINATOR_KEY)
    return account


def local_coordinator_stack(w3: Web3) -> Stack:
    """A fresh deployment whose coordinator role is `coordinator_account()` (not an anvil dev account)."""
    accounts = list(w3.eth.accounts)
    coordinator = coordinator_account().address
    w3.provider.make_request("anvil_setBalance", [coordinator, hex(10**21)])  # type: ignore[arg-type]
    roles = Roles(
        admin=accounts[0],
        coordinator=coordinator,
        fund=accounts[2],
        requester=accounts[3],
        provider=accounts[4],
        other=accounts[5],
        miner=accounts[6],
    )
    set_coinbase(w3, roles.miner)
    deployment: Deployment = deploy(w3, deployer=roles.admin, coordinator=coordinator, fund=roles.fund)
    assert deployment.consumer is not None
    return Stack(
        w3=w3,
        deployment=deployment,
        token=contract(w3, "AicfTestToken", deployment.token),
        aicf=contract(w3, "Aicf", deployment.aicf),
        consumer=contract(w3, "ResultConsumer", deployment.consumer),
        roles=roles,
    )


@dataclass
class MiningWaiter:
    """A fake waiter for the writer: `sleep` advances it and mines one block on the node (no real waiting)."""

    w3: Web3
    t: float = 0.0
    slept: int = 0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.slept += 1
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@dataclass
class StoppedWaiter:
    """A fake waiter for a writer that is killed before its transaction is mined: time runs, nothing is mined."""

    t: float = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def set_automine(w3: Web3, on: bool) -> None:
    w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


def empty_batch(epoch: int) -> BatchPost:
    return BatchPost(
        epoch=epoch,
        spec_root=bytes([epoch + 1]) * 32,
        totals=(0, 0, 0, 0, 0, 0),
        escrow_released=0,
        claim_root=ZERO32,
        claim_total=0,
    )


def batch_logs(stack: Stack) -> int:
    """How many BatchPosted events the contract has ever emitted."""
    return len(stack.aicf.events.BatchPosted().get_logs(from_block=stack.deployment.deploy_block))
