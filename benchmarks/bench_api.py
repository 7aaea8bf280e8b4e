"""API benchmark against the REAL coordinator API (issue 7, item 7): `aicf.getJob` requests/s and p99 latency, and
WebSocket events/s to 100 subscribers from the store-backed event source.

Run: .venv/bin/python benchmarks/bench_api.py [--jobs N] [--seconds S] [--runs R] [--procs N] [--conns N]
                                               [--subscribers N] [--bursts N] [--burst N] [--skip-ws]

1. Setup: a SQLite store in a temp dir is filled through the real path: a devnet carries deposits and `--jobs`
   AI enqueues, `ingest_available` turns them into jobs (QUEUED once final), as `aicf up` would.
2. Server: a child process opens that store and serves `aicf.bootstrap.system.build_system(...).app` (the app `aicf up`
   serves: the real registry, auth, the WS hub over `StoreEvents`, default limits) with uvicorn, one worker, on
   127.0.0.1 and a free port. No coordinator loop runs, so the reads see a still store.
3. RPC: `--procs` load-generator processes, each with `--conns` threads holding keep-alive httpx clients, call
   `aicf.getJob` (the whole story: job, transitions, decisions, leases, proofs, result, payout) on random task
   ids for `--seconds`; requests/s over the wall time, p50/p99 over every call. The reference, a minimal
   Starlette endpoint (`minimal_app`: the same JSON-RPC body in, a job-shaped dict out, no store) in its own
   uvicorn worker, gets the same load right after, for `--runs` rounds; the ratio getJob / minimal is the
   headline (issue 18's target: >= 70 % at 16 clients).
4. WS: `--subscribers` websockets clients subscribe to jobAssigned; this process appends `--burst` events to the
   store in one transaction (as the coordinator does), the server's hub finds them at its next poll (50 ms), and
   fans them out; the next burst goes when every subscriber has the last one (a burst stays within the hub's
   per-subscriber queue of 1000, so no one is dropped as `lagged`). events/s = subscribers x events / time.
Prints a markdown table. Nothing leaves loopback.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cbor2
import httpx
from bench_rpc import free_port, run_workers, wait_ready  # the same script folder: shared loopback helpers
from reference import fmt_ratio, fmt_spread, interleave, load_average, ratios, rounds

ROOT = Path(__file__).resolve().parent.parent
START = 1_767_225_600
TOKEN = "bench"  # noqa: S105 - a local benchmark


def prepare(db: Path, n_jobs: int) -> list[str]:
    """Fill a SQLite store with n_jobs QUEUED AI jobs through devnet + ingest; returns their task ids (hex)."""
    from aicf.bootstrap.up import devnet_params
    from aicf.chain.devnet import Devnet, DevnetConfig
    from aicf.core.chain import TxKind
    from aicf.core.encoding import tagged_hash, to_hex
    from aicf.core.qasm import circuit_depth
    from aicf.service.ingest import ingest_available
    from aicf.store.sqlite import SqliteStore

    params = devnet_params()
    store = SqliteStore(str(db))
    devnet = Devnet(DevnetConfig(genesis_time=START, interval_s=10, issuance=10_000_000_000))
    per_caller = params.max_open_jobs
    for c in range((n_jobs + per_caller - 1) // per_caller):
        caller = tagged_hash("aicf/bench/requester/v1", c)[:20]
        devnet.submit(caller, TxKind.DEPOSIT, {"to": caller, "amount": 10**12})
        for i in range(min(per_caller, n_jobs - c * per_caller)):
            body = {"model": "llama3-8b", "prompt": b"bench %d/%d" % (c, i), "max_tokens": 8,
                    "max_runtime_ms": 20_000, "fee_per_unit": 40_000, "tier": 0}  # fmt: skip
            devnet.submit(caller, TxKind.AI_ENQUEUE, body)
    while devnet.mempool:
        devnet.mine(1)
        ingest_available(store, devnet, params, circuit_depth)
    devnet.mine(params.finality_depth)
    ingest_available(store, devnet, params, circuit_depth)
    with store.transaction() as tx:
        jobs = tx.list_jobs([], None, n_jobs + 10)
    store.close()
    return [to_hex(j.task_id) for j in jobs]


def serve(db: Path, port: int) -> None:
    import uvicorn

    from aicf.bootstrap.system import SystemConfig, build_system
    from aicf.bootstrap.up import devnet_params
    from aicf.store.sqlite import SqliteStore

    system = build_system(
        SqliteStore(str(db)), devnet_params(), SystemConfig(var=db.parent, model_digests={}, operator_token=TOKEN)
    )
    uvicorn.run(system.app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio", access_log=False)


def minimal_app() -> Any:
    """The reference: a minimal Starlette endpoint answering the same JSON-RPC body with a job-shaped result (a
    dict built from the id: no store, no validation, no registry). `GET /openrpc.json` answers for wait_ready."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def rpc(request: Request) -> JSONResponse:
        call = await request.json()
        task = call["params"]["id"]
        job = {"task_id": task, "status": "QUEUED", "kind": "ai", "tier": 0, "max_units_mu": 256_000,
               "escrow": 7_680_000, "created_at": START, "transitions": [], "leases": [], "proofs": []}  # fmt: skip
        return JSONResponse({"jsonrpc": "2.0", "id": call["id"], "result": job})

    async def openrpc(_: Request) -> JSONResponse:
        return JSONResponse({"openrpc": "1.3.2", "methods": []})

    return Starlette(routes=[Route("/rpc", rpc, methods=["POST"]), Route("/openrpc.json", openrpc)])


def serve_minimal(port: int) -> None:
    import uvicorn

    uvicorn.run(minimal_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def load_worker(
    url: str, ids: list[str], seconds: float, conns: int, seed: int, out: "multiprocessing.Queue[list[float]]"
) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def run(k: int) -> None:
        rng = random.Random(seed * 1000 + k)  # noqa: S311 - which job to ask for, not security
        mine = []
        with httpx.Client(base_url=url, timeout=10) as client:
            n = 0
            while time.perf_counter() < stop:
                body = {"jsonrpc": "2.0", "method": "aicf.getJob", "params": {"id": rng.choice(ids)}, "id": n}
                t0 = time.perf_counter()
                answer = client.post("/rpc", json=body).json()
                mine.append(time.perf_counter() - t0)
                if "result" not in answer:
                    raise SystemExit(f"unexpected answer {answer}")
                n += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(latencies)


def bench_rpc(url: str, ids: list[str], seconds: float, procs: int, conns: int) -> dict[str, Any]:
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=load_worker, args=(url, ids, seconds, conns, p, queue)) for p in range(procs)
    ]
    return run_workers(workers, queue, procs * conns)


def append_events(db: Path, n: int) -> int:
    """Append n jobAssigned events in one transaction (what the coordinator's matcher does); returns the last seq."""
    from aicf.store.sqlite import SqliteStore

    store = SqliteStore(str(db))
    try:
        with store.transaction() as tx:
            last = 0
            for k in range(n):
                data = cbor2.dumps({"task_id": bytes(32), "provider_id": bytes(32), "attempt": k}, canonical=True)
                last = tx.append_event("jobAssigned", data, START)
            tx.commit()
        return last
    finally:
        store.close()


async def bench_ws(url: str, db: Path, subscribers: int, bursts: int, burst: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://") + "/ws"
    conns = []
    for _ in range(subscribers):
        ws = await connect(ws_url, max_size=None)
        await ws.send(json.dumps({"op": "subscribe", "topics": ["jobAssigned"]}))
        ack = json.loads(await ws.recv())
        if ack.get("type") != "subscribed":
            raise SystemExit(f"subscribe refused: {ack}")
        conns.append(ws)

    async def drain(ws: Any, want: int) -> None:
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") != "event":
                raise SystemExit(f"subscriber got {message}")
            if message["seq"] >= want:
                return

    t0 = time.perf_counter()
    for _ in range(bursts):
        last = await asyncio.to_thread(append_events, db, burst)
        await asyncio.gather(*(drain(ws, last) for ws in conns))
    elapsed = time.perf_counter() - t0
    for ws in conns:
        await ws.close()
    n_events = bursts * burst
    return {"subscribers": subscribers, "events": n_events, "seconds": elapsed,
            "events_per_s": subscribers * n_events / elapsed}  # fmt: skip


API_TARGET = 0.70  # issue 18: getJob at >= 70 % of the minimal Starlette endpoint's rate at 16 clients


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=5.0, help="load time of each slice")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds of getJob and the minimal endpoint")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--skip-ws", action="store_true")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.runs < 1 or args.procs < 1 or args.conns < 1 or args.seconds <= 0:
        parser.error("--jobs, --runs, --procs and --conns must be at least 1, --seconds positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    if args.serve_minimal:
        serve_minimal(args.serve_minimal)
        return
    with tempfile.TemporaryDirectory(prefix="aicf-bench-api-") as tmp:
        db = Path(tmp) / "aicf.db"
        t0 = time.perf_counter()
        ids = prepare(db, args.jobs)
        setup_s = time.perf_counter() - t0
        port, ref_port = free_port(), free_port()
        url, ref_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ref_port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(db), str(port)], env=env)  # noqa: S603
        ref = subprocess.Popen([sys.executable, __file__, "--serve-minimal", str(ref_port)], env=env)  # noqa: S603
        last: dict[str, dict[str, Any]] = {}

        def measure(name: str, at: str) -> float:
            last[name] = bench_rpc(at, ids, args.seconds, args.procs, args.conns)
            return float(last[name]["rps"])

        try:
            wait_ready(url, timeout_s=60)
            wait_ready(ref_url, timeout_s=60)
            started_load = load_average()
            got = interleave(args.runs, [("getJob", lambda: measure("getJob", url)),
                                         ("minimal", lambda: measure("minimal", ref_url))])  # fmt: skip
            w = None if args.skip_ws else asyncio.run(bench_ws(url, db, args.subscribers, args.bursts, args.burst))
        finally:
            for p in (server, ref):
                p.terminate()
                p.wait(10)
    clients = args.procs * args.conns
    ok = "✔" if statistics.median(ratios(got["getJob"], got["minimal"])) >= API_TARGET else "✘"
    print(f"cpus: {os.cpu_count()}; server: the bootstrap's build_system app, SQLite store with {len(ids):,} jobs "
          f"(filled through devnet + ingest in {setup_s:.1f} s), 1 uvicorn worker on 127.0.0.1; the reference: a "
          f"minimal Starlette endpoint, 1 uvicorn worker\n")  # fmt: skip
    print(f"{started_load} at the start; 1 min load after each round: {', '.join(f'{x:.2f}' for x in got['load'])}\n")
    print(f"{clients} keep-alive clients in {args.procs} load processes, {args.seconds:g} s per slice, "
          f"{rounds(args.runs)} interleaved; min / **median** / max, the ratio round by round.\n")  # fmt: skip
    print("| benchmark | result | target |")
    print("|---|---|---|")
    print(f"| `aicf.getJob` req/s | {fmt_spread(got['getJob'])} | |")
    print(f"| minimal Starlette endpoint req/s | {fmt_spread(got['minimal'])} | |")
    print(f"| getJob / minimal | {fmt_ratio(got['getJob'], got['minimal'])} | ≥ {API_TARGET:.0%} {ok} |")
    for name in ("getJob", "minimal"):
        r = last[name]
        print(f"| {name}, last slice latency | p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
              f"mean {r['mean_ms']:.2f} ms | |")  # fmt: skip
    if w is not None:
        print(
            f"| WS `jobAssigned` from the store, {w['subscribers']} subscribers, {args.bursts} bursts of {args.burst} "
            f"events appended to SQLite | **{w['events_per_s']:,.0f} events/s** delivered "
            f"({w['events']:,} events x {w['subscribers']} in {w['seconds']:.2f} s) | |"
        )


if __name__ == "__main__":
    main()
