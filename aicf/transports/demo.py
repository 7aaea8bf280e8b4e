"""The worked example of docs/DESIGN.md §10 computed by the core, step by step, as rows a person can read.

Every value is derived, none is typed in: the task id from the request bytes, the provider from the
stake-weighted beacon draw, units from the QoS measurements, payouts from settlement.
"""

from collections.abc import Iterator

from aicf.core.assignment import Candidate, JobNeeds, LiveState, assign
from aicf.core.encoding import to_hex
from aicf.core.ids import beacon_of, lease_id, provider_id, task_id
from aicf.core.params import Params, params_hash
from aicf.core.pricing import ai_units, availability_multiplier_bps, latency_bps
from aicf.core.requests import validate_request
from aicf.core.settlement import VerifiedJob, settle_epoch

Rows = list[tuple[str, str]]


def _no_circuits(_: bytes) -> int:
    return 0


def _anm(micro: int) -> str:
    return f"{micro:,} µANM ({micro / 1_000_000:.6f} ANM)"


def worked_example(params: Params) -> Iterator[tuple[str, Rows]]:
    chain_id, height = 1337, 100
    caller = bytes.fromhex("c0ffee" * 6 + "c0")
    tx_hash = bytes(range(32))
    request = {
        "kind": "ai",
        "model": "llama3-8b",
        "prompt": b"Explain proof of stake in one sentence.",
        "max_tokens": 256,
        "max_runtime_ms": 4000,
        "fee_per_unit": params.base_rate_ai * 2,
        "tier": 1,
    }
    valid = validate_request(request, params, params.price_initial_bps, _no_circuits)
    tid = task_id(chain_id, height, tx_hash, caller, valid.payload)
    yield (
        "1-2. ai_enqueue(llama3-8b) in block H: deterministic task id and escrow",
        [
            ("chain_id / height", f"{chain_id} / {height}"),
            ("caller", to_hex(caller)),
            ("payload (canonical CBOR)", f"{len(valid.payload)} bytes"),
            ("task_id", to_hex(tid)),
            ("max_units_mu", f"{valid.max_units_mu:,}"),
            ("escrow", _anm(valid.escrow)),
        ],
    )

    keys = [bytes([n]) * 32 for n in (1, 2, 3)]
    stakes = [5_000_000, 3_000_000, 2_000_000]
    providers = [provider_id(k) for k in keys]
    beacon = beacon_of(bytes(32), height + params.finality_depth)
    now = 1_000
    decision = assign(
        JobNeeds(task_id=tid, kind="ai", model="llama3-8b", max_units_mu=valid.max_units_mu),
        attempt=0,
        beacon=beacon,
        candidates=[Candidate(provider_id=p, stake=s) for p, s in zip(providers, stakes, strict=True)],
        excluded=[],
        live={
            p: LiveState(
                provider_id=p, last_heartbeat_at=now - 5, availability_bps=10000, live_leases=0, bucket_tokens_mu=10**9
            )
            for p in providers
        },
        tried=(),
        now=now,
        params=params,
    )
    winner = decision.winner or providers[0]
    yield (
        "3. Matcher: stake-weighted beacon draw",
        [
            *[(f"candidate {to_hex(p)[:14]}…", f"stake {s:,}") for p, s in zip(providers, stakes, strict=True)],
            ("beacon (block H+6)", to_hex(beacon)),
            ("draw r_0", f"{decision.draws[0].r:,} of {sum(stakes):,}"),
            ("winner P1", to_hex(winner)),
            ("lease_id", to_hex(lease_id(tid, winner, 0))),
        ],
    )

    runtime_ms, p95_ms, availability = 3200, 280, 9995
    lat = latency_bps(p95_ms, params)
    avail = availability_multiplier_bps(availability, params)
    weight = params.weight_milli("llama3-8b") or 0
    units = min(ai_units(min(runtime_ms, 4000), weight, lat, avail), valid.max_units_mu)
    yield (
        "4-5. Proof in block H+1, verified: ResultRecord units",
        [
            ("runtime_ms", str(runtime_ms)),
            ("p95 latency → lat_bps", f"{p95_ms} ms → {lat}"),
            ("availability → avail_bps", f"{availability} bps → {avail}"),
            ("units_mu", f"{units:,} ({units / 1000:.3f} units)"),
        ],
    )

    treasury = 10**12
    batch = settle_epoch(
        epoch=0,
        finalized_height=height + 10,
        jobs=[
            VerifiedJob(
                task_id=tid,
                provider_id=winner,
                miner_id=provider_id(b"miner-1".ljust(32, b"\0")),
                proof_id=bytes(32),
                kind="ai",
                priority_class=1,
                proof_height=height + 1,
                tx_index=0,
                units_mu=units,
                fee_per_unit=params.base_rate_ai * 2,
            )
        ],
        treasury=treasury,
        price_bps=params.price_initial_bps,
        params=params,
    )
    payout = batch.payouts[0]
    yield (
        "6. Epoch closes: settlement batch",
        [
            ("price_bps", str(batch.price_bps)),
            ("reward = units × base_rate × price", _anm(payout.reward)),
            (f"provider ({params.provider_bps} bps)", _anm(payout.provider)),
            (f"miner ({params.miner_bps} bps)", _anm(payout.miner)),
            ("fund (rest)", _anm(payout.fund)),
            ("charged to requester", _anm(payout.charged)),
            ("refunded from escrow", _anm(valid.escrow - payout.charged)),
            ("payout_id", to_hex(payout.payout_id)),
            ("batch root", to_hex(batch.root)),
            ("params_hash", to_hex(params_hash(params))),
            ("next epoch price_bps", str(batch.next_price_bps)),
        ],
    )
