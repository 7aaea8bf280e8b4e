"""The coordinator's JSON-RPC methods (SPEC §12): parse params, call a use-case, render. No rules here.

Read methods are public; provider methods carry a signed `auth`; operator methods need the operator token.
On the wire integers stay JSON integers and bytes are 0x hex.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import cbor2
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pydantic import Field, create_model

from aicf.client.signing import deployment_id
from aicf.core.assignment import effective_unit_rate
from aicf.core.capacity import QUEUE_CLEAR_S
from aicf.core.cbor_limits import ENVELOPE_CBOR_LIMITS, UntrustedCborError, scan_cbor
from aicf.core.chain import Job
from aicf.core.clock import Clock
from aicf.core.encoding import tagged_hash, to_hex
from aicf.core.errors import AicfError
from aicf.core.jobs import JobStatus
from aicf.core.ledger import is_account
from aicf.core.params import Params
from aicf.core.records import BatchRecord, LeaseRecord, ProofRecord, Provider, ResultRecord, SlashRecord
from aicf.core.settlement import Payout
from aicf.service import operator_calls, operator_ops, reads
from aicf.service.collateral import CollateralWatch
from aicf.service.coordinator import (
    KINDS,
    MAX_DEVICES,
    MAX_MODELS,
    MAX_NAME_CHARS,
    TEE_CLASSES,
    Capabilities,
    Coordinator,
    LeaseWork,
    ProofOutcome,
    TrapShortfall,
)
from aicf.service.errors import NotFoundError
from aicf.service.ports import Store
from aicf.service.proof_groups import MAX_PROOF_GROUP
from aicf.service.trust import COLLATERAL_ALARM_S, ExpiryItem
from aicf.transports import results
from aicf.transports.errors import InvalidParamsError, error_object
from aicf.transports.methods_operator import operator_methods
from aicf.transports.methods_trust import trust_methods
from aicf.transports.rpc import CallContext, Registry, RpcMethod, decode_cursor, encode_cursor
from aicf.transports.schemas import Hex, Hex32, PageParams, Uint, WireModel

Json = Any
CURSOR_TAG = "aicf/cursor/v2"


# -- params ----------------------------------------------------------------------------------------------
class ById(WireModel):
    id: Hex32


class ListJobsParams(PageParams):
    statuses: Annotated[tuple[JobStatus, ...], Field(max_length=9)] = ()


class BalanceParams(WireModel):
    account: Annotated[str, Field(max_length=100)]


class EpochParams(WireModel):
    epoch: Uint


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]  # issue 15: text from outside is bounded


class RegisterParams(WireModel):
    public_key: Hex32
    kinds: Annotated[tuple[Name, ...], Field(min_length=1, max_length=len(KINDS))]
    models: Annotated[tuple[Name, ...], Field(max_length=MAX_MODELS)] = ()
    devices: Annotated[tuple[Name, ...], Field(max_length=MAX_DEVICES)] = ()
    regions: Annotated[tuple[Name, ...], Field(max_length=16)] = ()
    tee_classes: Annotated[tuple[Name, ...], Field(max_length=len(TEE_CLASSES))] = ()
    max_leases: Annotated[int, Field(ge=1, le=64)] = 4  # narrowed to 1..params.max_leases by build_registry
    unit_burst_mu: Uint = 0  # 0: SPEC §6's burst; the coordinator refuses more than SPEC's
    unit_rate_mu_per_day: Uint = 0  # 0: SPEC §6's refill
    # µANM bonded from provider:<id> at registration (absent: the whole balance); at least params.min_stake
    stake: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class AmountParams(WireModel):
    amount: Annotated[int, Field(ge=1, le=2**63 - 1)]


class FundParams(WireModel):
    provider_id: Hex32
    amount: Annotated[int, Field(ge=1, le=2**63 - 1)]


class LeaseParams(WireModel):
    lease_id: Hex32


class HeartbeatParams(WireModel):
    lease_ids: Annotated[tuple[Hex32, ...], Field(max_length=64)] = ()  # the leases being worked on: checked


class SubmitParams(WireModel):
    envelope: Hex  # canonical CBOR of the envelope map


class SubmitProofsParams(WireModel):
    envelopes: Annotated[tuple[Hex, ...], Field(min_length=1, max_length=MAX_PROOF_GROUP)]  # canonical CBOR each


class ClaimParams(WireModel):
    nonce: Uint


class NoParams(WireModel):
    pass


# -- rendering -------------------------------------------------------------------------------------------
def render_provider(view: reads.ProviderView, params: Params) -> Json:
    p = view.provider
    rate = effective_unit_rate(p.unit_burst_mu, p.unit_rate_mu_per_day, params)
    return {
        "provider_id": to_hex(p.provider_id),
        "status": p.status.value,
        "kinds": list(p.kinds),
        "models": list(p.models),
        "regions": list(p.regions),
        "tee_classes": list(p.tee_classes),
        "devices": list(p.devices),
        "bonded_stake": p.bonded,
        "unbonding_stake": p.unbonding,
        "max_leases": p.max_leases,
        "unit_burst_mu": rate.burst_mu,
        "unit_rate_mu_per_day": rate.rate_mu_per_day,
        "live_leases": view.live_leases,
        "proofs_accepted": view.proofs_accepted,
        "slashes": view.slashes,
        "latency_p50_ms": view.latency_p50_ms,
        "latency_p95_ms": view.latency_p95_ms,
        "availability_bps": view.availability_bps,
        "last_heartbeat_at": p.last_heartbeat_at,
        "jailed_until": p.jailed_until,
        "registered_at": p.registered_at,
    }


def render_provider_record(p: Provider, params: Params) -> Json:
    """A provider after a registry call, with the unit-rate limits its bucket runs with (its own or SPEC's)."""
    rate = effective_unit_rate(p.unit_burst_mu, p.unit_rate_mu_per_day, params)
    return {"provider_id": to_hex(p.provider_id), "status": p.status.value, "bonded_stake": p.bonded,
            "unbonding_stake": p.unbonding, "kinds": list(p.kinds), "models": list(p.models),
            "max_leases": p.max_leases, "unit_burst_mu": rate.burst_mu,
            "unit_rate_mu_per_day": rate.rate_mu_per_day}  # fmt: skip


def render_job(job: Job, provider_id: bytes | None = None) -> Json:
    """A job; `provider_id` is its latest lease's provider (None: never leased), as docs/DASHBOARD.md shows."""
    return {
        "task_id": to_hex(job.task_id),
        "provider_id": to_hex(provider_id) if provider_id is not None else None,
        "kind": job.kind,
        "model": job.model,
        "status": job.status.value,
        "tier": job.tier,
        "attempts": job.attempts,
        "caller": to_hex(job.caller),
        "enqueue_height": job.enqueue_height,
        "fee_per_unit": job.fee_per_unit,
        "max_units_mu": job.max_units_mu,
        "escrow": job.escrow,
        "deadline_height": job.deadline_height,
        "not_before": job.not_before,
        "payload_hash": to_hex(job.payload_hash),
    }


def render_lease(lease: LeaseRecord) -> Json:
    return {
        "lease_id": to_hex(lease.lease_id),
        "task_id": to_hex(lease.task_id),
        "provider_id": to_hex(lease.provider_id),
        "attempt": lease.attempt,
        "granted_at": lease.granted_at,
        "expires_at": lease.expires_at,
        "status": lease.status.value,
        "ended_at": lease.ended_at,
    }


def render_proof(proof: ProofRecord) -> Json:
    return {
        "proof_id": to_hex(proof.proof_id),
        "lease_id": to_hex(proof.lease_id),
        "provider_id": to_hex(proof.provider_id),
        "kind": proof.kind,
        "verdict": proof.verdict,
        "message": proof.message,
        "units_mu": proof.units_mu,
        "latency_ms": proof.latency_ms,
        "received_at": proof.received_at,
    }


def render_result(r: ResultRecord) -> Json:
    return {
        "task_id": to_hex(r.task_id),
        "proof_id": to_hex(r.proof_id),
        "kind": r.kind,
        "output_digest": to_hex(r.output_digest),
        "units_mu": r.units_mu,
        "qos": dict(r.qos),
        "height": r.height,
        "miner_id": to_hex(r.miner_id),
        "provider_id": to_hex(r.provider_id),
    }


def render_payout(p: Payout) -> Json:
    return {k: to_hex(v) if isinstance(v, bytes) else v for k, v in p.to_map().items()}


def render_batch(batch: BatchRecord, payouts: Sequence[Payout] | None = None, params: Params | None = None) -> Json:
    """A settled batch; with `params`, its cap use (Σ units_mu × 10000 // (Γ × 1000)) as /metrics reports it."""
    decoded = cbor2.loads(batch.batch)
    totals = decoded.get("totals", {}) if isinstance(decoded, dict) else {}
    out: Json = {
        "epoch": batch.epoch,
        "finalized_height": batch.finalized_height,
        "price_bps": batch.price_bps,
        "next_price_bps": batch.next_price_bps,
        "root": to_hex(batch.root),
        "params_hash": to_hex(batch.params_hash),
        "payout_count": batch.payouts,
        "carried_count": batch.carried,
        "totals": totals,
        "treasury_before": batch.treasury_before,
    }
    if params is not None:
        out["cap_use_bps"] = batch.units_mu * 10_000 // params.gamma_mu
    if payouts is not None:
        out["payouts"] = [render_payout(p) for p in payouts]
    return out


def render_slash(s: SlashRecord) -> Json:
    return {
        "provider_id": to_hex(s.provider_id),
        "reason": s.reason,
        "amount": s.amount,
        "task_id": to_hex(s.task_id),
        "evidence_hash": to_hex(s.evidence_hash),
        "time": s.time,
        "jailed_until": s.jailed_until,
    }


def render_work(w: LeaseWork) -> Json:
    out: Json = {
        "lease_id": to_hex(w.lease.lease_id),
        "task_id": to_hex(w.lease.task_id),
        "attempt": w.lease.attempt,
        "expires_at": w.lease.expires_at,
        "kind": w.job.kind,
        "model": w.job.model,
    }
    if w.job.kind == "ai":
        prompt = w.request.get("prompt")
        out |= {
            "prompt": to_hex(prompt if isinstance(prompt, bytes) else b""),
            "max_tokens": w.request.get("max_tokens"),
            "max_runtime_ms": w.request.get("max_runtime_ms"),
        }
    else:  # only the batch: the job circuit and its digest would tell it from the traps (issue 14)
        out |= {
            "shots": w.request.get("shots"),
            "batch": [to_hex(c) for c in w.batch],
            "batch_shots": list(w.batch_shots),
        }
    return out


def render_group_item(o: ProofOutcome | AicfError) -> Json:
    """One proof of an `aicf.submitProofs` group: its outcome, or the error it alone met ({"error": {code, ...}})."""
    return {"error": error_object(o)} if isinstance(o, AicfError) else render_outcome(o)


def render_outcome(o: ProofOutcome) -> Json:
    return {"proof_id": to_hex(o.proof_id), "accepted": o.accepted, "code": o.code, "message": o.message,
            "units_mu": o.units_mu, "slashed": o.slashed, "dropped": o.dropped}  # fmt: skip


def _after(cursor: str | None, scope: str, secret: bytes) -> bytes | None:
    if cursor is None:
        return None
    (key,) = decode_cursor(cursor, (bytes,), scope, secret)
    return key if isinstance(key, bytes) else None


def _page(items: list[Json], rows: int, limit: int, last_key: bytes | None, scope: str, secret: bytes) -> Json:
    more = rows > limit
    cursor = encode_cursor((last_key,), scope, secret) if more and last_key else None
    return {"items": items[:limit], "next_cursor": cursor}


def build_registry(
    coord: Coordinator,
    store: Store,
    clock: Clock,
    params: Params,
    *,
    collateral: CollateralWatch | None = None,
    chain_id: int = 0,
    send_operator: Callable[[Mapping[str, object]], bytes] | None = None,
) -> Registry:
    """Every SPEC §12 method, plus aicf.getStatus for the dashboard and operator helpers for the devnet.
    `collateral`: what accepted TEE evidence relied on (the verifier's watch), alarmed next to the pinned roots.
    `chain_id` and the coordinator's key make the deployment id provider signatures cover (aicf.getDeployment)."""
    coordinator_key = coord.operator_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    deployment = {"chain_id": chain_id, "coordinator_key": to_hex(coordinator_key),
                  "deployment_id": to_hex(deployment_id(chain_id, coordinator_key))}  # fmt: skip

    # cursors are authenticated with a key every replica of this coordinator derives alike (issue 15)
    cursor_secret = tagged_hash(
        CURSOR_TAG, coord.operator_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    )

    # the schema states the max_leases range the coordinator enforces (params.max_leases), not a wider one
    register_model = create_model(
        "RegisterParams",
        __base__=RegisterParams,
        max_leases=(Annotated[int, Field(ge=1, le=params.max_leases)], min(4, params.max_leases)),
    )

    def get_deployment(_: NoParams, __: CallContext) -> Json:
        return deployment

    def in_force(epoch: int | None = None) -> Params:
        """The params of `epoch` (default: the head's): `params` is the node's file, version 0 of them."""
        return operator_ops.params_in_force(store, params, epoch)

    def provider_of(ctx: CallContext) -> bytes:
        if ctx.provider_id is None:  # the framework verified auth before calling us
            raise InvalidParamsError([("auth", "missing")])
        return ctx.provider_id

    def list_providers(p: PageParams, _: CallContext) -> Json:
        after = _after(p.cursor, "aicf.listProviders", cursor_secret)
        live = in_force()
        views = reads.list_providers(store, clock.now(), live, after, p.limit + 1)
        items = [render_provider(v, live) for v in views]
        last = views[min(len(views), p.limit) - 1].provider.provider_id if views else None
        return _page(items, len(views), p.limit, last, "aicf.listProviders", cursor_secret)

    def get_provider(p: ById, _: CallContext) -> Json:
        live = in_force()
        view = reads.get_provider(store, p.id, clock.now(), live)
        if view is None:
            raise NotFoundError(f"provider {to_hex(p.id)}")
        return render_provider(view, live)

    def list_jobs(p: ListJobsParams, _: CallContext) -> Json:
        jobs = reads.list_jobs_with_providers(
            store, p.statuses, _after(p.cursor, "aicf.listJobs", cursor_secret), p.limit + 1
        )
        last = jobs[min(len(jobs), p.limit) - 1][0].task_id if jobs else None
        return _page(
            [render_job(j, provider) for j, provider in jobs], len(jobs), p.limit, last, "aicf.listJobs", cursor_secret
        )

    def get_job(p: ById, _: CallContext) -> Json:
        story = reads.job_story(store, p.id)
        if story is None:
            raise NotFoundError(f"job {to_hex(p.id)}")
        held = story.job.status not in reads.UNHELD
        return {
            **render_job(story.job, reads.latest_provider(story.leases) if held else None),
            "transitions": [
                {
                    "from": t.frm.value if t.frm else None,
                    "to": t.to.value,
                    "reason": t.reason,
                    "height": t.height,
                    "time": t.time,
                }
                for t in story.transitions
            ],
            "decisions": [cbor_json(cbor2.loads(d.decision)) for d in story.decisions],
            "leases": [render_lease(lease) for lease in story.leases],
            "proofs": [render_proof(pr) for pr in story.proofs],
            "result": render_result(story.result) if story.result else None,
            "payout": render_payout(story.payout) if story.payout else None,
        }

    def get_balance(p: BalanceParams, _: CallContext) -> Json:
        if not is_account(p.account):
            raise InvalidParamsError([("account", "not an account name (e.g. treasury, provider:0x…)")])
        return {"account": p.account, "balance": reads.get_balances(store, [p.account])[p.account]}

    def get_result(p: ById, _: CallContext) -> Json:
        result = reads.get_result(store, p.id)
        if result is None:
            raise NotFoundError(f"result of {to_hex(p.id)}")
        return render_result(result)

    def get_epoch(p: EpochParams, _: CallContext) -> Json:
        found = reads.get_epoch(store, p.epoch)
        if found is None:
            raise NotFoundError(f"epoch {p.epoch} batch (not settled yet)")
        batch, payouts = found
        return render_batch(batch, payouts, in_force(p.epoch))  # Γ of the batch's own epoch

    def get_status(_: NoParams, __: CallContext) -> Json:
        s = reads.status(store, clock.now(), params)  # judged by s.params, the params in force at its head
        queues = reads.queues_by_kind(store, s.now, s.params)
        providers = reads.list_providers(store, s.now, s.params, None, 1000)
        budgets = reads.provider_job_budgets(store, s.params)
        return {
            "now": s.now,
            "head_height": s.head_height,
            "finalized_height": s.finalized_height,
            "current_epoch": s.current_epoch,
            "last_settled_epoch": s.last_settled_epoch,
            "queue": {
                "by_status": {st.value: s.job_counts.get(st, 0) for st in JobStatus},
                "oldest_queued_age_s": s.oldest_queued_age_s,
                "by_kind": [render_kind_queue(q) for q in queues],
            },
            "treasury": {
                "treasury_balance": s.treasury,
                "fund_balance": s.fund,
                "budget_throttle_active": s.throttled,
                "cap_use_bps": s.cap_use_bps,
                "price_bps": s.price_bps,
            },
            "alarms": _alarms(s)
            + operator_alarms(queues, providers, budgets, coord.trap_shortfalls, s.fund)
            + trap_budget_alarms(coord.trap_throttles, operator_ops.trap_budget_left(store, coord.base_params))
            + _collateral_alarms(
                coord.trust.root_expiries() + (collateral.expiries() if collateral is not None else ()), s.now
            ),
            "recent_slashes": [render_slash(x) for x in s.recent_slashes],
            "latest_seq": s.latest_seq,
            "assignments_total": s.assignments_total,
            "retries_total": s.retries_total,
            "operator": operator_calls.operator_status(store, params),  # params version, pending and applied changes
            "outages": {
                "count": len(s.outages),
                "credited_s": sum(o.gap_s for o in s.outages),
                "recent": [
                    {"started_at": o.started_at, "ended_at": o.ended_at, "gap_s": o.gap_s} for o in s.outages[-10:]
                ],
            },
        }

    def register(p: RegisterParams, ctx: CallContext) -> Json:
        caps = Capabilities(kinds=p.kinds, models=p.models, devices=p.devices, regions=p.regions,
                            tee_classes=p.tee_classes, max_leases=p.max_leases, unit_burst_mu=p.unit_burst_mu,
                            unit_rate_mu_per_day=p.unit_rate_mu_per_day)  # fmt: skip
        return render_provider_record(coord.register_staked(p.public_key, caps, p.stake), in_force())

    def stake(p: AmountParams, ctx: CallContext) -> Json:
        return render_provider_record(coord.deposit_stake(provider_of(ctx), p.amount), in_force())

    def withdraw(p: AmountParams, ctx: CallContext) -> Json:
        return render_provider_record(coord.withdraw_stake(provider_of(ctx), p.amount), in_force())

    def fund_provider(p: FundParams, _: CallContext) -> Json:
        if reads.get_provider_record(store, p.provider_id) is None:  # not registered yet: its stake-to-be
            balance = coord.fund_unregistered(p.provider_id, p.amount)
            return {"provider_id": to_hex(p.provider_id), "status": "UNREGISTERED", "balance": balance,
                    "bonded_stake": 0, "unbonding_stake": 0}  # fmt: skip
        return render_provider_record(coord.deposit_stake(p.provider_id, p.amount, source="external"), in_force())

    def heartbeat(p: HeartbeatParams, ctx: CallContext) -> Json:
        leases = coord.heartbeat(provider_of(ctx), p.lease_ids)
        return {"now": clock.now(), "leases": [to_hex(lease.lease_id) for lease in leases]}

    def next_lease(_: NoParams, ctx: CallContext) -> Json:
        return {"items": [render_work(w) for w in coord.leases_for(provider_of(ctx))], "next_cursor": None}

    def release(p: LeaseParams, ctx: CallContext) -> Json:
        return render_lease(coord.release(provider_of(ctx), p.lease_id))

    def envelope_map(envelope: bytes, field: str, ctx: CallContext) -> dict[str, object]:
        try:
            scan_cbor(envelope, ENVELOPE_CBOR_LIMITS, field)  # bounded, before cbor2 builds anything
            raw = cbor2.loads(envelope)
        except UntrustedCborError as exc:
            raise InvalidParamsError([(field, f"{exc.reason} (send the canonical CBOR of the envelope map)")]) from None
        if not isinstance(raw, dict) or raw.get("provider_id") != provider_of(ctx):
            raise InvalidParamsError([(field, "must be a map whose provider_id is the signer of this call")])
        return raw

    def submit_proof(p: SubmitParams, ctx: CallContext) -> Json:
        return render_outcome(coord.submit_proof(envelope_map(p.envelope, "envelope", ctx)))

    def submit_proofs(p: SubmitProofsParams, ctx: CallContext) -> Json:
        raws = [envelope_map(e, f"envelopes[{i}]", ctx) for i, e in enumerate(p.envelopes)]  # all, or none runs
        return {"items": [render_group_item(o) for o in coord.submit_proofs(raws)]}

    def claim(p: ClaimParams, ctx: CallContext) -> Json:
        c = coord.claim_payout(provider_of(ctx), p.nonce)
        return {"claim_id": to_hex(c.claim_id), "amount": c.amount, "provider_id": to_hex(c.provider_id)}

    def m(name: str, model: type[Any], fn: Callable[[Any, CallContext], Json], access: str, summary: str,
          *, result: Any = None, **kw: Any) -> RpcMethod[Any]:  # fmt: skip
        return RpcMethod(name=name, params_model=model, handler=fn, access=access, summary=summary,  # type: ignore[arg-type]
                         result_type=result, **kw)  # fmt: skip

    return Registry(
        [
            m(
                "aicf.listProviders",
                PageParams,
                list_providers,
                "read",
                "Providers with stake, status and QoS",
                result=results.ProviderPageOut,
            ),
            m("aicf.getProvider", ById, get_provider, "read", "One provider", result=results.ProviderViewOut),
            m(
                "aicf.listJobs",
                ListJobsParams,
                list_jobs,
                "read",
                "Jobs, optionally by status",
                result=results.JobPageOut,
            ),
            m(
                "aicf.getJob",
                ById,
                get_job,
                "read",
                "A job's whole story: transitions, decisions, leases, payout",
                result=results.JobStoryOut,
            ),
            m(
                "aicf.getBalance",
                BalanceParams,
                get_balance,
                "read",
                "An account's balance in µANM",
                result=results.BalanceOut,
            ),
            m("aicf.getResult", ById, get_result, "read", "The ResultRecord of a task", result=results.ResultOut),
            m(
                "aicf.getEpoch",
                EpochParams,
                get_epoch,
                "read",
                "A settled epoch's batch with its payouts",
                result=results.EpochOut,
            ),
            m(
                "aicf.getStatus",
                NoParams,
                get_status,
                "read",
                "Queue, treasury, alarms and recent slashes",
                result=results.StatusOut,
            ),
            m(
                "aicf.getDeployment",
                NoParams,
                get_deployment,
                "read",
                "What provider signatures bind: chain, coordinator",
                result=results.DeploymentOut,
            ),
            m(
                "aicf.register",
                register_model,
                register,
                "provider",
                "Register (self-certifying signature)",
                self_certifying=True,
                result=results.ProviderRecordOut,
            ),
            m(
                "aicf.stake",
                AmountParams,
                stake,
                "provider",
                "Bond stake from the provider's balance",
                result=results.ProviderRecordOut,
            ),
            m(
                "aicf.withdraw",
                AmountParams,
                withdraw,
                "provider",
                "Start unbonding stake (7 days, slashable)",
                result=results.ProviderRecordOut,
            ),
            m(
                "aicf.heartbeat",
                HeartbeatParams,
                heartbeat,
                "provider",
                "Heartbeat: extends every live lease",
                refusal_frees_nonce=True,
                result=results.HeartbeatOut,
            ),
            m(
                "aicf.nextLease",
                NoParams,
                next_lease,
                "provider",
                "The provider's live leases and their work",
                result=results.WorkPageOut,
            ),
            m(
                "aicf.releaseLease",
                LeaseParams,
                release,
                "provider",
                "Hand a lease back (no strike)",
                result=results.LeaseOut,
            ),
            m(
                "aicf.submitProof",
                SubmitParams,
                submit_proof,
                "provider",
                "Submit a signed ProofEnvelope",
                result=results.OutcomeOut,
            ),
            m(
                "aicf.submitProofs",
                SubmitProofsParams,
                submit_proofs,
                "provider",
                f"Submit up to {MAX_PROOF_GROUP} signed ProofEnvelopes, checked in order and written in one commit",
                result=results.OutcomeGroupOut,
            ),
            m(
                "aicf.claimPayout",
                ClaimParams,
                claim,
                "provider",
                "Withdraw earnings; idempotent on the nonce",
                result=results.ClaimOut,
            ),
            m(
                "aicf.fundProvider",
                FundParams,
                fund_provider,
                "operator",
                "Devnet: mint stake for a provider",
                result=results.ProviderRecordOut | results.UnregisteredFundOut,
            ),
            *trust_methods(coord.trust, lambda: in_force().device_classes()),
            *operator_methods(send_operator, lambda e: operator_ops.params_of_epoch(store, params, e)),
        ]
    )


def cbor_json(value: object) -> Json:
    """A decoded CBOR value as JSON: bytes as 0x hex."""
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, dict):
        return {str(k): cbor_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cbor_json(v) for v in value]
    return value


def _alarms(s: reads.Status) -> list[Json]:
    alarms: list[Json] = []
    if s.throttled:
        alarms.append({"name": "budget_throttle", "severity": "critical",
                       "message": f"treasury {s.treasury} µANM is below a tenth of an epoch's AI outlay"})  # fmt: skip
    if s.cap_use_bps > 8000:
        alarms.append({"name": "budget_pressure", "severity": "warning",
                       "message": f"cap use {s.cap_use_bps / 100:.1f}% of Γ this epoch"})  # fmt: skip
    return alarms


def render_kind_queue(q: reads.KindQueue) -> Json:
    return {"kind": q.kind, "depth": q.depth, "oldest_age_s": q.oldest_age_s, "depth_limit": q.limits.depth,
            "age_limit_s": q.limits.age_s, "capacity_mu_per_day": q.capacity_mu_per_day}  # fmt: skip


def trap_budget_alarms(throttles: Mapping[str, TrapShortfall], available: int) -> list[Json]:
    """A due trap the trap budget could not pay, while the budget is still below its escrow (the rule
    AicfTrapsThrottledByBudget in deploy/prometheus/aicf-alerts.yml): traps run below trap_bps."""
    return [
        {"name": "trap_budget_throttled", "severity": "warning", "model": model,
         "message": f"the trap budget ({available} µANM) cannot pay a {model} trap's escrow ({t.escrow} µANM): "
                    f"{t.count} due traps held back; traps run below trap_bps until the fund's split brings more"}
        for model, t in sorted(throttles.items())
        if available < t.escrow
    ]  # fmt: skip


def operator_alarms(
    queues: Sequence[reads.KindQueue],
    providers: Sequence[reads.ProviderView],
    budgets: Mapping[bytes, int],
    shortfalls: Mapping[str, TrapShortfall],
    fund: int,
) -> list[Json]:
    """Issue 17's alarms, each also a rule in deploy/prometheus/aicf-alerts.yml over the same figures:
    a queue deeper or older than its providers' declared capacity clears (aicf.core.capacity), a fund too poor
    for the escrow of a trap it had to skip, an ACTIVE provider whose p95 exceeds its job budget."""
    alarms: list[Json] = []
    for q in queues:
        if q.depth > q.limits.depth:
            unserved = q.capacity_mu_per_day == 0
            alarms.append({"name": "queue_depth", "severity": "critical" if unserved else "warning", "kind": q.kind,
                           "message": f"{q.depth} {q.kind} jobs queued: " + (
                               f"no ACTIVE provider serves {q.kind}" if unserved else
                               f"above the {q.limits.depth} the providers' declared rate clears in "
                               f"{QUEUE_CLEAR_S} s")})  # fmt: skip
        if q.oldest_age_s > q.limits.age_s:
            alarms.append({"name": "queue_age", "severity": "warning", "kind": q.kind,
                           "message": f"the oldest queued {q.kind} job waited {q.oldest_age_s} s, above "
                                      f"{q.limits.age_s} s"})  # fmt: skip
    for model, short in sorted(shortfalls.items()):
        if fund < short.escrow:
            alarms.append({"name": "trap_escrow_unfunded", "severity": "warning", "model": model,
                           "message": f"the fund ({fund} µANM) cannot pay a {model} trap's escrow "
                                      f"({short.escrow} µANM): {short.count} traps skipped"})  # fmt: skip
    for v in providers:
        p95, budget = v.latency_p95_ms, budgets.get(v.provider.provider_id)
        if v.provider.status.value == "ACTIVE" and p95 is not None and budget is not None and p95 > budget:
            alarms.append({"name": "provider_over_budget", "severity": "warning",
                           "provider_id": to_hex(v.provider.provider_id),
                           "message": f"provider {to_hex(v.provider.provider_id)[:10]}… p95 {p95} ms exceeds its "
                                      f"job budget {budget} ms"})  # fmt: skip
    return alarms


def _collateral_alarms(expiries: Sequence[ExpiryItem], now: int) -> list[Json]:
    """SPEC §13 collateral near expiry: a pinned root, or TEE collateral or a certificate accepted evidence relied
    on, that ends within COLLATERAL_ALARM_S."""
    alarms: list[Json] = []
    for e in sorted(expiries, key=lambda e: (e.not_after, e.what)):
        left = e.not_after - now
        if left < 0:
            alarms.append({"name": "collateral_expired", "severity": "critical",
                           "message": f"{e.what} expired {-left} s ago"})  # fmt: skip
        elif left < COLLATERAL_ALARM_S:
            alarms.append({"name": "collateral_near_expiry", "severity": "warning",
                           "message": f"{e.what} expires in {left} s"})  # fmt: skip
    return alarms
