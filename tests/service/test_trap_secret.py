"""Issue 14: the trap secret is random, kept in a 0600 file beside operator.key, never derived from a public key.

Anyone who knows the operator's public key (it verifies every lease grant and acceptance) could otherwise compute
every s_E and pick out the trap jobs and the quantum traps of every batch.
"""

import stat
from pathlib import Path

import pytest
from store.backends import memory_store

from aicf.bootstrap.system import SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError
from aicf.transports.key_files import load_or_create_secret, public_bytes


def _system(var: Path):  # type: ignore[no-untyped-def]
    return build_system(memory_store(), devnet_params(), SystemConfig(var=var, model_digests={}))


def test_the_trap_secret_is_random_kept_0600_and_not_derived_from_the_operator_key(tmp_path: Path) -> None:
    system = _system(tmp_path)
    path = tmp_path / "trap.secret"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = system.coord.trap_secret
    assert len(secret) == 32
    assert bytes.fromhex(path.read_text(encoding="utf-8").strip()) == secret
    public = public_bytes(system.operator_key)
    assert secret != tagged_hash("aicf/devnet/trapsecret/v1", public)
    assert public not in secret
    again = _system(tmp_path)  # a restart keeps it: seeds already committed stay revealable
    assert again.coord.trap_secret == secret
    other = tmp_path / "other"
    other.mkdir()
    (other / "operator.key").write_text((tmp_path / "operator.key").read_text(encoding="utf-8"), encoding="utf-8")
    assert _system(other).coord.trap_secret != secret  # same operator key, fresh secret


def test_a_trap_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trap.secret"
    load_or_create_secret(path)
    path.chmod(0o644)
    with pytest.raises(AicfError, match=r"trap\.secret.*0644"):
        load_or_create_secret(path)


def test_a_trap_secret_file_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trap.secret"
    path.touch(mode=0o600)
    path.write_text("abcd", encoding="utf-8")
    with pytest.raises(AicfError, match="32 bytes"):
        load_or_create_secret(path)
