"""Operator transactions and AI traps on `aicf up --chain anvil` (issue 17 item 7, issue 14 item 1, issue 13): a
real `aicf up` on anvil takes the operator's CLI commands as transactions through the contract. A params change
(trap_bps) is applied at the next epoch boundary on chain; a requester's tier is set and a tier-2 job sent through
the contract is taken; the fund's tokens top up the contract's trap fund; traps are funded from it, enqueued by
their own fresh callers through `aiEnqueue` and run to settlement; the ledger's fund equals the contract's trap
fund plus the fund's settled shares; a provider is added to and removed from the operator allowlist. A node that
follows only the chain (a fresh store, the operator's public key, the params file) ingests the same operator
changes and the same jobs, traps included, refusing none of them, and writes the coordinator's settlement batches
byte for byte (payouts, traps' included, and refunds): the chain alone carries every inclusion's envelope and
signed acceptance. Skipped without anvil unless
AICF_REQUIRE_CHAIN=1 (CI)."""

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from store.backends import memory_store
from web3 import Web3
from web3.types import Wei

from aicf.bootstrap.stores import open_store
from aicf.chain.deploy import contract
from aicf.chain.evm import EvmChain
from aicf.chain.evm_account import EvmAccount, load_or_create_evm_key
from aicf.client import RpcError
from aicf.core.chain import TxKind
from aicf.core.encoding import to_hex
from aicf.core.jobs import JobStatus
from aicf.core.ledger import WITHDRAWAL_KIND, Posting
from aicf.core.operator import OP_ALLOWLIST, OP_FUND_TOPUP, OP_GRANT, OP_PARAMS, OP_TIER, OP_TRAP_FUND
from aicf.core.params import params_from_toml
from aicf.core.qasm import circuit_depth
from aicf.core.records import BatchRecord
from aicf.core.settlement import Payout, refund_claims_ref
from aicf.core.txs import SignedTx, address_of, encode_signed_tx, tx_signing_digest
from aicf.service.ingest import ingest_available
from aicf.store.interface import META_EVM_MONEY, Store
from aicf.transports.key_files import load_or_create_key, public_bytes
from e2e.live import PARAMS, Up
from e2e.test_evm_up import AI_FEE, MODEL, _need_anvil, jobs_of, rpc, wait_for

pytestmark = pytest.mark.slow

TOPUP = 50_000_000  # µANM the operator moves from the fund's tokens into the contract's trap fund


@pytest.fixture
def evm_up(tmp_path: Path) -> Iterator[Up]:
    _need_anvil()
    params = tmp_path / "params.toml"
    # no traps until the operator's params change turns them on; minilm weighted as in test_evm_up
    text = PARAMS.replace("minilm-l6-v2 = 100\n", "minilm-l6-v2 = 1000\n")
    params.write_text(text.replace("gamma_units = 1_000_000\n", "gamma_units = 1_000_000\ntrap_bps = 0\n"))
    up = Up(db=f"sqlite:///{tmp_path / 'aicf.db'}", var=tmp_path / "var", params=params, models=MODEL,
            extra=("--chain", "anvil"))  # fmt: skip
    up.start(timeout_s=240.0)
    try:
        yield up
    finally:
        up.kill(15)


def operator(up: Up, *args: str) -> dict[str, Any]:
    done = up.cli(*args, "--json", "--operator-token-file", str(up.var / "operator.token"), key=up.var / "unused")
    assert done.returncode == 0, done.stdout + done.stderr
    sent: dict[str, Any] = json.loads(done.stdout)
    return sent


def settled(store: Store) -> list[tuple[BatchRecord, list[Payout], list[Posting]]]:
    """Each batch of `store` in epoch order: its record (the batch's canonical CBOR, root, params hash), its payouts
    and its refund claims (the requesters' refunds the claim tree pays)."""
    try:
        with store.transaction() as tx:
            last = tx.last_batch_epoch()
            out = []
            for epoch in range(-1 if last is None else last + 1):
                record = tx.get_batch(epoch)
                assert record is not None
                refunds = tx.entries_with_ref(WITHDRAWAL_KIND, refund_claims_ref(epoch))
                out.append((replace(record, time=0), tx.payouts_of_epoch(epoch), refunds))
            return out
    finally:
        store.close()


def changes(up: Up) -> list[dict[str, Any]]:
    operator_view = rpc(up, "aicf.getStatus")["operator"]
    return [*operator_view["pending"], *operator_view["applied"]]


def test_operator_changes_and_ai_traps_run_through_the_contract_and_a_follower_derives_the_same(
    evm_up: Up, tmp_path: Path
) -> None:
    chain = rpc(evm_up, "aicf.getRequestTerms")["chain"]
    deployment = json.loads((evm_up.var / "deployment.json").read_text())
    with requests.Session() as session:
        w3 = Web3(Web3.HTTPProvider(chain["rpc_url"], session=session))
        aicf = contract(w3, "Aicf", chain["aicf"])
        token = contract(w3, "AicfTestToken", chain["token"])
        fund = Web3.to_checksum_address(deployment["fund"])

        # a params change: scheduled for the epoch after its block's, applied there
        # (half the jobs traps: the fund's split must cover their reserve fees, SPEC §15's trap budget rule)
        split = ("fund_bps=5000", "provider_bps=4000", "miner_bps=1000")
        sent = operator(evm_up, "params", "set", "trap_bps=5000", *split)
        assert sent["op"] == "params"

        def params_changes() -> list[dict[str, Any]]:  # mined when the call returns; ingested by the next pass
            return [c for c in changes(evm_up) if c["op"] == OP_PARAMS]

        (change,) = wait_for("the params change ingested", params_changes, timeout_s=30.0)
        assert change["tx_hash"] == sent["tx_hash"]
        assert int(aicf.functions.operatorNonce().call()) >= 1
        effective = int(change["effective_epoch"])
        assert rpc(evm_up, "aicf.getParams", {"epoch": effective - 1})["version"] == 0
        assert rpc(evm_up, "aicf.getParams", {"epoch": effective})["version"] == 1
        wait_for("the params change in force", lambda: rpc(evm_up, "aicf.getStatus")["current_epoch"] >= effective)
        assert [c["state"] for c in changes(evm_up) if c["op"] == OP_PARAMS] == ["applied"]

        # the fund's tokens top up the contract's trap fund
        fund_before, trap_fund_before = (
            int(token.functions.balanceOf(fund).call()),
            int(aicf.functions.trapFund().call()),
        )
        assert operator(evm_up, "traps", "fund", str(TOPUP))["op"] == OP_FUND_TOPUP
        assert int(token.functions.balanceOf(fund).call()) == fund_before - TOPUP
        assert int(aicf.functions.trapFund().call()) == trap_fund_before + TOPUP

        # a grant: the operator's allowance on chain, the grantee's signed request to the coordinator (never to the
        # chain); the coordinator funds a caller key it derives and sends the sponsored aiEnqueue from it
        grantee = Ed25519PrivateKey.from_private_bytes(b"\x0c" * 32)
        grantee_pub = grantee.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        assert operator(evm_up, "grant", "set", to_hex(address_of(grantee_pub)), str(10**9))["op"] == OP_GRANT
        body = {"model": MODEL, "prompt": b"A sponsored question", "max_tokens": 8, "max_runtime_ms": 2000,
                "fee_per_unit": AI_FEE, "tier": 0}  # fmt: skip
        chain_id = int(w3.eth.chain_id)
        sig = grantee.sign(tx_signing_digest(chain_id, grantee_pub, TxKind.AI_ENQUEUE, 0, body))
        request = SignedTx(
            chain_id=chain_id, public_key=grantee_pub, nonce=0, kind=TxKind.AI_ENQUEUE, body=body, sig=sig
        )
        grant_tx = to_hex(encode_signed_tx(request))

        def grant_requested() -> dict[str, Any] | None:  # refused until the allowance is ingested
            try:
                answer: dict[str, Any] = rpc(evm_up, "aicf.requestGrant", {"tx": grant_tx})
            except RpcError:
                return None
            return answer

        grant = wait_for("the grant request taken", grant_requested, timeout_s=30.0)

        # a requester's tier, then a tier-2 job of that requester sent through the contract
        key_file = tmp_path / "requester.evm.key"
        key = load_or_create_evm_key(key_file)
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": next(iter(w3.eth.accounts)), "to": key.address, "value": Wei(10**19)})
        )
        tier_sent = operator(evm_up, "tier", "set", key.address.lower(), "2", "--wait", "--timeout", "30")
        assert (tier_sent["op"], tier_sent["status"]["state"]) == (OP_TIER, "included")  # getTransaction follows it
        wait_for("the tier applied", lambda: any(c["op"] == OP_TIER for c in changes(evm_up)), timeout_s=30.0)
        node = EvmAccount.open(chain["rpc_url"], chain["aicf"], chain["token"], key)
        try:
            assert evm_up.cli("request", "deposit", str(10**9), key=key_file).returncode == 0
            for prompt, tier in (("The capital of France is", "2"), ("A cat sat on", "0")):
                done = evm_up.cli("request", "ai", "--model", MODEL, "--prompt", prompt, "--max-tokens", "8",
                                  "--max-runtime-ms", "2000", "--fee-per-unit", str(AI_FEE), "--tier", tier,
                                  "--json", key=key_file)  # fmt: skip
                assert done.returncode == 0, done.stderr
        finally:
            node.close()

        # the traps those jobs make due: funded from the trap fund, enqueued by their own callers, settled
        def settled_traps() -> list[dict[str, Any]]:
            items = rpc(evm_up, "aicf.listJobs", {"limit": 200})["items"]
            traps = [j for j in items if j["caller"] != key.address.lower()]
            return traps if len(traps) >= 2 and all(j["status"] == "SETTLED" for j in traps) else []

        traps = wait_for("two trap jobs settled", settled_traps, timeout_s=300.0)

        def grant_settled() -> dict[str, Any] | None:  # the requester polls with the same signed request
            task = rpc(evm_up, "aicf.requestGrant", {"tx": grant_tx})["task_id"]
            job: dict[str, Any] | None = rpc(evm_up, "aicf.getJob", {"id": task}) if task else None
            return job if job is not None and job["status"] == "SETTLED" else None

        granted = wait_for("the grant's job settled", grant_settled, timeout_s=120.0)
        assert granted["caller"] == grant["caller"] != to_hex(address_of(grantee_pub))  # the grantee is not on chain
        assert granted["caller"] != key.address.lower()
        assert int(aicf.functions.prepaid(Web3.to_checksum_address(grant["caller"])).call()) == 0
        mine = jobs_of(evm_up, key.address)
        assert sorted(j["tier"] for j in mine) == [0, 2]  # the tier-2 job was taken, not refused
        for trap in traps:
            caller = Web3.to_checksum_address(trap["caller"])
            assert int(aicf.functions.prepaid(caller).call()) == 0  # its escrow came from the trap fund, all spent
        assert int(aicf.functions.trapFund().call()) < trap_fund_before + TOPUP

        # ledger == contract: the ledger's fund is the contract's trap fund plus the fund's settled shares
        def fund_agrees() -> bool:
            status = rpc(evm_up, "aicf.getStatus")
            last = int(status["last_settled_epoch"])
            shares = sum(int(p["fund"]) for e in range(last + 1)
                         for p in rpc(evm_up, "aicf.getEpoch", {"epoch": e})["payouts"])  # fmt: skip
            after = rpc(evm_up, "aicf.getStatus")
            if int(after["last_settled_epoch"]) != last:
                return False
            return int(after["treasury"]["fund_balance"]) == int(aicf.functions.trapFund().call()) + shares

        wait_for("the ledger's fund equal to the contract's", fund_agrees, timeout_s=60.0)

        # the operator allowlist: a provider added, then removed again (a listed one would be the only one matched)
        assert operator(evm_up, "allowlist", "add", "0x" + "ab" * 32)["op"] == OP_ALLOWLIST
        assert operator(evm_up, "allowlist", "remove", "0x" + "ab" * 32)["op"] == OP_ALLOWLIST
        wait_for("both allowlist changes ingested",
                 lambda: sum(c["op"] == OP_ALLOWLIST for c in changes(evm_up)) == 2, timeout_s=30.0)  # fmt: skip

        # a node following only the chain: same operator changes, same jobs (traps included), none refused
        follower = memory_store()
        with follower.transaction() as tx:  # a store that follows an EVM contract, as EvmBackend marks its own
            tx.set_meta(META_EVM_MONEY, 1)
            tx.commit()
        view = EvmChain.connect(chain["rpc_url"], evm_up.var / "deployment.json")
        try:
            params = params_from_toml(evm_up.params.read_text())
            operator_key = public_bytes(load_or_create_key(evm_up.var / "operator.key"))
            ingest_available(follower, view, params, circuit_depth, operator_key=operator_key)
            with follower.transaction() as tx:
                head = tx.head_block()
                assert head is not None
                mine_ops = {(c.op, "0x" + c.tx_hash.hex()) for c in tx.recent_operator_changes(1000)}
                trap_ops = tx.operator_changes_of(OP_TRAP_FUND)
                followed = {"0x" + j.task_id.hex() for j in tx.list_jobs(list(JobStatus), None, 1000)}
                refused = [r for r in tx.snapshot().refused if r.kind != "proof"]
        finally:
            view.close()
        live = {(c["op"], c["tx_hash"]) for c in changes(evm_up) if int(c["height"]) <= head.height}
        assert live <= mine_ops
        # ... and writes the coordinator's batches byte for byte: every inclusion's envelope and acceptance came
        # from the chain (includeProof's input), so the same ResultRecords are paid, traps and refunds included
        ours, theirs = settled(open_store(evm_up.db)), settled(follower)
        assert len(theirs) >= 2
        common = min(len(ours), len(theirs))
        assert ours[:common] == theirs[:common]
        paid = {p.task_id for _, payouts, _ in theirs[:common] for p in payouts}
        assert {bytes.fromhex(t["task_id"][2:]) for t in traps} <= paid
        assert bytes.fromhex(granted["task_id"][2:]) in paid  # the grant's job settled alike on the follower
        assert any(refunds for _, _, refunds in theirs[:common])
        assert {OP_PARAMS, OP_TIER, OP_FUND_TOPUP, OP_ALLOWLIST} <= {op for op, _ in mine_ops}
        assert {"0x" + c.subject.hex() for c in trap_ops} >= {t["caller"] for t in traps}
        assert {t["task_id"] for t in traps} | {j["task_id"] for j in mine} <= followed
        assert refused == []
