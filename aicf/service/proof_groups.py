"""Proofs accepted in groups (issue 18; docs/DECISIONS.md § Proof groups): the proofs a provider sends together,
judged as `aicf.service.proofs.submit_proof` judges each alone, written with one commit per group."""

from collections.abc import Mapping, Sequence
from typing import Final

from aicf.core.errors import AicfError
from aicf.core.records import ProofRecord
from aicf.proofs.envelope import ProofEnvelope
from aicf.proofs.verdict import Reject
from aicf.service.context import Context, Work
from aicf.service.errors import ProofGroupError
from aicf.service.outages import outages_for_proofs
from aicf.service.proof_verdicts import ProofOutcome
from aicf.service.proofs import RACED, Written, submit_alone, submit_in, unparsed
from aicf.service.steps import parse_for_chain, send_inclusion

MAX_PROOF_GROUP: Final = 256  # envelopes in one group (aicf.submitProofs; docs/API.md)


def submit_proofs(ctx: Context, raws: Sequence[Mapping[str, object]]) -> list[ProofOutcome | AicfError]:
    """A group of proofs received together, in order, with one store transaction (one commit) for the group.

    Each proof gets exactly the verdict, record and ids `submit_proof` would give it had the group's proofs come
    one after another at this instant: they run in order in one transaction, each seeing the earlier ones'
    writes (a duplicate within the group is a replay). A proof that cannot finish inside it (its use-case raises
    an AicfError, its job raced, or it needs a model run outside any transaction: a trap's or an audit's answer)
    ends the group there: when it may have written part of its verdict the transaction rolls back and the proofs
    before it run again and commit without it; then it runs alone as `submit_proof` runs it (an AicfError it
    raises there is its result, in its place), and the proofs after it form the next group. Accepted proofs go
    to the chain after their group commits. Raises ProofGroupError, nothing checked, for an empty group or one
    over MAX_PROOF_GROUP."""
    if not raws or len(raws) > MAX_PROOF_GROUP:
        raise ProofGroupError(len(raws), MAX_PROOF_GROUP)
    received_ms = ctx.clock.now_ms()
    envs = [parse_for_chain(ctx, raw) for raw in raws]
    results: list[ProofOutcome | AicfError] = []
    at = 0
    while at < len(envs):
        end = len(envs)
        while True:
            reached, committed = _submit_group(ctx, envs, at, end, received_ms, results)
            if committed:
                break
            end = reached  # the proof at `reached` broke the transaction: the ones before it go without it
        at = reached
        if at < len(envs):
            env = envs[at]
            try:
                results.append(unparsed(env) if isinstance(env, Reject) else submit_alone(ctx, env, received_ms))
            except AicfError as exc:
                results.append(exc)
            at += 1
    return results


def _submit_group(
    ctx: Context,
    envs: Sequence[ProofEnvelope | Reject],
    start: int,
    end: int,
    received_ms: int,
    results: list[ProofOutcome | AicfError],
) -> tuple[int, bool]:
    """envs[start:end] in one transaction, appending their results, until the end or the first proof that must go
    alone. Returns where it stopped and whether what came before it was kept: False when that proof may have
    written part of its verdict, so the transaction rolled back and `results` is as it was."""
    if start == end:
        return start, True
    accepted: list[ProofRecord] = []
    before = len(results)
    at = start
    wrote = False
    with ctx.store.transaction() as tx:
        w = Work(tx, received_ms // 1000, ctx)
        outages = outages_for_proofs(w)  # the group's proofs share the instant: read once (issue 18)
        while at < end:
            env = envs[at]
            if isinstance(env, Reject):
                results.append(unparsed(env))
                at += 1
                continue
            try:
                outcome = submit_in(w, env, received_ms, None, outages)
            except AicfError:
                del results[before:]
                return at, False  # leaving without commit rolls the transaction back
            if outcome is RACED:  # part of accept_proof may be written
                del results[before:]
                return at, False
            if not isinstance(outcome, ProofOutcome | Written):  # a trap's or an audit's model run: nothing written
                break
            if isinstance(outcome, Written):
                wrote = True
                results.append(outcome.outcome)
                if outcome.accepted is not None:
                    accepted.append(outcome.accepted)
            elif isinstance(outcome, ProofOutcome):
                results.append(outcome)
            at += 1
        if wrote:
            w.commit()
    for record in accepted:
        send_inclusion(ctx, record)
    return at, True
