"""The fast loop (`pytest -m "not slow"`) leaves out what needs a server; the markers say so on every test."""

import pytest


def test_every_postgres_test_is_also_slow(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    postgres = [item for item in items if item.get_closest_marker("postgres") is not None]
    not_slow = [item.nodeid for item in postgres if item.get_closest_marker("slow") is None]
    assert not_slow == [], f"postgres tests missing the slow mark: {not_slow}"


def test_the_slow_marker_is_declared_with_the_fast_loop_it_defines(pytestconfig: pytest.Config) -> None:
    markers = pytestconfig.getini("markers")
    slow = [m for m in markers if m.startswith("slow:")]
    assert len(slow) == 1
    assert 'pytest -m "not slow"' in slow[0]
