"""Operator transactions on an EVM node (issue 17 item 7, issue 14 item 1; docs/EVM.md, "Operator transactions"):
the `OperatorTx` log carries the operator's signed transaction, which the adapter turns into the very `operator`
ChainTx the devnet carries (or, when it is not the operator's for this chain, nonce and amounts, into one from
the coordinator role's address, which ingestion refuses). On anvil: the contract's role, nonce and size checks,
the fund's tokens moving into the trap fund and on to a trap caller's prepaid escrow, and ingestion applying it
all with the ledger equal to the contract."""

from collections.abc import Mapping
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from hexbytes import HexBytes
from service.test_coordinator import coordinator_for
from store.backends import memory_store
from web3 import Web3
from web3.types import RPCEndpoint

from aicf.bootstrap.evm import GRANT_KEY_TAG, EvmBackend, NotTheWriterError, grant_account, trap_account
from aicf.chain.deploy import contract
from aicf.chain.devnet_writer import sign_operator_tx
from aicf.chain.evm import ZERO_ADDRESS, EvmChain, EvmWriteError, OperatorLogError, OperatorPost, operator_tx_of
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.encoding import tagged_hash
from aicf.core.jobs import JobStatus
from aicf.core.ledger import FUND, requester_account
from aicf.core.operator import OP_ALLOWLIST, OP_FUND_TOPUP, OP_PARAMS, OP_TIER, OP_TRAP_FUND
from aicf.core.params import Params
from aicf.core.txs import SignedTx, TxError, address_of, encode_signed_tx, tx_signing_digest
from aicf.service.audit import verify
from aicf.service.grants import EVM_GRANT_PROMPT_BYTES
from aicf.service.ingest import ingest_available
from aicf.service.operator_calls import fund_body, grant_body, tier_body
from aicf.service.operator_ops import params_for_epoch
from aicf.service.requesters import transaction_status
from aicf.service.steps import decode_request
from aicf.service.trap_enqueue import TrapCallerKeys
from aicf.service.traps import grant_caller
from aicf.transports.key_files import public_bytes
from chain.evm_adapter_support import MiningWaiter, coordinator_account, local_coordinator_stack
from chain.evm_support import ANM, revert_of, send

CHAIN_ID = 31337
OPERATOR = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
PARAMS = Params.default()
TIER = tier_body(b"\x11" * 20, 1)
TRAP_BODY: dict[str, object] = {
    "model": "llama3-8b",
    "prompt": b"hello",
    "max_tokens": 64,
    "max_runtime_ms": 1000,
    "fee_per_unit": 15000,
    "tier": 0,
}


def signed(
    body: dict[str, object], nonce: int = 0, chain_id: int = CHAIN_ID, key: Ed25519PrivateKey = OPERATOR
) -> bytes:
    return encode_signed_tx(sign_operator_tx(key, chain_id, nonce, body))


# -- the log → transaction mapping (no node) -------------------------------------------------------------------
def test_an_operator_log_becomes_the_operators_own_transaction_with_its_signed_body() -> None:
    body = tier_body(b"\x11" * 20, 2)
    sender, mapped = operator_tx_of(CHAIN_ID, 5, signed(body, nonce=5), ZERO_ADDRESS, 0)
    assert sender == address_of(public_bytes(OPERATOR))
    assert mapped == body


def test_a_trap_funding_log_maps_only_when_the_contract_paid_what_the_body_names() -> None:
    to = b"\x22" * 20
    raw = signed({"op": OP_TRAP_FUND, "to": to, "amount": 4 * ANM})
    assert operator_tx_of(CHAIN_ID, 0, raw, to, 4 * ANM)[1]["amount"] == 4 * ANM
    with pytest.raises(OperatorLogError, match=r"^the contract paid 3000000 to 0x2222.*, the body names 4000000"):
        operator_tx_of(CHAIN_ID, 0, raw, to, 3 * ANM)
    with pytest.raises(OperatorLogError, match=r"^the contract paid 4000000 to 0x3333"):
        operator_tx_of(CHAIN_ID, 0, raw, b"\x33" * 20, 4 * ANM)
    topup = signed(fund_body(9 * ANM, None))
    assert operator_tx_of(CHAIN_ID, 0, topup, b"\x44" * 20, 9 * ANM)[1] == {"op": OP_FUND_TOPUP, "amount": 9 * ANM}
    with pytest.raises(OperatorLogError, match=r"^the contract pulled 1 into the trap fund, the body names 9000000"):
        operator_tx_of(CHAIN_ID, 0, topup, b"\x44" * 20, 1)
    with pytest.raises(OperatorLogError, match=r"^a tier transaction moved 5 tokens"):
        operator_tx_of(CHAIN_ID, 0, signed(tier_body(to, 1)), to, 5)


@pytest.mark.parametrize(
    ("raw", "nonce", "error"),
    [
        (
            signed(tier_body(b"\x11" * 20, 1), chain_id=1),
            0,
            r"^the signed transaction is for chain 1, this chain is 31337",
        ),
        (signed(tier_body(b"\x11" * 20, 1), nonce=3), 4, r"^the signed transaction's nonce is 3, the contract's was 4"),
        (b"\xa0", 0, r"^transaction refused: tx: expected a map"),
        (signed({"op": "nope"}), 0, r"^transaction refused: op: "),
    ],
)
def test_an_operator_log_that_is_not_the_operators_for_this_chain_and_nonce_is_named(
    raw: bytes, nonce: int, error: str
) -> None:
    with pytest.raises(OperatorLogError, match=error):
        operator_tx_of(CHAIN_ID, nonce, raw, ZERO_ADDRESS, 0)


def test_a_forged_signature_or_another_kind_is_refused() -> None:
    tx = sign_operator_tx(OPERATOR, CHAIN_ID, 0, tier_body(b"\x11" * 20, 1))
    forged = encode_signed_tx(replace(tx, body=tier_body(b"\x11" * 20, 3)))  # the signature was over tier 1
    with pytest.raises(OperatorLogError, match=r"^the signature does not verify"):
        operator_tx_of(CHAIN_ID, 0, forged, ZERO_ADDRESS, 0)
    deposit = encode_signed_tx(replace(tx, kind=TxKind.DEPOSIT, body={"to": b"\x11" * 20, "amount": 5}))
    with pytest.raises(OperatorLogError, match=r"^the signed transaction is of kind 'deposit', not 'operator'"):
        operator_tx_of(CHAIN_ID, 0, deposit, ZERO_ADDRESS, 0)


# -- on anvil ---------------------------------------------------------------------------------------------------
def backend_on(w3: Web3) -> tuple[EvmBackend, EvmChain]:
    stack = local_coordinator_stack(w3)
    chain = EvmChain(w3, stack.deployment)
    store = memory_store()
    backend = EvmBackend(
        chain=chain, writer_key=coordinator_account(), store=store, rpc_url="", waiter=MiningWaiter(w3)
    )
    return backend.with_operator_key(OPERATOR), chain


def test_operator_transactions_through_the_contract_are_ingested_with_the_ledger_equal_to_the_contract(
    w3: Web3,
) -> None:
    backend, chain = backend_on(w3)
    aicf, tok = backend.aicf, contract(w3, "AicfTestToken", backend.deployment.token)
    fund = Web3.to_checksum_address(backend.deployment.fund)
    admin = next(iter(w3.eth.accounts))
    send(tok.functions.mint(fund, 100 * ANM), admin)
    send(tok.functions.approve(aicf.address, 100 * ANM), fund)

    backend.send_operator(fund_body(50 * ANM, None))  # the fund's tokens into the contract's trap fund
    assert (int(aicf.functions.trapFund().call()), int(tok.functions.balanceOf(fund).call())) == (50 * ANM, 50 * ANM)
    tier_tx = backend.send_operator(tier_body(b"\x11" * 20, 2))
    backend.send_operator({"op": OP_PARAMS, "changes": {"trap_bps": 100}})
    backend.send_operator({"op": OP_ALLOWLIST, "action": "add", "provider_id": b"\x33" * 32})
    caller = backend.trap_caller(b"\x5e" * 32, 0)
    assert caller == bytes.fromhex(trap_account(backend.writer_key, b"\x5e" * 32, 0).address[2:])
    # s_E is revealed after its epoch: the seed alone (or with another coordinator key) must not give the caller's
    # key, or anyone reading the reveal could sign as the trap caller and claim its escrow refund
    assert caller != bytes.fromhex(Account.from_key(tagged_hash("aicf/evmtrapkey/v1", b"\x5e" * 32, 0)).address[2:])
    assert caller != bytes.fromhex(trap_account(Account.create(), b"\x5e" * 32, 0).address[2:])
    ether_before = int(w3.eth.get_balance(Web3.to_checksum_address(caller)))
    backend.send_operator({"op": OP_TRAP_FUND, "to": caller, "amount": 4 * ANM})
    assert int(aicf.functions.prepaid(Web3.to_checksum_address(caller)).call()) == 4 * ANM
    assert int(w3.eth.get_balance(Web3.to_checksum_address(caller))) > ether_before  # gas for its own enqueue
    enqueue = backend.send_trap_enqueue(TRAP_BODY, caller)
    receipt = w3.eth.wait_for_transaction_receipt(HexBytes(enqueue))
    assert receipt["status"] == 1
    assert int(aicf.functions.prepaid(Web3.to_checksum_address(caller)).call()) == 0
    assert int(aicf.functions.operatorNonce().call()) == 5

    store = backend.store
    ingest_available(store, chain, PARAMS, _no_circuits, operator_key=public_bytes(OPERATOR))
    block = chain.block_at(receipt["blockNumber"])
    assert block is not None
    assert [t.kind for t in block.txs] == [TxKind.AI_ENQUEUE]  # no deposit: the escrow was the trap fund's
    with store.transaction() as tx:
        assert tx.snapshot().refused == ()
        ops = [c.op for c in tx.recent_operator_changes(10)]
        assert sorted(ops) == sorted([OP_FUND_TOPUP, OP_TIER, OP_PARAMS, OP_ALLOWLIST])  # trap fundings aside
        (funding,) = tx.operator_changes_of(OP_TRAP_FUND)
        assert funding.subject == caller
        assert tx.requester_tier(b"\x11" * 20) == 2
        head = tx.head_block()
        assert head is not None
        assert params_for_epoch(tx, PARAMS, head.epoch + 1).trap_bps == 100  # scheduled for the next epoch
        (job,) = tx.jobs_of_caller(caller)
        assert job.status == JobStatus.PENDING
        balances = tx.balances([FUND, requester_account(caller)])
    # the ledger's fund is what the contract holds for traps; the caller keeps what its escrow did not reserve
    assert balances[FUND] == int(aicf.functions.trapFund().call()) == 46 * ANM
    assert balances[requester_account(caller)] == 4 * ANM - job.escrow
    assert verify(store).ok
    # aicf.getTransaction on an EVM node: the operator transaction and the trap's enqueue, by their EVM hashes
    status = transaction_status(store, backend, tier_tx)
    assert (status.state, status.location is not None and status.location.kind) == ("included", TxKind.OPERATOR)
    assert transaction_status(store, backend, enqueue).jobs == (job,)
    assert transaction_status(store, backend, b"\x01" * 32).state == "unknown"


def test_the_contract_takes_operator_transactions_only_from_the_role_at_its_nonce_and_size(w3: Web3) -> None:
    backend, chain = backend_on(w3)
    aicf = backend.aicf
    raw = signed(tier_body(b"\x11" * 20, 1))
    stranger = list(w3.eth.accounts)[5]
    assert revert_of(aicf.functions.operatorTx(0, raw), stranger) == ("NotCoordinator", (stranger,))
    with pytest.raises(EvmWriteError, match=r"OperatorNonceMismatch\(0, 1\)"):
        backend.evm_writer.ensure(_post(1, raw))
    big = b"\x00" * 8193
    with pytest.raises(EvmWriteError, match=r"PayloadTooLarge\(signed_tx, 8193, 8192\)"):
        backend.evm_writer.ensure(_post(0, big))
    with pytest.raises(EvmWriteError, match=r"TrapFundShort\(0, 4000000\)"):
        backend.send_operator({"op": OP_TRAP_FUND, "to": b"\x22" * 20, "amount": 4 * ANM})
    assert int(aicf.functions.operatorNonce().call()) == 0  # nothing was sent

    # signed by another Ed25519 key, sent by the role: on chain, but ingestion refuses it as not the operator's
    other = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
    written = backend.evm_writer.ensure(_post(0, signed(tier_body(b"\x11" * 20, 3), key=other)))
    assert written.tx_hash is not None
    ingest_available(backend.store, chain, PARAMS, _no_circuits, operator_key=public_bytes(OPERATOR))
    with backend.store.transaction() as tx:
        (refused,) = tx.snapshot().refused
        assert tx.requester_tier(b"\x11" * 20) == 0
    assert refused.tx_hash == written.tx_hash
    assert transaction_status(backend.store, backend, written.tx_hash).state == "refused"
    assert "is not the operator" in refused.reason
    # a resent operator transaction is found on chain, not sent twice
    assert backend.evm_writer.ensure(_post(0, signed(tier_body(b"\x11" * 20, 3), key=other))).status.value == "ALREADY"


def _post(nonce: int, raw: bytes) -> OperatorPost:
    return OperatorPost(nonce=nonce, signed_tx=raw)


def _no_circuits(circuit: bytes) -> int:
    raise AssertionError("no quantum job in these tests")


class Follower:
    """A writer lock another replica holds."""

    def held(self) -> bool:
        return False

    def close(self) -> None:
        return None


def test_a_replica_without_the_writer_lock_sends_no_operator_transaction_and_runs_no_trap_pass(w3: Web3) -> None:
    backend, _ = backend_on(w3)
    backend.writer_lock = Follower()
    with pytest.raises(NotTheWriterError, match=r"^this replica does not hold the writer lock"):
        backend.send_operator(tier_body(b"\x11" * 20, 1))
    assert int(backend.aicf.functions.operatorNonce().call()) == 0
    writer = backend.writer
    assert isinstance(writer, TrapCallerKeys)
    assert writer.may_send() is False


# -- grants on an EVM node (issue 14 item 2) ---------------------------------------------------------------------
GRANTEE_KEY = Ed25519PrivateKey.from_private_bytes(b"\x0b" * 32)
GRANTEE = address_of(public_bytes(GRANTEE_KEY))


def grant_request(body: Mapping[str, object]) -> SignedTx:
    """The grantee's signed ai_enqueue, sent to the coordinator (aicf.requestGrant), never to the chain."""
    pub = public_bytes(GRANTEE_KEY)
    sig = GRANTEE_KEY.sign(tx_signing_digest(CHAIN_ID, pub, TxKind.AI_ENQUEUE, 0, body))
    return SignedTx(chain_id=CHAIN_ID, public_key=pub, nonce=0, kind=TxKind.AI_ENQUEUE, body=body, sig=sig)


def test_a_grant_on_an_evm_node_is_funded_and_enqueued_by_the_coordinator_from_a_derived_key(w3: Web3) -> None:
    backend, chain = backend_on(w3)
    aicf, tok = backend.aicf, contract(w3, "AicfTestToken", backend.deployment.token)
    fund = Web3.to_checksum_address(backend.deployment.fund)
    admin = next(iter(w3.eth.accounts))
    send(tok.functions.mint(fund, 100 * ANM), admin)
    send(tok.functions.approve(aicf.address, 100 * ANM), fund)
    backend.send_operator(fund_body(50 * ANM, None))
    backend.send_operator(grant_body(GRANTEE, 10 * ANM))
    store, clock = backend.store, FakeClock(int(w3.eth.get_block("latest")["timestamp"]))
    coord = coordinator_for(store, clock, PARAMS, OPERATOR, backend.writer)
    ingest_available(store, chain, PARAMS, _no_circuits, operator_key=public_bytes(OPERATOR))

    # an EVM aiEnqueue carries the six SPEC fields only: a grant asking for more is refused, nothing stored
    with pytest.raises(TxError, match=r"^transaction refused: regions: an EVM aiEnqueue carries only model, prompt"):
        coord.request_grant(grant_request({**TRAP_BODY, "regions": ["eu"]}), CHAIN_ID)
    over = EVM_GRANT_PROMPT_BYTES + 1
    with pytest.raises(TxError, match=rf"^transaction refused: prompt: {over} bytes exceeds {over - 1}, the most a"):
        coord.request_grant(grant_request({**TRAP_BODY, "prompt": b"q" * over}), CHAIN_ID)
    asked = {**TRAP_BODY, "prompt": b"q" * EVM_GRANT_PROMPT_BYTES}  # the longest: its gas is what trap_fund forwards
    grant = coord.request_grant(grant_request(asked), CHAIN_ID)
    seed = coord.trap_seed(grant.epoch)  # s_E, revealed after the epoch
    key = grant_account(backend.writer_key, seed, grant.m)
    assert grant.caller == bytes.fromhex(key.address[2:])
    assert grant.caller not in (GRANTEE, backend.writer_key.address, trap_account(backend.writer_key, seed, 0))
    # not derivable from s_E alone (revealed after its epoch): the coordinator key is in it
    assert grant.caller != grant_caller(seed, grant.m)
    assert grant.caller != bytes.fromhex(Account.from_key(tagged_hash(GRANT_KEY_TAG, seed, grant.m)).address[2:])
    assert grant.caller != bytes.fromhex(grant_account(Account.create(), seed, grant.m).address[2:])

    backend.trap_keys.clear()  # the key is derived again when the grant is sent (a restart in between loses nothing)
    report = coord.trap_pass()  # funds the derived caller (escrow and gas) and sends its aiEnqueue
    assert report.enqueued == (grant.caller,)
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    ingest_available(store, chain, PARAMS, _no_circuits, operator_key=public_bytes(OPERATOR))
    coord.trap_pass()  # links the grant to its task
    answer = coord.request_grant(grant_request(asked), CHAIN_ID)  # the requester polls with the same request
    with store.transaction() as tx:
        (job,) = tx.jobs_of_caller(grant.caller)
        assert tx.jobs_of_caller(GRANTEE) == []  # the requester's address is nowhere on chain
        assert tx.snapshot().refused == ()
        balances = tx.balances([FUND, requester_account(grant.caller)])
    assert answer.task_id == job.task_id
    assert job.status == JobStatus.PENDING
    assert decode_request(job)["prompt"] == asked["prompt"]
    assert int(aicf.functions.prepaid(Web3.to_checksum_address(key.address)).call()) == 0  # the escrow was spent
    assert balances[FUND] == int(aicf.functions.trapFund().call()) == 50 * ANM - grant.funded
    assert balances[requester_account(grant.caller)] == grant.funded - job.escrow
    assert verify(store).ok
