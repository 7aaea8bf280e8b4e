"""Issue 15, part A: the security review's findings against the real methods, each refused with a specific error
and nothing stored. One system per test: `build_system` on SQLite :memory: with a stepped clock."""

import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from proofs.test_untrusted_cbor import shared_reference_bomb
from starlette.testclient import TestClient
from store.backends import memory_store
from threaded_server import serve_in_thread

from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client.signing import public_key_bytes
from aicf.core.encoding import canonical_cbor, to_hex
from aicf.service.coordinator import Capabilities
from aicf.service.proof_groups import MAX_PROOF_GROUP
from transports.helpers import key, pid, signed
from transports.test_cli_ops import SteppedClock

T = 1_700_000_000
MAX = 2**63 - 1
TOKEN = "sec-rpc-operator-token"  # noqa: S105 - a test fixture


@pytest.fixture
def system(tmp_path: Path) -> System:
    return build_system(
        memory_store(),
        devnet_params(),
        SystemConfig(var=tmp_path, model_digests={}, operator_token=TOKEN),
        clock=SteppedClock(T),
    )


def rpc(system: System, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with TestClient(system.app) as client:
        answer: dict[str, Any] = client.post("/rpc", json=body, headers=headers).json()
    return answer


def call(system: System, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return rpc(system, {"jsonrpc": "2.0", "method": method, "params": params, "id": 1})


def operator(system: System, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return rpc(system, {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}, token=TOKEN)


def provider(system: System, method: str, params: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    here = system.app.state.rpc.deployment_id
    return rpc(system, signed(method, params, signer=key(seed), ts=system.clock.now(), deployment=here))


def enroll(system: System, seed: int = 1, stake: int = 10_000) -> bytes:
    """A provider registered in-process, with `stake` bonded by the operator."""
    system.coord.register(public_key_bytes(key(seed)), Capabilities(kinds=("quantum",), devices=("stim",)))
    system.coord.deposit_stake(pid(key(seed)), stake, source="external")
    return pid(key(seed))


def fields(answer: dict[str, Any]) -> list[str]:
    return [e["field"] for e in answer["error"].get("data", {}).get("errors", [])]


# -- 1. CBOR shared-reference bomb --------------------------------------------------------------------------------
def test_submit_proof_refuses_a_shared_reference_bomb_quickly_as_invalid_params(system: System) -> None:
    me = enroll(system)
    head = canonical_cbor({"provider_id": me})  # {provider_id: …}; the bomb goes in as a second key, "body"
    envelope = b"\xa2" + head[1:] + canonical_cbor("body")[0:] + shared_reference_bomb(18)
    started = time.perf_counter()
    answer = provider(system, "aicf.submitProof", {"envelope": to_hex(envelope)})
    assert time.perf_counter() - started < 1.0
    assert answer["error"]["code"] == -32602
    assert fields(answer) == ["envelope"]
    assert "CBOR tag 28 is not allowed" in answer["error"]["data"]["errors"][0]["reason"]


def test_submit_proofs_refuses_an_oversized_group_or_another_providers_envelope_naming_the_field(
    system: System,
) -> None:
    me = enroll(system)
    enroll(system, seed=2)
    mine = to_hex(canonical_cbor({"provider_id": me, "version": 9}))
    too_many = provider(system, "aicf.submitProofs", {"envelopes": [mine] * (MAX_PROOF_GROUP + 1)})
    assert too_many["error"]["code"] == -32602
    assert fields(too_many) == ["envelopes"]
    theirs = to_hex(canonical_cbor({"provider_id": pid(key(2)), "version": 9}))
    mixed = provider(system, "aicf.submitProofs", {"envelopes": [mine, theirs]})
    assert mixed["error"]["code"] == -32602
    assert fields(mixed) == ["envelopes[1]"]
    assert "provider_id is the signer of this call" in mixed["error"]["data"]["errors"][0]["reason"]
    ok = provider(system, "aicf.submitProofs", {"envelopes": [mine]})
    assert [item["code"] for item in ok["result"]["items"]] == ["MALFORMED"]


# -- 2. integer overflow into the ledger ---------------------------------------------------------------------------
def test_fund_provider_that_would_pass_2_63_is_refused_and_balances_stay_readable(system: System) -> None:
    me = enroll(system, stake=1)
    first = operator(system, "aicf.fundProvider", {"provider_id": to_hex(me), "amount": MAX - 1})
    assert first["result"]["bonded_stake"] == MAX
    again = operator(system, "aicf.fundProvider", {"provider_id": to_hex(me), "amount": MAX})
    assert again["error"]["code"] == -32017
    assert "would leave the range" in again["error"]["message"]
    balance = call(system, "aicf.getBalance", {"account": "stake:" + to_hex(me)})
    assert balance["result"]["balance"] == MAX
    shown = call(system, "aicf.getProvider", {"id": to_hex(me)})["result"]
    assert shown["bonded_stake"] == MAX


# -- 3. text fields are bounded; 4. registration is not free ----------------------------------------------------
def register_params(seed: int = 1, **extra: object) -> dict[str, Any]:
    return {"public_key": to_hex(public_key_bytes(key(seed))), "kinds": ["quantum"], "devices": ["stim"], **extra}


def stored_provider(system: System, seed: int = 1) -> object:
    with system.store.transaction() as tx:
        return tx.get_provider(pid(key(seed)))


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"devices": ["x" * 15_000]}, "devices[0]"),
        ({"devices": ["d"] * 64}, "devices"),
        ({"regions": ["r" * 65]}, "regions[0]"),
        ({"models": ["m" * 65]}, "models[0]"),
        ({"tee_classes": ["t" * 100]}, "tee_classes[0]"),
        ({"kinds": ["k" * 1000]}, "kinds[0]"),
    ],
)
def test_register_refuses_long_or_many_names_naming_the_field(
    system: System, extra: dict[str, Any], field: str
) -> None:
    operator(system, "aicf.fundProvider", {"provider_id": to_hex(pid(key(1))), "amount": 10_000})
    answer = provider(system, "aicf.register", register_params(**extra))
    assert answer["error"]["code"] == -32602
    assert fields(answer)[0] == field
    assert stored_provider(system) is None


def test_the_service_refuses_unprintable_or_long_names_too(system: System) -> None:
    from aicf.service.errors import InvalidRegistrationError

    caps = Capabilities(kinds=("quantum",), devices=("stim", "a\nb"))
    with pytest.raises(InvalidRegistrationError, match=r"devices\[1\]: a name is 1..64 printable characters"):
        system.coord.register(public_key_bytes(key(1)), caps)
    with pytest.raises(InvalidRegistrationError, match="devices: at most 16 names"):
        system.coord.register(public_key_bytes(key(1)), Capabilities(kinds=("quantum",), devices=("d",) * 17))


def test_register_without_a_funded_balance_is_refused_naming_stake_and_stores_nothing(system: System) -> None:
    answer = provider(system, "aicf.register", register_params())
    assert answer["error"]["code"] == -32002
    assert "stake" in answer["error"]["message"]
    assert "fund it first" in answer["error"]["message"]
    assert stored_provider(system) is None


def test_register_bonds_the_funded_balance_and_a_repeat_changes_nothing(system: System) -> None:
    funded = operator(system, "aicf.fundProvider", {"provider_id": to_hex(pid(key(1))), "amount": 5_000})
    assert funded["result"] == {"provider_id": to_hex(pid(key(1))), "status": "UNREGISTERED", "balance": 5_000,
                                "bonded_stake": 0, "unbonding_stake": 0}  # fmt: skip
    result = provider(system, "aicf.register", register_params())["result"]
    assert (result["status"], result["bonded_stake"]) == ("ACTIVE", 5_000)
    balances = call(system, "aicf.getBalance", {"account": "provider:" + to_hex(pid(key(1)))})["result"]
    assert balances["balance"] == 0
    assert provider(system, "aicf.register", register_params())["result"]["bonded_stake"] == 5_000
    topped = operator(system, "aicf.fundProvider", {"provider_id": to_hex(pid(key(1))), "amount": 1})
    assert topped["result"]["bonded_stake"] == 5_001  # registered: funding bonds directly, as before


def test_register_with_an_explicit_stake_above_the_balance_is_refused(system: System) -> None:
    operator(system, "aicf.fundProvider", {"provider_id": to_hex(pid(key(1))), "amount": 100})
    answer = provider(system, "aicf.register", register_params(stake=101))
    assert answer["error"]["code"] == -32002
    assert "holds 100" in answer["error"]["message"]
    part = provider(system, "aicf.register", register_params(stake=40))["result"]
    assert part["bonded_stake"] == 40
    left = call(system, "aicf.getBalance", {"account": "provider:" + to_hex(pid(key(1)))})["result"]
    assert left["balance"] == 60


@pytest.mark.slow  # a real server, three provider agents and a full garbage collection: about 2 s
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the agents' clients live on
def test_reference_providers_are_funded_first_then_register_with_their_stake(system: System) -> None:
    import gc
    import threading

    from aicf.devtools.providers import PROVIDER_STAKE, start_reference_providers

    stop = threading.Event()
    stop.set()  # the agents register and return at once
    try:
        with serve_in_thread(system.app, lifespan="on") as listening:
            start_reference_providers(system, listening.url, (), stop)
            start_reference_providers(system, listening.url, (), stop)  # a restart mints nothing more
    finally:
        gc.collect()  # the agents' clients, closed here under this test's warning filter
    with system.store.transaction() as tx:
        providers = tx.providers()
        assert [p.bonded for p in providers] == [PROVIDER_STAKE]
        assert tx.balances(["external"])["external"] == -PROVIDER_STAKE


# -- 5. a listProviders page is bounded ----------------------------------------------------------------------------
def test_a_list_providers_page_of_the_largest_registrations_stays_under_4_kib_per_provider(system: System) -> None:
    caps = Capabilities(
        kinds=("quantum",),
        devices=tuple(f"{i:02d}" + "d" * 62 for i in range(16)),
        regions=tuple(f"{i:02d}" + "r" * 62 for i in range(16)),
        tee_classes=("sev-snp", "tdx", "sgx", "nitro", "nvidia-gpu", "cca"),
    )
    for seed in range(1, 21):
        system.coord.register(public_key_bytes(key(seed)), caps)
    with TestClient(system.app) as client:
        body = client.post(
            "/rpc", json={"jsonrpc": "2.0", "method": "aicf.listProviders", "params": {"limit": 500}, "id": 1}
        ).content
    assert body.count(b'"provider_id"') == 20
    assert len(body) <= 20 * 4096  # so a page of 500, the most a page holds, stays under 2 MiB


# -- 7. signed calls are bound to a deployment -------------------------------------------------------------------
def other_system(tmp_path: Path) -> System:
    """A second deployment: the same chain id, another coordinator key (its own var directory)."""
    var = tmp_path / "other"
    var.mkdir()
    return build_system(memory_store(), devnet_params(), SystemConfig(var=var, model_digests={}), clock=SteppedClock(T))


def test_get_deployment_names_the_chain_the_coordinator_key_and_their_hash(system: System) -> None:
    from aicf.client.signing import deployment_id
    from aicf.transports.key_files import public_bytes

    shown = call(system, "aicf.getDeployment", {})["result"]
    coordinator = public_bytes(system.operator_key)
    assert shown == {
        "chain_id": system.devnet.chain_id,
        "coordinator_key": to_hex(coordinator),
        "deployment_id": to_hex(deployment_id(system.devnet.chain_id, coordinator)),
    }
    assert system.app.state.rpc.deployment_id == deployment_id(system.devnet.chain_id, coordinator)


def test_a_call_signed_for_one_deployment_is_refused_by_another(system: System, tmp_path: Path) -> None:
    other = other_system(tmp_path)
    for s in (system, other):
        enroll(s)
    with other.store.transaction() as tx:
        before = tx.snapshot().heartbeats
    here = system.app.state.rpc.deployment_id
    request = signed("aicf.heartbeat", {}, signer=key(1), ts=T, deployment=here)
    refused = rpc(other, request)
    assert refused["error"]["code"] == -32059  # WrongDeploymentError: auth.deployment names the first
    stripped = {**request, "auth": {k: v for k, v in request["auth"].items() if k != "deployment"}}
    assert rpc(other, stripped)["error"]["code"] == -32056  # without the hint: the signature does not verify
    with other.store.transaction() as tx:
        assert tx.snapshot().heartbeats == before
    assert rpc(system, request)["result"]["now"] == T  # where it was meant to go, it is accepted


def test_the_client_learns_the_deployment_once_and_signs_for_it(system: System) -> None:
    from aicf.client import RpcClient

    enroll(system)
    asked: list[str] = []
    with TestClient(system.app) as http:
        original = http.post

        def post(url: str, **kw: Any) -> Any:
            asked.append(kw["json"]["method"])
            return original(url, **kw)

        http.post = post  # type: ignore[method-assign,assignment]
        client = RpcClient(
            "http://testserver/rpc", http=cast(httpx.Client, http), provider_key=key(1), clock=system.clock
        )
        client.call_provider("aicf.heartbeat", {})
        client.call_provider("aicf.heartbeat", {})
    assert asked == ["aicf.getDeployment", "aicf.heartbeat", "aicf.heartbeat"]
    assert client.deployment == system.app.state.rpc.deployment_id


# -- 8. smaller findings ---------------------------------------------------------------------------------------------
def test_a_forged_or_another_lists_cursor_is_refused_naming_cursor(system: System) -> None:
    import base64
    import json

    for seed in (1, 2, 3):
        enroll(system, seed)
    page = call(system, "aicf.listProviders", {"limit": 1})["result"]
    assert call(system, "aicf.listProviders", {"limit": 1, "cursor": page["next_cursor"]})["result"]["items"]
    misplaced = call(system, "aicf.listJobs", {"limit": 1, "cursor": page["next_cursor"]})
    assert misplaced["error"]["code"] == -32602
    assert "a cursor of aicf.listProviders, not of aicf.listJobs" in misplaced["error"]["data"]["errors"][0]["reason"]
    parts = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=" * (-len(page["next_cursor"]) % 4)))
    parts[2] = ["b", "00" * 32]  # a well-formed cursor pointing elsewhere, with the old tag
    forged = base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")
    refused = call(system, "aicf.listProviders", {"limit": 1, "cursor": forged})
    assert fields(refused) == ["cursor"]


def test_claim_payout_of_an_empty_balance_is_refused_and_makes_no_claim(system: System) -> None:
    enroll(system)
    answer = provider(system, "aicf.claimPayout", {"nonce": 1})
    assert answer["error"]["code"] == -32003
    assert "nothing to claim" in answer["error"]["message"]
    with system.store.transaction() as tx:
        assert tx.snapshot().claims == ()


def ban(system: System, pid_: bytes) -> None:
    from aicf.core.slashing import SlashReason

    with system.store.transaction() as tx:
        p = tx.get_provider(pid_)
        assert p is not None
        system.coord._slash(tx, p, SlashReason.FRAUD, b"\x01" * 32, b"\x02" * 32, {"why": "test"}, system.clock.now())
        tx.commit()


def test_a_banned_providers_remaining_stake_unbonds_and_can_be_claimed_after_the_period(system: System) -> None:
    from aicf.core.registry import ProviderStatus

    me = enroll(system, stake=1_000_000)
    ban(system, me)
    with system.store.transaction() as tx:
        banned = tx.get_provider(me)
    assert banned is not None
    assert banned.status is ProviderStatus.BANNED
    assert (banned.bonded, banned.unbonding) == (0, 500_000)  # FRAUD took half; the rest unbonds
    assert provider(system, "aicf.heartbeat", {})["error"]["code"] == -32007  # banned: no work, no heartbeats
    clock = system.clock
    assert isinstance(clock, SteppedClock)
    clock.fixed.advance(system.params.unbonding_s - 1)
    system.coord.sweep()
    assert provider(system, "aicf.claimPayout", {"nonce": 1})["error"]["code"] == -32003  # still slashable
    clock.fixed.advance(1)
    assert system.coord.sweep().released_stake == 500_000
    claimed = provider(system, "aicf.claimPayout", {"nonce": 2})["result"]
    assert claimed["amount"] == 500_000


def test_a_refused_heartbeat_gives_its_nonce_back(system: System) -> None:
    enroll(system)
    nonce = b"\x09" * 16
    here = system.app.state.rpc.deployment_id
    unknown = {"lease_ids": [to_hex(b"\x07" * 32)]}
    refused = rpc(system, signed("aicf.heartbeat", unknown, signer=key(1), ts=T, nonce=nonce, deployment=here))
    assert refused["error"]["code"] == -32011
    with system.store.transaction() as tx:
        assert tx.snapshot().nonces == ()
    again = rpc(system, signed("aicf.heartbeat", {}, signer=key(1), ts=T, nonce=nonce, deployment=here))
    assert again["result"]["now"] == T
    replay = rpc(system, signed("aicf.heartbeat", {}, signer=key(1), ts=T, nonce=nonce, deployment=here))
    assert replay["error"]["code"] == -32057  # an accepted heartbeat's nonce stays used
