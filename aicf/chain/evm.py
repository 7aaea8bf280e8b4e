"""The chain adapter for an EVM node (issue 13, item 2): `EvmChain` reads, `EvmWriter` writes.

`EvmChain` implements `ChainView` over a web3 HTTP provider and a deployment file (aicf.chain.deploy): each
EVM block becomes the same `Block` the devnet gives, and the `Aicf` contract's logs in it become its
`ChainTx`s (docs/EVM.md, "The chain adapter", has the whole mapping). Blocks are cached by hash (an LRU);
`block_at(h)` always asks the node which block is canonical at h, so a reorg shows a new hash at the same
height exactly as with the devnet, and the ingester finds it the same way.

`EvmWriter` sends the coordinator's transactions (includeProof, postBatch, slash) from the coordinator's key.
Before it sends, it waits for the key's transactions still in flight and checks the contract's state, so a
writer started after a crash resends what is missing and never sends anything twice.
"""

import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import BlockNotFound, ContractCustomError, ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import Nonce, TxParams, Wei

from aicf.chain.artifacts import load_artifact
from aicf.chain.deploy import Deployment, DeploymentError, contract, load_deployment, open_node
from aicf.chain.stake import STAKE_EVENTS, fold_stake_logs
from aicf.core.chain import Block, ChainTx, TxKind, finalized_height
from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError
from aicf.core.ids import task_id
from aicf.core.operator import OP_FUND_TOPUP, OP_TRAP_FUND
from aicf.core.requests import encode_payload
from aicf.core.txs import TxError, check_tx_shape, decode_signed_tx
from aicf.core.types import MicroAnm

STAKE_SYNC_TAG = "aicf/evm/stakesync/v1"  # the ChainTx hash of a stake log's sync: H(tag, evm tx hash, log index)
LOG_TX_TAG = "aicf/evm/logtx/v1"  # the ChainTx hash of a transaction's second, third… Aicf log
ESCROW_TX_TAG = "aicf/evm/escrow/v1"  # the ChainTx hash of the escrow an enqueue pulled (its DEPOSIT)
DEFAULT_CACHE_BLOCKS = 4096
logger = logging.getLogger("aicf.evm")

Finality = Literal["depth", "tag"]


class EvmError(AicfError):
    """The EVM node does not answer, or answers something the adapter cannot use."""


class NodeUnreachableError(EvmError):
    """Nothing answers JSON-RPC at the RPC URL."""


class EvmWriteError(EvmError):
    """A coordinator transaction was refused (named revert), failed on chain, or contradicts the chain."""


class ReceiptTimeoutError(EvmWriteError):
    """A sent transaction has no receipt within the timeout; it stays in flight and is not sent again."""


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())


def _event_topics(abi: Sequence[Mapping[str, Any]]) -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    table: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
    for item in abi:
        if item["type"] == "event":
            types = ",".join(_abi_type(arg) for arg in item["inputs"])
            table[_selector(f"{item['name']}({types})")] = (item["name"], list(item["inputs"]))
    return table


def _abi_type(arg: Mapping[str, Any]) -> str:
    kind = str(arg["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in arg["components"]) + ")" + kind.removeprefix("tuple")
    return kind


_AICF_ABI = load_artifact("Aicf").abi
_EVENTS = _event_topics(_AICF_ABI)
_ERRORS: dict[bytes, tuple[str, list[str]]] = {
    _selector(f"{e['name']}({','.join(_abi_type(a) for a in e['inputs'])})")[:4]: (
        e["name"],
        [_abi_type(a) for a in e["inputs"]],
    )
    for e in _AICF_ABI
    if e["type"] == "error"
}
MAPPED_EVENTS = frozenset(
    {"AiEnqueued", "QuantumEnqueued", "CancelRequested", "ProofIncluded", "Deposited", "OperatorTx", "PrepaidSpent"}
)
ZERO_ADDRESS = bytes(20)


def decode_log(log: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(event name, arguments) of one Aicf log, or None for a log of another event."""
    topics = [bytes(t) for t in log["topics"]]
    if not topics or topics[0] not in _EVENTS:
        return None
    name, inputs = _EVENTS[topics[0]]
    indexed = [a for a in inputs if a["indexed"]]
    plain = [a for a in inputs if not a["indexed"]]
    args: dict[str, Any] = {}
    for arg, topic in zip(indexed, topics[1:], strict=True):
        args[arg["name"]] = decode([_abi_type(arg)], topic)[0]
    values = decode([_abi_type(a) for a in plain], bytes(log["data"]))
    for arg, value in zip(plain, values, strict=True):
        args[arg["name"]] = value
    return name, args


def _address_bytes(value: str) -> bytes:
    return bytes.fromhex(Web3.to_checksum_address(value)[2:])


@dataclass(frozen=True, slots=True, kw_only=True)
class EvmTxRef:
    """What a ChainTx's EVM log carries beyond its body: the log's place, the contract's own task id (enqueue,
    cancel, inclusion) and the escrow the contract pulled (enqueue and its deposit)."""

    tx_hash: bytes  # the ChainTx's hash
    evm_tx_hash: bytes  # the EVM transaction that emitted the log
    log_index: int
    event: str
    contract_task_id: bytes | None = None
    escrow: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvmBlock:
    """A block as the adapter reads it: the `Block` the coordinator ingests plus what has no place in it."""

    block: Block
    refs: tuple[EvmTxRef, ...] = ()
    fee_wei: int = 0  # gasUsed × baseFeePerGas, for monitoring only (docs/EVM.md)
    treasury_deposits: tuple[tuple[bytes, int], ...] = ()  # (from, amount) of each Deposited log


def request_of(event: str, args: Mapping[str, Any]) -> tuple[TxKind, dict[str, object]]:
    """The SPEC §2 request body of an enqueue log (no optional keys: EVM jobs take their defaults)."""
    if event == "AiEnqueued":
        return TxKind.AI_ENQUEUE, {
            "model": str(args["model"]),
            "prompt": bytes(args["prompt"]),
            "max_tokens": int(args["maxTokens"]),
            "max_runtime_ms": int(args["maxRuntimeMs"]),
            "fee_per_unit": int(args["feePerUnit"]),
            "tier": int(args["tier"]),
        }
    return TxKind.QUANTUM_ENQUEUE, {
        "circuit": bytes(args["circuit"]),
        "shots": int(args["shots"]),
        "fee_per_unit": int(args["feePerUnit"]),
        "tier": int(args["tier"]),
    }


def spec_task_id(
    chain_id: int, height: int, tx_hash: bytes, caller: bytes, kind: TxKind, body: Mapping[str, object]
) -> bytes:
    """SPEC §1's task_id of an enqueue ChainTx: the request map is the body with its kind (no optional keys)."""
    rmap = {**body, "kind": "ai" if kind == TxKind.AI_ENQUEUE else "quantum"}
    return task_id(chain_id, height, tx_hash, caller, encode_payload(rmap))


class OperatorLogError(EvmError):
    """An `OperatorTx` log whose signed transaction is not the operator's for this chain, nonce and amounts."""


def operator_tx_of(
    chain_id: int, nonce: int, signed_tx: bytes, pay_to: bytes, amount: int
) -> tuple[bytes, dict[str, object]]:
    """(sender, body) of the `operator` ChainTx an `OperatorTx(nonce, signedTx, payTo, amount)` log carries: the
    signed transaction's own sender (address_of its Ed25519 key) and body, once its signature verifies for this
    chain id, its nonce is the log's and the tokens the contract moved are the ones its body names (trap_fund: to
    and amount; fund_topup: amount; every other op: none). Raises OperatorLogError naming what does not hold;
    the adapter then maps the log to a transaction from the coordinator role's own address, which ingestion
    refuses as not the operator's (docs/EVM.md, "Operator transactions")."""
    try:
        signed = decode_signed_tx(signed_tx)
        check_tx_shape(signed)
    except TxError as exc:
        raise OperatorLogError(str(exc)) from None
    if signed.kind != TxKind.OPERATOR:
        raise OperatorLogError(f"the signed transaction is of kind {signed.kind.value!r}, not 'operator'")
    if signed.chain_id != chain_id:
        raise OperatorLogError(f"the signed transaction is for chain {signed.chain_id}, this chain is {chain_id}")
    if signed.nonce != nonce:
        raise OperatorLogError(f"the signed transaction's nonce is {signed.nonce}, the contract's was {nonce}")
    try:
        Ed25519PublicKey.from_public_bytes(signed.public_key).verify(signed.sig, signed.signing_digest())
    except (InvalidSignature, ValueError):
        raise OperatorLogError("the signature does not verify under public_key for this chain and body") from None
    body = dict(signed.body)
    op = body["op"]
    if op == OP_TRAP_FUND:
        moved: tuple[bytes, int] = (bytes(cast("bytes", body["to"])), int(cast("int", body["amount"])))
        if (pay_to, amount) != moved:
            raise OperatorLogError(
                f"the contract paid {amount} to 0x{pay_to.hex()}, the body names {moved[1]} to 0x{moved[0].hex()}"
            )
    elif op == OP_FUND_TOPUP:
        if amount != body["amount"]:
            raise OperatorLogError(f"the contract pulled {amount} into the trap fund, the body names {body['amount']}")
    elif amount != 0 or pay_to != ZERO_ADDRESS:
        raise OperatorLogError(f"a {op} transaction moved {amount} tokens to 0x{pay_to.hex()}")
    return signed.sender, body


_INCLUDE_PROOF = next(f for f in _AICF_ABI if f["type"] == "function" and f["name"] == "includeProof")
_INCLUDE_PROOF_TYPES = [_abi_type(a) for a in _INCLUDE_PROOF["inputs"]]
INCLUDE_PROOF_SELECTOR = _selector(f"includeProof({','.join(_INCLUDE_PROOF_TYPES)})")[:4]
MAX_ENVELOPE_BYTES = 1024 * 1024 + 4096  # the contract's caps on includeProof's calldata (SPEC §8, EVM mapping)
MAX_ACC_BYTES = 256
ACC_SIG_BYTES = 64
_LOGGED_IDS = ("taskId", "specTaskId", "proofId", "providerId", "outputDigest", "unitsMu")


class ProofInputError(EvmError):
    """A `ProofIncluded` log whose transaction's input is not the `includeProof` call that carries its proof."""


def proof_tx_of(aicf: bytes, args: Mapping[str, Any], to: bytes | None, data: bytes) -> dict[str, object]:
    """The PROOF ChainTx body of a `ProofIncluded` log (arguments `args`) emitted by the EVM transaction sent to
    `to` with input `data`: the log's ids, digest and units with the envelope, `acc` and `acc_sig` the
    transaction's `includeProof` call carried (the contract keeps them in calldata only). Raises ProofInputError
    naming what does not hold: the transaction is not a direct `includeProof` call to the Aicf contract at `aicf`,
    its input does not decode, its ids differ from the log's, or a field is empty or over its cap."""
    if to != aicf:
        where = "no contract" if to is None else f"0x{to.hex()}"
        raise ProofInputError(f"its transaction calls {where}, not the Aicf contract 0x{aicf.hex()}")
    if data[:4] != INCLUDE_PROOF_SELECTOR:
        raise ProofInputError(f"its transaction's input starts 0x{data[:4].hex()}, not includeProof's selector")
    try:
        values = decode(_INCLUDE_PROOF_TYPES, data[4:], strict=True)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise ProofInputError(f"its transaction's input does not decode as includeProof's arguments: {exc}") from None
    for name, value in zip(_LOGGED_IDS, values, strict=False):
        if value != args[name]:
            raise ProofInputError(f"its transaction's {name} differs from the log's")
    envelope, acc, acc_sig = (bytes(v) for v in values[6])
    for field_name, size, low, cap in (
        ("envelope", len(envelope), 1, MAX_ENVELOPE_BYTES),
        ("acc", len(acc), 1, MAX_ACC_BYTES),
        ("acc_sig", len(acc_sig), ACC_SIG_BYTES, ACC_SIG_BYTES),
    ):
        if not low <= size <= cap:
            raise ProofInputError(f"its {field_name} is {size} bytes, allowed {low}..{cap}")
    return {
        "task_id": bytes(args["specTaskId"]),
        "proof_id": bytes(args["proofId"]),
        "provider_id": bytes(args["providerId"]),
        "output_digest": bytes(args["outputDigest"]),
        "units_mu": int(args["unitsMu"]),
        "envelope": envelope,
        "acc": acc,
        "acc_sig": acc_sig,
    }


class EvmChain:
    """`ChainView` over an EVM node running the Aicf contract of `deployment`."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        *,
        finality: Finality = "depth",
        cache_blocks: int = DEFAULT_CACHE_BLOCKS,
    ) -> None:
        node_chain_id = _call(w3, lambda: w3.eth.chain_id, "eth_chainId")
        if deployment.chain_id != node_chain_id:
            raise DeploymentError(
                f"deployment chain_id {deployment.chain_id} does not match the node's chain id {node_chain_id}"
            )
        self.w3 = w3
        self.deployment = deployment
        self.finality: Finality = finality
        self.address = Web3.to_checksum_address(deployment.aicf)
        self._cache: OrderedDict[bytes, EvmBlock] = OrderedDict()
        self._cache_blocks = max(1, cache_blocks)
        self._enqueued: OrderedDict[bytes, tuple[int, bytes, bytes]] = OrderedDict()  # contract id → (h, hash, id)
        self._contract_ids: OrderedDict[bytes, bytes] = OrderedDict()  # SPEC task_id → contract taskId (enqueues read)
        self.hits = 0
        self.misses = 0
        self.session: requests.Session | None = None  # the HTTP session `connect` opened, closed by `close`

    @classmethod
    def connect(
        cls, rpc_url: str, deployment_file: Path, *, timeout_s: float = 10.0, finality: Finality = "depth"
    ) -> "EvmChain":
        """Follow the node at `rpc_url` with the contracts of `deployment_file`. Raises NodeUnreachableError
        when nothing answers there, DeploymentError when the file is not one or its chain id is not the node's."""
        w3, session = open_node(rpc_url, timeout_s)
        try:
            if not w3.is_connected():
                raise NodeUnreachableError(f"RPC URL {rpc_url} does not answer JSON-RPC")
            chain = cls(w3, load_deployment(deployment_file, w3), finality=finality)
        except BaseException:
            session.close()
            raise
        chain.session = session
        return chain

    def close(self) -> None:
        """Close the HTTP session `connect` opened (a chain built on a caller's Web3 leaves it to the caller)."""
        if self.session is not None:
            self.session.close()

    # -- ChainView ---------------------------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def head_height(self) -> int:
        return int(_call(self.w3, lambda: self.w3.eth.block_number, "eth_blockNumber"))

    def block_at(self, height: int) -> Block | None:
        found = self.evm_block_at(height)
        return found.block if found is not None else None

    def finalized_height(self) -> int:
        """head − finality depth; with finality "tag", the lower of that and the node's `finalized` block."""
        by_depth = finalized_height(self.head_height(), self.deployment.finality_depth)
        if self.finality == "depth":
            return by_depth
        try:
            tagged = self.w3.eth.get_block("finalized")
        except (BlockNotFound, Web3RPCError, ValueError):
            return by_depth  # the node has no finalized tag
        return min(by_depth, int(tagged["number"]))

    # -- the EVM view ---------------------------------------------------------------------------------------
    def evm_block_at(self, height: int) -> EvmBlock | None:
        """The node's canonical block at `height` with its Aicf records; None above the head or below 0."""
        if height < 0:
            return None
        for _ in range(3):  # a reorg between reading the header and its logs: read again
            header = self._header(height)
            if header is None:
                return None
            block_hash = bytes(header["hash"])
            cached = self._cache.get(block_hash)
            if cached is not None:
                self._cache.move_to_end(block_hash)
                self.hits += 1
                return cached
            try:
                logs = self.w3.eth.get_logs({"blockHash": HexBytes(block_hash), "address": self.address})
            except Web3RPCError:
                continue  # the block left the canonical chain meanwhile
            except (OSError, ValueError) as exc:
                raise NodeUnreachableError(f"the node stopped answering eth_getLogs: {exc}") from exc
            made = self._make(header, logs)
            self.misses += 1
            self._cache[block_hash] = made
            if len(self._cache) > self._cache_blocks:
                self._cache.popitem(last=False)
            return made
        raise EvmError(f"the block at height {height} kept changing while it was read")

    def _header(self, height: int) -> Mapping[str, Any] | None:
        try:
            header: Mapping[str, Any] = self.w3.eth.get_block(height)
        except BlockNotFound:
            return None
        except (OSError, ValueError) as exc:
            raise NodeUnreachableError(f"the node stopped answering eth_getBlockByNumber: {exc}") from exc
        return header

    def _make(self, header: Mapping[str, Any], logs: Sequence[Mapping[str, Any]]) -> EvmBlock:
        height = int(header["number"])
        txs: list[ChainTx] = []
        refs: list[EvmTxRef] = []
        deposits: list[tuple[bytes, int]] = []
        per_tx: dict[bytes, int] = {}  # Aicf logs seen so far per EVM transaction
        senders: dict[bytes, bytes] = {}
        prepaid: dict[bytes, int] = {}  # PrepaidSpent of an EVM transaction, not yet matched to its enqueue
        for log in sorted(logs, key=lambda item: int(item["logIndex"])):
            if bytes(log["blockHash"]) != bytes(header["hash"]) or bool(log.get("removed", False)):
                continue
            decoded = decode_log(log)
            if decoded is None or decoded[0] not in MAPPED_EVENTS:
                continue
            event, args = decoded
            evm_tx = bytes(log["transactionHash"])
            if event == "PrepaidSpent":  # the escrow of the enqueue that follows it came from the trap fund
                prepaid[evm_tx] = prepaid.get(evm_tx, 0) + int(args["amount"])
                continue
            nth = per_tx.get(evm_tx, 0)
            per_tx[evm_tx] = nth + 1
            tx_hash = evm_tx if nth == 0 else tagged_hash(LOG_TX_TAG, evm_tx, nth)
            log_index = int(log["logIndex"])
            if event in ("AiEnqueued", "QuantumEnqueued"):
                caller = _address_bytes(args["caller"])
                kind, body = request_of(event, args)
                escrow = int(args["escrow"])
                contract_task = bytes(args["taskId"])
                deposit_hash = tagged_hash(ESCROW_TX_TAG, tx_hash)
                pulled = escrow - min(escrow, prepaid.pop(evm_tx, 0))  # a trap's escrow: paid by its trap_fund
                if pulled > 0:
                    txs.append(
                        ChainTx(
                            tx_hash=deposit_hash,
                            index=len(txs),
                            sender=caller,
                            kind=TxKind.DEPOSIT,
                            body={"to": caller, "amount": pulled},
                        )
                    )
                    refs.append(
                        EvmTxRef(
                            tx_hash=deposit_hash,
                            evm_tx_hash=evm_tx,
                            log_index=log_index,
                            event=event,
                            contract_task_id=contract_task,
                            escrow=pulled,
                        )
                    )
                txs.append(ChainTx(tx_hash=tx_hash, index=len(txs), sender=caller, kind=kind, body=body))
                spec_id = spec_task_id(self.chain_id, height, tx_hash, caller, kind, body)
                self._enqueued[contract_task] = (height, bytes(header["hash"]), spec_id)
                self._contract_ids[spec_id] = contract_task
                if len(self._contract_ids) > 16 * self._cache_blocks:
                    self._contract_ids.popitem(last=False)
                if len(self._enqueued) > 16 * self._cache_blocks:
                    self._enqueued.popitem(last=False)
                refs.append(
                    EvmTxRef(
                        tx_hash=tx_hash,
                        evm_tx_hash=evm_tx,
                        log_index=log_index,
                        event=event,
                        contract_task_id=contract_task,
                        escrow=escrow,
                    )
                )
            elif event == "CancelRequested":
                contract_task = bytes(args["taskId"])
                body = {"task_id": self._spec_task_of(contract_task, height, bytes(header["hash"]))}
                sender = _address_bytes(args["caller"])
                txs.append(ChainTx(tx_hash=tx_hash, index=len(txs), sender=sender, kind=TxKind.CANCEL, body=body))
                refs.append(
                    EvmTxRef(
                        tx_hash=tx_hash,
                        evm_tx_hash=evm_tx,
                        log_index=log_index,
                        event=event,
                        contract_task_id=contract_task,
                    )
                )
            elif event == "ProofIncluded":
                sent = self._transaction(evm_tx)  # its input carries the envelope and the acceptance
                senders[evm_tx] = _address_bytes(str(sent["from"]))
                to = None if sent.get("to") is None else _address_bytes(str(sent["to"]))
                try:
                    body = proof_tx_of(_address_bytes(self.address), args, to, bytes(sent["input"]))
                except ProofInputError as exc:  # included, but no ResultRecord: nothing proves the pair
                    logger.warning("ProofIncluded log %d of 0x%s: %s", log_index, evm_tx.hex(), exc)
                    body = {
                        "task_id": bytes(args["specTaskId"]),
                        "proof_id": bytes(args["proofId"]),
                        "provider_id": bytes(args["providerId"]),
                        "output_digest": bytes(args["outputDigest"]),
                        "units_mu": int(args["unitsMu"]),
                    }
                txs.append(
                    ChainTx(tx_hash=tx_hash, index=len(txs), sender=senders[evm_tx], kind=TxKind.PROOF, body=body)
                )
                refs.append(
                    EvmTxRef(
                        tx_hash=tx_hash,
                        evm_tx_hash=evm_tx,
                        log_index=log_index,
                        event=event,
                        contract_task_id=bytes(args["taskId"]),
                    )
                )
            elif event == "OperatorTx":
                if evm_tx not in senders:
                    senders[evm_tx] = self._sender_of(evm_tx)
                pay_to = _address_bytes(args["payTo"])
                try:
                    sender, op_body = operator_tx_of(
                        self.chain_id, int(args["nonce"]), bytes(args["signedTx"]), pay_to, int(args["amount"])
                    )
                except OperatorLogError as exc:  # refused by ingestion: the role's address is not the operator's
                    logger.warning("operator log %d of 0x%s: %s", log_index, evm_tx.hex(), exc)
                    sender, op_body = senders[evm_tx], {}
                txs.append(ChainTx(tx_hash=tx_hash, index=len(txs), sender=sender, kind=TxKind.OPERATOR, body=op_body))
                refs.append(EvmTxRef(tx_hash=tx_hash, evm_tx_hash=evm_tx, log_index=log_index, event=event))
            else:  # Deposited: treasury income (docs/EVM.md), external → treasury in the coordinator's ledger
                sender = _address_bytes(args["from"])
                deposits.append((sender, int(args["amount"])))
                body = {"amount": int(args["amount"])}
                txs.append(
                    ChainTx(tx_hash=tx_hash, index=len(txs), sender=sender, kind=TxKind.TREASURY_DEPOSIT, body=body)
                )
                refs.append(EvmTxRef(tx_hash=tx_hash, evm_tx_hash=evm_tx, log_index=log_index, event=event))
        synced = height - self.deployment.finality_depth  # final once this block is: its stake logs are mirrored
        if synced >= self.deployment.deploy_block:
            for ctx, ref in self._stake_syncs(synced, len(txs)):
                txs.append(ctx)
                refs.append(ref)
        base_fee = int(header.get("baseFeePerGas") or 0)
        block = Block(
            height=height,
            hash=bytes(header["hash"]),
            parent=bytes(header["parentHash"]),
            time=int(header["timestamp"]),
            producer=_address_bytes(header["miner"]),
            beacon=bytes(header["mixHash"]),
            issuance=MicroAnm(0),
            fees=MicroAnm(0),
            txs=tuple(txs),
        )
        return EvmBlock(
            block=block, refs=tuple(refs), fee_wei=int(header["gasUsed"]) * base_fee, treasury_deposits=tuple(deposits)
        )

    def contract_task_of(self, spec_id: bytes) -> bytes | None:
        """The contract's taskId of the job SPEC calls `spec_id` (for `includeProof`): from the enqueues read so
        far, else by reading every enqueue log since the deployment (after a restart); None if there is none."""
        known = self._contract_ids.get(spec_id)
        if known is not None:
            return known
        head = self.head_height()
        for event in ("AiEnqueued", "QuantumEnqueued"):
            signature = next(sig for sig, (name, _) in _EVENTS.items() if name == event)
            logs = self.w3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": self.deployment.deploy_block,
                    "toBlock": head,
                    "topics": ["0x" + signature.hex()],
                }
            )
            for height in sorted({int(log["blockNumber"]) for log in logs}):
                self.evm_block_at(height)  # records the block's enqueues in _contract_ids
        return self._contract_ids.get(spec_id)

    def _stake_syncs(self, height: int, first_index: int) -> list[tuple[ChainTx, EvmTxRef]]:
        """A `stake_sync` for each stake log at `height` (docs/EVM.md): the provider's stake right after the log,
        folded from all its stake logs since the deployment (aicf.chain.stake)."""
        logs = self.w3.eth.get_logs({"fromBlock": height, "toBlock": height, "address": self.address})
        out: list[tuple[ChainTx, EvmTxRef]] = []
        for log in sorted(logs, key=lambda item: int(item["logIndex"])):
            decoded = decode_log(log)
            if decoded is None or decoded[0] not in STAKE_EVENTS or bool(log.get("removed", False)):
                continue
            provider_id = bytes(decoded[1]["providerId"])
            place = (height, int(log["logIndex"]))
            state = fold_stake_logs(
                (name, args, _address_bytes(str(args["owner"])) if name == "Staked" else b"")
                for name, args in self._stake_logs(provider_id, place)
            )
            evm_tx = bytes(log["transactionHash"])
            tx_hash = tagged_hash(STAKE_SYNC_TAG, evm_tx, place[1])
            ctx = ChainTx(
                tx_hash=tx_hash,
                index=first_index + len(out),
                sender=state.owner,
                kind=TxKind.STAKE_SYNC,
                body=state.to_body(provider_id),
            )
            out.append((ctx, EvmTxRef(tx_hash=tx_hash, evm_tx_hash=evm_tx, log_index=place[1], event=decoded[0])))
        return out

    def _stake_logs(self, provider_id: bytes, up_to: tuple[int, int]) -> list[tuple[str, dict[str, Any]]]:
        """The provider's stake logs since the deployment, oldest first, up to and including (height, log index)."""
        signatures = ["0x" + sig.hex() for sig, (name, _) in _EVENTS.items() if name in STAKE_EVENTS]
        logs = self.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": self.deployment.deploy_block,
                "toBlock": up_to[0],
                "topics": [signatures, "0x" + provider_id.hex()],
            }
        )
        ordered = sorted(logs, key=lambda item: (int(item["blockNumber"]), int(item["logIndex"])))
        found: list[tuple[str, dict[str, Any]]] = []
        for log in ordered:
            if (int(log["blockNumber"]), int(log["logIndex"])) > up_to:
                break
            decoded = decode_log(log)
            if decoded is not None:
                found.append(decoded)
        return found

    def owner_at(self, provider_id: bytes, height: int) -> bytes | None:
        """The address the provider's first `Staked` log at or below `height` bound as its owner (the contract
        never rebinds it), or None when it had staked nothing on chain by then. A function of the chain up to
        `height`, so a batch's payees are the same whenever its claim tree is built (docs/EVM.md)."""
        signature = next(sig for sig, (name, _) in _EVENTS.items() if name == "Staked")
        logs = self.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": self.deployment.deploy_block,
                "toBlock": max(height, self.deployment.deploy_block),
                "topics": ["0x" + signature.hex(), "0x" + provider_id.hex()],
            }
        )
        if not logs or height < self.deployment.deploy_block:
            return None
        first = min(logs, key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
        decoded = decode_log(first)
        return None if decoded is None else _address_bytes(str(decoded[1]["owner"]))

    def _transaction(self, evm_tx: bytes) -> Mapping[str, Any]:
        try:
            return cast("Mapping[str, Any]", self.w3.eth.get_transaction(HexBytes(evm_tx)))
        except TransactionNotFound as exc:
            raise EvmError(f"transaction 0x{evm_tx.hex()} of a log is unknown to the node") from exc

    def _sender_of(self, evm_tx: bytes) -> bytes:
        return _address_bytes(str(self._transaction(evm_tx)["from"]))

    def _spec_task_of(self, contract_task: bytes, up_to: int, up_to_hash: bytes) -> bytes:
        """SPEC's task_id of the job the contract calls `contract_task`, from its enqueue log on the canonical
        chain at or below `up_to`; the contract's id itself when no enqueue log is found (ingestion ignores it).
        An enqueue read before is taken from memory if its block is still the canonical one at its height."""
        known = self._enqueued.get(contract_task)
        if known is not None:
            height, block_hash, spec_id = known
            header = self._header(height) if height != up_to else None
            canonical = up_to_hash if header is None else bytes(header["hash"])
            if canonical == block_hash:
                return spec_id
        topic = "0x" + contract_task.hex()
        for event in ("AiEnqueued", "QuantumEnqueued"):
            signature = next(sig for sig, (name, _) in _EVENTS.items() if name == event)
            logs = self.w3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": self.deployment.deploy_block,
                    "toBlock": up_to,
                    "topics": ["0x" + signature.hex(), topic],
                }
            )
            for log in logs:
                enqueue = self.evm_block_at(int(log["blockNumber"]))
                if enqueue is None:
                    continue
                for ref in enqueue.refs:
                    tx = next(t for t in enqueue.block.txs if t.tx_hash == ref.tx_hash)
                    if ref.contract_task_id == contract_task and tx.kind != TxKind.DEPOSIT:
                        return spec_task_id(
                            self.chain_id, enqueue.block.height, tx.tx_hash, tx.sender, tx.kind, tx.body
                        )
        return contract_task


def _call(w3: Web3, read: Callable[[], Any], what: str) -> Any:
    try:
        return read()
    except (OSError, ValueError) as exc:
        raise NodeUnreachableError(f"the node does not answer {what}: {exc}") from exc


# -- the writer ---------------------------------------------------------------------------------------------


class WriteStatus(StrEnum):
    SENT = "SENT"  # this writer sent it and it is confirmed
    ALREADY = "ALREADY"  # the chain already holds it (sent before a restart, or by another replica)
    LOST = "LOST"  # another proof was included first for the task (SPEC §8: the first inclusion wins)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    status: WriteStatus
    tx_hash: bytes | None = None
    block: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Inclusion:
    task_id: bytes  # the contract's taskId
    spec_task_id: bytes
    proof_id: bytes
    provider_id: bytes
    output_digest: bytes
    units_mu: int
    envelope: bytes  # canonical CBOR: the ProofEnvelope, the acceptance record, and its signature (calldata only)
    acc: bytes
    acc_sig: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPost:
    epoch: int
    spec_root: bytes
    totals: tuple[int, int, int, int, int, int]  # reward, provider, miner, fund, charged, units_mu
    escrow_released: int
    claim_root: bytes
    claim_total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SlashPost:
    provider_id: bytes
    reason: int
    bps: int
    evidence_hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorPost:
    """An operator transaction (docs/EVM.md): the operator's signed transaction at the contract's `nonce`, sent
    by `operatorTx`, or, when it moves tokens, `operatorFundTopup` (fund → trap fund) or `operatorTrapFund`
    (trap fund → the caller's prepaid escrow, with `value_wei` of ether for the caller's gas)."""

    nonce: int
    signed_tx: bytes
    call: Literal["operatorTx", "operatorFundTopup", "operatorTrapFund"] = "operatorTx"
    pay_to: str = "0x" + "00" * 20
    amount: int = 0
    value_wei: int = 0


Intent = Inclusion | BatchPost | SlashPost | OperatorPost


class Waiter(Protocol):
    """How the writer waits for a receipt: a monotonic `now()` in seconds and `sleep(s)`. Not a clock of the
    protocol (nothing it reads decides money or state); tests pass one that mines a block instead of waiting."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealWaiter:
    """Real waiting, for a writer run by the coordinator."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(slots=True)
class EvmWriter:
    """Sends includeProof, postBatch and slash from the coordinator's key, each at most once (module doc)."""

    w3: Web3
    deployment: Deployment
    account: LocalAccount
    clock: Waiter
    receipt_timeout_s: float = 120.0
    poll_s: float = 1.0
    in_flight: dict[int, "_InFlight"] = field(default_factory=dict)  # nonce → sent, not yet confirmed
    sent: int = 0
    aicf: Contract = field(init=False)

    def __post_init__(self) -> None:
        if Web3.to_checksum_address(self.account.address) != Web3.to_checksum_address(self.deployment.coordinator):
            raise EvmWriteError(
                f"the writer's key is {self.account.address}, the deployment's coordinator is "
                f"{self.deployment.coordinator}"
            )
        self.aicf = contract(self.w3, "Aicf", self.deployment.aicf)

    # -- what the coordinator calls ---------------------------------------------------------------------------
    def ensure(self, intent: Intent) -> WriteResult:
        """Put `intent` on chain unless the chain already holds it: wait for the key's transactions in flight,
        check the contract's state, then send and wait for the receipt."""
        self.settle_in_flight()
        done = self.on_chain(intent)
        if done is not None:
            return done
        return self._send(self._call_of(intent), intent.value_wei if isinstance(intent, OperatorPost) else 0)

    def ensure_all(self, intents: Sequence[Intent]) -> list[WriteResult]:
        """After a restart: resend what is missing of `intents`, in order, skipping what the chain holds."""
        return [self.ensure(intent) for intent in intents]

    def on_chain(self, intent: Intent) -> WriteResult | None:
        """The chain's answer for `intent` if it holds it already (or holds a conflicting one), else None."""
        fn = self.aicf.functions
        if isinstance(intent, Inclusion):
            result = fn.results(intent.task_id).call()
            if int(result[5]) == 0:  # height 0: no inclusion yet
                return None
            winner = bytes(result[1])
            if winner == intent.proof_id:
                return WriteResult(status=WriteStatus.ALREADY, block=int(result[5]))
            return WriteResult(status=WriteStatus.LOST, block=int(result[5]), detail=f"0x{winner.hex()} won")
        if isinstance(intent, BatchPost):
            if int(fn.nextEpoch().call()) <= intent.epoch:
                return None
            spec_root, claim_root, claim_total, _ = fn.batches(intent.epoch).call()
            if (bytes(spec_root), bytes(claim_root), int(claim_total)) != (
                intent.spec_root,
                intent.claim_root,
                intent.claim_total,
            ):
                raise EvmWriteError(
                    f"epoch {intent.epoch}'s batch on chain has claim root 0x{bytes(claim_root).hex()} and total "
                    f"{claim_total}, not 0x{intent.claim_root.hex()} and {intent.claim_total}"
                )
            return WriteResult(status=WriteStatus.ALREADY)
        if isinstance(intent, OperatorPost):
            if int(fn.operatorNonce().call()) <= intent.nonce:
                return None
            if bytes(fn.operatorTxs(intent.nonce).call()) != keccak(intent.signed_tx):
                raise EvmWriteError(f"operator nonce {intent.nonce} on chain holds another operator transaction")
            return WriteResult(status=WriteStatus.ALREADY)
        if bool(fn.evidenceUsed(intent.evidence_hash).call()):
            return WriteResult(status=WriteStatus.ALREADY)
        return None

    def settle_in_flight(self) -> None:
        """Wait until every transaction the key has sent (this writer's, or a crashed one's: the node's pending
        nonce is above its mined nonce) is mined, so the state check sees them. A transaction of this writer the
        node no longer holds is forgotten (the state check then decides whether to send it again). Raises
        ReceiptTimeoutError naming the nonces when they stay unmined; `replace_stuck` can then raise their fees."""
        deadline = self.clock.now() + self.receipt_timeout_s
        while True:
            mined = int(self.w3.eth.get_transaction_count(self.account.address, "latest"))
            pending = int(self.w3.eth.get_transaction_count(self.account.address, "pending"))
            if pending <= mined:
                self.in_flight.clear()
                return
            for nonce in [n for n in self.in_flight if n < mined]:
                del self.in_flight[nonce]
            if self.clock.now() >= deadline:
                raise ReceiptTimeoutError(
                    f"{pending - mined} transaction(s) from {self.account.address} still unmined after "
                    f"{self.receipt_timeout_s} s (nonces {mined}..{pending - 1})"
                )
            self.clock.sleep(self.poll_s)

    def replace_stuck(self) -> list[bytes]:
        """Resend each of this writer's unmined transactions at its own nonce with fees raised by a quarter
        (at least the node's current fees): the node replaces it, so it still lands at most once. Returns the
        new hashes."""
        mined = int(self.w3.eth.get_transaction_count(self.account.address, "latest"))
        base_fee, tip = self.fees()
        replaced: list[bytes] = []
        for nonce, sent in sorted(self.in_flight.items()):
            if nonce < mined:
                continue
            new_tip = max(tip, sent.tip + sent.tip // 4 + 1)
            new_max = max(2 * base_fee + new_tip, sent.max_fee + sent.max_fee // 4 + 1)
            params: TxParams = {**sent.params, "maxPriorityFeePerGas": Wei(new_tip), "maxFeePerGas": Wei(new_max)}
            fresh = self._sign_and_send(params, new_tip, new_max)
            self.in_flight[nonce] = dataclasses.replace(fresh, replaced=(sent.tx_hash, *sent.replaced))
            replaced.append(self.in_flight[nonce].tx_hash)
        return replaced

    # -- sending ----------------------------------------------------------------------------------------------
    def _call_of(self, intent: Intent) -> ContractFunction:
        fn = self.aicf.functions
        if isinstance(intent, Inclusion):
            return fn.includeProof(
                intent.task_id,
                intent.spec_task_id,
                intent.proof_id,
                intent.provider_id,
                intent.output_digest,
                intent.units_mu,
                (intent.envelope, intent.acc, intent.acc_sig),
            )
        if isinstance(intent, BatchPost):
            return fn.postBatch(
                intent.epoch,
                intent.spec_root,
                intent.totals,
                intent.escrow_released,
                intent.claim_root,
                intent.claim_total,
            )
        if isinstance(intent, OperatorPost):
            if intent.call == "operatorFundTopup":
                return fn.operatorFundTopup(intent.nonce, intent.signed_tx, intent.amount)
            if intent.call == "operatorTrapFund":
                to = Web3.to_checksum_address(intent.pay_to)
                return fn.operatorTrapFund(intent.nonce, intent.signed_tx, to, intent.amount)
            return fn.operatorTx(intent.nonce, intent.signed_tx)
        return fn.slash(intent.provider_id, intent.reason, intent.bps, intent.evidence_hash)

    def next_nonce(self) -> int:
        """The node's pending nonce for the key, or past this writer's own in-flight ones if it is behind."""
        pending = int(self.w3.eth.get_transaction_count(self.account.address, "pending"))
        return max([pending, *(n + 1 for n in self.in_flight)])

    def fees(self) -> tuple[int, int]:
        """(base fee of the latest block, the node's suggested priority fee): EIP-1559 from the node."""
        latest = self.w3.eth.get_block("latest")
        return int(latest.get("baseFeePerGas") or 0), int(self.w3.eth.max_priority_fee)

    def _sign_and_send(self, params: TxParams, tip: int, max_fee: int) -> "_InFlight":
        signed = self.account.sign_transaction(cast("dict[str, Any]", params))
        tx_hash = bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        self.sent += 1
        return _InFlight(tx_hash=tx_hash, params=params, tip=tip, max_fee=max_fee)

    def _send(self, call: ContractFunction, value_wei: int = 0) -> WriteResult:
        sender = self.account.address
        try:
            gas = int(call.estimate_gas({"from": sender, "value": Wei(value_wei)}))
        except (ContractCustomError, ContractLogicError) as exc:
            raise EvmWriteError(f"{call.fn_name} would revert: {describe_revert(exc)}") from exc
        base_fee, tip = self.fees()
        nonce = self.next_nonce()
        max_fee = 2 * base_fee + tip
        request: TxParams = {
            "from": sender,
            "nonce": Nonce(nonce),
            "gas": gas + gas // 5,
            "maxPriorityFeePerGas": Wei(tip),
            "maxFeePerGas": Wei(max_fee),
            "chainId": self.deployment.chain_id,
            "value": Wei(value_wei),
        }
        self.in_flight[nonce] = self._sign_and_send(call.build_transaction(request), tip, max_fee)
        receipt = self.wait_receipt(nonce)
        self.in_flight.pop(nonce, None)
        tx_hash = bytes(receipt["transactionHash"])
        if int(receipt["status"]) != 1:
            raise EvmWriteError(f"{call.fn_name} failed on chain in transaction 0x{tx_hash.hex()}")
        return WriteResult(status=WriteStatus.SENT, tx_hash=tx_hash, block=int(receipt["blockNumber"]))

    def wait_receipt(self, nonce: int) -> Mapping[str, Any]:
        """The receipt of this writer's transaction at `nonce` (whichever of its replacements was mined).
        Raises ReceiptTimeoutError after `receipt_timeout_s`; the transaction stays in flight."""
        deadline = self.clock.now() + self.receipt_timeout_s
        while True:
            sent = self.in_flight[nonce]
            used = int(self.w3.eth.get_transaction_count(self.account.address, "latest")) > nonce
            for tx_hash in (sent.tx_hash, *sent.replaced):  # the replacement, or what it replaced, may be mined
                try:
                    receipt: Mapping[str, Any] = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
                    return receipt
                except TransactionNotFound:
                    pass
            if used:  # read before the receipts: a transaction of ours mined at `nonce` would have shown
                raise EvmWriteError(f"nonce {nonce} was used by a transaction this writer did not send")
            if self.clock.now() >= deadline:
                raise ReceiptTimeoutError(
                    f"no receipt for 0x{sent.tx_hash.hex()} (nonce {nonce}) within {self.receipt_timeout_s} s; "
                    "it stays in flight"
                )
            self.clock.sleep(self.poll_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class _InFlight:
    tx_hash: bytes
    params: TxParams  # what was signed, so a replacement keeps the nonce and the call
    tip: int
    max_fee: int
    replaced: tuple[bytes, ...] = ()  # the hashes this one replaced (one of them may still be mined)


def describe_revert(exc: ContractCustomError | ContractLogicError) -> str:
    """`Name(arg, …)` of a custom error the Aicf contract reverted with, else the node's message."""
    data = exc.data
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        raw = bytes.fromhex(data[2:])
        known = _ERRORS.get(raw[:4])
        if known is not None:
            name, types = known
            values = decode(types, raw[4:])
            shown = ", ".join("0x" + v.hex() if isinstance(v, bytes) else str(v) for v in values)
            return f"{name}({shown})"
    return str(exc)
