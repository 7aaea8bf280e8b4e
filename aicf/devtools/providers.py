"""The reference providers `aicf up` runs: each a thread running the agent a third-party operator runs."""

import logging
import threading
from collections.abc import Callable, Sequence

from aicf.bootstrap.adapters import quiet_model_loading, start_threads
from aicf.bootstrap.system import System

log = logging.getLogger("aicf.up")

PROVIDER_STAKE = 10_000_000_000  # µANM each reference provider is funded to (devnet operator mint)


QUANTUM_DEVICE = "stim-1"  # the reference quantum provider's device, pinned as a simulator


def pin_reference_device(system: System, device: str, public_key: bytes) -> None:
    """Pin the reference quantum device's key as a `simulator` (docs/QUANTUM.md §3) unless that key is pinned
    already: a restart on the same store pins nothing."""
    from aicf.proofs.quantum_device import QDEVICE_VENDOR, device_key_der, device_root_name

    name, der = device_root_name(device, "simulator"), device_key_der(public_key)
    if any(r.vendor == QDEVICE_VENDOR and r.name == name and r.der == der for r in system.coord.trust.device_keys()):
        return
    system.coord.trust.pin_device(
        device=device, device_class="simulator", public_key=public_key, classes=system.params.device_classes()
    )
    log.info("pinned the reference quantum device %s (simulator)", device)


def start_reference_providers(system: System, url: str, models: Sequence[str], stop: threading.Event) -> list[bytes]:
    """Two honest AI providers on the real models and one quantum provider on stim, each a thread running
    the same agent a third-party operator runs, over JSON-RPC; the operator funds their stake (devnet).
    Returns their provider ids."""
    from aicf.client import RpcClient, RpcError
    from aicf.provider.agent import AgentConfig, ProviderAgent
    from aicf.provider.agent import load_or_create_key as provider_key
    from aicf.provider.work_ai import AiWork
    from aicf.provider.work_quantum import DeviceKey, QuantumWork

    quiet_model_loading()
    specs: list[tuple[str, AgentConfig, Callable[[], object]]] = []
    if models:
        for n in (1, 2):
            config = AgentConfig(kinds=("ai",), models=tuple(models), regions=("eu",) if n == 1 else ("us",))
            specs.append((f"ai-{n}", config, lambda: AiWork(tuple(models))))
    (system.var / "providers").mkdir(parents=True, exist_ok=True)
    device = DeviceKey(QUANTUM_DEVICE, provider_key(system.var / "providers" / f"{QUANTUM_DEVICE}.device.key"))
    pin_reference_device(system, QUANTUM_DEVICE, device.public_bytes())
    specs.append(("quantum-1", AgentConfig(kinds=("quantum",), devices=("stim",)), lambda: QuantumWork(device=device)))
    ids: list[bytes] = []
    for name, config, make_work in specs:
        (system.var / "providers").mkdir(parents=True, exist_ok=True)
        key = provider_key(system.var / "providers" / f"{name}.key")
        client = RpcClient(f"{url}/rpc", provider_key=key, operator_token=system.operator_token, clock=system.clock)
        agent = ProviderAgent(client, key, config, [make_work()])  # type: ignore[list-item]
        if system.chain.kind == "evm":  # the contract holds the stake: `aicf up` stakes it there (evm_demo)
            agent.register()
        else:
            try:
                registered = agent.register()
            except RpcError:  # a new provider: registration bonds its balance, so the operator mints it first
                agent.fund(PROVIDER_STAKE)
                registered = agent.register()
            bonded = registered.get("bonded_stake", 0)
            if isinstance(bonded, int) and bonded < PROVIDER_STAKE:  # top up to the target: restarts mint nothing
                agent.fund(PROVIDER_STAKE - bonded)

        def serve(agent: ProviderAgent = agent) -> None:
            agent.run(system.clock, stop.wait, stop.is_set)

        start_threads([(f"aicf-provider-{name}", serve)])
        ids.append(agent.provider_id)
    return ids
