"""The EVM side of the CLI (`aicf chain claim`), wired here so web3 is imported only when such a command runs.

The coordinator at `url` names the node and the contracts (aicf.getRequestTerms's `chain`) and serves the
account's claim with its Merkle proof (aicf.getClaim); the claim is then sent from the key in `key_file`
(created 0600 if missing), paying `account` (default: the key's own address)."""

from pathlib import Path

from aicf.client import RpcClient
from aicf.core.encoding import from_hex
from aicf.core.errors import AicfError


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
