"""A requester's and the coordinator's transactions in a block (SPEC §2, §4, §8): deposits, treasury deposits
(an EVM chain's), enqueues with their escrow, cancel requests and proof inclusions."""

from aicf.core.chain import ENQUEUE_KINDS, Block, CancelRequest, ChainTx, Job, ProofInclusion, TxKind
from aicf.core.errors import RequestError
from aicf.core.ledger import EXTERNAL, TREASURY, Posting, escrow_account, requester_account
from aicf.core.params import Params
from aicf.core.requests import CircuitDepth, make_receipt, validate_request
from aicf.core.types import MAX_AMOUNT, MicroAnm, MilliUnits
from aicf.proofs.attestation.registry import CPU_TEE_KINDS, admitted_tee_kinds, decode_policy
from aicf.service.inclusion import result_of_inclusion
from aicf.service.ingest_stake import stake_sync
from aicf.service.ingest_work import BlockWork, balance, bytes32, refuse
from aicf.store.interface import Tx


def apply_tx(
    tx: Tx,
    work: BlockWork,
    block: Block,
    ctx: ChainTx,
    chain_id: int,
    params: Params,
    price_bps: int,
    circuit_depth: CircuitDepth,
    operator_key: bytes | None = None,
) -> None:
    try:
        if ctx.kind in ENQUEUE_KINDS:
            _enqueue(tx, work, block, ctx, chain_id, params, price_bps, circuit_depth)
        elif ctx.kind == TxKind.DEPOSIT:
            _deposit(tx, work, ctx)
        elif ctx.kind == TxKind.TREASURY_DEPOSIT:
            _treasury_deposit(tx, work, ctx)
        elif ctx.kind == TxKind.STAKE_SYNC:
            stake_sync(tx, work, block, ctx)
        elif ctx.kind == TxKind.CANCEL:
            work.cancels.append(
                CancelRequest(
                    height=block.height,
                    tx_index=ctx.index,
                    tx_hash=ctx.tx_hash,
                    task_id=bytes32(ctx.body, "task_id"),
                    sender=ctx.sender,
                )
            )
        elif ctx.kind == TxKind.PROOF:
            _proof(work, block, ctx, operator_key)
        else:
            raise RequestError("kind", f"unknown transaction kind {ctx.kind!r}")
    except RequestError as exc:
        refuse(work, block, ctx, exc)


def _deposit(tx: Tx, work: BlockWork, ctx: ChainTx) -> None:
    to = ctx.body.get("to")
    amount = ctx.body.get("amount")
    if not isinstance(to, bytes) or not 1 <= len(to) <= 64:
        raise RequestError("to", "expected an address of 1 to 64 bytes")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < MAX_AMOUNT:
        raise RequestError("amount", "expected an integer > 0 and < 2^63")
    if set(ctx.body) - {"to", "amount"}:
        raise RequestError(sorted(set(ctx.body) - {"to", "amount"})[0], "unknown key for a deposit")
    account = requester_account(to)
    have = balance(tx, work, account)
    if have + amount >= MAX_AMOUNT:
        raise RequestError("amount", f"{account} would exceed 2^63 µANM")
    supply = balance(tx, work, EXTERNAL)  # minus everything minted so far
    if supply - amount <= -MAX_AMOUNT:
        raise RequestError("amount", f"the supply would pass 2^63 µANM ({-supply} minted so far)")
    work.balances[account] = have + amount
    work.balances[EXTERNAL] = supply - amount
    work.postings.append(
        Posting(debit=EXTERNAL, credit=account, amount=MicroAnm(amount), ref_kind="deposit", ref=ctx.tx_hash)
    )


def _treasury_deposit(tx: Tx, work: BlockWork, ctx: ChainTx) -> None:
    """Treasury income paid in on chain (an EVM chain's `Aicf.deposit`, docs/EVM.md): external → treasury, so
    the ledger's treasury is the contract's and no batch pays a reward the contract would refuse."""
    amount = ctx.body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < MAX_AMOUNT:
        raise RequestError("amount", "expected an integer > 0 and < 2^63")
    if set(ctx.body) != {"amount"}:
        raise RequestError(sorted(set(ctx.body) - {"amount"})[0], "unknown key for a treasury deposit")
    have = balance(tx, work, TREASURY)
    if have + amount >= MAX_AMOUNT:
        raise RequestError("amount", f"{TREASURY} would exceed 2^63 µANM")
    supply = balance(tx, work, EXTERNAL)
    if supply - amount <= -MAX_AMOUNT:
        raise RequestError("amount", f"the supply would pass 2^63 µANM ({-supply} minted so far)")
    work.balances[TREASURY] = have + amount
    work.balances[EXTERNAL] = supply - amount
    work.postings.append(
        Posting(debit=EXTERNAL, credit=TREASURY, amount=MicroAnm(amount), ref_kind="treasury_deposit", ref=ctx.tx_hash)
    )


def _enqueue(
    tx: Tx,
    work: BlockWork,
    block: Block,
    ctx: ChainTx,
    chain_id: int,
    params: Params,
    price_bps: int,
    circuit_depth: CircuitDepth,
) -> None:
    """SPEC §2: the stateless limits (core), then the caller's tier, open jobs and balance (store)."""
    request = {**ctx.body, "kind": ENQUEUE_KINDS[ctx.kind]}
    valid = validate_request(request, params, price_bps, circuit_depth)
    rmap = valid.request_map
    if work.scheduled is not None and valid.max_units_mu > work.scheduled.gamma_mu:
        raise RequestError(
            "max_units_mu",
            f"{valid.max_units_mu} exceeds Γ × 1000 = {work.scheduled.gamma_mu} of the params scheduled for the next "
            "epoch",
        )
    if rmap.get("tee") == "required":
        _require_tee_policy(tx, work, block.height)
    tier = int(str(rmap["tier"]))
    caller = ctx.sender
    if tier > 0:
        if caller not in work.tiers:
            work.tiers[caller] = tx.requester_tier(caller)
        if tier > work.tiers[caller]:
            raise RequestError("tier", f"{tier} is above the caller's registered tier {work.tiers[caller]}")
    if caller not in work.open_jobs:
        work.open_jobs[caller] = tx.open_job_count(caller)
    if work.open_jobs[caller] >= params.max_open_jobs:
        raise RequestError("caller", f"already has {work.open_jobs[caller]} open jobs (limit {params.max_open_jobs})")
    account = requester_account(caller)
    have = balance(tx, work, account)
    if have < valid.escrow:
        raise RequestError("escrow", f"balance {have} µANM is below the escrow of {valid.escrow} µANM")
    receipt = make_receipt(valid, chain_id=chain_id, height=block.height, tx_hash=ctx.tx_hash, caller=caller)
    # A task id covers (chain, height, tx hash, caller, payload): only the same transaction twice in one block
    # repeats one, and that is caught here; across blocks the height differs (the jobs' key backs this up).
    if receipt.task_id in work.task_ids:
        raise RequestError("task_id", f"task 0x{receipt.task_id.hex()} already exists")
    work.task_ids.add(receipt.task_id)
    work.open_jobs[caller] += 1
    work.balances[account] = have - valid.escrow
    if valid.escrow > 0:
        work.postings.append(
            Posting(
                debit=account,
                credit=escrow_account(receipt.task_id),
                amount=valid.escrow,
                ref_kind="escrow",
                ref=receipt.task_id,
            )
        )
    regions = rmap.get("regions", ())
    allowlist = rmap.get("allowlist", ())
    region_names = tuple(str(r) for r in regions) if isinstance(regions, list | tuple) else ()
    provider_ids = tuple(a for a in allowlist if isinstance(a, bytes)) if isinstance(allowlist, list | tuple) else ()
    deadline = rmap.get("deadline_blocks", params.default_deadline_blocks)
    work.jobs.append(
        Job(
            task_id=receipt.task_id,
            chain_id=chain_id,
            tx_hash=ctx.tx_hash,
            caller=caller,
            kind=receipt.kind,
            payload=valid.payload,
            payload_hash=receipt.payload_hash,
            model=str(rmap.get("model", "")),
            fee_per_unit=int(str(rmap["fee_per_unit"])),
            tier=tier,
            max_units_mu=MilliUnits(valid.max_units_mu),
            escrow=valid.escrow,
            depth=valid.depth,
            deadline_height=block.height + int(str(deadline)),
            regions=region_names,
            allowlist=provider_ids,
            tee_required=rmap.get("tee") == "required",
            enqueue_height=block.height,
            enqueue_tx_index=ctx.index,
        )
    )


def _require_tee_policy(tx: Tx, work: BlockWork, height: int) -> None:
    """Attestation fails closed (issue 14): a `tee_required` job is taken only while an operator policy in force at
    its enqueue height could admit TEE evidence for it (`aicf.proofs.attestation.registry.tee_policy_gap`: a
    non-empty measurement allowlist and a minimum TCB, for a CPU TEE kind). Policies only gain versions that
    activate above the head, so this reads the same on every replay of the block."""
    if work.tee_kinds is None:
        in_force: dict[str, tuple[int, bytes]] = {}
        for p in tx.attestation_policies():
            if p.activation_height <= height and p.version > in_force.get(p.kind, (0, b""))[0]:
                in_force[p.kind] = (p.version, p.policy)
        work.tee_kinds = admitted_tee_kinds({kind: decode_policy(raw) for kind, (_, raw) in in_force.items()})
    if not work.tee_kinds:
        raise RequestError(
            "tee",
            "required, but no operator attestation policy in force admits TEE evidence: one is needed for "
            f"{'/'.join(CPU_TEE_KINDS)} with a non-empty measurement allowlist and a minimum TCB (aicf policy set)",
        )


def _proof(work: BlockWork, block: Block, ctx: ChainTx, operator_key: bytes | None) -> None:
    """Record the inclusion; with the operator's key, a proof carrying a valid acceptance record (SPEC §8)
    also writes its ResultRecord at this height, which settlement pays once the height is final."""
    task = bytes32(ctx.body, "task_id")
    proof = bytes32(ctx.body, "proof_id")
    provider = bytes32(ctx.body, "provider_id")
    job = work.proof_jobs.get(task)  # prefetched: every 32-byte task id of the block's proofs
    if job is None and task not in work.task_ids:
        raise RequestError("task_id", f"unknown task 0x{task.hex()}")
    if task in work.included:
        raise RequestError("task_id", "a proof for this task is already included; the first inclusion wins")
    inclusion = ProofInclusion(
        task_id=task,
        proof_id=proof,
        provider_id=provider,
        height=block.height,
        tx_index=ctx.index,
        tx_hash=ctx.tx_hash,
        producer=block.producer,
    )
    result = None
    if operator_key is not None:
        result = result_of_inclusion(ctx.body, inclusion, job.kind if job is not None else "", operator_key)
    work.inclusions.append(inclusion)
    work.included.add(task)
    if result is not None:
        work.results.append(result)
