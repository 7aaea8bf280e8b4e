"""The source files the structural tests read (architecture, clocks, errors), parsed once per run.

Several tests walk the syntax tree of every file under aicf/ and tests/; parsing them all takes about a second
each time. The tree is cached by the file's text, so a file a test writes or rewrites is parsed as it is now.
Callers only read the trees. conftest.py drops the cache when the session ends: freed then, the trees go in a
moment, while left to the interpreter's shutdown they took minutes of its final garbage collection.
"""

import ast
from functools import cache
from pathlib import Path


def parse_file(path: Path, filename: str | None = None) -> ast.Module:
    """The syntax tree of `path` (read as UTF-8); `filename` names it in a SyntaxError."""
    return _parse(path.read_text(encoding="utf-8"), filename or str(path))


@cache
def _parse(text: str, filename: str) -> ast.Module:
    return ast.parse(text, filename=filename)


def forget() -> None:
    """Drop every cached tree."""
    _parse.cache_clear()
