"""`aicf up --chain anvil` end to end (issue 13, item 5): a real `aicf up` process starts anvil, deploys and runs
the system on it; a requester enqueues AI jobs through the contract with its own Ethereum transactions; an epoch
settles and its claim root is posted; a provider's owner claims its payout on chain with `aicf chain claim`; the
token balances agree with the coordinator's ledger and `aicf audit payout`. Then a reorg on anvil (evm_snapshot /
evm_revert while the coordinator runs) is absorbed: the dropped block's job is gone and nothing is paid twice.
Skipped without anvil unless AICF_REQUIRE_CHAIN=1 (CI)."""

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from web3 import Web3
from web3.types import Wei

from aicf.chain.anvil import find_anvil
from aicf.chain.deploy import contract
from aicf.chain.evm_account import EvmAccount, load_or_create_evm_key
from aicf.client import RpcClient, RpcError
from e2e.live import PARAMS, Up, pause

pytestmark = pytest.mark.slow

MODEL = "minilm-l6-v2"
AI_FEE = 40_000


def _need_anvil() -> None:
    binary = find_anvil()
    if binary is None or not binary.exists():
        if os.environ.get("AICF_REQUIRE_CHAIN") == "1":
            pytest.fail("AICF_REQUIRE_CHAIN=1 but anvil is not installed: run scripts/install-chain")
        pytest.skip("anvil is not installed: run scripts/install-chain")


@pytest.fixture
def evm_up(tmp_path: Path) -> Iterator[Up]:
    _need_anvil()
    params = tmp_path / "params.toml"
    # minilm answers in a few ms on an idle machine, which at its default weight (0.1 unit/s) rounds to 0 µunits
    # and so to no payout at all: ten times the weight, with a shorter runtime cap to keep the escrow the same
    params.write_text(PARAMS.replace("minilm-l6-v2 = 100\n", "minilm-l6-v2 = 1000\n"), encoding="utf-8")
    up = Up(db=f"sqlite:///{tmp_path / 'aicf.db'}", var=tmp_path / "var", params=params, models=MODEL,
            extra=("--chain", "anvil"))  # fmt: skip
    up.start(timeout_s=240.0)
    try:
        yield up
    finally:
        up.kill(15)


def rpc(up: Up, method: str, params: dict[str, Any] | None = None) -> Any:
    with RpcClient(up.url + "/rpc", timeout_s=30.0) as client:
        return client.call(method, params or {})


def jobs_of(up: Up, caller: str) -> list[dict[str, Any]]:
    items = rpc(up, "aicf.listJobs", {"limit": 200})["items"]
    return [j for j in items if j["caller"] == caller.lower()]


def wait_for(what: str, check: Any, timeout_s: float = 180.0) -> Any:
    waited = 0.0
    while waited < timeout_s:
        found = check()
        if found:
            return found
        pause(0.5)
        waited += 0.5
    raise AssertionError(f"timed out waiting for {what}")


def test_jobs_sent_through_the_contract_are_paid_on_chain_and_a_provider_owner_claims_its_share(
    evm_up: Up, tmp_path: Path
) -> None:
    assert evm_up.log is not None
    banner = evm_up.log.read_text()
    node_url = re.search(r"chain: EVM node (http://\S+) ", banner)
    assert node_url is not None, banner
    terms = rpc(evm_up, "aicf.getRequestTerms")
    chain = terms["chain"]
    assert (chain["kind"], chain["rpc_url"], terms["chain_id"]) == ("evm", node_url.group(1), 31337)
    deployment = json.loads((evm_up.var / "deployment.json").read_text())
    assert deployment["aicf"] == chain["aicf"]
    assert (evm_up.var / "coordinator.evm.key").stat().st_mode & 0o777 == 0o600

    with requests.Session() as session:
        w3 = Web3(Web3.HTTPProvider(chain["rpc_url"], session=session))
        dev = list(w3.eth.accounts)
        aicf = contract(w3, "Aicf", chain["aicf"])
        # a requester with its own key: ether for gas from a dev account, tokens from the faucet
        key = load_or_create_evm_key(tmp_path / "requester.evm.key")
        claimer_file = tmp_path / "claimer.evm.key"
        claimer = load_or_create_evm_key(claimer_file)
        for who in (key.address, claimer.address):
            w3.eth.wait_for_transaction_receipt(
                w3.eth.send_transaction({"from": dev[0], "to": who, "value": Wei(10**19)})
            )
        node = EvmAccount.open(chain["rpc_url"], chain["aicf"], chain["token"], key)
        try:
            # the requester CLI, as on the devnet: faucet, then two AI jobs sent through the contract
            key_file = tmp_path / "requester.evm.key"
            deposit = evm_up.cli("request", "deposit", str(10**9), "--json", key=key_file)
            assert deposit.returncode == 0, deposit.stderr
            assert json.loads(deposit.stdout)["balance"] == 10**9 == node.balance()
            sent = []
            for prompt in ("The capital of France is", "A cat sat on"):
                done = evm_up.cli("request", "ai", "--model", MODEL, "--prompt", prompt, "--max-tokens", "8",
                                  "--max-runtime-ms", "2000", "--fee-per-unit", str(AI_FEE), "--json",
                                  key=key_file)  # fmt: skip
                assert done.returncode == 0, done.stderr
                sent.append(json.loads(done.stdout))
            escrow = sent[0]["escrow"]
            assert node.balance() == 10**9 - 2 * escrow  # the escrow left the requester's account
            balance = evm_up.cli("request", "balance", "--json", key=key_file)
            assert json.loads(balance.stdout)["balance"] == 10**9 - 2 * escrow

            def settled_epoch() -> int | None:
                jobs = jobs_of(evm_up, key.address)
                if len(jobs) == 2 and all(j["status"] == "SETTLED" for j in jobs):
                    payouts = [rpc(evm_up, "aicf.getJob", {"id": j["task_id"]}) for j in jobs]
                    return max(int(p["payout"]["epoch"]) for p in payouts)
                return None

            epoch = wait_for("both jobs settled", settled_epoch, timeout_s=240.0)
            assert {j["task_id"] for j in jobs_of(evm_up, key.address)} == {x["task_id"] for x in sent}
            result = evm_up.cli("request", "result", str(sent[0]["task_id"]), "--json", key=key_file)
            assert json.loads(result.stdout)["status"] == "SETTLED"
            wait_for("the batch posted on chain", lambda: int(aicf.functions.nextEpoch().call()) > epoch)
            batch = rpc(evm_up, "aicf.getEpoch", {"epoch": epoch})
            mine = [p for p in batch["payouts"] if p["provider_id"]]
            assert mine, batch
            provider = mine[0]["provider_id"]
            owner = str(aicf.functions.stakes(bytes.fromhex(provider[2:])).call()[0])
            owed = sum(int(p["provider"]) for p in batch["payouts"] if p["provider_id"] == provider)
            claim = rpc(evm_up, "aicf.getClaim", {"epoch": epoch, "account": owner.lower()})
            assert (claim["amount"], claim["posted"]) == (owed, True)
            assert bytes(aicf.functions.batches(epoch).call()[1]).hex() == claim["claim_root"][2:]

            before = node.balance(owner)
            claim_args = ("chain", "claim", "--epoch", str(epoch), "--account", owner, "--key", str(claimer_file))
            done = evm_up.cli(*claim_args, "--json", key=tmp_path / "unused.key")
            assert done.returncode == 0, done.stderr
            paid = json.loads(done.stdout)
            assert (paid["amount"], paid["balance_after"] - paid["balance_before"]) == (owed, owed)
            assert node.balance(owner) == before + owed  # the provider's owner holds its share in tokens
            again = evm_up.cli(*claim_args, key=tmp_path / "unused.key")
            assert again.returncode == 1
            assert "AlreadyClaimed" in again.stderr  # a second claim is refused by the contract, nothing paid
            assert node.balance(owner) == before + owed
            # the fund's shares of the batch reach the deployment's fund address the same way
            fund = deployment["fund"]
            fund_owed = sum(int(p["fund"]) for p in batch["payouts"])
            fund_before = node.balance(fund)
            fund_claim = ("chain", "claim", "--epoch", str(epoch), "--account", fund, "--key", str(claimer_file))
            assert evm_up.cli(*fund_claim, key=tmp_path / "unused.key").returncode == 0
            assert node.balance(fund) == fund_before + fund_owed > fund_before

            task = mine[0]["task_id"]
            audit = evm_up.cli("audit", "payout", task, "--params", str(evm_up.params), "--json", key=tmp_path / "k")
            assert audit.returncode == 0, audit.stdout + audit.stderr
            assert json.loads(audit.stdout)["ok"] is True
            # the contract's readResult agrees with the coordinator's result once final
            result = rpc(evm_up, "aicf.getResult", {"id": task})
            enqueues = aicf.events.AiEnqueued().get_logs(from_block=deployment["deploy_block"])
            ours = [e for e in enqueues if e["args"]["caller"] == key.address]
            ready, on_chain = node.aicf.functions.readResult(ours[0]["args"]["taskId"]).call()
            assert ready is True
            assert "0x" + bytes(on_chain[0]).hex() in {j["task_id"] for j in jobs_of(evm_up, key.address)}
            assert result["units_mu"] > 0

            # a reorg on anvil while the coordinator runs: the enqueue's block is dropped, so is its job
            snap = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
            node.send(node.aicf.functions.aiEnqueue(MODEL, b"Proof of stake means", 8, 2_000, AI_FEE, 0, escrow))

            def ingested() -> bool:
                return len(jobs_of(evm_up, key.address)) == 3

            wait_for("the third job ingested", ingested, timeout_s=60.0)
            assert w3.provider.make_request("evm_revert", [snap])["result"]  # type: ignore[arg-type]
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

            def dropped() -> bool:
                return len(jobs_of(evm_up, key.address)) == 2

            wait_for("the reorged job dropped", dropped, timeout_s=60.0)
            assert rpc(evm_up, "aicf.getClaim", {"epoch": epoch, "account": owner.lower()})["amount"] == owed
            # claimed once each (the provider's owner, the fund), not again after the reorg
            assert int(aicf.functions.batches(epoch).call()[3]) == owed + fund_owed

            # the requester's refunds (what each job's escrow held above its charge) come back through the claim
            # trees of the batches up to the one that settled both jobs, claimed with `aicf chain claim`
            refund_due = sum(
                int(x["escrow"]) - int(rpc(evm_up, "aicf.getJob", {"id": x["task_id"]})["payout"]["charged"])
                for x in sent
            )
            assert refund_due > 0
            refunds = {e: refund_claim(evm_up, e, key.address) for e in range(epoch + 1)}
            assert sum(refunds.values()) == refund_due
            before = node.balance()
            for e, amount in refunds.items():
                if amount:
                    refund_args = ("chain", "claim", "--epoch", str(e), "--account", key.address)
                    done = evm_up.cli(*refund_args, "--key", str(claimer_file), key=tmp_path / "unused.key")
                    assert done.returncode == 0, done.stderr
                    again = evm_up.cli(*refund_args, "--key", str(claimer_file), key=tmp_path / "unused.key")
                    assert "AlreadyClaimed" in again.stderr  # once only
            assert node.balance() == before + refund_due

            # a restart on the same var folder and database follows the same deployment and resends nothing:
            # every coordinator transaction on chain is one inclusion, batch or slash, none of them refused
            assert coordinator_sent_once(w3, deployment)
            posted = int(aicf.functions.nextEpoch().call())
        finally:
            node.close()
    assert evm_up.kill(15) == 0  # anvil stops with it, its state kept in the var folder
    evm_up.start(timeout_s=240.0)
    assert json.loads((evm_up.var / "deployment.json").read_text()) == deployment
    assert evm_up.log is not None
    assert "contracts: following the deployment in" in evm_up.log.read_text()
    chain = rpc(evm_up, "aicf.getRequestTerms")["chain"]
    assert chain["aicf"] == deployment["aicf"]
    with requests.Session() as session:
        w3 = Web3(Web3.HTTPProvider(chain["rpc_url"], session=session))  # the restarted anvil's port
        aicf = contract(w3, "Aicf", chain["aicf"])
        assert int(aicf.functions.nextEpoch().call()) >= posted  # the chain resumed, not a fresh one
        wait_for("the next batch posted", lambda: int(aicf.functions.nextEpoch().call()) > posted)
        assert coordinator_sent_once(w3, deployment)


def refund_claim(up: Up, epoch: int, account: str) -> int:
    """The account's claim in `epoch` (0 when the batch pays it nothing: aicf.getClaim answers not found)."""
    try:
        claim = rpc(up, "aicf.getClaim", {"epoch": epoch, "account": account.lower()})
    except RpcError as exc:
        if "nothing paid" not in str(exc):
            raise
        return 0
    assert claim["posted"] is True
    return int(claim["amount"])


def coordinator_sent_once(w3: Web3, deployment: dict[str, Any]) -> bool:
    """Every transaction of the coordinator's key on chain is one inclusion, batch, slash or operator transaction
    (trap seed commitments and reveals) (none refused, none sent twice: a second one would have reverted or
    emitted nothing)."""
    aicf = contract(w3, "Aicf", deployment["aicf"])
    events = sum(
        len(e().get_logs(from_block=deployment["deploy_block"]))
        for e in (aicf.events.ProofIncluded, aicf.events.BatchPosted, aicf.events.Slashed, aicf.events.OperatorTx)
    )
    return int(w3.eth.get_transaction_count(deployment["coordinator"])) == events
