"""Crediting a coordinator outage (issue 15; aicf.core.outages has the rule, docs/DECISIONS.md § Coordinator
outages the reasons): the first unit of work that finds the coordinator did not act for more than the threshold
credits the gap, in its own transaction, before it judges any lease."""

import logging

from aicf.core.outages import Outage, detect_outage
from aicf.service.context import Work
from aicf.store.interface import META_ACTED_AT

log = logging.getLogger("aicf.coordinator")


def credit_outage(w: Work, *, record_pass: bool) -> Outage | None:
    """Credit the outage that ends at `w.now`, if there is one: record it and extend the live leases (the
    store does both, once per outage even when replicas race). `record_pass` (the sweep) also records `w.now`
    as the last pass; the provider calls only write when they credit an outage, so they take no shared row."""
    tx, now = w.tx, w.now
    last = tx.get_meta(META_ACTED_AT)
    outage = detect_outage(last, now)
    if outage is not None:
        extended = tx.record_outage(outage)
        if extended is not None:
            log.warning(
                "the coordinator did not act for %d s (from %d to %d): credited, %d live leases extended by the gap",
                outage.gap_s, outage.started_at, outage.ended_at, extended,
            )  # fmt: skip
    if (record_pass or outage is not None) and (last is None or now > last):
        tx.set_meta(META_ACTED_AT, now)
    return outage


def outages_for_proofs(w: Work) -> list[Outage]:
    """What a proof received at `w.now` reads of coordinator outages, once per transaction: the outage ending
    now credited first (a lease the outage would have expired is still live, issue 15), then the outages of the
    widest QoS window (not the provider's latency nor its availability). A group's proofs share `w.now`, and
    after the first crediting nothing is left to credit at that instant, so the group reads them once."""
    credit_outage(w, record_pass=False)
    return w.tx.outages_since(w.now - w.params.qos_window_s)
