"""Issue 16: the coordinator's use-cases are plain-function modules over one unit of work, the facade only
delegates, and the per-process caches are one object the bootstrap builds and hands to the facade."""

import ast
from pathlib import Path

from aicf.bootstrap.coordinator import CoordinatorConfig, build_coordinator
from aicf.service.context import Caches
from aicf.service.coordinator import Capabilities, Coordinator
from service.test_coordinator import World, _key, _pub, world  # noqa: F401 - the fixture

USE_CASE_MODULES = (
    "registry",
    "leases",
    "matching",
    "proofs",
    "proof_groups",
    "slashing",
    "sweep",
    "trap_duties",
    "claims",
)
SERVICE = Path("aicf/service")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_use_case_modules_stay_small_and_never_reach_back_into_the_facade() -> None:
    for name in (*USE_CASE_MODULES, "context", "steps", "coordinator"):
        path = SERVICE / f"{name}.py"
        if name != "coordinator":
            assert "aicf.service.coordinator" not in _imports(path), f"{path} imports the facade"
    for path in sorted(SERVICE.glob("*.py")):  # issue 16: every module of the service layer under about 300 lines
        lines = len(path.read_text().splitlines())
        assert lines <= 300, f"{path}: {lines} lines; split it by what it does (as ingest, trust and traps were)"


def test_the_facade_holds_no_use_case_logic() -> None:
    tree = ast.parse((SERVICE / "coordinator.py").read_text())
    facade = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Coordinator")
    for method in (n for n in facade.body if isinstance(n, ast.FunctionDef) and n.name != "__init__"):
        body = [s for s in method.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        assert len(body) == 1, f"Coordinator.{method.name} does more than delegate"
        assert not any(isinstance(n, ast.With) for n in ast.walk(method)), f"Coordinator.{method.name} opens a tx"


def test_caches_handed_to_the_facade_are_the_ones_its_use_cases_fill(world: World) -> None:  # noqa: F811
    caches = Caches()
    coord = Coordinator(
        store=world.store,
        clock=world.clock,
        params=world.coord.params,
        operator_key=world.coord.operator_key,
        verifier=world.coord.verifier,
        chain_writer=world.coord.chain_writer,
        caches=caches,
    )
    p = coord.register(_pub(_key(1)), Capabilities(kinds=("ai",), models=("llama3-8b",)))
    coord.deposit_stake(p.provider_id, 1_000_000, source="external")
    world.live.append(p.provider_id)
    world.enqueue(1)
    world.mine(7)
    (decision,) = coord.match()
    assert decision.winner == p.provider_id
    assert caches.registry is not None
    assert [profile.provider_id for profile in caches.registry.profiles] == [p.provider_id]
    assert coord.trap_shortfalls is caches.trap_shortfalls


def test_the_bootstrap_builds_each_coordinator_its_own_caches_or_hands_in_the_callers(world: World) -> None:  # noqa: F811
    config = CoordinatorConfig(params=world.params, operator_key=world.operator, model_digests={}, trap_secret=b"s")
    caches = Caches()
    given = build_coordinator(config, store=world.store, clock=world.clock, chain_writer=None, caches=caches)
    built = build_coordinator(config, store=world.store, clock=world.clock, chain_writer=None)
    assert given.caches is caches
    assert isinstance(built.caches, Caches)
    assert built.caches is not caches
    assert given.context().caches is caches
