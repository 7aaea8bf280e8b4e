"""Requester transactions (issue 12): what a requester signs, how its address is named, and the shape checks
every chain applies before a transaction may enter its mempool.

A signed transaction is `{chain_id, public_key, nonce, kind, body, sig}`:
- `sig` is Ed25519 over `H("aicf/txsig/v1", chain_id, public_key, kind, nonce, body)`, so a transaction signed
  for one chain is refused by every other (the chain id is inside what is signed);
- the sender's address is `H("aicf/address/v1", public_key)[:20]`, the raw 20 bytes SPEC §1 calls `caller`;
- `nonce` counts the sender's transactions from 0; a chain accepts exactly the next one, so a replayed
  transaction (same nonce) is refused, and the transaction hash `H("aicf/tx/v1", chain_id, sender, kind, nonce,
  body)` (aicf.core.chain.tx_hash_of) is unique per sender.
Pure: no clock, no key material beyond the public key; signing and verifying live with the client and the
chain, which have the cryptography library.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aicf.core.chain import TxKind, tx_hash_of
from aicf.core.encoding import canonical_cbor, decode_canonical, tagged_hash
from aicf.core.errors import AicfError, DecodingError, RequestError
from aicf.core.operator import operator_op
from aicf.core.types import MAX_AMOUNT

TXSIG_TAG: Final = "aicf/txsig/v1"
ADDRESS_TAG: Final = "aicf/address/v1"
ADDRESS_LEN: Final = 20
REQUESTER_KINDS: Final = frozenset({TxKind.DEPOSIT, TxKind.AI_ENQUEUE, TxKind.QUANTUM_ENQUEUE, TxKind.CANCEL})
SIGNED_KINDS: Final = REQUESTER_KINDS | {TxKind.OPERATOR}  # operator: only the operator's key (checked by the chain)
MAX_TX_BYTES: Final = 320 * 1024  # the largest body: a 256 KiB circuit plus its fields, with room to spare
FAUCET_MAX: Final = 10**12  # µANM one devnet deposit may mint (1,000,000 ANM)


class TxError(AicfError):
    """A transaction refused before it reaches a mempool: nothing is stored, no balance moves."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"transaction refused: {field}: {reason}")
        self.field, self.reason = field, reason


class BadTxSignatureError(TxError):
    def __init__(self) -> None:
        super().__init__("sig", "the signature does not verify under public_key for this chain and body")


class NonceError(TxError):
    def __init__(self, expected: int, got: int) -> None:
        why = "already used (a replayed transaction?)" if got < expected else "ahead of the account's next nonce"
        super().__init__("nonce", f"expected {expected}, got {got}: {why}")
        self.expected, self.got = expected, got


class WrongChainError(TxError):
    def __init__(self, expected: int, got: int) -> None:
        super().__init__("chain_id", f"this chain is {expected}, the transaction was signed for {got}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedTx:
    chain_id: int
    public_key: bytes
    nonce: int
    kind: TxKind
    body: Mapping[str, object]
    sig: bytes

    @property
    def sender(self) -> bytes:
        return address_of(self.public_key)

    def signing_digest(self) -> bytes:
        return tx_signing_digest(self.chain_id, self.public_key, self.kind, self.nonce, self.body)

    def tx_hash(self) -> bytes:
        return tx_hash_of(self.chain_id, self.sender, self.kind.value, self.nonce, self.body)


TX_KEYS: Final = frozenset({"chain_id", "public_key", "nonce", "kind", "body", "sig"})


def encode_signed_tx(tx: SignedTx) -> bytes:
    """The raw form a requester sends (`aicf.sendTransaction {tx: 0x…}`): canonical CBOR of the six fields."""
    return canonical_cbor(
        {
            "chain_id": tx.chain_id,
            "public_key": tx.public_key,
            "nonce": tx.nonce,
            "kind": tx.kind.value,
            "body": dict(tx.body),
            "sig": tx.sig,
        }
    )


def decode_signed_tx(raw: bytes) -> SignedTx:
    """Parse a raw transaction; raises TxError naming what is wrong. The bytes are bounded before decoding."""
    if len(raw) > MAX_TX_BYTES + 1024:
        raise TxError("tx", f"{len(raw)} bytes exceeds the limit of {MAX_TX_BYTES + 1024}")
    try:
        value = decode_canonical(raw, max_items=20_000)
    except DecodingError as exc:
        raise TxError("tx", str(exc)) from None
    if not isinstance(value, dict) or set(value) != TX_KEYS:
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise TxError("tx", f"expected a map with exactly the keys {sorted(TX_KEYS)}, got {got}")
    kind = value["kind"]
    if not isinstance(kind, str) or kind not in {k.value for k in TxKind}:
        raise TxError("kind", f"unknown transaction kind {kind!r}")
    body, public_key, sig = value["body"], value["public_key"], value["sig"]
    if not isinstance(body, dict):
        raise TxError("body", "expected a map")
    if not isinstance(public_key, bytes) or not isinstance(sig, bytes):
        raise TxError("public_key" if not isinstance(public_key, bytes) else "sig", "expected a byte string")
    return SignedTx(
        chain_id=_uint("chain_id", value["chain_id"]),
        public_key=public_key,
        nonce=_uint("nonce", value["nonce"]),
        kind=TxKind(kind),
        body=body,
        sig=sig,
    )


def address_of(public_key: bytes) -> bytes:
    """The 20-byte address of an Ed25519 public key."""
    return tagged_hash(ADDRESS_TAG, public_key)[:ADDRESS_LEN]


def tx_signing_digest(chain_id: int, public_key: bytes, kind: TxKind, nonce: int, body: Mapping[str, object]) -> bytes:
    """The 32 bytes a requester signs. Raises EncodingError for a body canonical CBOR cannot hold."""
    return tagged_hash(TXSIG_TAG, chain_id, public_key, kind.value, nonce, dict(body))


def _uint(field: str, value: object, upper: int = MAX_AMOUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < upper:
        raise TxError(field, f"expected an integer in 0..{upper - 1}, got {value!r}")
    return value


def check_tx_shape(tx: SignedTx) -> None:
    """The stateless checks: sizes, kinds, key and signature lengths, a deposit's amount and a cancel's task id.
    Raises TxError naming the field. The request's own limits (SPEC §2) are checked by validate_request."""
    _uint("chain_id", tx.chain_id)
    _uint("nonce", tx.nonce)
    if len(tx.public_key) != 32:
        raise TxError("public_key", f"expected 32 bytes (Ed25519), got {len(tx.public_key)}")
    if len(tx.sig) != 64:
        raise TxError("sig", f"expected 64 bytes (Ed25519), got {len(tx.sig)}")
    if tx.kind not in SIGNED_KINDS:
        allowed = ", ".join(sorted(k.value for k in SIGNED_KINDS))
        raise TxError("kind", f"{tx.kind.value!r} cannot be sent by a requester; expected one of {allowed}")
    size = len(canonical_cbor(dict(tx.body)))
    if size > MAX_TX_BYTES:
        raise TxError("body", f"{size} bytes exceeds the limit of {MAX_TX_BYTES}")
    if tx.kind == TxKind.DEPOSIT:
        deposit_of(tx)
    elif tx.kind == TxKind.CANCEL:
        cancel_target(tx)
    elif tx.kind == TxKind.OPERATOR:
        try:
            operator_op(tx.body)
        except RequestError as exc:
            raise TxError(exc.field, exc.reason) from None


def cancel_target(tx: SignedTx) -> bytes:
    """The task id a cancel names; raises TxError if the body is not exactly {task_id: 32 bytes}."""
    if set(tx.body) != {"task_id"}:
        raise TxError("body", f"a cancel has exactly the key task_id, got {sorted(tx.body)}")
    task = tx.body["task_id"]
    if not isinstance(task, bytes) or len(task) != 32:
        raise TxError("task_id", "expected 32 bytes")
    return task


def deposit_of(tx: SignedTx) -> tuple[bytes, int]:
    """(to, amount) of a devnet deposit; raises TxError unless to is an address and 1 ≤ amount ≤ FAUCET_MAX."""
    if set(tx.body) != {"to", "amount"}:
        raise TxError("body", f"a deposit has exactly the keys amount and to, got {sorted(tx.body)}")
    to = tx.body["to"]
    if not isinstance(to, bytes) or len(to) != ADDRESS_LEN:
        raise TxError("to", f"expected a {ADDRESS_LEN}-byte address")
    amount = _uint("amount", tx.body["amount"], FAUCET_MAX + 1)
    if amount == 0:
        raise TxError("amount", "must be at least 1 µANM")
    return to, amount
