"""Numbers read the same in the CLI and on the dashboard: both are tested against format_vectors.json
(this file for aicf.transports.fmt; test_dashboard_browser.py for the page's aicfFormat)."""

import json
from pathlib import Path

import pytest

from aicf.transports import fmt

VECTORS = json.loads((Path(__file__).parent / "format_vectors.json").read_text(encoding="utf-8"))
CASES = [(name, value, text) for name, cases in VECTORS.items() for value, text in cases]


@pytest.mark.parametrize(("name", "value", "text"), CASES)
def test_the_cli_formats_each_vector_as_the_dashboard_does(name: str, value: int, text: str) -> None:
    assert getattr(fmt, name)(value) == text


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_a_missing_value_prints_a_dash(name: str) -> None:
    assert getattr(fmt, name)(None) == "-"
    assert getattr(fmt, name)(True) == "-"
