"""The EVM side of the CLI (`aicf chain claim`), wired here so web3 is imported only when such a command runs.

The coordinator at `url` names the node and the contracts (aicf.getRequestTerms's `chain`) and serves the
account's claim with its Merkle proof (aicf.getClaim); the claim is then sent from the key in `key_file`
(created 0600 if missing), paying `account` (default: the key's own address)."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicf.client import RpcClient
from aicf.core.encoding import from_hex
from aicf.core.errors import AicfError

if TYPE_CHECKING:
    from aicf.chain.evm_account import EvmAccount


class EvmCliError(AicfError):
    """The coordinator does not follow an EVM chain, or has no claim for the account."""


def evm_terms(client: RpcClient) -> dict[str, object]:
    """The coordinator's EVM chain (rpc_url, aicf, token); EvmCliError if it runs the embedded devnet."""
    terms = client.call("aicf.getRequestTerms")
    chain = terms.get("chain") or {"kind": "devnet"}
    if chain.get("kind") != "evm":
        raise EvmCliError(f"the coordinator runs on a {chain.get('kind')} chain, not an EVM node")
    return dict(chain)


def claim_payout(*, url: str, epoch: int, key_file: Path, account: str | None = None) -> dict[str, object]:
    """`aicf chain claim`: fetch the claim of `account` in `epoch` and send it; returns what was paid."""
    from aicf.chain.evm_account import EvmAccount, load_or_create_evm_key

    key = load_or_create_evm_key(key_file)
    payee = account or key.address
    with RpcClient(url.rstrip("/") + "/rpc", timeout_s=30.0) as client:
        chain = evm_terms(client)
        found = client.call("aicf.getClaim", {"epoch": epoch, "account": payee.lower()})
    if not found["posted"]:
        raise EvmCliError(f"epoch {epoch}'s batch is settled but not yet posted on chain; try again shortly")
    node = EvmAccount.open(str(chain["rpc_url"]), str(chain["aicf"]), str(chain["token"]), key)
    try:
        before = node.balance(payee)
        receipt = node.claim(epoch, payee, int(found["amount"]), [from_hex(p) for p in found["proof"]])
        after = node.balance(payee)
    finally:
        node.close()
    return {
        "epoch": epoch,
        "account": payee,
        "amount": int(found["amount"]),
        "balance_before": before,
        "balance_after": after,
        "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
    }


def _open(url: str, key_file: Path) -> "tuple[EvmAccount, dict[str, object], dict[str, Any]]":
    from aicf.chain.evm_account import EvmAccount, load_or_create_evm_key

    key = load_or_create_evm_key(key_file)
    with RpcClient(url.rstrip("/") + "/rpc", timeout_s=30.0) as client:
        chain = evm_terms(client)
        terms = dict(client.call("aicf.getRequestTerms"))
    return EvmAccount.open(str(chain["rpc_url"]), str(chain["aicf"]), str(chain["token"]), key), chain, terms


def evm_deposit(*, url: str, key_file: Path, amount: int) -> dict[str, object]:
    """`aicf request deposit` on an EVM dev chain: the test token's faucet pays `amount` to the key's address."""
    node, _, _ = _open(url, key_file)
    try:
        receipt = node.faucet(amount)
        return {"tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(), "state": "included",
                "balance": node.balance(), "address": node.address}  # fmt: skip
    finally:
        node.close()


def evm_balance(*, url: str, key_file: Path) -> dict[str, object]:
    """`aicf request balance` on an EVM chain: the key's address, token balance, ether and allowance."""
    node, _, _ = _open(url, key_file)
    try:
        return {
            "address": node.address,
            "chain_id": node.chain_id,
            "balance": node.balance(),
            "wei": int(node.w3.eth.get_balance(node.key.address)),
            "allowance": int(node.token.functions.allowance(node.address, node.aicf.address).call()),
        }
    finally:
        node.close()


def evm_enqueue(
    *,
    url: str,
    key_file: Path,
    kind: str,
    body: dict[str, object],
) -> dict[str, object]:
    """`aicf request ai|quantum` on an EVM chain: approve the escrow, send aiEnqueue / quantumEnqueue from the
    key, and answer SPEC's task_id (computed from the enqueue's block, transaction and request, as the
    coordinator does), the transaction and the escrow. The escrow is SPEC §2's formula at the best QoS for AI,
    and at the highest depth weight (2000 milli-units per shot) for quantum; what the job is not charged comes
    back at settlement (docs/EVM.md)."""
    from web3.logs import DISCARD

    from aicf.chain.evm import request_of, spec_task_id

    node, _, terms = _open(url, key_file)
    try:
        fee = int(str(body["fee_per_unit"]))
        if kind == "ai":
            models: dict[str, Any] = terms["models"]
            model = str(body["model"])
            if model not in models:
                raise EvmCliError(f"unknown model {model!r}; the coordinator serves {', '.join(sorted(models))}")
            weight = int(models[model]["weight_milli"])
            max_mu = int(str(body["max_runtime_ms"])) * weight * int(str(terms["best_qos_bps_product"])) // 10**11
            escrow = max(1, fee * max_mu // 1000)
            call = node.aicf.functions.aiEnqueue(model, body["prompt"], body["max_tokens"], body["max_runtime_ms"],
                                                 fee, body["tier"], escrow)  # fmt: skip
            event = node.aicf.events.AiEnqueued()
        else:
            escrow = max(1, fee * int(str(body["shots"])) * 2000 // 1000)
            call = node.aicf.functions.quantumEnqueue(body["circuit"], body["shots"], fee, body["tier"], escrow)
            event = node.aicf.events.QuantumEnqueued()
        node.approve_for(escrow)
        receipt = node.send(call)
        (log,) = event.process_receipt(receipt, errors=DISCARD)
        tx_kind, request = request_of(str(log["event"]), log["args"])
        caller = bytes.fromhex(node.address[2:])
        tx_hash = bytes(receipt["transactionHash"])
        task = spec_task_id(node.chain_id, int(receipt["blockNumber"]), tx_hash, caller, tx_kind, request)
        return {"task_id": "0x" + task.hex(), "tx_hash": "0x" + tx_hash.hex(), "escrow": escrow,
                "contract_task_id": "0x" + bytes(log["args"]["taskId"]).hex()}  # fmt: skip
    finally:
        node.close()
