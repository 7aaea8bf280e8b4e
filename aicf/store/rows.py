"""Row ↔ record conversions shared by the SQL backends: each is its table's column list (aicf.store.tables), which
decodes by column name; the names here are what the backends call."""

from collections.abc import Sequence

from aicf.core.ledger import Posting
from aicf.core.settlement import Payout
from aicf.store.tables import (
    BATCHES,
    BLOCKS,
    CANCEL_REQUESTS,
    CLAIMS,
    DECISIONS,
    EVENTS,
    GRANTS,
    JOB_TRANSITIONS,
    JOBS,
    LEASES,
    LEDGER_ENTRIES,
    OPERATOR_CHANGES,
    PAYOUTS,
    PROOF_INCLUSIONS,
    PROOFS,
    PROVIDERS,
    REFUSED_TXS,
    RESULTS,
    SLASHES,
    TRAP_SEEDS,
    TRAPS,
    as_opt_int,
)
from aicf.store.tables import as_bytes as as_bytes
from aicf.store.tables import as_int as as_int
from aicf.store.tables import as_str as as_str

Row = Sequence[object]

# the value decoders under their short names (sqlbase, sqltrust)
_i, _b, _s, _opt_i = as_int, as_bytes, as_str, as_opt_int

block_of, block_params = BLOCKS.decode, BLOCKS.params
job_of, job_params = JOBS.decode, JOBS.params
transition_of, transition_params = JOB_TRANSITIONS.decode, JOB_TRANSITIONS.params
entry_of = LEDGER_ENTRIES.decode
inclusion_of, inclusion_params = PROOF_INCLUSIONS.decode, PROOF_INCLUSIONS.params
refused_of, refused_params = REFUSED_TXS.decode, REFUSED_TXS.params
cancel_of, cancel_params = CANCEL_REQUESTS.decode, CANCEL_REQUESTS.params
claim_of, claim_params = CLAIMS.decode, CLAIMS.params
provider_of, provider_params = PROVIDERS.decode, PROVIDERS.params
decision_of, decision_params = DECISIONS.decode, DECISIONS.params
lease_of, lease_params = LEASES.decode, LEASES.params
proof_of, proof_params = PROOFS.decode, PROOFS.params
result_of, result_params = RESULTS.decode, RESULTS.params
batch_of, batch_params = BATCHES.decode, BATCHES.params
payout_of = PAYOUTS.decode
slash_of, slash_params = SLASHES.decode, SLASHES.params
event_of = EVENTS.decode
trap_seed_of, trap_seed_params = TRAP_SEEDS.decode, TRAP_SEEDS.params
trap_of, trap_params = TRAPS.decode, TRAPS.params
grant_of, grant_params = GRANTS.decode, GRANTS.params
operator_change_of, operator_change_params = OPERATOR_CHANGES.decode, OPERATOR_CHANGES.params


def entry_params(p: Posting, block_height: int | None, time: int) -> dict[str, object]:
    """A posting's ledger row (the entry's seq is the database's)."""
    return {
        "debit": p.debit,
        "credit": p.credit,
        "amount": p.amount,
        "ref_kind": p.ref_kind,
        "ref": p.ref,
        "block_height": block_height,
        "time": time,
    }


def payout_params(p: Payout, position: int) -> dict[str, object]:
    """The payout's columns after `position` (admission order), the order of `copy_payouts`."""
    return {"position": position, **PAYOUTS.params(p)}


def payout_record(p: Payout, position: int) -> tuple[object, ...]:
    return tuple(payout_params(p, position).values())
