"""Stored assignment decisions: the compact form names its candidate pool; readers see the whole record.

The matcher stores each decision as `AssignmentDecision.compact_map(pool_id)` and each pool once (SPEC §6 stores
every decision in full: the pair is the full record, and `aicf.core.assignment.expand_decision` rebuilds it).
"""

from dataclasses import replace

import cbor2

from aicf.core.assignment import expand_decision
from aicf.core.encoding import canonical_cbor
from aicf.core.records import DecisionRecord
from aicf.service.errors import MissingDecisionPoolError
from aicf.store.interface import Tx


def decision_pool(record: bytes) -> bytes | None:
    """The pool a stored decision names, or None for a decision stored whole."""
    decoded = cbor2.loads(record)
    pool = decoded.get("pool") if isinstance(decoded, dict) else None
    return pool if isinstance(pool, bytes) else None


def whole_decision(tx: Tx, stored: DecisionRecord) -> DecisionRecord:
    """`stored` with its record expanded to the whole decision (candidates, exclusions, draws, winner).

    Raises MissingDecisionPoolError if the pool it names is missing (`aicf db verify` reports that store as damaged).
    """
    compact = cbor2.loads(stored.decision)
    pool_id = compact.get("pool") if isinstance(compact, dict) else None
    if not isinstance(pool_id, bytes):
        return stored
    pool = tx.get_pool(pool_id)
    if pool is None:
        raise MissingDecisionPoolError(stored.task_id, pool_id)
    return replace(stored, decision=canonical_cbor(expand_decision(compact, cbor2.loads(pool))))
