"""API benchmark (issue 7, item 7): JSON-RPC read requests/s and p99 latency, and WS events/s to 100 subscribers.

Run: .venv/bin/python benchmarks/bench_rpc.py [--seconds S] [--procs N] [--conns N] [--subscribers N] [--events N]

The benchmark starts a real uvicorn (one worker, 127.0.0.1, a free port) in a child process serving the API
framework with a stand-in read method `bench.getJob` (a dict lookup rendered like a job: ids as 0x hex,
integers) and an operator method `bench.emit` that appends events to an in-memory event source. Nothing
leaves loopback.
1. RPC: `--procs` load-generator processes, each with `--conns` threads holding keep-alive httpx clients,
   call bench.getJob for `--seconds`; requests/s is the total of answered calls over the wall time, p50/p99
   are over every call's latency.
2. WS: `--subscribers` async websockets clients subscribe to jobAssigned; one `bench.emit` appends `--events`
   events in one go; events/s is subscribers x events over the time until the last subscriber has them all.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def serve(port: int) -> None:
    import uvicorn
    from pydantic import Field

    from aicf.transports.asgi import build_app
    from aicf.transports.rpc import CallContext, Registry, RpcMethod
    from aicf.transports.schemas import Hex32, WireModel
    from aicf.transports.ws import MemoryEventSource, WsLimits

    class GetJob(WireModel):
        task_id: Hex32

    class Emit(WireModel):
        n: int = Field(ge=1, le=1_000_000)

    jobs = {
        i.to_bytes(32, "big"): {
            "task_id": i.to_bytes(32, "big"),
            "status": "QUEUED",
            "kind": "ai",
            "tier": 1,
            "max_units_mu": 256_000,
            "escrow": 7_680_000,
            "created_at": 1_700_000_000 + i,
            "provider_id": bytes(32),
        }
        for i in range(1000)
    }
    events = MemoryEventSource()

    def get_job(p: GetJob, _: CallContext) -> object:
        return jobs.get(p.task_id)

    def emit(p: Emit, _: CallContext) -> int:
        events.append_many(("jobAssigned", {"task_id": bytes(32), "attempt": k}) for k in range(p.n))
        app.state.events.notify()
        return events.latest_seq()

    class Clock:
        def now(self) -> int:
            return int(time.time())

    registry = Registry(
        [
            RpcMethod(name="bench.getJob", params_model=GetJob, handler=get_job, access="read", summary="job"),
            RpcMethod(name="bench.emit", params_model=Emit, handler=emit, access="operator", summary="emit"),
        ]
    )
    app = build_app(registry, events, Clock(), "bench", lambda _: None, ws_limits=WsLimits(queue_max=1_000_000))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/openrpc.json", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start")


def load_worker(url: str, seconds: float, conns: int, out: "multiprocessing.Queue[list[float]]") -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def run(k: int) -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=10) as client:
            i = k
            while time.perf_counter() < stop:
                body = {
                    "jsonrpc": "2.0",
                    "method": "bench.getJob",
                    "params": {"task_id": "0x" + (i % 1000).to_bytes(32, "big").hex()},
                    "id": i,
                }
                t0 = time.perf_counter()
                answer = client.post("/rpc", json=body).json()
                mine.append(time.perf_counter() - t0)
                if "result" not in answer:
                    raise SystemExit(f"unexpected answer {answer}")
                i += conns
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(latencies)


def bench_rpc(url: str, seconds: float, procs: int, conns: int) -> dict[str, Any]:
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=load_worker, args=(url, seconds, conns, queue)) for _ in range(procs)]
    return run_workers(workers, queue, procs * conns)


def run_workers(
    workers: list[multiprocessing.Process], queue: "multiprocessing.Queue[list[float]]", clients: int
) -> dict[str, Any]:
    """Start the load processes, gather each one's latencies from `queue`, and summarise them."""
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    latencies = [x for _ in workers for x in queue.get()]
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "mean_ms": 1000 * statistics.fmean(latencies),
        "clients": clients,
    }


async def bench_ws(url: str, subscribers: int, n_events: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://") + "/ws"
    conns = []
    for _ in range(subscribers):
        ws = await connect(ws_url, max_size=None)
        await ws.send(json.dumps({"op": "subscribe", "topics": ["jobAssigned"]}))
        ack = json.loads(await ws.recv())
        conns.append(ws)
    start_seq = ack["from_seq"]
    done_at: list[float] = []

    async def drain(ws: Any) -> None:
        want = start_seq + n_events - 1
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") != "event":
                raise SystemExit(f"subscriber got {message}")
            if message["seq"] == want:
                done_at.append(time.perf_counter())
                return

    tasks = [asyncio.create_task(drain(ws)) for ws in conns]
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        t0 = time.perf_counter()
        answer = await client.post(
            "/rpc",
            json={"jsonrpc": "2.0", "method": "bench.emit", "params": {"n": n_events}, "id": 1},
            headers={"Authorization": "Bearer bench"},
        )
        if "result" not in answer.json():
            raise SystemExit(answer.text)
        await asyncio.gather(*tasks)
    elapsed = max(done_at) - t0
    for ws in conns:
        await ws.close()
    return {
        "subscribers": subscribers,
        "events": n_events,
        "seconds": elapsed,
        "events_per_s": subscribers * n_events / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)  # noqa: S603
    try:
        wait_ready(url)
        print(f"cpus: {os.cpu_count()}, server: 1 uvicorn worker on 127.0.0.1:{port}")
        r = bench_rpc(url, args.seconds, args.procs, args.conns)
        print(
            f"rpc bench.getJob: {r['requests']} requests, {r['clients']} keep-alive clients, {args.seconds:.0f} s: "
            f"{r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, mean {r['mean_ms']:.2f} ms"
        )
        w = asyncio.run(bench_ws(url, args.subscribers, args.events))
        print(
            f"ws: {w['events']} events to {w['subscribers']} subscribers in {w['seconds']:.2f} s: "
            f"{w['events_per_s']:,.0f} events/s delivered"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
