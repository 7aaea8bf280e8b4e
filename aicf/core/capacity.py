"""What the providers' declared capacity can clear, and when a queue or a provider is out of line with it.

Operator alarms (issue 17), not consensus rules: nothing here moves money or a job. A kind's capacity is the sum
of the unit rates (SPEC §6 buckets, mu per day) its ACTIVE providers run with; a provider serving two kinds
counts toward both, so the figure is an upper bound and an alarm it raises is never a false one.
"""

from dataclasses import dataclass
from typing import Final

DAY_S: Final = 86_400
QUEUE_CLEAR_S: Final = 300  # a queue should clear within five minutes at the declared rate


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLimits:
    depth: int  # jobs: what the declared capacity admits in QUEUE_CLEAR_S (0: nothing serves the kind)
    age_s: int  # seconds the oldest queued job may wait


def queue_limits(capacity_mu_per_day: int, mean_job_mu: int, clear_s: int = QUEUE_CLEAR_S) -> QueueLimits:
    """The depth the declared capacity clears within `clear_s` (at least one job when anything serves the kind),
    and the age a job may reach: `clear_s`, or twice the time the capacity needs to admit one job if longer.

    >>> queue_limits(5_000_000, 1_000)  # 5,000 units a day, 1-unit jobs: one job every 17.28 s
    QueueLimits(depth=17, age_s=300)
    >>> queue_limits(0, 1_000)  # nothing serves the kind: any queued job is too many
    QueueLimits(depth=0, age_s=300)
    """
    if capacity_mu_per_day <= 0:
        return QueueLimits(depth=0, age_s=clear_s)
    job_mu = max(1, mean_job_mu)
    per_job_s = -(-job_mu * DAY_S // capacity_mu_per_day)  # ceiling: the time one job's units take to refill
    depth = capacity_mu_per_day * clear_s // (DAY_S * job_mu)
    return QueueLimits(depth=max(1, depth), age_s=max(clear_s, 2 * per_job_s))


def job_budget_ms(runtime_budgets_ms: list[int], fallback_ms: int) -> int:
    """A provider's job budget: the median runtime budget (ms) of the open jobs it can serve, else `fallback_ms`
    (SPEC's largest max_runtime_ms). Its p95 above this means its typical job would overrun its budget."""
    if not runtime_budgets_ms:
        return fallback_ms
    ordered = sorted(runtime_budgets_ms)
    return ordered[(len(ordered) - 1) // 2]


def enqueue_interval_s(job_mu: int, capacity_mu_per_day: int, share_bps: int) -> int | None:
    """Seconds between enqueues of `job_mu`-unit jobs so they use `share_bps` of a declared capacity (rounded
    up: never more than the share); None when nothing serves the kind.

    >>> enqueue_interval_s(20_000, 100_000_000, 5_000)  # 20-unit jobs, 100,000 units a day, half of it
    35
    """
    if capacity_mu_per_day <= 0 or share_bps <= 0:
        return None
    return max(1, -(-max(1, job_mu) * DAY_S * 10_000 // (capacity_mu_per_day * share_bps)))
