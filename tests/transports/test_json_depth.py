"""A deeply nested body is refused before the json module recurses into it, whatever the recursion limit.

web3 (eth_account) raises the interpreter's recursion limit to 100,000 when it is imported; the json module then
recurses into 100,000 levels and overflows the C stack, killing the process (seen: SIGSEGV). The depth check runs
on the text first, so the limit never matters.
"""

import subprocess
import sys
from collections.abc import Iterator

import pytest

from aicf.transports.errors import ParseError
from aicf.transports.rpc import MAX_JSON_DEPTH, parse_body


@pytest.fixture
def high_recursion_limit() -> Iterator[None]:
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.usefixtures("high_recursion_limit")
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"[{" * 40_000])
def test_a_deep_body_is_a_parse_error_even_with_a_raised_recursion_limit(body: bytes) -> None:
    with pytest.raises(ParseError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        parse_body(body)


def test_brackets_inside_strings_do_not_count_towards_the_depth() -> None:
    text = '["' + "[" * 1000 + '", {"k": "\\"{{{{{{"}]'
    assert parse_body(text.encode()) == ["[" * 1000, {"k": '"{{{{{{'}]


def test_nesting_at_the_limit_is_accepted() -> None:
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert isinstance(parse_body(body), list)


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_loading_the_cli_leaves_web3_and_the_recursion_limit_alone() -> None:
    """Loading the `aicf` command (what `aicf up` runs in) does not import web3 (a fresh interpreter: other tests
    of this session import it)."""
    probe = "import sys, aicf.bootstrap.cli; print('web3' in sys.modules, sys.getrecursionlimit())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)  # noqa: S603
    assert done.stdout.split() == ["False", "1000"]
