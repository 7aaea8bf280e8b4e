"""Settings shared by the whole suite.

Hypothesis runs without a per-example deadline: property tests share a 2-core machine with other suites,
and a slow example on a loaded box is not a failure of the property.

`pytest -m "not slow"` is the fast loop; the whole suite (what CI runs) has no `-m`. A test is `slow` when it
starts a real server, a subprocess or a browser, loads a real model, or takes over about a second; every
`postgres` test and every test on anvil is slow too (see `pytest_collection_modifyitems`). Property and fuzz
tests run a tenth of their examples in the fast loop and all of them in the whole suite (tests/budget.py).
"""

import gc
import os
from collections.abc import Iterator

import pytest
from budget import FAST_DEFAULT, FULL_DEFAULT, RUN, is_fast_loop
from hypothesis import settings
from source_tree import forget as forget_parsed_sources

settings.register_profile("aicf", deadline=None, print_blob=True, max_examples=FULL_DEFAULT)
settings.register_profile("aicf-fast", parent=settings.get_profile("aicf"), max_examples=FAST_DEFAULT)
settings.load_profile("aicf")


def pytest_configure(config: pytest.Config) -> None:
    """The fast loop runs a share of each property's examples (tests/budget.py); decided here, before any test
    module is imported, so the counts written in decorators see it."""
    RUN.fast_loop = is_fast_loop(config.getoption("markexpr") or "")
    settings.load_profile("aicf-fast" if RUN.fast_loop else "aicf")


@pytest.hookimpl(hookwrapper=True)
def pytest_collection() -> Iterator[None]:
    """Collection imports every test module and most of aicf: objects that live the whole run. The cyclic
    collector is paused meanwhile (its full passes over the growing heap took seconds), and what is alive once
    collection is done is frozen out of every later pass (`gc.freeze`); cycles made while collecting are freed
    first."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()
        gc.freeze()


def pytest_sessionfinish() -> None:
    forget_parsed_sources()  # tests/source_tree.py: freed now, not in the interpreter's slow final collection


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not slow"` sees the added mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every `postgres` test is also `slow`: each opens a fresh schema and runs every migration (about 0.6 s).
    So is every test on anvil (tests/chain/conftest.py): a node in its own process, and a fresh deployment of
    the contracts per test (0.2 to 3 s each).

    The fast loop runs the store contract suite on the memory and SQLite backends; the whole suite adds PostgreSQL
    and the EVM chain.
    """
    for item in items:
        if item.get_closest_marker("postgres") is not None or "anvil" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


if os.environ.get("AICF_GC_EACH_TEST") == "1":  # find which test leaks a socket or file: collect after each one

    @pytest.fixture(autouse=True)
    def _collect_garbage_after_each_test() -> Iterator[None]:
        yield
        gc.collect()
