"""Issue 13, item 4 on an EVM node: two real `aicf serve --chain URL --contracts FILE` replicas on one fresh
PostgreSQL database and one anvil are one coordinator, and exactly one of them writes to the node.

Anvil is deployed on with `aicf chain deploy`; two real `aicf provider run` processes (minilm, staked on chain)
talk to different replicas; two requesters send AI jobs through the contract with `aicf request`, one per replica.
Then the test takes over block production (anvil's interval mining and automine off, one `evm_mine` at a time)
and, the moment the writer replica's `postBatch` is in the node's pool but not mined, SIGKILLs the replica that
holds the writer lock (found in pg_locks by its `aicf-writer-<pid>` session). The other replica takes the lock
while the batch is still pending, the batch is mined, the killed replica is started again (a follower now), and
every job settles. Then every inclusion, batch and slash is on chain exactly once (the coordinator's nonce equals
its events: nothing refused or sent twice), each posted batch's root and claim total are the ledger's, and
`aicf db verify` passes. Skipped without anvil (unless AICF_REQUIRE_CHAIN=1) or PostgreSQL.
"""

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from web3 import Web3
from web3.contract import Contract
from web3.types import Wei

from aicf.bootstrap.evm_up import coordinator_key
from aicf.bootstrap.stores import open_store
from aicf.chain.anvil import Anvil, find_anvil, start_anvil
from aicf.chain.deploy import contract
from aicf.chain.evm_account import load_or_create_evm_key
from aicf.core.ids import provider_id
from aicf.core.jobs import JobStatus
from aicf.core.ledger import WITHDRAWAL_KIND
from aicf.core.settlement import refund_claims_ref
from aicf.devtools.evm_demo import fund_treasury, stake_providers
from aicf.transports.key_files import load_or_create_key, load_or_create_secret, public_bytes
from aicf.transports.secret_files import load_or_create_operator_token
from e2e.live import PARAMS, ROOT, Up, assert_db_verifies, pause
from e2e.test_evm_up import AI_FEE, MODEL, _need_anvil, coordinator_sent_once, wait_for
from e2e.test_serve import database, provider  # noqa: F401 - the fresh database fixture

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

JOBS_EACH = 2


@pytest.fixture
def node() -> Iterator[Anvil]:
    _need_anvil()
    binary = find_anvil()
    assert binary is not None
    anvil = start_anvil(binary, chain_id=31337, extra_args=["--block-time", "1"])
    try:
        yield anvil
    finally:
        anvil.stop()


def call(w3: Web3, method: str, *args: Any) -> Any:
    return w3.provider.make_request(method, list(args))["result"]  # type: ignore[arg-type]


def writer_pid(dsn: str) -> int | None:
    """The process id of the replica holding the writer lock (its session's application_name), if one does."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.objid = 4242004 AND l.granted"
        ).fetchone()
    return None if row is None else int(str(row[0]).removeprefix("aicf-writer-"))


def pending_calls(w3: Web3, aicf: Contract, sender: str) -> list[str]:
    """The Aicf functions of `sender`'s transactions in the node's pool, not mined yet."""
    pool = call(w3, "txpool_content")["pending"]
    mine: dict[str, Any] = next((txs for who, txs in pool.items() if who.lower() == sender.lower()), {})
    return [str(aicf.decode_function_input(tx["input"])[0].fn_name) for tx in mine.values()]


def test_the_writer_replica_killed_between_a_batch_roots_send_and_its_confirmation_is_replaced(
    database: str,  # noqa: F811 - the imported fixture
    node: Anvil,
    tmp_path: Path,
) -> None:
    pytest.importorskip("onnxruntime")
    params_file = tmp_path / "params.toml"  # minilm's weight as in test_evm_up (a few ms must pay > 0 µunits)
    params_file.write_text(PARAMS.replace("minilm-l6-v2 = 100\n", "minilm-l6-v2 = 1000\n"), encoding="utf-8")
    var = tmp_path / "var"
    var.mkdir()
    load_or_create_key(var / "operator.key")  # one var folder for both replicas, made once (docs/DEPLOY.md)
    load_or_create_secret(var / "trap.secret")
    load_or_create_operator_token(var, {})
    coordinator = coordinator_key(var)
    contracts = tmp_path / "deployment.json"
    with requests.Session() as session:
        w3 = Web3(Web3.HTTPProvider(node.url, session=session))
        dev = [str(a) for a in w3.eth.accounts]
        deployed = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "aicf", "chain", "deploy", "--rpc-url", node.url, "--out",
             str(contracts), "--coordinator", coordinator.address, "--fund", dev[1], "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        deployment = json.loads(contracts.read_text())
        aicf, token = contract(w3, "Aicf", deployment["aicf"]), contract(w3, "AicfTestToken", deployment["token"])
        requesters = [tmp_path / "alice.evm.key", tmp_path / "bob.evm.key"]
        for who in [coordinator.address, *(load_or_create_evm_key(k).address for k in requesters)]:
            w3.eth.wait_for_transaction_receipt(
                w3.eth.send_transaction({"from": dev[0], "to": who, "value": Wei(10**19)})
            )
        provider_keys = [tmp_path / "p1.key", tmp_path / "p2.key"]
        ids = [provider_id(public_bytes(load_or_create_key(k))) for k in provider_keys]
        stake_providers(w3, token, aicf, dev[2:4], ids)  # their shares are claimable by these owners
        fund_treasury(w3, token, aicf, dev[0])  # the chain operator's deposit, as docs/DEPLOY.md says

        chain = ("--chain", node.url, "--contracts", str(contracts))
        a, b = (Up(db=database, var=var, params=params_file, models=MODEL, command="serve", extra=chain)
                for _ in range(2))  # fmt: skip
        replicas = [a, b]
        providers: list[subprocess.Popen[str]] = []
        try:
            starts = [threading.Thread(target=r.start) for r in replicas]  # both on the empty database at once
            for t in starts:
                t.start()
            for t in starts:
                t.join()
            token_file = var / "operator.token"
            providers = [
                provider(r.url, k, token_file, tmp_path / f"{k.stem}.log", fund=False)
                for r, k in zip(replicas, provider_keys, strict=True)
            ]
            sent: list[str] = []
            for replica, key in zip(replicas, requesters, strict=True):
                deposit = replica.cli("request", "deposit", str(10**9), "--json", key=key)
                assert deposit.returncode == 0, deposit.stderr
                for i in range(JOBS_EACH):
                    done = replica.cli("request", "ai", "--model", MODEL, "--prompt", f"{key.stem} {i}",
                                       "--max-tokens", "8", "--max-runtime-ms", "2000", "--fee-per-unit",
                                       str(AI_FEE), "--json", key=key)  # fmt: skip
                    assert done.returncode == 0, done.stderr
                    sent.append(str(json.loads(done.stdout)["task_id"]))

            # block production by hand: a block at a time, until the writer's postBatch waits in the pool
            call(w3, "evm_setIntervalMining", 0)
            call(w3, "evm_setAutomine", False)
            by_pid = {r.proc.pid: r for r in replicas if r.proc is not None}
            for _ in range(400):
                if "postBatch" in pending_calls(w3, aicf, coordinator.address):
                    break
                call(w3, "evm_mine")
                pause(0.4)
            else:
                raise AssertionError("no postBatch was sent while blocks were mined one by one")
            holder = writer_pid(database)
            assert holder in by_pid, (holder, list(by_pid))
            killed = by_pid[holder]
            survivor = b if killed is a else a
            assert killed.kill(signal.SIGKILL) == -signal.SIGKILL
            assert pending_calls(w3, aicf, coordinator.address) == ["postBatch"]  # sent, not confirmed
            posted_before = int(aicf.functions.nextEpoch().call())
            assert survivor.proc is not None
            wait_for("the survivor takes the writer lock", lambda: writer_pid(database) == survivor.proc.pid, 60.0)
            call(w3, "evm_mine")  # the killed replica's batch is confirmed now, after the takeover
            assert int(aicf.functions.nextEpoch().call()) == posted_before + 1
            call(w3, "evm_setAutomine", True)
            call(w3, "evm_setIntervalMining", 1)
            killed.start()  # a follower now: its provider reaches it again

            def all_settled() -> bool:
                store = open_store(database)
                try:
                    with store.transaction() as tx:
                        jobs = [tx.get_job(bytes.fromhex(t[2:])) for t in sent]
                        last = tx.last_batch_epoch()
                finally:
                    store.close()
                settled = all(j is not None and j.status is JobStatus.SETTLED for j in jobs)
                return settled and last is not None and int(aicf.functions.nextEpoch().call()) > last

            wait_for("every job settled and every batch posted", all_settled, timeout_s=150.0)
            assert writer_pid(database) == survivor.proc.pid
        finally:
            for p in providers:
                p.kill()
                p.wait(timeout=30)
            for replica in replicas:
                if replica.proc is not None and replica.proc.poll() is None:
                    replica.kill(signal.SIGTERM)
        call(w3, "evm_mine")  # a transaction sent as the replicas stopped is mined before the count

        # every inclusion, batch and slash on chain exactly once, none refused
        since = deployment["deploy_block"]
        included = [bytes(e["args"]["specTaskId"]) for e in aicf.events.ProofIncluded().get_logs(from_block=since)]
        assert sorted(included) == sorted(bytes.fromhex(t[2:]) for t in sent)
        epochs = [int(e["args"]["epoch"]) for e in aicf.events.BatchPosted().get_logs(from_block=since)]
        assert epochs == list(range(len(epochs)))
        slashes = Counter(bytes(e["args"]["evidenceHash"]) for e in aicf.events.Slashed().get_logs(from_block=since))
        assert all(n == 1 for n in slashes.values())
        assert coordinator_sent_once(w3, deployment)
        # each posted batch is the ledger's: its SPEC root, and a claim tree paying exactly its payouts and the
        # refunds it handed the requesters (docs/EVM.md, "Refunds")
        store = open_store(database)
        try:
            with store.transaction() as tx:
                for epoch in epochs:
                    kept = tx.get_batch(epoch)
                    assert kept is not None
                    spec_root, _, claim_total, _ = aicf.functions.batches(epoch).call()
                    paid = sum(p.provider + p.miner + p.fund for p in tx.payouts_of_epoch(epoch))
                    refunded = sum(p.amount for p in tx.entries_with_ref(WITHDRAWAL_KIND, refund_claims_ref(epoch)))
                    assert (bytes(spec_root), int(claim_total)) == (kept.root, paid + refunded)
                assert sum(len(tx.payouts_of_epoch(e)) for e in epochs) == len(sent)  # each job paid once
        finally:
            store.close()
    assert_db_verifies(database)
