"""Settings shared by the whole suite.

Hypothesis runs without a per-example deadline: property tests share a 2-core machine with other suites,
and a slow example on a loaded box is not a failure of the property.

`pytest -m "not slow"` is the fast loop; the whole suite (what CI runs) has no `-m`. A test is `slow` when it
starts a real server, a subprocess or a browser, loads a real model, runs many hypothesis examples, or takes
over about a second; every `postgres` test is slow too (see `pytest_collection_modifyitems`).
"""

import gc
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("aicf", deadline=None, print_blob=True)
settings.load_profile("aicf")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not slow"` sees the added mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every `postgres` test is also `slow`: each opens a fresh schema and runs every migration (about 0.6 s).

    The fast loop runs the store contract suite on the memory and SQLite backends; the whole suite adds PostgreSQL.
    """
    for item in items:
        if item.get_closest_marker("postgres") is not None:
            item.add_marker(pytest.mark.slow)


if os.environ.get("AICF_GC_EACH_TEST") == "1":  # find which test leaks a socket or file: collect after each one

    @pytest.fixture(autouse=True)
    def _collect_garbage_after_each_test() -> Iterator[None]:
        yield
        gc.collect()
