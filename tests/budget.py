"""How many examples a property or fuzz test runs: its full count in the whole suite (what CI runs), a share of it
in the fast loop (`pytest -m "not slow"`). conftest.py decides which run this is before any test module is
imported, so a count written in a decorator (`@settings(max_examples=examples(300))`) is already the right one.

Properties that name no count run hypothesis's profile: FULL_DEFAULT examples in the whole suite, FAST_DEFAULT in
the fast loop (conftest.py loads the profile). Fuzz tests name both counts (tests/fuzz/scaffold.py).
"""

import re
from dataclasses import dataclass

FAST_SHARE = 10  # the fast loop runs a tenth of a property's examples
FAST_MIN = 10  # and at least this many
FULL_DEFAULT = 100  # hypothesis's own default
FAST_DEFAULT = FULL_DEFAULT // FAST_SHARE


@dataclass(slots=True)
class _Run:
    fast_loop: bool = False


RUN = _Run()


def is_fast_loop(markexpr: str) -> bool:
    """Whether `-m markexpr` leaves the slow tests out."""
    return re.search(r"\bnot\s+slow\b", markexpr) is not None


def examples_for(full: int, *, fast_loop: bool, fast: int | None = None) -> int:
    """`full` in the whole suite; in the fast loop `fast`, or a FAST_SHARE-th of `full` (at least FAST_MIN)."""
    if not fast_loop:
        return full
    return fast if fast is not None else min(full, max(FAST_MIN, full // FAST_SHARE))


def examples(full: int, fast: int | None = None) -> int:
    """The count for this run (see `examples_for`)."""
    return examples_for(full, fast_loop=RUN.fast_loop, fast=fast)
