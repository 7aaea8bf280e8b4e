"""Quantum work: run a lease's batch (the job circuit shuffled among the coordinator's traps) on stim and build
the QUANTUM_V1 body of SPEC §8 with `aicf.provider.quantum_sim`.

The job circuit is the batch entry whose circuit digest is the lease's `circuit_digest`; the provider cannot
tell the traps apart otherwise. Cheating modes: RANDOM_OUTPUT and SKIP_TRAPS are the simulator's own adversarial
options; WRONG_BINDING simulates honestly but commits to another circuit's digest (a trap's).
"""

import hashlib
import os

from aicf.core.clock import Clock
from aicf.core.ids import circuit_digest
from aicf.provider.quantum_sim import SimMode, SimOptions, quantum_body, run_batch
from aicf.provider.work_common import LeaseOffer, Mode, WorkError

SIM_MODES = {Mode.RANDOM_OUTPUT: SimMode.RANDOM_OUTPUT, Mode.SKIP_TRAPS: SimMode.SKIP_TRAPS}


def job_circuit_of(offer: LeaseOffer) -> bytes:
    """The batch circuit whose digest the lease names; raises WorkError when none has it."""
    for circuit in offer.batch:
        if circuit_digest(circuit) == offer.circuit_digest:
            return circuit
    raise WorkError(f"no circuit of the batch has the lease's digest 0x{offer.circuit_digest.hex()}")


class QuantumWork:
    """A stim-backed executor of Clifford batches. `seed` makes runs reproducible (default: random)."""

    def __init__(self, *, seed: bytes | None = None, readout_flip_bps: int = 0) -> None:
        self._seed = seed if seed is not None else os.urandom(16)
        self._flip_bps = readout_flip_bps

    @property
    def kind(self) -> str:
        return "quantum"

    def load(self) -> None:
        """Nothing to load: stim is imported with the module."""

    def sim_seed(self, offer: LeaseOffer) -> int:
        digest = hashlib.sha3_256(b"aicf/provider-sim/" + self._seed + offer.lease_id).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def body(self, offer: LeaseOffer, clock: Clock, mode: Mode) -> dict[str, object]:
        """Raises WorkError, RequestError (a circuit that does not parse) or NotCliffordError (one stim cannot run)."""
        if offer.kind != "quantum":
            raise WorkError(f"QuantumWork got a {offer.kind} lease")
        job = job_circuit_of(offer)
        options = SimOptions(mode=SIM_MODES.get(mode, SimMode.HONEST), job_circuit=job, readout_flip_bps=self._flip_bps)
        started = clock.now_ms()
        results = run_batch(offer.batch, offer.batch_shots, self.sim_seed(offer), options)
        runtime_ms = max(0, clock.now_ms() - started)
        claimed = job
        if mode is Mode.WRONG_BINDING:
            claimed = next((c for c in offer.batch if c != job), job + b"\n")
        return quantum_body(claimed, offer.shots, results, runtime_ms=runtime_ms)
