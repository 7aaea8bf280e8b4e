"""The source files the structural tests read (architecture, clocks, errors), parsed once per run.

Several tests walk the syntax tree of every file under aicf/ and tests/; parsing them all takes about a second
each time. The tree is cached by the file's text, so a file a test writes or rewrites is parsed as it is now.
Callers only read the trees.

The trees of aicf/ and tests/ are some 700,000 objects that live for the rest of the run, and every full pass of
the cyclic garbage collector walked them all: about 0.3 s a pass, 15 s of a fast loop. So the first call parses
both folders at once (and lists each tree's nodes, `walk`), with the collector paused, and freezes what is alive
out of its sight (`gc.freeze`).
conftest.py drops the cache when the session ends: unfrozen and freed then, the trees go in a moment, while left
to the interpreter's shutdown they took minutes of its final garbage collection.
"""

import ast
import gc
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("aicf", "tests")  # what the structural tests read; anything else is parsed on demand, not frozen


def parse_file(path: Path, filename: str | None = None) -> ast.Module:
    """The syntax tree of `path` (read as UTF-8); `filename` names it in a SyntaxError."""
    _parse_the_tree_once()
    text = path.read_text(encoding="utf-8")
    try:
        return _parse(text)
    except SyntaxError:
        return ast.parse(text, filename=filename or str(path))  # raises again, naming the file


def walk(tree: ast.AST) -> tuple[ast.AST, ...]:
    """`ast.walk(tree)`, in its order, listed once per tree: the structural tests walk each file's tree several
    times (imports, floats, sleeps, clocks, bare raises), and walking is most of what they cost."""
    return _walked(tree)


@cache
def _walked(tree: ast.AST) -> tuple[ast.AST, ...]:
    return tuple(ast.walk(tree))


@cache
def _parse(text: str) -> ast.Module:
    return ast.parse(text)


@cache
def _parse_the_tree_once() -> None:
    gc.collect()  # garbage now is freed, not frozen (parsing makes none: syntax trees hold no cycles)
    enabled = gc.isenabled()
    gc.disable()  # and no pass over the heap while the trees grow it
    try:
        for folder in FOLDERS:
            for path in sorted((ROOT / folder).rglob("*.py")):
                try:
                    _walked(_parse(path.read_text(encoding="utf-8")))
                except SyntaxError:
                    continue  # the caller that asks for this file gets the error
    finally:
        if enabled:
            gc.enable()
    gc.freeze()


def forget() -> None:
    """Drop every cached tree and let the collector see what was frozen again."""
    _parse.cache_clear()
    _walked.cache_clear()
    _parse_the_tree_once.cache_clear()
    gc.unfreeze()
