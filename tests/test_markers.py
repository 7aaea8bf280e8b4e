"""The fast loop (`pytest -m "not slow"`) leaves out what needs a server; the markers say so on every test. It runs
a share of each property's examples, the whole suite all of them (tests/budget.py)."""

import pytest
from budget import FAST_DEFAULT, FULL_DEFAULT, RUN, examples_for, is_fast_loop
from hypothesis import settings


def test_every_postgres_test_is_also_slow(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    postgres = [item for item in items if item.get_closest_marker("postgres") is not None]
    not_slow = [item.nodeid for item in postgres if item.get_closest_marker("slow") is None]
    assert not_slow == [], f"postgres tests missing the slow mark: {not_slow}"


def test_every_test_on_anvil_is_also_slow(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    on_anvil = [item for item in items if "anvil" in getattr(item, "fixturenames", ())]
    assert [item.nodeid for item in on_anvil if item.get_closest_marker("slow") is None] == []


def test_a_mark_expression_that_leaves_out_slow_tests_is_the_fast_loop() -> None:
    assert is_fast_loop("not slow")
    assert is_fast_loop("not  slow and not postgres")
    assert not is_fast_loop("")
    assert not is_fast_loop("slow")
    assert not is_fast_loop("not slowish")


def test_the_fast_loop_runs_a_tenth_of_a_propertys_examples_and_the_whole_suite_all_of_them() -> None:
    assert examples_for(300, fast_loop=False) == 300
    assert examples_for(300, fast_loop=True) == 30
    assert examples_for(50, fast_loop=True) == 10  # never fewer than ten
    assert examples_for(4, fast_loop=True) == 4  # nor more than the full count
    assert examples_for(3000, fast_loop=True, fast=100) == 100  # a fuzz test names its fast count
    assert examples_for(3000, fast_loop=False, fast=100) == 3000


def test_this_run_uses_the_profile_of_its_loop(pytestconfig: pytest.Config) -> None:
    fast = is_fast_loop(pytestconfig.getoption("markexpr") or "")
    assert RUN.fast_loop is fast
    assert settings().max_examples == (FAST_DEFAULT if fast else FULL_DEFAULT)


def test_the_slow_marker_is_declared_with_the_fast_loop_it_defines(pytestconfig: pytest.Config) -> None:
    markers = pytestconfig.getini("markers")
    slow = [m for m in markers if m.startswith("slow:")]
    assert len(slow) == 1
    assert 'pytest -m "not slow"' in slow[0]
