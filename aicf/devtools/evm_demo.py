"""`aicf up --chain anvil`'s demo on the node: providers staked on chain and requesters enqueueing through the
contract, from anvil's unlocked dev accounts (their tokens from the test token's faucet)."""

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from aicf.bootstrap.system import System
from aicf.core.operator import MAX_OPERATOR_AMOUNT
from aicf.core.qasm import circuit_depth
from aicf.core.requests import validate_request
from aicf.devtools.demo import BELL, FUND_TOPUP_TRAPS
from aicf.service.operator_calls import fund_body

log = logging.getLogger("aicf.up")

FAUCET_MAX = 1_000_000 * 10**6  # µANM one faucet call may draw (AicfTestToken)
ON_CHAIN_STAKE = 10_000_000_000  # µANM each reference provider bonds on chain (as in the ledger)
TREASURY_DEPOSIT = 100_000 * 10**6  # µANM the demo's operator pays into the treasury on a fresh deployment
MAX_ALLOWANCE = 2**256 - 1
TRAP_FUND_FLOAT = 100_000 * 10**6  # µANM the demo's fund keeps in its wallet for trap fund top-ups


def transact(w3: Web3, call: object, sender: str) -> TxReceipt:
    """Send a contract call from an unlocked dev account and wait for its receipt; raise if it failed."""
    tx_hash = call.transact({"from": sender})  # type: ignore[attr-defined]
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    if receipt["status"] != 1:
        raise RuntimeError(f"{sender}'s transaction 0x{bytes(tx_hash).hex()} failed")
    return receipt


def fund_account(w3: Web3, token: Contract, spender: str, account: str, amount: int) -> None:
    """Draw `amount` µANM from the faucet into `account` (if it holds less) and approve `spender` for all."""
    while int(token.functions.balanceOf(account).call()) < amount:
        transact(w3, token.functions.faucet(FAUCET_MAX), account)
    if int(token.functions.allowance(account, spender).call()) < amount:
        transact(w3, token.functions.approve(spender, MAX_ALLOWANCE), account)


def stake_providers(w3: Web3, token: Contract, aicf: Contract, owners: Sequence[str], ids: Sequence[bytes]) -> None:
    """Bond ON_CHAIN_STAKE for each provider id from its owner (skipped for a provider already staked)."""
    for owner, pid in zip(owners, ids, strict=False):
        bound = str(aicf.functions.stakes(pid).call()[0])
        if int(bound, 16) != 0:
            continue
        fund_account(w3, token, aicf.address, owner, ON_CHAIN_STAKE)
        transact(w3, aicf.functions.stake(pid, ON_CHAIN_STAKE), owner)
        log.info("provider 0x%s staked %d µANM on chain from %s", pid.hex(), ON_CHAIN_STAKE, owner)


def approve_fund(w3: Web3, token: Contract, aicf: Contract, fund: str) -> None:
    """The fund's address holds faucet tokens and lets the contract pull them: operator `fund_topup`
    transactions move them into the contract's trap fund (docs/EVM.md, "Operator transactions")."""
    fund_account(w3, token, aicf.address, fund, TRAP_FUND_FLOAT)


def fund_treasury(w3: Web3, token: Contract, aicf: Contract, operator: str) -> None:
    """Pay TREASURY_DEPOSIT into the contract's treasury once (a fresh deployment's treasury is empty)."""
    if int(aicf.functions.treasury().call()) > 0:
        return
    fund_account(w3, token, aicf.address, operator, TREASURY_DEPOSIT)
    transact(w3, aicf.functions.deposit(TREASURY_DEPOSIT), operator)


@dataclass
class EvmDemoRequesters:
    """Requesters enqueueing one AI job per model (and a quantum job) every `period_s` through the contract."""

    system: System
    w3: Web3
    token: Contract
    aicf: Contract
    callers: Sequence[str]
    models: Sequence[str]
    period_s: float = 8.0
    quantum: bool = True
    count: int = 0
    sent: dict[str, int] = field(default_factory=dict)

    def run(self, stop: threading.Event) -> None:
        for caller in self.callers:
            fund_account(self.w3, self.token, self.aicf.address, caller, FAUCET_MAX // 10)
        while not stop.wait(self.period_s):
            try:
                self.top_up_trap_fund()
                self.step()
            except Exception:  # the demo must survive a node hiccup; the next step retries
                log.exception("demo enqueue failed")

    def top_up_trap_fund(self) -> bool:
        """When a trap found the contract's trap fund too poor, an operator `fund_topup` pulls FUND_TOPUP_TRAPS
        escrows of the dearest such trap from the fund's tokens (its allowance) into it. Returns whether one
        was sent."""
        need = max((t.escrow for t in self.system.coord.trap_shortfalls.values()), default=0)
        if not need or int(self.aicf.functions.trapFund().call()) >= need:
            return False
        amount = min(FUND_TOPUP_TRAPS * need, MAX_OPERATOR_AMOUNT)
        self.system.send_operator(fund_body(amount, None))
        self.system.coord.trap_shortfalls.clear()
        log.info("the trap fund could not pay a trap's %d µANM escrow; the fund topped it up by %d µANM", need, amount)
        return True

    def step(self) -> list[str]:
        params = self.system.params
        sent: list[str] = []
        for kind in [*self.models, *(["quantum"] if self.quantum else [])]:
            caller = self.callers[self.count % len(self.callers)]
            self.count += 1
            if kind == "quantum":
                body: dict[str, object] = {"circuit": BELL, "shots": 20, "fee_per_unit": 3 * 50_000, "tier": 0}
                escrow = validate_request({"kind": "quantum", **body}, params, params.price_max_bps, circuit_depth)
                call = self.aicf.functions.quantumEnqueue(BELL, 20, 3 * 50_000, 0, escrow.escrow)
            else:
                prompt = [b"The capital of France is", b"Proof of stake means", b"A cat sat on"][self.count % 3]
                body = {"model": kind, "prompt": prompt, "max_tokens": 8, "max_runtime_ms": 20_000,
                        "fee_per_unit": 40_000, "tier": 0}  # fmt: skip
                escrow = validate_request({"kind": "ai", **body}, params, params.price_max_bps, circuit_depth)
                call = self.aicf.functions.aiEnqueue(kind, prompt, 8, 20_000, 40_000, 0, escrow.escrow)
            transact(self.w3, call, caller)
            self.sent[kind] = self.sent.get(kind, 0) + 1
            sent.append(kind)
        return sent
