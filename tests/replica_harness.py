"""benchmarks/replica.py (the replica harness, outside the product package) loaded as a module for the tests."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "replica.py"


def replica_harness() -> ModuleType:
    """benchmarks/replica.py as the module `replica` (registered, as its dataclasses need)."""
    if "replica" not in sys.modules:
        spec = importlib.util.spec_from_file_location("replica", HARNESS)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["replica"] = module
        spec.loader.exec_module(module)
    return sys.modules["replica"]
