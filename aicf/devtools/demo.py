"""The demo load `aicf up` runs on its embedded defaults: requesters sized from the providers' declared rates."""

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from aicf.bootstrap.system import System
from aicf.core.capacity import enqueue_interval_s
from aicf.core.chain import TxKind
from aicf.core.encoding import tagged_hash
from aicf.core.ledger import FUND
from aicf.core.operator import MAX_OPERATOR_AMOUNT
from aicf.core.qasm import circuit_depth
from aicf.core.requests import validate_request
from aicf.service import operator_ops, reads
from aicf.service.operator_calls import fund_body

log = logging.getLogger("aicf.up")


BELL = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'


DEMO_SHARE_BPS = 5_000  # the demo asks for half of what the reference providers declare they can take


FUND_TOPUP_TRAPS = 20  # a top-up pays this many escrows of the dearest trap the fund could not pay


@dataclass
class DemoRequesters:
    """Requesters sending a steady demo load sized from the providers' declared rates (issue 17): each kind is
    enqueued every `enqueue_interval_s` of its jobs' units against DEMO_SHARE_BPS of the unit rates its ACTIVE
    providers run with (the AI rate split evenly between the demo's models), never more often than `period_s`,
    and not at all while nothing serves it. The fund is topped up on chain (an operator fund_topup, the devnet's
    faucet for the fund) when a trap finds it too poor."""

    system: System
    models: Sequence[str]
    period_s: float = 4.0
    quantum: bool = True
    count: int = 0
    callers: list[bytes] = field(default_factory=list)
    due: dict[str, int] = field(default_factory=dict)  # kind or model -> unix s of its next enqueue
    sent: dict[str, int] = field(default_factory=dict)  # kind or model -> enqueues so far
    fund_topups: int = 0
    topup_tx: bytes | None = None  # the last fund top-up sent (an operator transaction)

    def start(self) -> None:
        self.callers = [tagged_hash("aicf/devnet/requester/v1", i)[:20] for i in range(3)]
        with self.system.chain_lock:
            for caller in self.callers:
                self.system.devnet.submit(caller, TxKind.DEPOSIT, {"to": caller, "amount": 10**12})

    def run(self, stop: threading.Event) -> None:
        self.start()
        while not stop.wait(1.0):
            self.step()

    def body(self, kind: str) -> tuple[TxKind, dict[str, object]]:
        if kind == "quantum":
            return TxKind.QUANTUM_ENQUEUE, {"circuit": BELL, "shots": 20, "fee_per_unit": 3 * 50_000, "tier": 0}
        prompts = [b"The capital of France is", b"Proof of stake means", b"A cat sat on", b"Quantum error correction"]
        price = 20_000  # µANM per unit per 1000 mu: above the reserve at any price up to the 2.0 clamp
        return TxKind.AI_ENQUEUE, {
            "model": kind,
            "prompt": prompts[self.count % len(prompts)],
            "max_tokens": 8,
            "max_runtime_ms": 20_000,
            "fee_per_unit": 2 * price,
            "tier": 0,  # a higher tier needs a tier the operator registered for the caller
        }

    def step(self) -> list[str]:
        """Enqueue each kind that is due; top up the fund if a trap could not be paid. Returns what was sent."""
        now = self.system.clock.now()
        params = self.system.params
        self.top_up_fund()
        capacity = {q.kind: q.capacity_mu_per_day for q in reads.queues_by_kind(self.system.store, now, params)}
        kinds = [*self.models, *(["quantum"] if self.quantum else [])]
        sent: list[str] = []
        for kind in kinds:
            if now < self.due.get(kind, 0):
                continue
            tx_kind, body = self.body(kind)
            request = {"kind": "quantum" if kind == "quantum" else "ai", **body}
            job_mu = validate_request(request, params, params.price_initial_bps, circuit_depth).max_units_mu
            share = capacity.get("quantum", 0) if kind == "quantum" else capacity.get("ai", 0) // len(self.models)
            interval = enqueue_interval_s(job_mu, share, DEMO_SHARE_BPS)
            if interval is None:
                continue  # nothing serves it (yet)
            self.due[kind] = now + max(int(self.period_s), interval)
            caller = self.callers[self.count % len(self.callers)]
            self.count += 1
            with self.system.chain_lock:
                self.system.devnet.submit(caller, tx_kind, body)
            self.sent[kind] = self.sent.get(kind, 0) + 1
            sent.append(kind)
        return sent

    def top_up_fund(self) -> None:
        """An operator `fund_topup` transaction on chain (external → fund, the devnet's faucet for the fund, and trap
        budget) when the fund or the trap budget cannot pay a due trap, so a node that follows the chain sees the
        same fund pay the same trap escrows. One at a time: none is sent while the last one waits in the mempool
        or is not ingested yet."""
        coord = self.system.coord
        need = max((t.escrow for t in coord.trap_shortfalls.values()), default=0)
        budget_need = max((t.escrow for t in coord.trap_throttles.values()), default=0)
        poor = bool(need) and reads.get_balances(self.system.store, [FUND])[FUND] < need
        held = bool(budget_need) and operator_ops.trap_budget_left(self.system.store, self.system.params) < budget_need
        if not poor and not held:  # a top-up is trap budget too (docs/TRAPS.md "The trap budget")
            return
        need = max(need, budget_need)
        if self.topup_tx is not None:
            with self.system.chain_lock:
                where = self.system.devnet.locate(self.topup_tx)
            head = reads.status(self.system.store, self.system.clock.now(), self.system.params).head_height
            if where is not None and (where.height is None or where.height > head):
                return
        amount = min(FUND_TOPUP_TRAPS * need, MAX_OPERATOR_AMOUNT)
        self.topup_tx = self.system.send_operator(fund_body(amount, None))
        self.fund_topups += 1
        log.info("devnet faucet: the fund could not pay a trap's %d µANM escrow; sent a %d µANM top-up", need, amount)
