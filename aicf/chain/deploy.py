"""Deploy the AICF contracts to an EVM node and write what the coordinator needs to follow them.

The deployment file (JSON) names the chain id, the block the contracts were deployed in (epoch 0 starts at
its time, docs/EVM.md) and every address. `load_deployment` refuses a file whose chain id is not the node's.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.middleware import SignAndSendRawMiddlewareBuilder

from aicf.chain.artifacts import load_artifact
from aicf.core.errors import AicfError

SEVEN_DAYS_S = 7 * 86400
FINALITY_DEPTH = 6  # SPEC §10


class DeploymentError(AicfError):
    """A deployment failed or a deployment file does not fit the node it is used with."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    chain_id: int
    deploy_block: int
    token: str
    aicf: str
    consumer: str | None
    admin: str
    coordinator: str
    fund: str
    unbonding_period_s: int
    finality_depth: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")


def contract(w3: Web3, name: str, address: str) -> Contract:
    """A web3 handle on deployed contract `name` at `address`, with the committed ABI."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


def deploy(
    w3: Web3,
    *,
    deployer: ChecksumAddress,
    coordinator: ChecksumAddress,
    fund: ChecksumAddress,
    token: ChecksumAddress | None = None,
    unbonding_period_s: int = SEVEN_DAYS_S,
    finality_depth: int = FINALITY_DEPTH,
    with_consumer: bool = True,
) -> Deployment:
    """Deploy (the test token unless `token` is given,) Aicf and the example ResultConsumer from `deployer`.

    The node must sign for `deployer` (anvil's dev accounts, or a signing middleware). Raises DeploymentError
    when a deployment transaction fails.
    """
    token_address = token or _deploy(w3, deployer, "AicfTestToken")[0]
    aicf, deploy_block = _deploy(
        w3, deployer, "Aicf", token_address, coordinator, fund, unbonding_period_s, finality_depth
    )
    consumer = _deploy(w3, deployer, "ResultConsumer", aicf, token_address)[0] if with_consumer else None
    return Deployment(
        chain_id=w3.eth.chain_id,
        deploy_block=deploy_block,
        token=token_address,
        aicf=aicf,
        consumer=consumer,
        admin=deployer,
        coordinator=coordinator,
        fund=fund,
        unbonding_period_s=unbonding_period_s,
        finality_depth=finality_depth,
    )


def load_deployment(path: Path, w3: Web3) -> Deployment:
    """Read a deployment file and check it against the node; raises DeploymentError naming what differs."""
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        deployment = Deployment(**doc)
    except (OSError, ValueError, TypeError) as exc:
        raise DeploymentError(f"{path}: not a deployment file: {exc}") from exc
    node_chain_id = w3.eth.chain_id
    if deployment.chain_id != node_chain_id:
        raise DeploymentError(f"{path}: chain_id {deployment.chain_id} does not match the node's {node_chain_id}")
    if not w3.eth.get_code(Web3.to_checksum_address(deployment.aicf)):
        raise DeploymentError(f"{path}: no contract at aicf address {deployment.aicf} on this node")
    return deployment


def deploy_to_node(
    *,
    rpc_url: str,
    out: Path,
    coordinator: str | None = None,
    fund: str | None = None,
    token: str | None = None,
    private_key_file: Path | None = None,
    unbonding_period_s: int = SEVEN_DAYS_S,
    finality_depth: int = FINALITY_DEPTH,
    with_consumer: bool = True,
) -> dict[str, object]:
    """`aicf chain deploy`: connect, deploy, write the deployment file to `out`, return what it holds.

    The deployer is the key in `private_key_file` (transactions signed here), else the node's first unlocked
    account (anvil's dev accounts). `coordinator` and `fund` default to the deployer. Raises DeploymentError
    naming the problem: a node that does not answer, an address that is not one, a key file that cannot be read.
    """
    w3, session = open_node(rpc_url)
    try:
        if not w3.is_connected():
            raise DeploymentError(f"RPC URL {rpc_url} does not answer")
        return _deploy_with(w3, rpc_url, out, coordinator, fund, token, private_key_file, unbonding_period_s,
                            finality_depth, with_consumer)  # fmt: skip
    finally:
        session.close()  # its pooled sockets: a one-shot command leaves nothing open


def _deploy_with(
    w3: Web3,
    rpc_url: str,
    out: Path,
    coordinator: str | None,
    fund: str | None,
    token: str | None,
    private_key_file: Path | None,
    unbonding_period_s: int,
    finality_depth: int,
    with_consumer: bool,
) -> dict[str, object]:
    if private_key_file is not None:
        try:
            key = private_key_file.read_text(encoding="utf-8").strip()
            account = Account.from_key(key)
        except (OSError, ValueError) as exc:
            raise DeploymentError(f"--private-key-file {private_key_file}: not a readable hex private key") from exc
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
        deployer = account.address
    else:
        accounts = w3.eth.accounts
        if not accounts:
            raise DeploymentError(f"the node at {rpc_url} holds no unlocked account: pass --private-key-file")
        deployer = accounts[0]
    deployment = deploy(
        w3,
        deployer=deployer,
        coordinator=_address("coordinator", coordinator) if coordinator else deployer,
        fund=_address("fund", fund) if fund else deployer,
        token=_address("token", token) if token else None,
        unbonding_period_s=unbonding_period_s,
        finality_depth=finality_depth,
        with_consumer=with_consumer,
    )
    deployment.write(out)
    return asdict(deployment)


def open_node(rpc_url: str, timeout_s: float = 10.0) -> tuple[Web3, requests.Session]:
    """A Web3 on `rpc_url` over an HTTP session the caller owns and closes (web3 would otherwise keep its own
    in a process-wide cache, whose evicted sessions leave their sockets to the garbage collector)."""
    session = requests.Session()
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}, session=session)), session


def _address(field: str, value: str) -> ChecksumAddress:
    if not Web3.is_address(value):
        raise DeploymentError(f"{field}: {value!r} is not an address (0x and 40 hex digits)")
    return Web3.to_checksum_address(value)


def _deploy(w3: Web3, deployer: ChecksumAddress, name: str, *args: object) -> tuple[ChecksumAddress, int]:
    """Deploy one contract; its address and the block it was deployed in."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx_hash = factory.constructor(*args).transact({"from": deployer})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    address = receipt["contractAddress"]
    if receipt["status"] != 1 or address is None:
        raise DeploymentError(f"deploying {name} failed in transaction 0x{bytes(tx_hash).hex()}")
    return address, receipt["blockNumber"]
