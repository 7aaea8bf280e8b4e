"""The requester's client (issue 12): submit AI and quantum jobs, follow them, read the result and the money.

    from aicf.client.requester import Requester, load_or_create_requester_key
    r = Requester("http://127.0.0.1:8000", load_or_create_requester_key(Path("requester.key")))
    r.deposit(10**9)                       # the devnet faucet: a signed deposit to the requester's own address
    tx = r.submit_ai("minilm-l6-v2", b"The capital of France is")
    outcome = r.wait(tx)                    # follows the job until it is settled or refunded

Every call is a signed transaction (aicf.core.txs) sent with `aicf.sendTransaction`; the nonce comes from
`aicf.getAccount`, and a nonce another client of the same key took first is retried with the next one.
Time and sleeping are injected so tests drive `wait` without waiting.
"""

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.client.rpc import RpcClient, RpcError
from aicf.client.signing import public_key_bytes
from aicf.core.chain import TxKind
from aicf.core.encoding import from_hex, to_hex
from aicf.core.errors import AicfError
from aicf.core.txs import SignedTx, address_of, encode_signed_tx, tx_signing_digest

NONCE_CODE: Final = -32042  # aicf.transports.errors: NonceError
FINAL_STATUSES: Final = frozenset({"SETTLED", "CANCELLED", "FAILED", "REJECTED"})


class RequesterInputError(AicfError, ValueError):
    """A requester's input the client refuses before sending anything (a key file, a model, a unit cap)."""


class RequestFailedError(AicfError):
    """The transaction was refused at inclusion, or the job did not end within the time allowed."""


def load_or_create_requester_key(path: Path) -> Ed25519PrivateKey:
    """The requester's Ed25519 key in a 0600 file (hex of the 32-byte seed), created on first use."""
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        try:
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
        except ValueError:
            raise RequesterInputError(f"{path}: not a requester key (expected 64 hex digits)") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(seed.hex())
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a job seen by `wait`: the transaction's state, then the job's status."""

    tx_hash: str
    state: str  # pending, included, refused, or the job status
    task_id: str | None
    detail: Mapping[str, Any]


class Requester:
    def __init__(
        self,
        url: str,
        key: Ed25519PrivateKey,
        *,
        client: RpcClient | None = None,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rpc = client or RpcClient(url.rstrip("/") + ("" if url.rstrip("/").endswith("/rpc") else "/rpc"))
        self.key = key
        self.public_key = public_key_bytes(key)
        self.address = address_of(self.public_key)
        self._now, self._sleep = now, sleep
        self._chain_id: int | None = None
        self._terms: dict[str, Any] | None = None

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> "Requester":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------------------------
    def terms(self) -> dict[str, Any]:
        """The chain id, models and their weights, current price and the suggested fees (aicf.getRequestTerms)."""
        if self._terms is None:
            self._terms = dict(self.rpc.call("aicf.getRequestTerms"))
            self._chain_id = int(self._terms["chain_id"])
        return self._terms

    def account(self) -> dict[str, Any]:
        return dict(self.rpc.call("aicf.getAccount", {"address": to_hex(self.address)}))

    def balance(self) -> int:
        return int(self.account()["balance"])

    def transaction(self, tx_hash: str) -> dict[str, Any]:
        return dict(self.rpc.call("aicf.getTransaction", {"tx_hash": tx_hash}))

    def result(self, task_id: str) -> dict[str, Any]:
        return dict(self.rpc.call("aicf.readResult", {"id": task_id}))

    # -- writes ----------------------------------------------------------------------------------------------
    def send(self, kind: TxKind, body: Mapping[str, object]) -> str:
        """Sign and send one transaction; returns its hash. A nonce taken by another client is retried."""
        chain_id = int(self.terms()["chain_id"])
        for _ in range(5):
            nonce = int(self.account()["next_nonce"])
            sig = self.key.sign(tx_signing_digest(chain_id, self.public_key, kind, nonce, body))
            tx = SignedTx(chain_id=chain_id, public_key=self.public_key, nonce=nonce, kind=kind, body=body, sig=sig)
            try:
                answer = self.rpc.call("aicf.sendTransaction", {"tx": to_hex(encode_signed_tx(tx))})
            except RpcError as exc:
                if exc.code == NONCE_CODE:
                    continue
                raise
            return str(answer["tx_hash"])
        raise RequestFailedError("five nonces in a row were taken by other clients of this key; try again")

    def deposit(self, amount: int, to: bytes | None = None) -> str:
        return self.send(TxKind.DEPOSIT, {"to": to or self.address, "amount": amount})

    def cancel(self, task_id: str) -> str:
        return self.send(TxKind.CANCEL, {"task_id": from_hex(task_id, "task_id")})

    def submit_ai(
        self,
        model: str,
        prompt: bytes,
        *,
        max_tokens: int = 16,
        max_runtime_ms: int | None = None,
        max_units: int | None = None,
        fee_per_unit: int | None = None,
        tier: int = 0,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        """Enqueue an AI job; `max_units` (whole units) sets the runtime cap that keeps max_units_mu within it."""
        terms = self.terms()
        if max_runtime_ms is None:
            max_runtime_ms = self.runtime_for_units(model, max_units) if max_units is not None else 20_000
        body: dict[str, object] = {
            "model": model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "max_runtime_ms": max_runtime_ms,
            "fee_per_unit": fee_per_unit if fee_per_unit is not None else int(terms["suggested_fee_per_unit"]["ai"]),
            "tier": tier,
            **(extra or {}),
        }
        return self.send(TxKind.AI_ENQUEUE, body)

    def request_grant(
        self,
        model: str,
        prompt: bytes,
        *,
        nonce: int,
        max_tokens: int = 16,
        max_runtime_ms: int = 20_000,
        fee_per_unit: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Ask the fund to sponsor an AI job from this requester's grant allowance (aicf.requestGrant; docs/TRAPS.md
        "Grants"): an ai_enqueue signed but never sent to the chain; `nonce` only tells two requests apart. Returns
        the signed request (0x hex, to ask again with `grant_status`) and the coordinator's answer."""
        terms = self.terms()
        body: dict[str, object] = {
            "model": model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "max_runtime_ms": max_runtime_ms,
            "fee_per_unit": fee_per_unit if fee_per_unit is not None else int(terms["suggested_fee_per_unit"]["ai"]),
            "tier": 0,
        }
        chain_id = int(terms["chain_id"])
        sig = self.key.sign(tx_signing_digest(chain_id, self.public_key, TxKind.AI_ENQUEUE, nonce, body))
        tx = SignedTx(chain_id=chain_id, public_key=self.public_key, nonce=nonce, kind=TxKind.AI_ENQUEUE, body=body,
                      sig=sig)  # fmt: skip
        raw = to_hex(encode_signed_tx(tx))
        return raw, self.grant_status(raw)

    def grant_status(self, raw: str) -> dict[str, Any]:
        """The same request again: `{caller, request_hash, escrow, state, task_id}`, task_id once on chain."""
        return dict(self.rpc.call("aicf.requestGrant", {"tx": raw}))

    def submit_quantum(self, circuit: bytes, shots: int, *, fee_per_unit: int | None = None, tier: int = 0) -> str:
        terms = self.terms()
        fee = fee_per_unit if fee_per_unit is not None else int(terms["suggested_fee_per_unit"]["quantum"])
        body: dict[str, object] = {"circuit": circuit, "shots": shots, "fee_per_unit": fee, "tier": tier}
        return self.send(TxKind.QUANTUM_ENQUEUE, body)

    def runtime_for_units(self, model: str, max_units: int) -> int:
        """The largest max_runtime_ms whose max_units_mu (SPEC §2) is at most `max_units` × 1000."""
        models = self.terms()["models"]
        if model not in models:
            raise RequesterInputError(f"unknown model {model!r}; the coordinator serves {', '.join(sorted(models))}")
        per_ms = int(models[model]["weight_milli"]) * int(self.terms()["best_qos_bps_product"])
        runtime = ((max_units * 1000 + 1) * 10**11 - 1) // per_ms
        if runtime < 1:
            raise RequesterInputError(f"--max-units {max_units} is below what one millisecond of {model} costs")
        return int(min(runtime, int(self.terms()["max_runtime_ms"])))

    # -- following -------------------------------------------------------------------------------------------
    def wait_included(self, tx_hash: str, *, timeout_s: float = 120.0, poll_s: float = 0.5) -> str:
        """Wait until the transaction is included and ingested; returns "included". Raises RequestFailedError
        if it is refused, unknown, or still pending when the time runs out."""
        deadline = self._now() + timeout_s
        while True:
            status = self.transaction(tx_hash)
            if status["state"] == "included":
                return "included"
            if status["state"] in ("refused", "unknown"):
                why = status.get("refused", {})
                raise RequestFailedError(f"transaction {tx_hash} is {status['state']} {why}".strip())
            if self._now() >= deadline:
                raise RequestFailedError(f"transaction {tx_hash} still pending after {timeout_s:g} s")
            self._sleep(poll_s)

    def wait(
        self,
        tx_hash: str,
        *,
        timeout_s: float = 600.0,
        poll_s: float = 1.0,
        until: str = "final",
        on_progress: Callable[[Progress], None] | None = None,
    ) -> dict[str, Any]:
        """Follow a transaction to its job's end: `until="final"` (settled or refunded, the default) or
        "verified" (the result is in; the charge comes at settlement). Returns aicf.readResult's record.
        Raises RequestFailedError if the transaction is refused or the time runs out."""
        deadline = self._now() + timeout_s
        last: tuple[str, str | None] | None = None
        while True:
            status = self.transaction(tx_hash)
            task_id = status.get("task_id")
            state = str(status.get("status") or status["state"])
            if (state, task_id) != last and on_progress is not None:
                on_progress(Progress(tx_hash=tx_hash, state=state, task_id=task_id, detail=status))
            last = (state, task_id)
            if status["state"] == "refused":
                refused = status.get("refused", {})
                raise RequestFailedError(
                    f"transaction {tx_hash} was refused at inclusion: {refused.get('field')}: {refused.get('reason')}"
                )
            if status["state"] == "unknown":
                raise RequestFailedError(f"transaction {tx_hash} is not known to the coordinator")
            if task_id is not None:
                record = self.result(str(task_id))
                if record["final"] or (until == "verified" and record["result"] is not None):
                    return record
            if self._now() >= deadline:
                raise RequestFailedError(
                    f"transaction {tx_hash} did not reach {until} within {timeout_s:g} s (last state: {state})"
                )
            self._sleep(poll_s)
