"""Which trap jobs the trap pass enqueues (SPEC §8, step 4 of aicf.service.trap_duties.trap_pass): the traps each
corpus model is due, their inputs drawn from the model's real jobs (aicf.service.trap_inputs), as far as the fund
and the trap budget pay them, and the trap callers' keys when the chain writer holds them."""

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol, runtime_checkable

from aicf.core.errors import RequestError
from aicf.core.jobs import JobStatus
from aicf.core.pricing import reserve_fee
from aicf.core.records import TrapRecord
from aicf.core.requests import validate_request
from aicf.service.context import TRAP_WARNING_EVERY_S, Context, TrapShortfall, Work
from aicf.service.steps import as_int, decode_request
from aicf.service.trap_funding import MAX_TRAPS_PER_PASS, Purse, note_throttled_trap
from aicf.service.trap_inputs import JobShape, draw_trap_input
from aicf.service.traps import trap_caller, trap_needs

log = logging.getLogger("aicf.coordinator")

REAL_SAMPLE = 512  # real jobs per status set a trap's shape and recycled prompt are drawn from
REAL_VERIFIED = (JobStatus.VERIFIED, JobStatus.SETTLED)  # jobs whose proof verified: their prompts may be recycled


@runtime_checkable
class TrapCallerKeys(Protocol):
    """A chain writer whose trap callers send their own transactions and so need keys (an EVM node: the caller
    is the address of a key derived from s_E and n, aicf.bootstrap.evm.trap_account); elsewhere trap n's caller
    is aicf.service.traps.trap_caller(s_E, n)."""

    def trap_caller(self, seed: bytes, n: int) -> bytes: ...

    def may_send(self) -> bool:
        """Whether this process sends to the chain now (an EVM replica holding the writer lock). The trap pass
        runs only then: its outbox rows (trap_seeds, traps) are written by the process that sends them."""
        ...

    def trap_fund_held(self) -> int:
        """µANM the chain holds for trap escrow now (the contract's trap fund): a trap it cannot pay is not sent."""
        ...


def new_traps(w: Work, epoch: int, purse: Purse) -> list[tuple[bytes, dict[str, object], int]]:
    """The traps due: (caller, ai_enqueue body, escrow the fund pays on chain for it), paid from `purse`."""
    tx, ctx, now = w.tx, w.ctx, w.now
    models = {c.model for c in ctx.trap_corpus}
    unlinked: dict[str, int] = {}
    for t in tx.open_traps(10_000):
        if not t.task_id:
            unlinked[t.model] = unlinked.get(t.model, 0) + 1
    counts = {m: n for m, n in tx.ai_job_counts().items() if m in models}
    needs = trap_needs(counts, tx.trap_counts(), unlinked, ctx.params)
    if not needs:
        return []
    seed = ctx.trap_seed(epoch)
    n = sum(tx.trap_counts().values())
    price = tx.get_meta("price_bps") or ctx.params.price_initial_bps
    floor = reserve_fee(ctx.params.base_rate_ai, price, ctx.params)  # what ingest accepts at this price
    recent, verified = _real_shapes(w)
    out: list[tuple[bytes, dict[str, object], int]] = []
    keyed = ctx.chain_writer if isinstance(ctx.chain_writer, TrapCallerKeys) else None
    if keyed is not None:  # the contract's trap fund pays on chain (fundings there are mined before this pass)
        purse.cap_fund(keyed.trap_fund_held())
    for model, count in needs.items():
        shapes = [s for s in recent.get(model, ()) if s.tier == 0]
        for _ in range(min(count, MAX_TRAPS_PER_PASS - len(out))):
            drawn = draw_trap_input(seed, n, model, ctx.trap_corpus, shapes, verified.get(model, ()), floor)
            if drawn is None:
                break
            body = drawn.body()
            caller = keyed.trap_caller(seed, n) if keyed is not None else trap_caller(seed, n)
            try:
                valid = validate_request({"kind": "ai", **body}, ctx.params, price, lambda _: 1)
            except RequestError as exc:
                log.warning("trap for %s not enqueued: %s", model, exc)
                break
            if purse.fund < valid.escrow:
                _note_unfunded_trap(ctx, model, valid.escrow, max(purse.fund, 0), now)
                purse.held = True
                return out
            if purse.budget < valid.escrow:  # the trap rate adapts to the budget: due traps wait for the next income
                note_throttled_trap(ctx, model, valid.escrow, max(purse.budget, 0), now)
                purse.held = True
                return out
            trap = TrapRecord(
                caller=caller,
                n=n,
                epoch=epoch,
                model=model,
                prompt=drawn.prompt,
                max_tokens=drawn.max_tokens,
                funded=valid.escrow,
                created_at=now,
            )
            if not tx.insert_trap(trap):
                return out  # another replica took this number
            purse.spend(valid.escrow)
            out.append((caller, body, valid.escrow))
            n += 1
    return out


def _note_unfunded_trap(ctx: Context, model: str, escrow: int, fund: int, now: int) -> None:
    """Count a trap the fund could not pay (/metrics, getStatus); warn at most once per TRAP_WARNING_EVERY_S
    per model, saying how many were counted since the last warning."""
    shortfalls = ctx.caches.trap_shortfalls
    last = shortfalls.get(model)
    count = (last.count if last else 0) + 1
    if last is None or now - last.warned_at >= TRAP_WARNING_EVERY_S:
        since = f"; {count - last.warned_count} since the last warning" if last else ""
        log.warning("the fund (%d µANM) cannot pay the escrow of a %s trap (%d µANM)%s", fund, model, escrow, since)
        shortfalls[model] = TrapShortfall(count=count, escrow=escrow, warned_at=now, warned_count=count)
    else:
        shortfalls[model] = replace(last, count=count, escrow=escrow)


def _real_shapes(w: Work) -> tuple[dict[str, list[JobShape]], dict[str, list[JobShape]]]:
    """The request shapes of real (non-trap) AI jobs per model: open and verified ones (the template pool), and
    the verified ones alone (the prompts a trap may recycle). Each list is a deterministic sample of the store:
    the first REAL_SAMPLE jobs of each status set by task id (task ids are hashes, so it is an unbiased sample)."""
    tx = w.tx
    recent: dict[str, list[JobShape]] = {}
    verified: dict[str, list[JobShape]] = {}
    for statuses, into in (((JobStatus.PENDING, JobStatus.QUEUED), None), (REAL_VERIFIED, verified)):
        for job in tx.list_jobs(list(statuses), None, REAL_SAMPLE):
            if job.kind != "ai" or tx.get_trap(job.caller) is not None:
                continue
            shape = _shape(decode_request(job), job.tier)
            recent.setdefault(job.model, []).append(shape)
            if into is not None:
                into.setdefault(job.model, []).append(shape)
    return recent, verified


def _shape(request: Mapping[str, object], tier: int) -> JobShape:
    prompt = request.get("prompt")
    regions = request.get("regions")
    deadline = request.get("deadline_blocks")
    return JobShape(
        prompt=prompt if isinstance(prompt, bytes) else b"",
        max_tokens=as_int(request.get("max_tokens")),
        max_runtime_ms=as_int(request.get("max_runtime_ms")),
        fee_per_unit=as_int(request.get("fee_per_unit")),
        tier=tier,
        deadline_blocks=as_int(deadline) if deadline is not None else None,
        regions=tuple(r for r in regions if isinstance(r, str)) if isinstance(regions, list) else (),
    )
