"""Issue 16, item 6: one error tree. Every exception aicf defines for its callers is an AicfError subclass with a
name (private control-flow exceptions, `_`-prefixed, never leave their module), and no code raises the bare base."""

import ast
import importlib
import pkgutil
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from source_tree import parse_file, walk
from store.backends import memory_store

import aicf
from aicf.client.signing import UNBOUND, AuthInputError, sign_auth
from aicf.core.clock import FakeClock
from aicf.core.errors import AicfError
from aicf.core.params import Params
from aicf.core.registry import ProviderStatus
from aicf.provider.agent import AgentConfig, AgentConfigError
from aicf.service.context import Caches
from aicf.service.coordinator import Capabilities, Coordinator
from aicf.service.errors import ProviderChangedError
from aicf.service.steps import update_provider
from aicf.service.verifier import StandardVerifier

ROOT = Path(__file__).resolve().parent.parent
# aicf.system's trap-secret checks still raise the bare base; the bootstrap rework of issue 16 (item 2) moves them.
COMPOSITION_ROOT: set[str] = set()  # none left: the bootstrap raises named errors too


def _aicf_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(aicf.__path__, "aicf.")]


def test_every_public_exception_aicf_defines_is_in_the_tree() -> None:
    outside: list[str] = []
    for name in _aicf_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not value.__name__.startswith("_")
                and not issubclass(value, AicfError)
            ):
                outside.append(f"{name}.{value.__name__}")
    assert outside == []


def test_nothing_raises_the_bare_base() -> None:
    bare: list[str] = []
    for path in sorted((ROOT / "aicf").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in COMPOSITION_ROOT:
            continue
        for node in walk(parse_file(path)):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name)
                and node.exc.func.id == "AicfError"
            ):
                bare.append(f"{rel}:{node.lineno}")
    assert bare == []


def test_a_bad_agent_setting_is_an_agent_config_error_naming_it() -> None:
    with pytest.raises(AgentConfigError, match="heartbeat_interval_s: must be at least 1, got 0") as caught:
        AgentConfig(kinds=("ai",), models=("llama3-8b",), heartbeat_interval_s=0)
    assert caught.value.field == "heartbeat_interval_s"


def test_a_short_nonce_is_an_auth_input_error_naming_it() -> None:
    key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    with pytest.raises(AuthInputError, match="nonce: must be 16 bytes, got 3") as caught:
        sign_auth(key, "aicf.heartbeat", {}, 1_700_000_000, b"abc", UNBOUND)
    assert caught.value.field == "nonce"


def test_a_provider_row_changed_under_a_use_case_is_a_provider_changed_error() -> None:
    store = memory_store()
    clock = FakeClock(1_700_000_000)
    coord = Coordinator(
        store=store,
        clock=clock,
        params=Params.default(),
        operator_key=Ed25519PrivateKey.from_private_bytes(b"\x02" * 32),
        verifier=StandardVerifier(model_digests={}, trap_seed=lambda e: bytes(32)),
        caches=Caches(),
    )
    p = coord.register(b"\x03" * 32, Capabilities(kinds=("ai",), models=("llama3-8b",)))
    with store.transaction() as tx:
        stale = replace(p, status=ProviderStatus.JAILED)  # what another replica's write would leave us believing
        with pytest.raises(ProviderChangedError, match=f"provider 0x{p.provider_id.hex()} changed concurrently"):
            update_provider(tx, replace(stale, bonded=1), stale.status)
