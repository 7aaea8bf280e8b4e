"""A stand-in backend for the operator dashboard: the real static files, a fake `/rpc`, the real `/ws`.

`/rpc` answers the methods and result shapes docs/DASHBOARD.md asks of the coordinator from a small
in-memory fund; `/ws` is aicf.transports.ws.WsServer over a MemoryEventSource, so the page is tested
against the real event protocol (subscribe with an inclusive `from_seq`, `subscribed`, numbered events,
resume). A test moves the fund on demand: `assign()`, `complete()`, `slash()`, `settle_epoch()`, each of
which changes what RPC returns and appends one event. Nothing moves by itself, so a test waits on the page,
never on a clock. `go_offline()` closes every socket and refuses new ones until `go_online()`, to exercise
the page's reconnect and resume.

`serve(fund)` runs it with uvicorn on 127.0.0.1 and a free port in a background thread. By hand:
`.venv/bin/python tests/transports/dashboard_fixture.py` serves http://127.0.0.1:8765/dashboard/ and
`curl -X POST http://127.0.0.1:8765/_fixture/advance` moves the fund one step.
"""

import asyncio
import contextlib
import hashlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from aicf.core.jobs import JobStatus
from aicf.core.registry import ProviderStatus
from aicf.core.slashing import SlashReason
from aicf.transports.history import History, chart_routes
from aicf.transports.metrics import EpochMetrics, KindQueueMetrics, MetricsSnapshot, ProviderMetrics
from aicf.transports.ws import MemoryEventSource, WsServer

STATIC: Final = Path(__file__).resolve().parents[2] / "aicf" / "transports" / "static"
JOB_STATUSES: Final = (
    "PENDING",
    "QUEUED",
    "LEASED",
    "SUBMITTED",
    "VERIFIED",
    "SETTLED",
    "REJECTED",
    "FAILED",
    "CANCELLED",
)
START_TIME: Final = 1_767_225_600  # the fake clock: 2026-01-01T00:00:00Z, moved 20 s per step
GAMMA_MU: Final = 1_000_000 * 1000


def hex_id(*parts: object) -> str:
    return "0x" + hashlib.sha3_256(repr(parts).encode()).hexdigest()


Json = dict[str, Any]


class FakeFund:
    """The fund the fake backend reports. Thread-safe: the test thread moves it while the server reads it."""

    def __init__(self, providers: int = 4, queued: int = 3, leased: int = 2, settled_epochs: int = 3) -> None:
        self._lock = threading.Lock()
        self._sockets: set[tuple[asyncio.AbstractEventLoop, WebSocket]] = set()
        self.source = MemoryEventSource()
        self.server = WsServer(self.source)
        self.offline = False
        self.broken_methods: set[str] = set()  # methods that answer -32603, to test the page's error paths
        self.now = START_TIME
        self.height = 5_000
        self.events: list[Json] = []
        self.assignments_total = 40
        self.retries_total = 3
        self.treasury = 1_250_000_000_000
        self.fund = 48_000_000_000
        self.job_counter = 0
        self.providers: dict[str, Json] = {}
        for i in range(providers):
            pid = hex_id("provider", i)
            self.providers[pid] = {
                "provider_id": pid,
                "status": "ACTIVE",
                "bonded_stake": (4 - i % 4) * 2_500_000_000,
                "live_leases": 0,
                "proofs_accepted": 120 + 17 * i,
                "proofs_rejected": i,
                "latency_p50_ms": 180 + 40 * i,
                "latency_p95_ms": 420 + 160 * i,  # the fourth is above the 800 ms SLA
                "availability_bps": 10000 - 35 * i,
                "last_heartbeat_at": self.now - 5 - 3 * i,
                "kinds": ["ai"] if i % 2 == 0 else ["ai", "quantum"],
            }
        self.jobs: dict[str, Json] = {}
        for _ in range(queued + leased):
            self._enqueue()
        for _ in range(leased):
            self._lease(self._oldest_queued(), self._provider_for(self.job_counter))
        self.epochs: dict[int, Json] = {}
        for _ in range(settled_epochs):
            self._settle()
        self.slashes: list[Json] = []
        self._slash(list(self.providers)[3], "MISSED_LEASE")
        self.history = History()  # /charts/: the real renderer over snapshots of this fund, one per move
        self.alarms: list[Json] = [
            {
                "name": "AicfProviderLatencySlaDrift",
                "severity": "warning",
                "message": f"provider {list(self.providers)[3][:10]}… p95 above 800 ms for 15 minutes",
                "since": self.now - 1260,
            }
        ]
        self.history.offer(self.now, self.metrics)

    # ---- moves (each appends one event) ---------------------------------------------------------------

    def assign(self) -> Json:
        """The oldest queued job is leased (jobAssigned); a new job is enqueued so the queue keeps moving."""
        with self._lock:
            self._tick()
            task_id = self._oldest_queued()
            event = self._emit("jobAssigned", self._lease(task_id, self._provider_for(self.job_counter)))
            self._enqueue()
        self._notify()
        return event

    def complete(self) -> Json:
        with self._lock:
            self._tick()
            task_id = next(t for t, j in self.jobs.items() if j["status"] == "LEASED")
            job = self.jobs.pop(task_id)
            provider = self.providers[job["provider_id"]]
            provider["live_leases"] -= 1
            provider["proofs_accepted"] += 1
            units = 1_000 + 37 * (int(task_id[2:6], 16) % 100)
            data = {"task_id": task_id, "provider_id": job["provider_id"], "proof_id": hex_id("proof", task_id)}
            event = self._emit("jobCompleted", {**data, "units_mu": units})
        self._notify()
        return event

    def slash(self) -> Json:
        with self._lock:
            self._tick()
            pid = next(p for p, v in self.providers.items() if v["status"] == "ACTIVE")
            event = self._emit("providerSlashed", self._slash(pid, "MISSED_LEASE"))
        self._notify()
        return event

    def settle_epoch(self) -> Json:
        with self._lock:
            self._tick()
            event = self._emit("epochSettled", self._settle())
        self._notify()
        return event

    def advance(self) -> Json:
        """One step of a four-step cycle, for running the fixture by hand."""
        step = len(self.events) % 4
        return (self.assign, self.complete, self.slash, self.settle_epoch)[step]()

    def go_offline(self) -> None:
        """Close every socket (1012, service restart) and refuse new ones (1013) until go_online()."""
        with self._lock:
            self.offline = True
        self.close_sockets(1012)

    def go_online(self) -> None:
        with self._lock:
            self.offline = False

    # ---- RPC views ------------------------------------------------------------------------------------

    def rpc(self, method: str, params: Json) -> Json:
        if method in self.broken_methods:
            raise RuntimeError(method)
        with self._lock:
            if method == "aicf.getStatus":
                return self._status()
            if method == "aicf.listProviders":
                items = sorted(self.providers.values(), key=lambda p: p["provider_id"])
                return {"items": [dict(p) for p in items[: params.get("limit", 50)]], "next_cursor": None}
            if method == "aicf.listJobs":
                wanted = set(params.get("statuses") or JOB_STATUSES)
                items = [dict(j) for j in self.jobs.values() if j["status"] in wanted]
                return {"items": items[: params.get("limit", 50)], "next_cursor": None}
            if method == "aicf.getEpoch":
                epoch = self.epochs.get(params.get("epoch", -1))
                if epoch is None:
                    raise LookupError(f"epoch {params.get('epoch')} is not settled")
                return dict(epoch)
        raise NotImplementedError(method)

    def _status(self) -> Json:
        by_status = dict.fromkeys(JOB_STATUSES, 0)
        for job in self.jobs.values():
            by_status[job["status"]] += 1
        by_status["PENDING"] = 2
        by_status["SETTLED"] = 30 * len(self.epochs)
        queued_at = [j["queued_at"] for j in self.jobs.values() if j["status"] == "QUEUED"]
        current = max(self.epochs, default=-1) + 1
        return {
            "now": self.now,
            "head_height": self.height,
            "finalized_height": self.height - 6,
            "current_epoch": current,
            "last_settled_epoch": current - 1,
            "queue": {"by_status": by_status, "oldest_queued_age_s": self.now - min(queued_at, default=self.now)},
            "assignments_total": self.assignments_total,
            "retries_total": self.retries_total,
            "treasury": {
                "treasury_balance": self.treasury,
                "fund_balance": self.fund,
                "budget_throttle_active": False,
                "cap_use_bps": 6200 + 450 * len(self.epochs) % 3000,
            },
            "alarms": list(self.alarms),
            "recent_slashes": list(reversed(self.slashes))[:20],
            "latest_seq": len(self.events),
            "operator": {  # a params change waiting for the next epoch (docs/OPERATOR.md)
                "epoch": current,
                "params_version": 1,
                "params_hash": "0x" + "11" * 32,
                "next_params_version": 2,
                "next_params_hash": "0x" + "22" * 32,
                "pending": [
                    {
                        "op": "params",
                        "tx_hash": "0x" + "33" * 32,
                        "sender": "0x" + "44" * 20,
                        "subject": "",
                        "before": {"trap_bps": 500},
                        "after": {"trap_bps": 250},
                        "height": self.height,
                        "effective_epoch": current + 1,
                        "state": "pending",
                    }
                ],
                "applied": [],
            },
        }

    # ---- internals (called with the lock held) ---------------------------------------------------------

    def _tick(self) -> None:
        self.now += 20
        self.height += 3
        for p in self.providers.values():
            p["last_heartbeat_at"] = self.now - 4
        self.history.offer(self.now, self.metrics)

    def metrics(self) -> MetricsSnapshot:
        """What /metrics would show of this fund (the charts' input)."""
        by_status = self._status()["queue"]["by_status"]
        queued = [j for j in self.jobs.values() if j["status"] == "QUEUED"]
        return MetricsSnapshot(
            jobs_by_status={JobStatus(k): v for k, v in by_status.items()},
            assignments_total=self.assignments_total,
            providers=[
                ProviderMetrics(
                    provider_id=bytes.fromhex(p["provider_id"][2:]),
                    status=ProviderStatus(p["status"]),
                    live_leases=p["live_leases"],
                    proofs_accepted=p["proofs_accepted"],
                    proofs_rejected=p["proofs_rejected"],
                    latency_p50_ms=p["latency_p50_ms"],
                    latency_p95_ms=p["latency_p95_ms"],
                    availability_bps=p["availability_bps"],
                    bonded_stake=p["bonded_stake"],
                )
                for p in self.providers.values()
            ],
            slashes_by_reason={SlashReason.MISSED_LEASE: len(self.slashes)} if self.slashes else {},
            epochs=[
                EpochMetrics(
                    epoch=e["epoch"],
                    units_mu=e["totals"]["units_mu"],
                    payouts=e["payout_count"],
                    carried=e["carried_count"],
                    provider=e["totals"]["provider"],
                    miner=e["totals"]["miner"],
                    fund=e["totals"]["fund"],
                    cap_use_bps=e["cap_use_bps"],
                    price_bps=e["price_bps"],
                )
                for e in self.epochs.values()
            ],
            queues_by_kind=[
                KindQueueMetrics(
                    kind=kind,
                    depth=sum(1 for j in queued if j["kind"] == kind),
                    depth_limit=4,
                    oldest_age_s=self.now
                    - min((j["queued_at"] for j in queued if j["kind"] == kind), default=self.now),
                    age_limit_s=300,
                )
                for kind in ("ai", "quantum")
            ],
        )

    def _enqueue(self) -> str:
        self.job_counter += 1
        n = self.job_counter
        task_id = hex_id("task", n)
        self.jobs[task_id] = {
            "task_id": task_id,
            "kind": "quantum" if n % 5 == 0 else "ai",
            "model": "" if n % 5 == 0 else ("llama3-8b", "llama3-70b", "clip-vit-b")[n % 3],
            "status": "QUEUED",
            "tier": n % 4,
            "attempts": 0,
            "provider_id": None,
            "enqueue_height": self.height - 7,
            "fee_per_unit": 15_000 + 100 * n,
            "max_units_mu": 60_000,
            "queued_at": self.now - 40 * (10 - n % 10),
        }
        return task_id

    def _oldest_queued(self) -> str:
        return min((j["queued_at"], t) for t, j in self.jobs.items() if j["status"] == "QUEUED")[1]

    def _provider_for(self, n: int) -> str:
        active = [p for p, v in self.providers.items() if v["status"] == "ACTIVE"]
        return active[n % len(active)]

    def _lease(self, task_id: str, provider_id: str) -> Json:
        job = self.jobs[task_id]
        attempt = job["attempts"]
        job.update(status="LEASED", provider_id=provider_id, attempts=attempt + 1)
        self.providers[provider_id]["live_leases"] += 1
        self.assignments_total += 1
        return {
            "task_id": task_id,
            "provider_id": provider_id,
            "lease_id": hex_id("lease", task_id, attempt),
            "attempt": attempt,
            "kind": job["kind"],
            "expires_at": self.now + 60,
        }

    def _slash(self, provider_id: str, reason: str) -> Json:
        provider = self.providers[provider_id]
        amount = provider["bonded_stake"] * 100 // 10000
        provider["bonded_stake"] -= amount
        provider["status"] = "JAILED"
        self.fund += amount
        slash = {
            "provider_id": provider_id,
            "reason": reason,
            "amount": amount,
            "evidence_hash": hex_id("evidence", provider_id, len(self.slashes)),
            "height": self.height,
            "status": "JAILED",
        }
        self.slashes.append(slash)
        return slash

    def _settle(self) -> Json:
        epoch = len(self.epochs)
        units = (610_000 + 97_000 * epoch) * 1000
        reward = units * 15_000 * 10_000 // (1000 * 10_000)
        provider, miner = reward * 8000 // 10000, reward * 1500 // 10000
        batch = {
            "epoch": epoch,
            "finalized_height": self.height - 6,
            "price_bps": 10_000 + 1250 * (epoch % 2),
            "root": hex_id("root", epoch),
            "params_hash": hex_id("params"),
            "payout_count": 2_900 + 211 * epoch,
            "carried_count": 3 * epoch,
            "totals": {
                "reward": reward,
                "provider": provider,
                "miner": miner,
                "fund": reward - provider - miner,
                "charged": reward + reward // 10,
                "units_mu": units,
            },
            "cap_use_bps": units * 10_000 // GAMMA_MU,
        }
        self.epochs[epoch] = batch
        self.treasury -= reward
        return batch

    def _emit(self, topic: str, data: Json) -> Json:
        added = self.source.append(topic, data)
        event = {"type": "event", "seq": added.seq, "topic": topic, "data": data}
        self.events.append(event)
        return event

    # ---- WebSocket plumbing ----------------------------------------------------------------------------

    def _notify(self) -> None:
        self.server.hub.notify()  # callable from any thread

    async def serve_socket(self, websocket: WebSocket) -> None:
        if self.offline:
            await websocket.accept()
            await websocket.close(1013)  # try again later
            return
        entry = (asyncio.get_running_loop(), websocket)
        with self._lock:
            self._sockets.add(entry)
        try:
            await self.server.endpoint(websocket)
        finally:
            with self._lock:
                self._sockets.discard(entry)

    def close_sockets(self, code: int) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for loop, websocket in sockets:
            with contextlib.suppress(RuntimeError):  # a loop that has closed
                asyncio.run_coroutine_threadsafe(_close_quietly(websocket, code), loop)


async def _close_quietly(websocket: WebSocket, code: int) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # already closed by either side
        await websocket.close(code)


def build_app(fund: FakeFund, started: threading.Event | None = None) -> Starlette:
    async def rpc(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
        rid = body.get("id")
        try:
            result = fund.rpc(body.get("method", ""), body.get("params") or {})
        except NotImplementedError as exc:
            error = {"code": -32601, "message": f"method not found: {exc}"}
            return JSONResponse({"jsonrpc": "2.0", "id": rid, "error": error})
        except RuntimeError:
            return JSONResponse({"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": "internal error"}})
        except LookupError as exc:
            return JSONResponse({"jsonrpc": "2.0", "id": rid, "error": {"code": -32004, "message": str(exc)}})
        return JSONResponse({"jsonrpc": "2.0", "id": rid, "result": result})

    async def advance(_: Request) -> Response:
        return JSONResponse(fund.advance())

    async def root(_: Request) -> Response:
        return RedirectResponse("/dashboard/")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if started is not None:
            started.set()
        yield
        fund.close_sockets(1001)  # going away: lets uvicorn finish its graceful shutdown at once
        await fund.server.hub.stop()

    return Starlette(
        routes=[
            Route("/", root),
            Route("/rpc", rpc, methods=["POST"]),
            Route("/_fixture/advance", advance, methods=["POST"]),
            *chart_routes(fund.history, lambda: fund.now),
            WebSocketRoute("/ws", fund.serve_socket),
            Mount("/dashboard", StaticFiles(directory=STATIC, html=True)),
        ],
        lifespan=lifespan,
    )


@dataclass(frozen=True)
class Served:
    base_url: str
    fund: FakeFund


@contextmanager
def serve(fund: FakeFund, startup_timeout_s: float = 15.0) -> Iterator[Served]:
    """Run the app with uvicorn on 127.0.0.1 and a free port in a background thread; stop it on exit."""
    started = threading.Event()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(fund, started),
        log_level="warning",
        ws="websockets-sansio",
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard-fixture", daemon=True)
    thread.start()
    try:
        if not started.wait(startup_timeout_s):
            raise RuntimeError(f"the dashboard fixture did not start within {startup_timeout_s} s")
        yield Served(base_url=f"http://127.0.0.1:{port}", fund=fund)
    finally:
        fund.close_sockets(1001)
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


if __name__ == "__main__":
    uvicorn.run(build_app(FakeFund()), host="127.0.0.1", port=8765, ws="websockets-sansio")
