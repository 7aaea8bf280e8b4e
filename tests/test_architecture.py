"""The layer rule of STYLE.md §1, as a test: an AST walk over every module of aicf/ and tests/.

- Each layer imports only the aicf layers listed for it in MAY_IMPORT; a new top-level module or package
  under aicf/ fails until it is given a row.
- aicf/core imports nothing but aicf.core and pure standard-library modules (no clock, randomness,
  files, network, processes, logging; no third-party package), calls no I/O builtin, and holds no
  float: no float literal, no `float` annotation, no float() conversion. (`isinstance(x, float)` stays
  legal: the encoder needs it to refuse floats; `/` on Fractions stays legal: it is exact.)
- tests/ never calls time.sleep or asyncio.sleep: time is an argument (STYLE §5).

The checker functions are tested on deliberately bad trees in a tmp dir, so a silent checker cannot pass.
"""

import ast
import sys
from pathlib import Path

import pytest
from source_tree import parse_file, walk

ROOT = Path(__file__).resolve().parent.parent

# layer -> the aicf modules it may import (a name passes if it equals one or starts with one + ".")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "aicf": frozenset(),  # aicf/__init__.py
    "aicf.core": frozenset({"aicf.core"}),
    "aicf.proofs": frozenset({"aicf.core", "aicf.proofs"}),
    "aicf.store": frozenset({"aicf.core", "aicf.store"}),
    "aicf.chain": frozenset({"aicf.core", "aicf.chain"}),
    "aicf.service": frozenset(
        {"aicf.core", "aicf.proofs", "aicf.store.interface", "aicf.service", "aicf.chain.interface"}
    ),
    "aicf.transports": frozenset({"aicf.core", "aicf.service", "aicf.transports", "aicf.client", "aicf.provider"}),
    "aicf.provider": frozenset({"aicf.core", "aicf.provider", "aicf.client"}),
    "aicf.client": frozenset({"aicf.core", "aicf.client"}),
    "aicf.bootstrap": frozenset({"aicf"}),  # the composition root may wire anything
    "aicf.devtools": frozenset({"aicf"}),  # harnesses: the demo load and the reference providers of `aicf up`
    "aicf.__main__": frozenset({"aicf.bootstrap"}),  # `python -m aicf`: the entry point of aicf/bootstrap/cli.py
}
# Single modules allowed one more import than their layer: none (the CLI's entry point lives in the bootstrap).
EXTRA_IMPORTS: dict[str, frozenset[str]] = {}
# The product never imports the harnesses of aicf/devtools; `aicf up` starts its embedded demo (the reference
# providers and the demo load) from there, and is the one module allowed to (aicf/devtools/__init__.py).
DEVTOOLS_USERS = frozenset({"aicf/bootstrap/up.py"})

# Standard-library modules core must not import: clock, randomness, files, network, processes, logging,
# dynamic imports, non-integer numbers. Everything else core imports must be in sys.stdlib_module_names.
CORE_FORBIDDEN_STDLIB = frozenset(
    {
        "time", "datetime", "zoneinfo", "calendar", "random", "secrets", "uuid", "os", "sys", "socket",
        "socketserver", "ssl", "select", "selectors", "http", "urllib", "ftplib", "smtplib", "imaplib",
        "poplib", "sqlite3", "dbm", "shelve", "pickle", "marshal", "asyncio", "logging", "warnings",
        "subprocess", "threading", "_thread", "multiprocessing", "concurrent", "signal", "sched", "pathlib",
        "io", "tempfile", "shutil", "glob", "fnmatch", "fileinput", "linecache", "mmap", "fcntl", "pty",
        "tty", "termios", "resource", "ctypes", "importlib", "pkgutil", "runpy", "site", "atexit",
        "faulthandler", "tracemalloc", "gc", "getpass", "platform", "locale", "webbrowser", "decimal",
        "statistics", "cmath", "builtins",
    }
)  # fmt: skip
CORE_FORBIDDEN_CALLS = frozenset({"open", "input", "print", "exec", "eval", "compile", "__import__", "breakpoint"})
SLEEPERS = frozenset({("time", "sleep"), ("asyncio", "sleep")})


def layer_of(rel: Path) -> str:
    """aicf/store/sqlite.py -> aicf.store; aicf/service.py -> aicf.service; aicf/__init__.py -> aicf."""
    parts = rel.parts
    if len(parts) == 2:
        return "aicf" if parts[1] == "__init__.py" else f"aicf.{Path(parts[1]).stem}"
    return f"aicf.{parts[1]}"


def module_of(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every import; `from aicf.x import y` yields aicf.x.y, relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            if base.split(".")[0] == "aicf":
                found.extend(
                    (node.lineno, base if alias.name == "*" else f"{base}.{alias.name}") for alias in node.names
                )
            else:
                found.append((node.lineno, base))
    return found


def _allowed(name: str, allowed: frozenset[str]) -> bool:
    return any(name == ok or name.startswith(ok + ".") for ok in allowed)


def check_aicf_module(path: Path, root: Path) -> list[str]:
    """Every layer violation in one module of aicf/, each message naming the file, the line and the import."""
    rel = path.relative_to(root)
    where = rel.as_posix()
    layer = layer_of(rel)
    if layer not in MAY_IMPORT:
        return [
            f"{where}: {layer} is a new layer; add it to MAY_IMPORT in tests/test_architecture.py "
            "with the aicf layers it may import (STYLE.md §1)"
        ]
    allowed = MAY_IMPORT[layer] | EXTRA_IMPORTS.get(where, frozenset())
    tree = parse_file(path, where)
    problems: list[str] = []
    for line, name in imported_modules(tree, module_of(rel), path.name == "__init__.py"):
        top = name.split(".")[0]
        if top == "aicf":
            if not _allowed(name, allowed):
                problems.append(f"{where}:{line}: {layer} imports {name}; it may import only {sorted(allowed)}")
        elif layer == "aicf.core":
            if top in CORE_FORBIDDEN_STDLIB:
                problems.append(f"{where}:{line}: core must stay pure, imports {name} (I/O, clock or chance)")
            elif top not in sys.stdlib_module_names:
                problems.append(f"{where}:{line}: core imports the third-party module {name}")
    if layer == "aicf.core":
        problems.extend(_core_purity(tree, where))
    return problems


def _annotations(tree: ast.AST) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            every = [
                *a.posonlyargs,
                *a.args,
                *a.kwonlyargs,
                *([a.vararg] if a.vararg else []),
                *([a.kwarg] if a.kwarg else []),
            ]
            found.extend(arg.annotation for arg in every if arg.annotation is not None)
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return found


def _mentions_float(annotation: ast.expr) -> bool:
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name) and node.id == "float":
            return True
        if (  # a string annotation
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(isinstance(n, ast.Name) and n.id == "float" for n in ast.walk(ast.parse(node.value, mode="eval")))
        ):
            return True
    return False


def _core_purity(tree: ast.AST, where: str) -> list[str]:
    """Float literals, `float` annotations, float() conversions and I/O builtins in a core module."""
    problems = []
    for node in walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, float | complex):
            problems.append(f"{where}:{line}: float literal {node.value!r} in core; use integer units")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float":
            problems.append(f"{where}:{line}: float() in core; use integer units")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CORE_FORBIDDEN_CALLS:
            problems.append(f"{where}:{line}: core calls {node.func.id}()")
    for annotation in _annotations(tree):
        if _mentions_float(annotation):
            problems.append(f"{where}:{annotation.lineno}: `float` annotation in core; use integer units")
    return sorted(problems, key=lambda p: int(p.split(":")[1]))


def check_test_module(path: Path, root: Path) -> list[str]:
    """time.sleep / asyncio.sleep (however imported or aliased) in a test module."""
    where = path.relative_to(root).as_posix()
    tree = parse_file(path, where)
    aliases: dict[str, str] = {}  # local name -> module, for `import time as t`
    problems = []
    for node in walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (node.module, alias.name) in SLEEPERS:
                    problems.append(f"{where}:{node.lineno}: imports {node.module}.sleep; drive a fake clock instead")
    for node in walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (aliases.get(node.value.id), node.attr) in SLEEPERS
        ):
            problems.append(
                f"{where}:{node.lineno}: calls {aliases[node.value.id]}.sleep; tests never sleep (STYLE §5)"
            )
    return problems


def check_devtools_unused(path: Path, root: Path) -> list[str]:
    """An import of aicf.devtools from a product module (outside aicf/devtools and DEVTOOLS_USERS)."""
    rel = path.relative_to(root)
    where = rel.as_posix()
    if layer_of(rel) == "aicf.devtools" or where in DEVTOOLS_USERS:
        return []
    tree = parse_file(path, where)
    return [
        f"{where}:{line}: the product imports the harness {name}; aicf/devtools is for demos, tests and benchmarks"
        for line, name in imported_modules(tree, module_of(rel), path.name == "__init__.py")
        if _allowed(name, frozenset({"aicf.devtools"}))
    ]


def check_tree(root: Path) -> list[str]:
    problems = []
    for path in sorted((root / "aicf").rglob("*.py")):
        problems.extend(check_aicf_module(path, root))
        problems.extend(check_devtools_unused(path, root))
    for path in sorted((root / "tests").rglob("*.py")):
        problems.extend(check_test_module(path, root))
    return problems


# ---- the real tree --------------------------------------------------------------------------------------

AICF_MODULES = sorted((ROOT / "aicf").rglob("*.py"))


@pytest.mark.parametrize("path", AICF_MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_stays_in_its_layer(path: Path) -> None:
    problems = check_aicf_module(path, ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", AICF_MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_product_never_imports_the_devtools(path: Path) -> None:
    problems = check_devtools_unused(path, ROOT)
    assert not problems, "\n".join(problems)


def test_tests_never_sleep() -> None:
    problems = [p for path in sorted((ROOT / "tests").rglob("*.py")) for p in check_test_module(path, ROOT)]
    assert not problems, "\n".join(problems)


def test_the_core_package_exists_and_is_checked() -> None:
    assert any(p.relative_to(ROOT).parts[:2] == ("aicf", "core") for p in AICF_MODULES)


# ---- the checker itself, on deliberately bad trees -------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_checker_accepts_a_clean_tree(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "aicf/__init__.py": "",
            "aicf/core/rules.py": "import hashlib\nimport tomllib\nfrom aicf.core.errors import AicfError\n"
            "def f(a: int) -> int:\n    return a // 2\n",
            "aicf/service.py": "from aicf.store.interface import Store\nfrom aicf.chain.interface import Chain\n"
            "from aicf.store import interface\n",
            "aicf/transports/cli.py": "import typer\nfrom aicf.service import enqueue\n",
            "aicf/bootstrap/cli.py": "from aicf.bootstrap.up import start_up\n"
            "from aicf.transports.cli import build_app\n",
            "aicf/__main__.py": "from aicf.bootstrap.cli import main\n",
            "aicf/proofs/tee.py": "from cryptography import x509\nfrom aicf.core.ids import proof_id\n",
            "aicf/bootstrap/stores.py": "from aicf.store.sqlite import SqliteStore\n",
            "aicf/bootstrap/up.py": "from aicf.devtools.demo import DemoRequesters\n",
            "aicf/devtools/demo.py": "from aicf.bootstrap.system import System\n",
            "tests/test_ok.py": "def test_x(clock):\n    clock.advance(60)\n",
        },
    )
    assert check_tree(root) == []


def test_checker_rejects_io_and_third_party_imports_in_core(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "aicf/core/bad.py": "import time\nfrom os import path\nimport cbor2\nimport random as r\n"
            "from pathlib import Path\n"
        },
    )
    problems = check_tree(root)
    assert len(problems) == 5
    assert all(p.startswith("aicf/core/bad.py:") for p in problems)
    assert "imports time" in problems[0]
    assert "third-party module cbor2" in problems[2]


def test_checker_rejects_float_literals_annotations_and_conversions_in_core(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"aicf/core/money.py": "RATE = 0.15\ndef f(a: float) -> int:\n    return 1\ndef g(a: int) -> 'list[float]':\n"
         "    return []\nx: dict[str, float] = {}\ndef h(x: int) -> int:\n    return float(x)\n"
         "def ok(v: object) -> bool:\n    return isinstance(v, float)\n"},
    )  # fmt: skip
    problems = check_tree(root)
    assert [p.split(":")[1] for p in problems] == ["1", "2", "4", "6", "8"]
    text = "\n".join(problems)
    assert "money.py:1: float literal 0.15" in text
    assert "money.py:2: `float` annotation" in text
    assert "money.py:4: `float` annotation" in text
    assert "money.py:6: `float` annotation" in text
    assert "money.py:8: float()" in text


def test_checker_rejects_io_builtins_in_core(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"aicf/core/reader.py": "def f():\n    return open('x').read()\n"})
    assert check_tree(root) == ["aicf/core/reader.py:2: core calls open()"]


def test_checker_rejects_a_layer_reaching_past_its_interface(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "aicf/service/jobs.py": "from aicf.store.sqlite import SqliteStore\nfrom ..store import memory\n",
            "aicf/transports/rpc.py": "from aicf.bootstrap.up import build\nfrom aicf.store import interface\n",
            "aicf/transports/cli.py": "from aicf.bootstrap.up import start_up\n",
            "aicf/__main__.py": "from aicf.store.sqlite import SqliteStore\n",
            "aicf/core/x.py": "from aicf.service import enqueue\n",
            "aicf/proofs/y.py": "from aicf.store.memory import MemoryStore\n",
            "aicf/provider/agent.py": "from aicf.service import heartbeat\nfrom aicf.client import Rpc\n",
            "aicf/chain/devnet.py": "from aicf.store import memory\n",
            "aicf/__init__.py": "from aicf import core\n",
        },
    )
    problems = check_tree(root)
    text = "\n".join(problems)
    assert "aicf/service/jobs.py:1: aicf.service imports aicf.store.sqlite.SqliteStore" in text
    assert "aicf/service/jobs.py:2: aicf.service imports aicf.store.memory" in text  # relative import resolved
    assert "aicf/transports/rpc.py:1: aicf.transports imports aicf.bootstrap.up.build" in text
    assert "aicf/transports/cli.py:1: aicf.transports imports aicf.bootstrap.up.start_up" in text  # cli no more
    assert "aicf/__main__.py:1: aicf.__main__ imports aicf.store.sqlite.SqliteStore" in text
    assert "aicf/transports/rpc.py:2: aicf.transports imports aicf.store.interface" in text
    assert "aicf/core/x.py:1: aicf.core imports aicf.service.enqueue" in text
    assert "aicf/proofs/y.py:1:" in text
    assert "aicf/provider/agent.py:1:" in text
    assert "aicf/provider/agent.py:2:" not in text
    assert "aicf/chain/devnet.py:1:" in text
    assert "aicf/__init__.py:1:" in text
    assert len(problems) == 11


def test_checker_rejects_the_product_importing_the_devtools(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "aicf/bootstrap/system.py": "from aicf.devtools.demo import DemoRequesters\n",
            "aicf/transports/cli.py": "from aicf.devtools import demo\n",
            "aicf/bootstrap/up.py": "from aicf.devtools.providers import start_reference_providers\n",
            "aicf/devtools/providers.py": "from aicf.devtools.demo import BELL\n",
        },
    )
    problems = check_tree(root)
    assert [p.split(":")[0] for p in problems if "harness" in p] == [
        "aicf/bootstrap/system.py",
        "aicf/transports/cli.py",
    ]
    assert "the product imports the harness aicf.devtools.demo.DemoRequesters" in problems[0]


def test_checker_asks_for_a_new_layer_to_be_added_to_the_table(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"aicf/metrics/prom.py": "", "aicf/wallet.py": ""})
    problems = check_tree(root)
    assert len(problems) == 2
    assert all("add it to MAY_IMPORT" in p for p in problems)
    assert "aicf.metrics" in problems[0]
    assert "aicf.wallet" in problems[1]


def test_checker_rejects_sleeping_tests_however_sleep_is_imported(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "tests/test_a.py": "import time\ndef test_a():\n    time.sleep(1)\n",
            "tests/sub/test_b.py": "import asyncio as aio\nasync def test_b():\n    await aio.sleep(0)\n",
            "tests/test_c.py": "from time import sleep\n",
            "tests/test_d.py": "import time\ndef test_d(clock):\n    assert time.monotonic_ns() >= 0\n",
        },
    )
    problems = check_tree(root)
    assert len(problems) == 3
    assert problems[0].startswith("tests/sub/test_b.py:3:")
    assert problems[1].startswith("tests/test_a.py:3:")
    assert problems[2].startswith("tests/test_c.py:1:")


def test_the_replica_harness_is_a_benchmark_tool_outside_the_product_package() -> None:
    """Issue 13: the product's replica is `aicf serve`; the harness with simulated providers is benchmarks'."""
    assert (ROOT / "benchmarks" / "replica.py").is_file()
    mentions = [
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "aicf").rglob("*.py"))
        if "devtools.replica" in p.read_text(encoding="utf-8") or p.name == "replica.py"
    ]
    assert mentions == []
