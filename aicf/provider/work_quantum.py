"""Quantum work: run a lease's batch (the job circuit shuffled among the coordinator's traps) on stim and build
the QUANTUM_V1 body of SPEC §8 with `aicf.provider.quantum_sim`.

The lease carries only the batch: every circuit with the same shots, the job written like the traps, no job
circuit or digest beside them (issue 14). An honest provider runs all of it and commits to the whole batch. The
cheating modes that need the job find it the way a real cheater would, among the circuits it read on chain
(`public_jobs`: the requests are public): SKIP_TRAPS simulates the job and answers the rest at random, FAKE_JOB
simulates the rest (Clifford traps) and makes up the job's counts, RANDOM_OUTPUT answers everything at random, and
WRONG_BINDING runs honestly but commits to another batch (its circuits in reverse order).
"""

import hashlib
import os
from collections.abc import Sequence

from aicf.core.clock import Clock
from aicf.core.errors import AicfError
from aicf.core.qasm import MAX_BATCH_CIRCUIT_BYTES, parse_circuit
from aicf.provider.quantum_sim import SimMode, SimOptions, quantum_body, run_batch, same_program
from aicf.provider.work_common import LeaseOffer, Mode, WorkError

SIM_MODES = {
    Mode.RANDOM_OUTPUT: SimMode.RANDOM_OUTPUT,
    Mode.SKIP_TRAPS: SimMode.SKIP_TRAPS,
    Mode.FAKE_JOB: SimMode.FAKE_JOB,
}


def find_public_job(offer: LeaseOffer, public_jobs: Sequence[bytes]) -> bytes | None:
    """The public request circuit one of the batch circuits runs, if any (what a cheater reading the chain does)."""
    known = []
    for data in public_jobs:
        try:
            known.append((data, parse_circuit(data)))
        except AicfError:
            continue
    for circuit in offer.batch:
        try:
            parsed = parse_circuit(circuit, max_bytes=MAX_BATCH_CIRCUIT_BYTES)
        except AicfError:
            continue
        for data, job in known:
            if same_program(parsed, job):
                return data
    return None


class QuantumWork:
    """A stim-backed executor of Clifford batches. `seed` makes runs reproducible (default: random);
    `public_jobs` are the request circuits a cheating mode looks for in a batch."""

    def __init__(
        self, *, seed: bytes | None = None, readout_flip_bps: int = 0, public_jobs: Sequence[bytes] = ()
    ) -> None:
        self._seed = seed if seed is not None else os.urandom(16)
        self._flip_bps = readout_flip_bps
        self._public_jobs = tuple(public_jobs)

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
        job = find_public_job(offer, self._public_jobs) if mode in SIM_MODES else None
        options = SimOptions(mode=SIM_MODES.get(mode, SimMode.HONEST), job_circuit=job, readout_flip_bps=self._flip_bps)
        started = clock.now_ms()
        results = run_batch(offer.batch, offer.batch_shots, self.sim_seed(offer), options)
        runtime_ms = max(0, clock.now_ms() - started)
        circuits, shots = offer.batch, offer.batch_shots
        if mode is Mode.WRONG_BINDING:
            circuits, shots = circuits[::-1] if len(circuits) > 1 else (circuits[0] + b"\n",), shots[::-1]
        return quantum_body(circuits, shots, offer.shots, results, runtime_ms=runtime_ms)
