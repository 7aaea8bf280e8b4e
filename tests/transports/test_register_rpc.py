"""`aicf.register` over the real methods: a provider's own unit-rate limits (SPEC §6's bucket, stricter only)."""

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from store.backends import memory_store

from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client.signing import public_key_bytes
from aicf.core.assignment import protocol_unit_rate
from aicf.core.encoding import to_hex
from aicf.service import reads
from transports.helpers import key, pid, signed
from transports.test_cli_ops import SteppedClock

T = 1_700_000_000


@pytest.fixture
def system(tmp_path: Path) -> System:
    return build_system(
        memory_store(), devnet_params(), SystemConfig(var=tmp_path, model_digests={}), clock=SteppedClock(T)
    )


def register(system: System, seed: int, **extra: object) -> dict[str, Any]:
    params = {"public_key": to_hex(public_key_bytes(key(seed))), "kinds": ["quantum"], **extra}
    if reads.get_provider_record(system.store, pid(key(seed))) is None:  # registration bonds a funded balance
        system.coord.fund_unregistered(pid(key(seed)), system.params.min_stake)
    with TestClient(system.app) as client:
        request = signed("aicf.register", params, signer=key(seed), ts=T, deployment=system.app.state.rpc.deployment_id)
        response = client.post("/rpc", json=request)
    body: dict[str, Any] = response.json()
    return body


def test_register_takes_declared_unit_rate_limits_and_returns_them(system: System) -> None:
    cap = protocol_unit_rate(system.params)
    result = register(system, 1, unit_burst_mu=cap.burst_mu // 2, unit_rate_mu_per_day=86_400)["result"]
    assert result["provider_id"] == to_hex(pid(key(1)))
    assert (result["unit_burst_mu"], result["unit_rate_mu_per_day"]) == (cap.burst_mu // 2, 86_400)
    with system.store.transaction() as tx:
        stored = tx.get_provider(pid(key(1)))
    assert stored is not None
    assert (stored.unit_burst_mu, stored.unit_rate_mu_per_day) == (cap.burst_mu // 2, 86_400)
    with TestClient(system.app) as client:  # the reads show the limits the bucket runs with
        shown = client.post(
            "/rpc",
            json={"jsonrpc": "2.0", "method": "aicf.getProvider", "params": {"id": result["provider_id"]}, "id": 2},
        ).json()["result"]
    assert (shown["unit_burst_mu"], shown["unit_rate_mu_per_day"], shown["max_leases"]) == (
        cap.burst_mu // 2,
        86_400,
        4,
    )


def test_register_without_limits_shows_the_protocol_figures(system: System) -> None:
    cap = protocol_unit_rate(system.params)
    result = register(system, 1)["result"]
    assert (result["unit_burst_mu"], result["unit_rate_mu_per_day"]) == (cap.burst_mu, cap.rate_mu_per_day)
    assert result["max_leases"] == 4


def test_register_refuses_limits_above_the_protocol_naming_the_field_and_range(system: System) -> None:
    cap = protocol_unit_rate(system.params)
    error = register(system, 1, unit_rate_mu_per_day=cap.rate_mu_per_day + 1)["error"]
    assert error["code"] == -32002
    assert f"unit_rate_mu_per_day: must be an integer 0..{cap.rate_mu_per_day}" in error["message"]
    with system.store.transaction() as tx:
        assert tx.get_provider(pid(key(1))) is None


@pytest.mark.parametrize("value", [-1, "7", True])  # floats, null, > 64 bits cannot even be signed
def test_register_refuses_a_unit_burst_that_is_not_a_non_negative_integer_as_invalid_params(
    system: System, value: object
) -> None:
    error = register(system, 1, unit_burst_mu=value)["error"]
    assert error["code"] == -32602
    assert "unit_burst_mu" in str(error)
