"""The system on an EVM node (issue 13, item 3): the `ChainBackend` over `EvmChain` and `EvmWriter`.

Imported only when a run asks for an EVM chain (web3 raises the recursion limit on import, docs/SECURITY.md).

- The ingester reads `EvmChain` alone: each `ProofIncluded` log becomes a PROOF transaction carrying the envelope
  and the signed acceptance read back from its `includeProof` call's input (`proof_tx_of`), so ingestion writes
  the ResultRecord exactly as on the devnet, and a node that follows only the chain writes the same batches.
- What `after_pass` sends is derived from the store and the contract only, never from memory, so a replica
  killed at any point loses nothing and a restart (or another replica) sends what is missing and nothing twice:
  - inclusions: every accepted proof whose job is still SUBMITTED with no inclusion ingested
    (`send_missing_inclusions`), with its envelope and acceptance in the calldata; `EvmWriter.ensure` skips
    those the contract holds already. The acceptance's commit is what makes a proof due;
  - slashes: every recorded slash whose evidence the contract does not hold, with the bps of the params in
    force at the slash's height (`slash_bps_at`);
  - batches: every settled epoch the contract does not hold yet, in order, with its claim tree
    (aicf/chain/claims.py): provider shares to the owner the provider's first `Staked` log bound by the batch's
    finalized height (none: the fund), miner shares to the inclusion block's fee recipient, the fund's to the
    deployment's fund address, and the refunds the batch handed the requesters (docs/EVM.md, "Refunds").
- Only the holder of the writer lock sends (`writer_lock` of the store: a PostgreSQL session advisory lock, so
  of replicas on one database exactly one sends from the coordinator's key and none races another on its nonce);
  the others only follow the node, and one of them takes the lock over when the holder dies (docs/EVM.md).
- Operator transactions (`send_operator`, the writer-lock holder only, under `write_lock` with the passes' writes)
  are the operator key's signed transaction sent through the contract at its `operatorNonce` (docs/EVM.md,
  "Operator transactions"); AI traps' callers are keys derived from the coordinator key and s_E
  (`trap_account`), whose `aiEnqueue` spends the escrow their `trap_fund` prepaid; grants' callers likewise
  (`grant_account`, own tag), so the coordinator sends a sponsored job's enqueue too. The trap pass runs on the
  writer only (`may_send`).
- The backend marks its store `evm_money` (the contract holds escrow and stake): settlement then hands refunds to
  the claim tree, and stake logs are mirrored into the ledger and registry.
"""

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, TxParams, Wei

from aicf.chain.artifacts import load_artifact
from aicf.chain.claims import ClaimTree, ClaimTreeError, batch_post, claim_tree_for_batch, refunds_of
from aicf.chain.deploy import Deployment, contract
from aicf.chain.devnet_writer import NoOperatorKeyError, sign_operator_tx
from aicf.chain.evm import (
    BatchPost,
    EvmChain,
    EvmError,
    EvmWriter,
    Inclusion,
    Intent,
    OperatorPost,
    RealWaiter,
    SlashPost,
    WriteResult,
    WriteStatus,
)
from aicf.chain.interface import ChainView, TxLocation
from aicf.core.chain import TxKind
from aicf.core.encoding import decode_canonical, tagged_hash
from aicf.core.ledger import WITHDRAWAL_KIND
from aicf.core.operator import OP_FUND_TOPUP, OP_TRAP_FUND
from aicf.core.params import Params
from aicf.core.records import BatchRecord, ProofRecord, SlashRecord
from aicf.core.settlement import Payout, SettlementBatch, Totals, refund_claims_ref
from aicf.core.txs import encode_signed_tx
from aicf.service import requesters
from aicf.service.context import ChainWriter
from aicf.service.operator_ops import params_for_epoch
from aicf.store.interface import META_EVM_MONEY, SoleWriter, Store, Tx, WriterLock, read_transaction
from aicf.transports.methods_evm import ClaimAnswer, get_claim_method
from aicf.transports.methods_requester import requester_methods
from aicf.transports.rpc import RpcMethod

log = logging.getLogger("aicf.evm")

SLASH_CODES = {"MISSED_LEASE": 1, "BAD_ATTESTATION": 2, "TRAP_FAILURE": 3, "QOS_CHRONIC": 4, "FRAUD": 5}  # EVM.md
SLASH_SCAN = 1000  # the most recent slashes each pass checks
INCLUSION_SCAN = 500  # the most due inclusions one pass sends (oldest first)
MAX_SENDABLE_PROOF_BYTES = 120 * 1024  # calldata an inclusion may carry: geth's pool takes transactions ≤ 128 KiB
# The largest proof body an EVM node can include: the rest of the envelope (~230 bytes), acc (≤ 256) and acc_sig
# (64) fit in the 1 KiB left; a bigger body is refused as MALFORMED at submission (aicf.service.steps.parse_for_chain)
MAX_PROOF_BODY_BYTES = MAX_SENDABLE_PROOF_BYTES - 1024
ANY_RECEIPT = 2**63 - 1  # `received_by` that takes an accepted proof whenever it was received


def _proof_id(body: Mapping[str, object]) -> bytes:
    value = body.get("proof_id")
    return value if isinstance(value, bytes) else b""


class EvmProofWriter:
    """The coordinator's `ChainWriter` on an EVM node. An accepted proof is already due from the store (its
    acceptance committed first): `send_missing_inclusions` sends it, envelope and acceptance in the calldata,
    so `include_proof` has nothing left to do."""

    max_proof_body_bytes = MAX_PROOF_BODY_BYTES  # ProofSizeLimit: what an inclusion's calldata has room for

    def __init__(self, backend: "EvmBackend | None" = None) -> None:
        self.backend = backend

    def include_proof(self, body: Mapping[str, object]) -> None:
        log.debug("proof 0x%s accepted: the next pass includes it", _proof_id(body).hex())

    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        """An AI trap's or grant's enqueue: `aiEnqueue` from the caller's own derived key, its escrow the prepaid
        balance its trap_fund put there (EvmBackend.send_trap_enqueue)."""
        if self.backend is None or kind != TxKind.AI_ENQUEUE:
            raise EvmError(f"a {kind.value} transaction from 0x{sender.hex()} cannot be sent to an EVM chain")
        self.backend.send_trap_enqueue(body, sender)

    def may_send(self) -> bool:
        """Whether this replica sends to the node now (it holds the writer lock): the trap pass runs only then."""
        return self.backend is not None and self.backend.writer_lock.held()

    def trap_fund_held(self) -> int:
        """The contract's `trapFund`: what trap fundings can still pay on chain."""
        if self.backend is None:
            return 0
        return int(self.backend.aicf.functions.trapFund().call())

    def send_operator(self, body: Mapping[str, object]) -> bytes:
        """An operator transaction through the contract (EvmBackend.send_operator)."""
        if self.backend is None:
            raise NoOperatorKeyError("this EVM writer has no backend: operator transactions cannot be sent")
        return self.backend.send_operator(body)

    def trap_caller(self, seed: bytes, n: int) -> bytes:
        """Trap n's caller on an EVM chain: the address of the key `trap_account` derives (the coordinator key, s_E
        and n), kept so its enqueue can be signed (a trap caller needs a key to send its own transaction)."""
        if self.backend is None:
            raise EvmError("this EVM writer has no backend: trap callers cannot be derived")
        return self.backend.trap_caller(seed, n)

    def grant_caller(self, seed: bytes, m: int) -> bytes:
        """Grant m's caller on an EVM chain: the address of the key `grant_account` derives (the coordinator key,
        s_E and m), kept so the sponsored enqueue can be signed like a trap's (aicf.service.grants)."""
        if self.backend is None:
            raise EvmError("this EVM writer has no backend: grant callers cannot be derived")
        return self.backend.grant_caller(seed, m)


class NotTheWriterError(EvmError):
    """This replica does not hold the writer lock, so it sends nothing to the EVM node."""


class ContractTasks(Protocol):
    """What `send_missing_inclusions` reads of the chain: the contract's taskId of a SPEC task_id."""

    def contract_task_of(self, spec_id: bytes) -> bytes | None: ...


class IntentWriter(Protocol):
    """What `send_missing_inclusions` writes through: `EvmWriter.ensure` (sends unless the contract holds it)."""

    def ensure(self, intent: Intent) -> WriteResult: ...


def send_missing_inclusions(
    store: Store,
    chain: ContractTasks,
    writer: IntentWriter,
    *,
    unsendable: set[bytes],
    limit: int = INCLUSION_SCAN,
    may_send: Callable[[], bool] = lambda: True,
) -> list[WriteResult]:
    """Put on chain every accepted proof whose job is SUBMITTED with no inclusion ingested, oldest first: after a
    crash nothing queued in memory is lost, and `writer.ensure` checks the contract first, so a proof included
    before the crash (or by another replica) is not sent again. A proof that can never be sent (no enqueue log
    for its task, or not an accepted proof's body) is logged once and remembered in `unsendable`. Stops early
    when `may_send()` turns false (the writer lock was lost). An EvmError of the writer propagates: the next
    pass tries again."""
    with read_transaction(store) as tx:
        due = tx.accepted_proofs_not_included(ANY_RECEIPT, limit)
    results: list[WriteResult] = []
    for record in due:
        if record.proof_id in unsendable:
            continue
        contract_task = chain.contract_task_of(record.task_id)
        if contract_task is None:
            log.warning("no enqueue log for task 0x%s: its inclusion is not sent", record.task_id.hex())
            unsendable.add(record.proof_id)
            continue
        try:
            inclusion = inclusion_of(_inclusion_body(record), contract_task)
        except EvmError as exc:
            log.error("inclusion of 0x%s not sent: %s", record.proof_id.hex(), exc)
            unsendable.add(record.proof_id)
            continue
        if not may_send():
            break
        result = writer.ensure(inclusion)
        log.debug("inclusion of 0x%s: %s", record.proof_id.hex(), result.status)
        results.append(result)
    return results


def slash_epoch(tx: Tx, at: int) -> int:
    """The epoch of the slash's height: the last stored block whose time is at or before `at` (the slash's time,
    unix seconds), whose epoch's params the coordinator judged the slash by; 0 before any block."""
    head = tx.head_block()
    if head is None:
        return 0
    if head.time <= at:
        return head.epoch
    lo, hi = -1, head.height  # block lo is at or before `at` (or missing: below the first stored), block hi after
    while hi - lo > 1:
        mid = (lo + hi) // 2
        block = tx.block_at(mid)
        if block is None or block.time <= at:
            lo = mid
        else:
            hi = mid
    found = tx.block_at(lo) if lo >= 0 else None
    return 0 if found is None else found.epoch


def slash_bps_at(tx: Tx, base: Params, record: SlashRecord) -> int:
    """The bps `slash` sends for `record`: its reason's `slash_bps` in the params in force at the slash's height
    (`base`, the params file, with the on-chain params changes effective in that block's epoch)."""
    return params_for_epoch(tx, base, slash_epoch(tx, record.time)).slash_bps[record.reason]


def _inclusion_body(record: ProofRecord) -> dict[str, object]:
    """The inclusion body of a stored accepted proof (what `send_inclusion` gives the devnet)."""
    return {
        "task_id": record.task_id,
        "proof_id": record.proof_id,
        "provider_id": record.provider_id,
        "envelope": record.envelope,
        "acc": record.acceptance,
        "acc_sig": record.acceptance_sig,
    }


def inclusion_of(body: Mapping[str, object], contract_task: bytes) -> Inclusion:
    """`includeProof`'s arguments for an accepted proof's inclusion body (its envelope and acceptance)."""
    envelope, acc = decode_canonical(_bytes(body, "envelope")), decode_canonical(_bytes(body, "acc"))
    if not isinstance(envelope, dict) or not isinstance(acc, dict) or not isinstance(envelope.get("body"), dict):
        raise EvmError("an accepted proof's envelope or acceptance is not a map")
    env_body: dict[str, object] = envelope["body"]
    digest = env_body.get("output_digest", env_body.get("circuit_digest"))
    units = acc.get("units_mu")
    if not isinstance(digest, bytes) or len(digest) != 32 or not isinstance(units, int):
        raise EvmError("an accepted proof has no 32-byte output digest or no units")
    data = len(_bytes(body, "envelope")) + len(_bytes(body, "acc")) + len(_bytes(body, "acc_sig"))
    if data > MAX_SENDABLE_PROOF_BYTES:
        raise EvmError(
            f"its envelope and acceptance are {data} bytes: over {MAX_SENDABLE_PROOF_BYTES}, an EVM node's "
            'transaction size limit leaves no room for them (docs/EVM.md, "Proof inclusions")'
        )
    return Inclusion(
        task_id=contract_task,
        spec_task_id=_bytes(body, "task_id"),
        proof_id=_bytes(body, "proof_id"),
        provider_id=_bytes(body, "provider_id"),
        output_digest=digest,
        units_mu=units,
        envelope=_bytes(body, "envelope"),
        acc=_bytes(body, "acc"),
        acc_sig=_bytes(body, "acc_sig"),
    )


def _int(body: Mapping[str, object], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EvmError(f"a body has no integer {key!r}")
    return value


def _selectors(names: Mapping[str, TxKind]) -> dict[bytes, TxKind]:
    """The 4-byte selector of each named Aicf function → the ChainTx kind its log maps to."""
    out: dict[bytes, TxKind] = {}
    for item in load_artifact("Aicf").abi:
        if item["type"] == "function" and item["name"] in names:
            types = ",".join(str(a["type"]) for a in item["inputs"])
            out[keccak(f"{item['name']}({types})".encode())[:4]] = names[item["name"]]
    return out


PENDING_KINDS = _selectors(
    {
        "operatorTx": TxKind.OPERATOR,
        "operatorFundTopup": TxKind.OPERATOR,
        "operatorTrapFund": TxKind.OPERATOR,
        "aiEnqueue": TxKind.AI_ENQUEUE,
        "quantumEnqueue": TxKind.QUANTUM_ENQUEUE,
        "cancel": TxKind.CANCEL,
        "includeProof": TxKind.PROOF,
        "deposit": TxKind.TREASURY_DEPOSIT,
    }
)
TRAP_KEY_TAG = "aicf/evmtrapkey/v2"
TRAP_CALLER_GAS = 400_000  # gas a trap caller's aiEnqueue may use; its trap_fund forwards that much ether


def trap_account(writer_key: LocalAccount, seed: bytes, n: int) -> LocalAccount:
    """The secp256k1 key of trap n's caller on an EVM chain: H("aicf/evmtrapkey/v2", coordinator key, s_E, n) as a
    private key. The coordinator's own key is in it because s_E is revealed after its epoch: a key derived from s_E
    alone would let anyone who reads the reveal sign as every trap caller and claim their escrow refunds. Every
    replica holds the same coordinator key, so they derive the same callers; nobody else can."""
    account: LocalAccount = Account.from_key(tagged_hash(TRAP_KEY_TAG, bytes(writer_key.key), seed, n))
    return account


GRANT_KEY_TAG = "aicf/evmgrantkey/v1"


def grant_account(writer_key: LocalAccount, seed: bytes, m: int) -> LocalAccount:
    """The secp256k1 key of grant m's caller on an EVM chain: H("aicf/evmgrantkey/v1", coordinator key, s_E, m) as a
    private key, derived like a trap caller's (`trap_account`) under its own tag: the coordinator sends the
    sponsored `aiEnqueue` from it (the requester's own address never appears), and nobody who reads the reveal of
    s_E can sign as it or claim its refund."""
    account: LocalAccount = Account.from_key(tagged_hash(GRANT_KEY_TAG, bytes(writer_key.key), seed, m))
    return account


def _bytes(body: Mapping[str, object], key: str) -> bytes:
    value = body.get(key)
    if not isinstance(value, bytes):
        raise EvmError(f"an inclusion body has no byte string {key!r}")
    return value


def settlement_batch(record: BatchRecord, payouts: Sequence[Payout]) -> SettlementBatch:
    """The stored batch of an epoch as aicf.chain.claims takes it (totals summed from its payouts)."""
    return SettlementBatch(
        epoch=record.epoch,
        finalized_height=record.finalized_height,
        params_hash=record.params_hash,
        price_bps=record.price_bps,
        payouts=tuple(payouts),
        carried=(),
        totals=Totals(
            reward=sum(p.reward for p in payouts),
            provider=sum(p.provider for p in payouts),
            miner=sum(p.miner for p in payouts),
            fund=sum(p.fund for p in payouts),
            charged=sum(p.charged for p in payouts),
            units_mu=sum(p.units_mu for p in payouts),
        ),
        root=record.root,
        next_price_bps=record.next_price_bps,
        demand_mu=0,
    )


@dataclass
class EvmBackend:
    """The system's chain on an EVM node (module docstring). `rpc_url` is what requesters are told."""

    chain: EvmChain
    writer_key: LocalAccount
    store: Store
    rpc_url: str
    waiter: Any = field(default_factory=RealWaiter)
    params: Params = field(default_factory=Params)
    posted: int = 0  # batches this process posted
    slashed: int = 0  # slashes this process sent (not found on chain already)
    included: int = 0  # inclusions this process sent
    writer_lock: WriterLock = field(default_factory=SoleWriter)  # who of the replicas sends (module doc)
    writing: bool = False  # held the writer lock at the last pass
    on_close: list[Any] = field(default_factory=list)  # what to stop with it (the anvil `aicf up` started)
    deployment_file: Path | None = None
    operator_key: Ed25519PrivateKey | None = None  # signs operator transactions (build_system hands it over)
    write_lock: threading.Lock = field(default_factory=threading.Lock)  # one sender of the coordinator key at a time
    trap_keys: dict[bytes, LocalAccount] = field(default_factory=dict)  # trap/grant caller → its key (*_caller)

    kind = "evm"

    def __post_init__(self) -> None:
        self.deployment: Deployment = self.chain.deployment
        self.evm_writer = EvmWriter(self.chain.w3, self.deployment, self.writer_key, self.waiter)
        self._writer = EvmProofWriter(self)
        self.aicf = contract(self.chain.w3, "Aicf", self.deployment.aicf)
        self.trees: dict[int, ClaimTree] = {}  # epoch → its claim tree (aicf.getClaim), rebuilt on demand
        self.slashes_done: set[bytes] = set()  # evidence hashes on chain (or with nothing to slash there)
        self.unsendable: set[bytes] = set()  # accepted proofs that can never be included (logged once)
        with self.store.transaction() as tx:  # the contract holds escrow and stake: refunds claimed, stake mirrored
            if tx.get_meta(META_EVM_MONEY) != 1:
                tx.set_meta(META_EVM_MONEY, 1)
                tx.commit()

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    @property
    def view(self) -> ChainView:
        return self.chain

    @property
    def writer(self) -> ChainWriter:
        return self._writer

    def head_height(self) -> int:
        return self.chain.head_height()

    def advance(self, now: int) -> None:
        """The node makes its own blocks, and each inclusion's envelope and acceptance are read from the chain
        (the transaction's input): nothing to do."""

    def after_pass(self) -> None:
        """If this process holds the writer lock: send the missing inclusions, the slashes, then post the settled
        epochs the contract does not hold yet. Without the lock it sends nothing (another replica does)."""
        if not self.writer_lock.held():
            if self.writing:
                log.warning("writer lock lost: this replica stops sending to the EVM node")
            self.writing = False
            return
        if not self.writing:
            log.info("writer lock taken: this replica sends the coordinator's transactions to the EVM node")
        self.writing = True
        sent = send_missing_inclusions(
            self.store, self.chain, self, unsendable=self.unsendable, may_send=self.writer_lock.held
        )
        self.included += sum(r.status == WriteStatus.SENT for r in sent)
        if not self.writer_lock.held():
            return
        self.send_slashes()
        with read_transaction(self.store) as tx:
            last = tx.last_batch_epoch()
        if last is None:
            return
        for epoch in range(int(self.aicf.functions.nextEpoch().call()), last + 1):
            post = self.batch_post(epoch)
            if post is None or not self.writer_lock.held():
                break
            if self.ensure(post).status == WriteStatus.SENT:
                self.posted += 1

    def with_operator_key(self, key: Ed25519PrivateKey) -> "EvmBackend":
        """This backend, signing operator transactions with `key` (build_system's chain factory)."""
        self.operator_key = key
        return self

    def ensure(self, intent: Intent) -> WriteResult:
        """`EvmWriter.ensure` under `write_lock`: the pass's writes and operator transactions (any thread) take
        the coordinator key's nonces one at a time."""
        with self.write_lock:
            return self.evm_writer.ensure(intent)

    def send_operator(self, body: Mapping[str, object]) -> bytes:
        """Sign an operator transaction with the operator key at the contract's next `operatorNonce` and send it
        through the coordinator role (docs/EVM.md, "Operator transactions"): `operatorFundTopup` for a
        fund_topup, `operatorTrapFund` for a trap_fund (with ether for the trap caller's gas), `operatorTx` for
        the rest. Returns the EVM transaction's hash (the ChainTx hash ingestion gives it) once it is mined.
        Raises EvmWriteError (nothing sent) if the contract would revert, naming the error."""
        if self.operator_key is None:
            raise NoOperatorKeyError("this EVM backend holds no operator key: operator transactions cannot be signed")
        if not self.writer_lock.held():
            raise NotTheWriterError(
                "this replica does not hold the writer lock: send operator transactions through the replica that "
                "sends the coordinator's transactions (docs/EVM.md)"
            )
        with self.write_lock:
            self.evm_writer.settle_in_flight()
            nonce = int(self.aicf.functions.operatorNonce().call())
            signed = encode_signed_tx(sign_operator_tx(self.operator_key, self.chain_id, nonce, body))
            op = body.get("op")
            if op == OP_TRAP_FUND:
                base_fee, tip = self.evm_writer.fees()
                post = OperatorPost(
                    nonce=nonce,
                    signed_tx=signed,
                    call="operatorTrapFund",
                    pay_to="0x" + _bytes(body, "to").hex(),
                    amount=_int(body, "amount"),
                    value_wei=TRAP_CALLER_GAS * (2 * base_fee + tip),
                )
            elif op == OP_FUND_TOPUP:
                post = OperatorPost(
                    nonce=nonce, signed_tx=signed, call="operatorFundTopup", amount=_int(body, "amount")
                )
            else:
                post = OperatorPost(nonce=nonce, signed_tx=signed)
            result = self.evm_writer.ensure(post)
        if result.tx_hash is None:
            raise EvmError(f"operator nonce {nonce} was taken on chain before this transaction was sent")
        return result.tx_hash

    def trap_caller(self, seed: bytes, n: int) -> bytes:
        key = trap_account(self.writer_key, seed, n)
        caller = bytes.fromhex(key.address[2:])
        self.trap_keys[caller] = key
        return caller

    def grant_caller(self, seed: bytes, m: int) -> bytes:
        key = grant_account(self.writer_key, seed, m)
        caller = bytes.fromhex(key.address[2:])
        self.trap_keys[caller] = key  # its enqueue is sent like a trap's (send_trap_enqueue)
        return caller

    def send_trap_enqueue(self, body: Mapping[str, object], caller: bytes) -> bytes:
        """`aiEnqueue` from trap caller `caller`'s key with the body's six SPEC fields and the escrow its trap_fund
        prepaid (read from the contract); sent, not waited for (ingestion links the trap when its log lands).
        Raises EvmError if the caller's key is unknown or nothing is prepaid for it."""
        key = self.trap_keys.get(caller)
        if key is None:
            raise EvmError(f"no key for trap caller 0x{caller.hex()}: its enqueue cannot be signed")
        address = Web3.to_checksum_address(key.address)
        escrow = int(self.aicf.functions.prepaid(address).call())
        if escrow == 0:
            raise EvmError(f"trap caller {address} has no prepaid escrow: its trap_fund is not on chain")
        call = self.aicf.functions.aiEnqueue(
            str(body["model"]),
            _bytes(body, "prompt"),
            _int(body, "max_tokens"),
            _int(body, "max_runtime_ms"),
            _int(body, "fee_per_unit"),
            _int(body, "tier"),
            escrow,
        )
        w3 = self.chain.w3
        base_fee, tip = self.evm_writer.fees()
        gas = int(call.estimate_gas({"from": address}))
        request: TxParams = {
            "from": address,
            "nonce": Nonce(int(w3.eth.get_transaction_count(address, "pending"))),
            "gas": gas + gas // 5,
            "maxPriorityFeePerGas": Wei(tip),
            "maxFeePerGas": Wei(2 * base_fee + tip),
            "chainId": self.chain_id,
        }
        signed = key.sign_transaction(cast("dict[str, Any]", call.build_transaction(request)))
        return bytes(w3.eth.send_raw_transaction(signed.raw_transaction))

    def send_slashes(self) -> None:
        """Each slash the coordinator recorded becomes `slash(providerId, reason, bps, evidenceHash)` once (the
        contract refuses a second one with the same evidence): the reason's code and the params' bps, so the
        contract takes (bonded + unbonding) × bps // 10000 of the on-chain stake to the fund. A provider with no
        stake on chain has nothing to slash there: that slash is recorded as skipped and logged."""
        with read_transaction(self.store) as tx:
            recent = tx.recent_slashes(SLASH_SCAN)
        for record in reversed(recent):  # oldest first
            if record.evidence_hash in self.slashes_done:
                continue
            with read_transaction(self.store) as tx:
                bps = slash_bps_at(tx, self.params, record)
            if int(self.aicf.functions.stakes(record.provider_id).call()[0], 16) == 0:
                log.warning("slash 0x%s: provider 0x%s has no stake on chain; not sent",
                            record.evidence_hash.hex(), record.provider_id.hex())  # fmt: skip
            else:
                post = SlashPost(
                    provider_id=record.provider_id,
                    reason=SLASH_CODES[record.reason],
                    bps=bps,
                    evidence_hash=record.evidence_hash,
                )
                if self.ensure(post).status == WriteStatus.SENT:
                    self.slashed += 1
            self.slashes_done.add(record.evidence_hash)

    def claim_tree(self, epoch: int) -> ClaimTree | None:
        """Epoch `epoch`'s claim tree, built from its stored batch and the providers' on-chain owners."""
        if epoch in self.trees:
            return self.trees[epoch]
        with read_transaction(self.store) as tx:
            record = tx.get_batch(epoch)
            payouts = tx.payouts_of_epoch(epoch) if record is not None else []
        if record is None:
            return None
        with read_transaction(self.store) as tx:
            refund_claims = tx.entries_with_ref(WITHDRAWAL_KIND, refund_claims_ref(epoch))
        payees: dict[bytes, bytes] = {}
        for pid in sorted({p.provider_id for p in payouts}):
            owner = self.chain.owner_at(pid, record.finalized_height)
            if owner is None:
                log.warning(
                    "epoch %d: provider 0x%s had no owner on chain at height %d: its share goes to the fund",
                    epoch, pid.hex(), record.finalized_height,
                )  # fmt: skip
            else:
                payees[pid] = owner
        batch = settlement_batch(record, payouts)
        fund = bytes.fromhex(Web3.to_checksum_address(self.deployment.fund)[2:])
        tree = claim_tree_for_batch(batch, payees=payees, fund_account=fund, refunds=refunds_of(refund_claims))
        self.trees[epoch] = tree
        return tree

    def batch_post(self, epoch: int) -> BatchPost | None:
        with read_transaction(self.store) as tx:
            record = tx.get_batch(epoch)
            payouts = tx.payouts_of_epoch(epoch) if record is not None else []
        tree = self.claim_tree(epoch)
        if record is None or tree is None:
            return None
        made = batch_post(settlement_batch(record, payouts), tree)
        return BatchPost(
            epoch=made.epoch,
            spec_root=made.spec_root,
            totals=made.totals,
            escrow_released=made.escrow_released,
            claim_root=made.claim_root,
            claim_total=made.claim_total,
        )

    def rpc_methods(self, store: Store, params: Params) -> Sequence[RpcMethod[Any]]:
        """aicf.getRequestTerms (naming the node and the contracts) and aicf.readResult; requesters send their
        own Ethereum transactions to the contract."""
        chain = {
            "kind": "evm",
            "rpc_url": self.rpc_url,
            "aicf": self.deployment.aicf,
            "token": self.deployment.token,
            "deploy_block": self.deployment.deploy_block,
        }
        return [
            *requester_methods(
                chain_id=self.chain_id,
                send=None,
                account=None,
                outcome=lambda task_id: requesters.request_outcome(store, task_id),
                status=lambda tx_hash: requesters.transaction_status(store, self, tx_hash),
                terms=lambda: {**requesters.request_terms(store, params, self.chain_id), "chain": chain},
            ),
            get_claim_method(self.find_claim),
        ]

    def locate(self, tx_hash: bytes) -> TxLocation | None:
        """aicf.getTransaction on an EVM node: an EVM transaction hash (or the ChainTx hash of a later log of its)
        is included at its receipt's block when that block is canonical and maps it to a ChainTx; a transaction
        the node holds unmined is pending (kind from the Aicf function it calls); otherwise unknown (None)."""
        w3 = self.chain.w3
        try:
            receipt = w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return self._pending(tx_hash)
        block = self.chain.block_at(int(receipt["blockNumber"]))
        if block is None or block.hash != bytes(receipt["blockHash"]):
            return None  # its block left the canonical chain
        for t in block.txs:
            if t.tx_hash == tx_hash:
                return TxLocation(tx_hash=tx_hash, sender=t.sender, kind=t.kind, body=t.body, height=block.height,
                                  index=t.index)  # fmt: skip
        return None  # an EVM transaction with no Aicf record (an approve, a stake)

    def _pending(self, tx_hash: bytes) -> TxLocation | None:
        try:
            sent = self.chain.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        if str(sent.get("to") or "").lower() != self.deployment.aicf.lower():
            return None
        kind = PENDING_KINDS.get(bytes(sent["input"])[:4])
        if kind is None:
            return None
        return TxLocation(tx_hash=tx_hash, sender=bytes.fromhex(str(sent["from"])[2:]), kind=kind, body={})

    def find_claim(self, epoch: int, account: bytes) -> ClaimAnswer | None:
        """aicf.getClaim: `account`'s leaf of epoch `epoch`'s claim tree and its proof; None if it has none."""
        tree = self.claim_tree(epoch)
        if tree is None:
            return None
        try:
            claim = tree.claim_for(account)
        except ClaimTreeError:
            return None
        return ClaimAnswer(
            epoch=epoch,
            account=account,
            amount=claim.amount,
            proof=claim.proof,
            claim_root=tree.root,
            claim_total=tree.total,
            posted=int(self.aicf.functions.nextEpoch().call()) > epoch,
        )

    def close(self) -> None:
        self.writer_lock.close()
        self.chain.close()
        for stop in self.on_close:
            stop()
