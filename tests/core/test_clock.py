"""Issue 16, item 6: one Clock protocol (aicf.core.clock), one fake clock, one wall clock (aicf.client.clock)."""

import ast
from pathlib import Path

from source_tree import parse_file, walk

from aicf.client.clock import WallClock
from aicf.core.clock import Clock, FakeClock

ROOT = Path(__file__).resolve().parent.parent.parent
# No exemption: the replica harness's ScaledClock lives in benchmarks/replica.py, outside the package (issue 13).
COMPOSITION_ROOT: set[str] = set()


def _clock_classes(tree: ast.AST) -> list[ast.ClassDef]:
    return [n for n in walk(tree) if isinstance(n, ast.ClassDef) and n.name.endswith("Clock")]


def test_aicf_declares_one_clock_protocol_and_one_wall_clock() -> None:
    protocols: list[str] = []
    clocks: list[str] = []
    for path in sorted((ROOT / "aicf").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for cls in _clock_classes(parse_file(path)):
            is_protocol = any(isinstance(b, ast.Name) and b.id == "Protocol" for b in cls.bases)
            (protocols if is_protocol else clocks).append(f"{rel}:{cls.name}")
    assert protocols == ["aicf/core/clock.py:Clock"]
    others = [c for c in clocks if c.split(":")[0] not in COMPOSITION_ROOT]
    assert others == ["aicf/client/clock.py:WallClock", "aicf/core/clock.py:FakeClock"]


def test_tests_write_no_fake_clock_of_their_own() -> None:
    written = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for cls in _clock_classes(parse_file(path)):
            written.append(f"{path.relative_to(ROOT).as_posix()}:{cls.name}")
    # SteppedClock subclasses aicf.system's WallClock (the type `build_system` takes until the bootstrap rework);
    # WorkClock is a per-agent view of the shared fake clock, not a clock of its own.
    assert written == [
        "tests/e2e/test_cheats.py:SteppedClock",
        "tests/e2e/test_cheats.py:WorkClock",
        "tests/transports/test_cli_ops.py:SteppedClock",
    ]


def test_the_fake_clock_moves_only_when_told() -> None:
    clock: Clock = FakeClock(1_700_000_000)
    assert (clock.now(), clock.now_ms()) == (1_700_000_000, 1_700_000_000_000)
    assert isinstance(clock, FakeClock)
    assert clock.advance(2, ms=500) == 1_700_000_002
    assert clock.now_ms() == 1_700_000_002_500
    clock.set(5)
    assert (clock.now(), clock.now_ms()) == (5, 5_000)


def test_the_wall_clock_agrees_with_itself_in_seconds_and_milliseconds() -> None:
    wall: Clock = WallClock()
    before_ms = wall.now_ms()
    seconds = wall.now()
    assert before_ms // 1000 <= seconds <= wall.now_ms() // 1000
