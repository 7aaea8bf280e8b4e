"""Reads that depend on params judge by the params in force at the stored head (issue 17): a params change the
operator sends on chain applies from the next epoch (SPEC §15), to settlement and matching and to what an operator
sees: the budget throttle and its alarm, the queues' declared capacity, a provider's unit rate, the Params tile, the
device classes a device key may be pinned under."""

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from service.test_operator_chain import BASE, TwoNodes

from aicf.core.assignment import bucket_rate_mu_per_day
from aicf.core.encoding import to_hex
from aicf.core.operator import OP_PARAMS
from aicf.core.pricing import budget_throttled
from aicf.service.errors import InvalidDeviceKeyError
from aicf.transports.methods import NoParams, build_registry
from aicf.transports.methods_operator import EpochParams
from aicf.transports.methods_trust import PinDeviceKeyParams
from aicf.transports.rpc import CallContext, Registry
from aicf.transports.schemas import PageParams

RAISED_GAMMA = 10**7  # a tenth of an epoch's AI outlay at this Γ is far above the treasury


def call(nodes: TwoNodes, name: str, params: Any, registry: Registry | None = None) -> Any:
    """`name` on `registry`, by default one built now; a running node builds its registry once, at start."""
    method = (registry or build_registry(nodes.coord, nodes.store, nodes.clock, BASE)).get(name)
    assert method is not None
    return method.handler(params, CallContext(method=name))


def test_status_throttle_alarms_capacity_and_provider_rates_follow_a_params_change_from_its_epoch() -> None:
    nodes = TwoNodes()
    nodes.mine(12)
    pid = nodes.provider_for(1)
    before = call(nodes, "aicf.getStatus", NoParams())
    treasury = before["treasury"]["treasury_balance"]
    assert not budget_throttled(treasury, before["treasury"]["price_bps"], BASE)
    assert before["treasury"]["budget_throttle_active"] is False
    (ai,) = [q for q in before["queue"]["by_kind"] if q["kind"] == "ai"]
    assert ai["capacity_mu_per_day"] == bucket_rate_mu_per_day(BASE)

    nodes.operator_tx({"op": OP_PARAMS, "changes": {"gamma_units": RAISED_GAMMA}})
    nodes.mine(1)
    pending = call(nodes, "aicf.getStatus", NoParams())  # scheduled, not in force: nothing changes yet
    assert pending["treasury"]["budget_throttle_active"] is False
    assert (pending["operator"]["params_version"], pending["operator"]["next_params_version"]) == (0, 1)

    nodes.mine(12)  # into the next epoch: the change is in force
    after = call(nodes, "aicf.getStatus", NoParams())
    raised = nodes.coord.params
    assert raised.gamma_units == RAISED_GAMMA  # what settlement and matching use
    assert after["operator"]["params_version"] == 1
    assert budget_throttled(after["treasury"]["treasury_balance"], after["treasury"]["price_bps"], raised)
    assert after["treasury"]["budget_throttle_active"] is True
    assert "budget_throttle" in [a["name"] for a in after["alarms"]]
    (ai,) = [q for q in after["queue"]["by_kind"] if q["kind"] == "ai"]
    assert ai["capacity_mu_per_day"] == bucket_rate_mu_per_day(raised) > bucket_rate_mu_per_day(BASE)
    (listed,) = call(nodes, "aicf.listProviders", PageParams())["items"]
    assert (listed["provider_id"], listed["unit_rate_mu_per_day"]) == ("0x" + pid.hex(), bucket_rate_mu_per_day(raised))
    assert call(nodes, "aicf.getParams", EpochParams())["version"] == 1


def test_a_device_class_added_on_chain_can_be_pinned_from_the_epoch_it_is_in_force() -> None:
    nodes = TwoNodes()
    nodes.mine(1)
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pin = PinDeviceKeyParams.model_validate(
        {"device": "trapped-ion-1", "device_class": "ion", "public_key": to_hex(key)}
    )
    registry = build_registry(nodes.coord, nodes.store, nodes.clock, BASE)  # at start, as `aicf up` does
    classes = {"trap_threshold_bps_by_class": {**BASE.trap_threshold_bps_by_class, "ion": 9500},
               "xeb_min_bps_by_class": {**BASE.xeb_min_bps_by_class, "ion": 8000}}  # fmt: skip
    nodes.operator_tx({"op": OP_PARAMS, "changes": classes})
    nodes.mine(1)
    with pytest.raises(InvalidDeviceKeyError, match="unknown device class 'ion'"):
        call(nodes, "aicf.pinDeviceKey", pin, registry)  # scheduled, not in force yet
    nodes.mine(12)
    pinned = call(nodes, "aicf.pinDeviceKey", pin, registry)
    assert (pinned["device"], pinned["device_class"]) == ("trapped-ion-1", "ion")
