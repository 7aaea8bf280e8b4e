"""`aicf up --chain anvil` and `aicf up --chain URL --contracts FILE`: the EVM node a run follows (docs/EVM.md).

`check_chain` runs before anything is created and refuses with one line: anvil not installed, a URL that does
not answer JSON-RPC, a contracts file that is not one, names another chain id, or has no contract on the node.
`open_chain` then (after the var folder exists) starts anvil with its state kept in `<var>/anvil/state.json`
(a restart on the same var folder resumes the same chain), deploys once (`<var>/deployment.json`; a restart
reads it back and deploys nothing) with an anvil dev account as deployer and the coordinator role held by a
secp256k1 key kept 0600 in `<var>/coordinator.evm.key`, funded with ether from a dev account.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from aicf.bootstrap.evm import EvmBackend
from aicf.chain.anvil import Anvil, AnvilError, find_anvil, start_anvil
from aicf.chain.deploy import Deployment, DeploymentError, deploy, load_deployment, open_node
from aicf.chain.evm import EvmChain, EvmError
from aicf.core.errors import AicfError
from aicf.core.params import Params
from aicf.store.interface import Store, writer_lock
from aicf.transports.key_files import load_or_create_secret

ANVIL_CHAIN_ID = 31337
ANVIL_BLOCK_TIME_S = 1
COORDINATOR_ETH = 10**20  # wei the coordinator's key is funded with on anvil (100 ETH)
DEPLOYMENT_FILE = "deployment.json"
COORDINATOR_KEY_FILE = "coordinator.evm.key"


class ChainStartError(AicfError):
    """The EVM chain cannot be followed; the message is the one line the operator reads."""


@dataclass
class ChainPlan:
    """What `check_chain` found: anvil's binary, or a node and its deployment."""

    anvil: Path | None = None
    rpc_url: str = ""
    contracts: Path | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)


def check_chain(chain: str, contracts: Path | None) -> ChainPlan:
    """The checks of `--chain` that create nothing (module docstring)."""
    if chain == "anvil":
        if contracts is not None:
            raise ChainStartError("--contracts goes with --chain URL; `--chain anvil` deploys its own")
        binary = find_anvil()
        if binary is None or not binary.exists():
            raise ChainStartError("anvil is not installed: run scripts/install-chain")
        return ChainPlan(anvil=binary)
    if not chain.startswith(("http://", "https://")):
        raise ChainStartError(f"--chain {chain!r}: expected devnet, anvil or an http(s):// RPC URL")
    if contracts is None:
        raise ChainStartError(f"--chain {chain} needs --contracts FILE (the deployment file of `aicf chain deploy`)")
    try:
        found = EvmChain.connect(chain, contracts, timeout_s=5.0)
    except (EvmError, DeploymentError) as exc:
        raise ChainStartError(str(exc)) from None
    found.close()
    return ChainPlan(rpc_url=chain, contracts=contracts)


def open_chain(plan: ChainPlan, var: Path, store: Store, params: Params, say: Callable[[str], None]) -> EvmBackend:
    """Start anvil and deploy (or follow the node of `plan`) and return the backend; raise ChainStartError."""
    key = coordinator_key(var)
    closers: list[Callable[[], None]] = []
    try:
        if plan.anvil is not None:
            node = _start_anvil(plan.anvil, var)
            closers.append(node.stop)
            rpc_url = node.url
        else:
            rpc_url = plan.rpc_url
        w3, session = open_node(rpc_url, timeout_s=30.0)
        closers.insert(0, session.close)
        deployment_file = plan.contracts or var / DEPLOYMENT_FILE
        if plan.anvil is not None:
            deployment = _deploy_once(w3, deployment_file, key, say)
        else:
            deployment = load_deployment(deployment_file, w3)
        chain = EvmChain(w3, deployment)
        backend = EvmBackend(
            chain=chain,
            writer_key=key,
            store=store,
            rpc_url=rpc_url,
            on_close=closers,
            deployment_file=deployment_file,
            params=params,
            writer_lock=writer_lock(store),
        )
    except (AnvilError, EvmError, DeploymentError, OSError) as exc:
        for close in closers:
            close()
        raise ChainStartError(str(exc)) from None
    return backend


def coordinator_key(var: Path) -> LocalAccount:
    """The coordinator role's secp256k1 key: 32 random bytes, hex in a 0600 file made on the first run."""
    account: LocalAccount = Account.from_key(load_or_create_secret(var / COORDINATOR_KEY_FILE))
    return account


def _start_anvil(binary: Path, var: Path) -> Anvil:
    state = var / "anvil"
    state.mkdir(parents=True, exist_ok=True)
    args = ["--block-time", str(ANVIL_BLOCK_TIME_S), "--state", str(state / "state.json"), "--state-interval", "2"]
    return start_anvil(binary, chain_id=ANVIL_CHAIN_ID, extra_args=args)


def _deploy_once(w3: Web3, path: Path, key: LocalAccount, say: Callable[[str], None]) -> Deployment:
    """The deployment of `path` if it exists (checked against the node), else a new one written there."""
    if path.exists():
        deployment = load_deployment(path, w3)
        say(f"contracts: following the deployment in {path} (Aicf at {deployment.aicf})")
        return deployment
    accounts = list(w3.eth.accounts)
    deployer, fund, miner = accounts[0], accounts[1], accounts[9]
    w3.provider.make_request("anvil_setCoinbase", [miner])  # type: ignore[arg-type]
    if int(w3.eth.get_balance(key.address)) < COORDINATOR_ETH // 2:
        tx = w3.eth.send_transaction({"from": deployer, "to": key.address, "value": COORDINATOR_ETH})  # type: ignore[typeddict-item]
        w3.eth.wait_for_transaction_receipt(tx, timeout=60)
    deployment = deploy(w3, deployer=deployer, coordinator=key.address, fund=fund)
    deployment.write(path)
    say(f"contracts: deployed Aicf at {deployment.aicf}, token {deployment.token}; written to {path}")
    return deployment
