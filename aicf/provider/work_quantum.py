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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.core.clock import Clock
from aicf.core.errors import AicfError
from aicf.core.qasm import MAX_BATCH_CIRCUIT_BYTES, parse_circuit
from aicf.core.qdevice import check_device_name, device_statement, encode_device_cert
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


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """The device's own signing key and name (docs/QUANTUM.md §3): the operator pins its public key in the
    registry (`aicf devices pin`), and every body carries the device's signature over what it ran and measured."""

    name: str
    key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_device_name(self.name)

    def public_bytes(self) -> bytes:
        return self.key.public_key().public_bytes_raw()

    def certify(self, lease_id: bytes, body: Mapping[str, object]) -> bytes:
        """The one-entry cert_chain's certificate for a finished body (its circuit_digest, shots and results)."""
        digest, shots, results = body["circuit_digest"], body["shots"], body["results"]
        if not isinstance(digest, bytes) or not isinstance(shots, int) or not isinstance(results, list):
            raise WorkError("a quantum body without circuit_digest, shots or results cannot be certified")
        statement = device_statement(self.name, lease_id, digest, shots, results)
        return encode_device_cert(self.name, self.key.sign(statement))


class QuantumWork:
    """A stim-backed executor of Clifford batches. `seed` makes runs reproducible (default: random);
    `public_jobs` are the request circuits a cheating mode looks for in a batch; `device` signs every body (a
    coordinator refuses a quantum proof without the certificate of a device it pinned)."""

    def __init__(
        self,
        *,
        seed: bytes | None = None,
        readout_flip_bps: int = 0,
        public_jobs: Sequence[bytes] = (),
        device: DeviceKey | None = None,
    ) -> None:
        self._seed = seed if seed is not None else os.urandom(16)
        self._flip_bps = readout_flip_bps
        self._public_jobs = tuple(public_jobs)
        self.device = device

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
        body = quantum_body(circuits, shots, offer.shots, results, runtime_ms=runtime_ms)
        if self.device is not None:
            body["cert_chain"] = [self.device.certify(offer.lease_id, body)]
        return body
