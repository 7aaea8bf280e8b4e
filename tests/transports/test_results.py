"""Issue 15: every method's OpenRPC result schema is a real schema, and real responses satisfy it.

The schemas are generated from aicf.transports.results; here every method of a running coordinator (the
module-wide history of test_cli_ops: an echo provider through several settled epochs) is called and its answer
validated against the same type, so a render function and its published schema cannot drift apart.
"""

import json
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from proofs.attestation.conftest import new_test_nitro
from pydantic import TypeAdapter

from aicf.client import RpcClient
from aicf.client.rpc import tls_context
from aicf.client.signing import public_key_bytes
from aicf.core.chain import TxKind
from aicf.core.encoding import canonical_cbor, to_hex
from aicf.core.txs import SignedTx, address_of, encode_signed_tx, tx_signing_digest
from aicf.service import reads
from transports.test_cli_ops import TOKEN, Running, running  # noqa: F401 - the module-wide history fixture


def rpc_json(url: str, method: str, params: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    answer = httpx.post(url + "/rpc", json=body, headers=headers, verify=tls_context()).json()
    assert "result" in answer, (method, answer)
    return answer["result"]


def test_every_method_has_a_real_result_schema_and_real_answers_satisfy_it(running: Running) -> None:  # noqa: F811
    run, url = running, running.url
    document = rpc_json(url, "rpc.discover", {})
    methods = {m["name"]: m for m in document["methods"]}
    empty = sorted(name for name, m in methods.items() if not m["result"]["schema"])
    assert empty == []
    assert "x-auth" in methods["aicf.heartbeat"]
    register = next(p for p in methods["aicf.register"]["params"] if p["name"] == "max_leases")
    assert (register["schema"]["minimum"], register["schema"]["maximum"]) == (1, run.system.params.max_leases)

    answers: dict[str, list[Any]] = {}

    def read(method: str, params: dict[str, Any] | None = None) -> Any:
        answers.setdefault(method, []).append(rpc_json(url, method, params or {}))
        return answers[method][-1]

    def operator(method: str, params: dict[str, Any]) -> Any:
        answers.setdefault(method, []).append(rpc_json(url, method, params, TOKEN))
        return answers[method][-1]

    client: RpcClient = run.agent.client

    def provider(method: str, params: dict[str, Any]) -> Any:
        answers.setdefault(method, []).append(client.call_provider(method, params))
        return answers[method][-1]

    read("rpc.discover")
    me = to_hex(run.agent.provider_id)
    read("aicf.listProviders", {"limit": 500})
    read("aicf.getProvider", {"id": me})
    jobs = read("aicf.listJobs", {"limit": 2})
    read("aicf.listJobs", {"limit": 2, "cursor": jobs["next_cursor"]})
    settled = [j for j in reads.list_jobs(run.system.store, (), None, 500) if j.status.value == "SETTLED"]
    read("aicf.getJob", {"id": to_hex(settled[0].task_id)})
    read("aicf.getResult", {"id": to_hex(settled[0].task_id)})
    read("aicf.getBalance", {"account": "treasury"})
    read("aicf.getEpoch", {"epoch": 1})
    read("aicf.getStatus")
    read("aicf.getDeployment")
    read("aicf.listRoots")
    read("aicf.listPolicies")
    provider("aicf.heartbeat", {})
    provider("aicf.stake", {"amount": 1})
    provider("aicf.withdraw", {"amount": 1})
    provider("aicf.register", run.agent.config.registration(run.agent.public_key))
    run.enqueue(1)
    for _ in range(30):  # until the job is final, queued and matched to our only provider
        run.clock.fixed.advance(10)
        run.system.tick()
        provider("aicf.heartbeat", {})
        work = provider("aicf.nextLease", {})
        if work["items"]:
            break
    assert work["items"], "the provider holds a lease"
    provider("aicf.releaseLease", {"lease_id": work["items"][0]["lease_id"]})
    garbage = canonical_cbor({"provider_id": run.agent.provider_id, "version": 9})
    provider("aicf.submitProof", {"envelope": to_hex(garbage)})
    group = provider("aicf.submitProofs", {"envelopes": [to_hex(garbage), to_hex(garbage)]})
    assert [item["code"] for item in group["items"]] == ["MALFORMED", "MALFORMED"]
    provider("aicf.claimPayout", {"nonce": 424242})
    operator("aicf.fundProvider", {"provider_id": me, "amount": 1})
    operator("aicf.fundProvider", {"provider_id": "0x" + "ab" * 32, "amount": 5})
    head = rpc_json(url, "aicf.getStatus", {})["head_height"]
    old, new = new_test_nitro("results-old"), new_test_nitro("results-new")
    operator("aicf.addRoot", {"vendor": "aws", "name": "results-test", "der": to_hex(old.root_der),
                              "activation_height": head + 1})  # fmt: skip
    operator("aicf.rotateRoot", {"vendor": "aws", "name": "results-test", "der": to_hex(new.root_der),
                                 "activation_height": head + 2, "overlap_blocks": 3})  # fmt: skip
    operator("aicf.setPolicy", {"kind": "nitro", "activation_height": head + 1})
    device_key = Ed25519PrivateKey.from_private_bytes(b"\x71" * 32).public_key().public_bytes_raw()
    operator("aicf.pinDeviceKey", {"device": "results-qpu", "device_class": "noisy", "public_key": to_hex(device_key)})
    read("aicf.listDeviceKeys")
    # the operator transactions (docs/OPERATOR.md) and the params of an epoch
    operator("aicf.setTier", {"address": "0x" + "33" * 20, "tier": 1})
    operator("aicf.setAllowlist", {"action": "remove", "provider_id": "0x" + "ab" * 32})
    operator("aicf.setParams", {"changes": {"trap_bps": 400}})
    operator("aicf.fundTraps", {"amount": 1})
    read("aicf.getParams", {})
    read("aicf.getParams", {"epoch": 0})
    operator("aicf.devnetReorg", {"depth": 1})
    # the requester's methods: terms, an account, a signed deposit followed by hash, a job's outcome
    key = Ed25519PrivateKey.from_private_bytes(b"\x5e" * 32)
    pub = public_key_bytes(key)
    terms = read("aicf.getRequestTerms")
    assert terms["chain"] == {"kind": "devnet"}  # the requester CLI sends devnet transactions to this coordinator
    read("aicf.getAccount", {"address": to_hex(address_of(pub))})
    deposit = {"to": address_of(pub), "amount": 1000}
    sig = key.sign(tx_signing_digest(terms["chain_id"], pub, TxKind.DEPOSIT, 0, deposit))
    tx = SignedTx(chain_id=terms["chain_id"], public_key=pub, nonce=0, kind=TxKind.DEPOSIT, body=deposit, sig=sig)
    sent = read("aicf.sendTransaction", {"tx": to_hex(encode_signed_tx(tx))})
    read("aicf.getTransaction", {"tx_hash": sent["tx_hash"]})
    read("aicf.getTransaction", {"tx_hash": to_hex(settled[0].tx_hash)})
    read("aicf.readResult", {"id": to_hex(settled[0].task_id)})
    # a grant (issue 14 item 2): the operator's allowance on chain, then the requester's signed request
    operator("aicf.setGrant", {"address": to_hex(address_of(pub)), "allowance": 10**9})
    for _ in range(2):
        run.clock.fixed.advance(10)
        run.system.tick()
    model = sorted(terms["models"])[0]
    ask = {"model": model, "prompt": b"granted", "max_tokens": 0, "max_runtime_ms": 1000,
           "fee_per_unit": terms["suggested_fee_per_unit"]["ai"], "tier": 0}  # fmt: skip
    sig = key.sign(tx_signing_digest(terms["chain_id"], pub, TxKind.AI_ENQUEUE, 5, ask))
    grant = SignedTx(chain_id=terms["chain_id"], public_key=pub, nonce=5, kind=TxKind.AI_ENQUEUE, body=ask, sig=sig)
    read("aicf.requestGrant", {"tx": to_hex(encode_signed_tx(grant))})

    assert sorted(answers) == sorted(m.name for m in run.system.app.state.rpc.registry)  # every method was called
    for name, given in answers.items():
        adapter: TypeAdapter[Any] = TypeAdapter(run.system.app.state.rpc.registry.get(name).result_type)
        for answer in given:
            adapter.validate_json(json.dumps(answer))  # raises ValidationError naming the field
