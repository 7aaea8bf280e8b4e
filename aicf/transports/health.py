"""GET /healthz (liveness) and GET /readyz (readiness), and the same values for /metrics (docs/API.md).

- `/healthz` answers 200 whenever the process serves HTTP: it reads nothing, so a restart is never ordered
  because the database is slow. A load balancer or an orchestrator restarts the process when it fails.
- `/readyz` answers 200 only when the coordinator can do its work: the database answers, the last successful
  coordinator pass is recent, ingest is close to the chain head, and nothing has wedged it (a reorg below
  finality). Otherwise 503, with every reason. Traffic is sent to the process only while it is ready.

The composition root supplies the facts through one callable returning a `Readiness`; `probe` builds one from
the pieces the coordinator has (its last successful pass, a database read, the chain's head), so the callable is
usually `lambda: probe(now=clock.now(), last_pass_at=..., stored_head=..., chain_head=...)`. The callable runs in
a worker thread, with a deadline: a database that hangs makes the probe answer 503, not hang with it.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

log = logging.getLogger("aicf.transports.health")

NO_VALUE: Final = -1  # last_pass_age_s / ingest_lag_blocks when unknown (no pass yet, database down)


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness:
    database_up: bool
    database_error: str = ""  # why the database read failed ("" when it answered)
    last_pass_age_s: int = NO_VALUE  # seconds since the last successful coordinator pass; -1: none yet
    ingest_lag_blocks: int = NO_VALUE  # chain head height minus the ingested head height; -1: unknown
    wedged: str = ""  # why the coordinator cannot go on by itself (a reorg below finality); "" when it can
    store_failure: str = ""  # why the last coordinator pass failed on the database (read-only, full); "": none


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyLimits:
    max_pass_age_s: int = 30  # the coordinator passes about every second: 30 s without one is an outage
    max_ingest_lag_blocks: int = 12  # two finality depths behind the chain head
    probe_timeout_s: float = 5.0  # the readiness callable's deadline


def not_ready_reasons(r: Readiness, limits: ReadyLimits) -> list[str]:
    """Why `r` is not ready under `limits`, one sentence each; empty when it is ready."""
    reasons: list[str] = []
    if not r.database_up:
        reasons.append(f"the database does not answer: {r.database_error or 'no reason given'}")
    if r.last_pass_age_s == NO_VALUE:
        reasons.append("no coordinator pass has succeeded yet")
    elif r.last_pass_age_s > limits.max_pass_age_s:
        reasons.append(
            f"the last successful coordinator pass was {r.last_pass_age_s} s ago (limit {limits.max_pass_age_s} s)"
        )
    if r.database_up and r.ingest_lag_blocks > limits.max_ingest_lag_blocks:
        reasons.append(
            f"ingest is {r.ingest_lag_blocks} blocks behind the chain (limit {limits.max_ingest_lag_blocks})"
        )
    if r.store_failure:
        reasons.append(f"the last coordinator pass failed: {r.store_failure}")
    if r.wedged:
        reasons.append(f"the coordinator is wedged: {r.wedged}")
    return reasons


def is_ready(r: Readiness, limits: ReadyLimits) -> bool:
    return not not_ready_reasons(r, limits)


def probe(
    *,
    now: int,
    last_pass_at: int | None,
    stored_head: Callable[[], int | None],
    chain_head: Callable[[], int],
    wedged: Callable[[], str] = lambda: "",
    store_failure: str = "",
) -> Readiness:
    """A Readiness from the coordinator's pieces. `stored_head` reads the ingested head height from the database
    (None before the first block): any exception it raises means the database is not reachable. `chain_head` is
    the chain's head height; `last_pass_at` the time of the last successful coordinator pass (None: none yet)."""
    age = NO_VALUE if last_pass_at is None else max(0, now - last_pass_at)
    try:
        stored = stored_head()
    except Exception as exc:  # noqa: BLE001 - any failure of the read is the answer "not reachable", not a bug
        return Readiness(database_up=False, database_error=f"{type(exc).__name__}: {exc}"[:300], last_pass_age_s=age,
                         wedged=wedged(), store_failure=store_failure[:300])  # fmt: skip
    lag = max(0, chain_head() - (stored if stored is not None else -1))
    return Readiness(database_up=True, last_pass_age_s=age, ingest_lag_blocks=lag, wedged=wedged(),
                     store_failure=store_failure[:300])  # fmt: skip


def _body(r: Readiness, reasons: Sequence[str]) -> dict[str, object]:
    return {
        "status": "not ready" if reasons else "ready",
        "reasons": list(reasons),
        "database_up": r.database_up,
        "last_pass_age_s": r.last_pass_age_s,
        "ingest_lag_blocks": r.ingest_lag_blocks,
        "wedged": r.wedged or None,
        "store_failure": r.store_failure or None,
    }


def health_routes(readiness: Callable[[], Readiness], limits: ReadyLimits | None = None) -> list[BaseRoute]:
    """`GET /healthz` and `GET /readyz`, for the app's `extra_routes`; `readiness` is called once per /readyz."""
    limits = limits or ReadyLimits()

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> JSONResponse:
        try:
            async with asyncio.timeout(limits.probe_timeout_s):
                found = await run_in_threadpool(readiness)
        except TimeoutError:
            reason = f"the readiness probe did not finish within {limits.probe_timeout_s:g} s"
            return JSONResponse({"status": "not ready", "reasons": [reason]}, status_code=503)
        except Exception:
            log.exception("readiness probe failed")
            return JSONResponse({"status": "not ready", "reasons": ["the readiness probe failed"]}, status_code=503)
        reasons = not_ready_reasons(found, limits)
        return JSONResponse(_body(found, reasons), status_code=503 if reasons else 200)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
