"""The reference provider agent: registers, stakes, heartbeats, takes leases, runs them, submits signed proofs.

It speaks the coordinator's JSON-RPC through `aicf.client.RpcClient`, exactly as a third-party provider would
(docs/PROVIDERS.md has the wire). Time and waiting are parameters: `run(clock, sleep, stop)` reads `clock`
(`now()` seconds, `now_ms()` milliseconds) and waits only through `sleep(seconds)`, so a test drives the loop
with a fake clock and a sleep that advances it.

The loop, each turn:
  1. heartbeat when one is due (every `heartbeat_interval_s`, SPEC §7: it extends all live leases);
  2. `aicf.nextLease`: every live lease of this provider; the ones not yet handled are served in order;
  3. serving a lease: the work runs in a worker thread while this thread keeps heartbeating, so a job longer
     than the lease TTL keeps its lease; the body is wrapped in a ProofEnvelope signed over its proof_id
     (SPEC §1, §8) and sent with `aicf.submitProof` (the proofs of one round's leases together, with
     `aicf.submitProofs`); the verdict is reported;
  4. sleep until the next poll or heartbeat, whichever comes first.
A lease the agent cannot run (unknown model, unparsable circuit, non-Clifford gate) is released (SPEC §7: no
strike), and so is a lease left unanswered when the agent is stopped. Network failures are logged and retried.

The cheating modes (`Mode`) exist for tests and demos of the verifier; REPLAY and SILENT_DROP act here, the
others in the work runners (aicf.provider.work_ai, aicf.provider.work_quantum).
"""

import logging
import os
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aicf.client import RpcClient, RpcError, RpcTransportError
from aicf.client.backoff import Reconnect, is_outage
from aicf.core.backoff import BackoffPolicy
from aicf.core.clock import Clock
from aicf.core.encoding import canonical_cbor, from_hex, to_hex
from aicf.core.errors import AicfError
from aicf.core.ids import proof_id, provider_id
from aicf.provider.trap_corpus import looks_like_public_trap
from aicf.provider.work_common import ENVELOPE_KINDS, LeaseOffer, Mode, OfferError, Work, parse_offer

log = logging.getLogger("aicf.provider")

ENVELOPE_VERSION: Final = 1
HEARTBEAT_INTERVAL_S: Final = 20  # SPEC §7
POLL_INTERVAL_S: Final = 2.0
WORK_WAIT_S: Final = 1.0  # how long one wait for a running job lasts before the loop checks heartbeats and stop
KEY_SEED_BYTES: Final = 32


class AgentConfigError(AicfError, ValueError):
    """An agent configuration or wiring the agent cannot run with; `field` names the offending setting."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"provider agent: {field}: {reason}")
        self.field, self.reason = field, reason


class KeyFileError(AicfError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"key file {path}: {reason}")
        self.path, self.reason = path, reason


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key whose 32-byte seed is in `path` as hex; a new random one is saved there (mode 0600) when
    the file does not exist. Raises KeyFileError for a file that holds anything else."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        seed = os.urandom(KEY_SEED_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise KeyFileError(path, f"cannot create: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(to_hex(seed) + "\n")
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(path, f"cannot read: {exc}") from None
    try:
        seed = from_hex(text if text.startswith("0x") else "0x" + text, "seed")
    except AicfError:
        raise KeyFileError(path, "expected the 32-byte Ed25519 seed as hex") from None
    if len(seed) != KEY_SEED_BYTES:
        raise KeyFileError(path, f"expected a {KEY_SEED_BYTES}-byte seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """What the agent registers (SPEC §6 capabilities) and how it behaves."""

    kinds: tuple[str, ...]
    models: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tee_classes: tuple[str, ...] = ()
    max_leases: int = 2
    unit_burst_mu: int = 0  # our own unit-rate bucket (SPEC §6's figures cap it); 0: the protocol's
    unit_rate_mu_per_day: int = 0
    heartbeat_interval_s: int = HEARTBEAT_INTERVAL_S
    poll_interval_s: float = POLL_INTERVAL_S
    mode: Mode = Mode.HONEST
    # after a round that could not reach the coordinator (or its database): growing waits, capped below a lease
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(base_ms=500, cap_ms=10_000))

    def __post_init__(self) -> None:
        if self.heartbeat_interval_s < 1:
            raise AgentConfigError("heartbeat_interval_s", f"must be at least 1, got {self.heartbeat_interval_s}")
        if not self.poll_interval_s > 0:
            raise AgentConfigError("poll_interval_s", f"must be positive, got {self.poll_interval_s}")

    def registration(self, public_key: bytes) -> dict[str, object]:
        """The params of aicf.register (the unit-rate limits only when declared)."""
        declared = {"unit_burst_mu": self.unit_burst_mu, "unit_rate_mu_per_day": self.unit_rate_mu_per_day}
        return {
            "public_key": to_hex(public_key),
            "kinds": list(self.kinds),
            "models": list(self.models),
            "devices": list(self.devices),
            "regions": list(self.regions),
            "tee_classes": list(self.tee_classes),
            "max_leases": self.max_leases,
            **{name: value for name, value in declared.items() if value},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseReport:
    """What became of one lease. `code` is the coordinator's verdict ("ACCEPT" or a reject code), or the agent's
    own: "SILENT" (dropped on purpose), "RELEASED" (could not run it, or stopped), "ERROR" (the submit failed)."""

    task_id: bytes
    lease_id: bytes
    kind: str
    what: str  # the model, or "quantum"
    code: str
    accepted: bool
    units_mu: int = 0
    message: str = ""
    proof_id: bytes = b""
    replayed: bool = False

    def line(self) -> str:
        """One line for the CLI: task, what ran, verdict, units."""
        verdict = self.code + (" (replayed envelope)" if self.replayed else "")
        text = f"task {to_hex(self.task_id)[:18]}… {self.kind}/{self.what}: {verdict}, {self.units_mu} units_mu"
        return text + (f": {self.message}" if self.message and not self.accepted else "")


@dataclass(slots=True)
class AgentStats:
    heartbeats: int = 0
    leases: int = 0
    accepted: int = 0
    rejected: int = 0
    released: int = 0
    silent: int = 0
    errors: int = 0
    units_mu: int = 0
    reports: list[LeaseReport] = field(default_factory=list)
    backoffs: list[float] = field(default_factory=list)  # each wait (s) after a round that met an outage


MAX_PROOFS_PER_CALL: Final = 64  # envelopes per aicf.submitProofs call (the coordinator takes up to 256)


@dataclass(frozen=True, slots=True)
class _Ready:
    """A lease's proof, built and waiting to be sent with the round's others."""

    offer: LeaseOffer
    envelope: bytes
    replayed: bool


def build_envelope(
    key: Ed25519PrivateKey, kind: str, task_id: bytes, lease_id: bytes, body: Mapping[str, object]
) -> tuple[bytes, bytes]:
    """(proof_id, canonical CBOR of the signed envelope map) for a body (SPEC §8: sig is Ed25519 over proof_id)."""
    pid = provider_id(public_key_of(key))
    envelope_kind = ENVELOPE_KINDS[kind]
    proof = proof_id(ENVELOPE_VERSION, envelope_kind, task_id, lease_id, pid, body)
    envelope = {
        "version": ENVELOPE_VERSION,
        "kind": envelope_kind,
        "task_id": task_id,
        "lease_id": lease_id,
        "provider_id": pid,
        "body": dict(body),
        "sig": key.sign(proof),
    }
    return proof, canonical_cbor(envelope)


class _Job:
    """One work call on a daemon thread (a stopped agent does not wait for a model to finish)."""

    def __init__(self, fn: Callable[[], dict[str, object]]) -> None:
        self.done = threading.Event()
        self.body: dict[str, object] | None = None
        self.error: BaseException | None = None
        self._fn = fn
        threading.Thread(target=self._run, name="aicf-provider-work", daemon=True).start()

    def _run(self) -> None:
        try:
            self.body = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the agent's thread, which decides
            self.error = exc
        finally:
            self.done.set()


class ProviderAgent:
    """One provider: its key, capabilities, client and work runners (one per kind)."""

    def __init__(
        self,
        client: RpcClient,
        key: Ed25519PrivateKey,
        config: AgentConfig,
        works: Sequence[Work],
        *,
        on_report: Callable[[LeaseReport], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - spreads reconnects, not a secret
        self.key = key
        self.public_key = public_key_of(key)
        self.provider_id = provider_id(self.public_key)
        if client.provider_id != self.provider_id:
            raise AgentConfigError("client", "it signs with another key than the agent's")
        self.config = config
        self.works: dict[str, Work] = {w.kind: w for w in works}
        missing = [k for k in config.kinds if k not in self.works]
        if missing:
            raise AgentConfigError("works", f"no work runner for kind {missing[0]!r}")
        self.on_report = on_report
        self.stats = AgentStats()
        self._handled: set[bytes] = set()
        self._next_heartbeat: int | None = None
        self._silent_until = 0
        self._accepted_envelope: tuple[bytes, bytes] | None = None  # (task_id, envelope cbor): what REPLAY resends

    # -- one-off calls -----------------------------------------------------------------------------------------
    def register(self) -> dict[str, Any]:
        """aicf.register with this key and the capabilities. A coordinator that refuses because the provider is
        already registered is asked for the provider instead (so restarting an agent just works)."""
        params = self.config.registration(self.public_key)
        try:
            result: dict[str, Any] = self.client.call_provider("aicf.register", params)
        except RpcError as refused:
            try:
                known = self.client.call("aicf.getProvider", {"provider_id": to_hex(self.provider_id)})
            except RpcError:
                raise refused from None
            if not isinstance(known, dict):
                raise refused from None
            log.info("provider %s was registered already", to_hex(self.provider_id))
            return known
        log.info("registered provider %s (%s)", to_hex(self.provider_id), ", ".join(self.config.kinds))
        return result

    def stake(self, amount: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call_provider("aicf.stake", {"amount": amount})
        return result

    def withdraw(self, amount: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call_provider("aicf.withdraw", {"amount": amount})
        return result

    def fund(self, amount: int) -> dict[str, Any]:
        """aicf.fundProvider (devnet only, needs the operator token on the client): mints stake for us."""
        params = {"provider_id": to_hex(self.provider_id), "amount": amount}
        result: dict[str, Any] = self.client.call_operator("aicf.fundProvider", params)
        return result

    def claim_payout(self, nonce: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call_provider("aicf.claimPayout", {"nonce": nonce})
        return result

    def heartbeat(self) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call_provider("aicf.heartbeat", {})
        self.stats.heartbeats += 1
        return result

    def release(self, lease_id: bytes) -> None:
        self.client.call_provider("aicf.releaseLease", {"lease_id": to_hex(lease_id)})

    def take_leases(self) -> list[LeaseOffer]:
        """The live leases not handled yet. An item that does not parse is released when its id can be read."""
        answer = self.client.call_provider("aicf.nextLease", {})
        items = answer.get("items", []) if isinstance(answer, dict) else []
        offers: list[LeaseOffer] = []
        live: set[bytes] = set()
        for item in items if isinstance(items, list) else []:
            try:
                offer = parse_offer(item)
            except OfferError as exc:
                self._release_unreadable(item, exc)
                continue
            live.add(offer.lease_id)
            if offer.lease_id not in self._handled:
                offers.append(offer)
        self._handled &= live  # a lease no longer listed is over: it will not come back
        return offers

    def _release_unreadable(self, item: object, exc: OfferError) -> None:
        log.warning("cannot read a lease offer: %s", exc)
        raw = item.get("lease_id") if isinstance(item, dict) else None
        if isinstance(raw, str):
            try:
                lease = from_hex(raw, "lease_id")
                self.client.call_provider("aicf.releaseLease", {"lease_id": to_hex(lease)})
            except (AicfError, RpcError) as err:
                log.warning("could not release the unreadable lease %s: %s", raw[:20], err)

    # -- the loop ----------------------------------------------------------------------------------------------
    def heartbeat_if_due(self, clock: Clock) -> None:
        """Heartbeat when the interval has passed, except while a silently dropped lease is still live."""
        now = clock.now()
        if self._next_heartbeat is not None and now < self._next_heartbeat:
            return
        interval = self.config.heartbeat_interval_s
        self._next_heartbeat = (now // interval + 1) * interval  # the next slot's start (SPEC §3: t // interval),
        # so a late wake-up within a slot still lands in it: `now + interval` drifted and could skip a slot
        if now < self._silent_until:
            log.debug("no heartbeat: a silently dropped lease is live until %d", self._silent_until)
            return
        try:
            self.heartbeat()
        except RpcError as exc:
            log.warning("heartbeat refused: %s", exc)

    def run(
        self,
        clock: Clock,
        sleep: Callable[[float], object],
        stop: Callable[[], bool],
        *,
        max_leases: int | None = None,
    ) -> AgentStats:
        """Serve leases until `stop()` is true (or `max_leases` leases were handled); returns the tallies. A round
        that cannot reach the coordinator, or that the coordinator answers with its database down, is retried
        after a growing wait (`config.backoff`, aicf.core.backoff) instead of the poll interval."""
        policy = self.config.backoff  # never a wait past half a heartbeat slot: back within the slot it recovers in
        half_slot_ms = max(1, self.config.heartbeat_interval_s * 500)
        if policy.cap_ms > half_slot_ms:
            policy = replace(policy, cap_ms=half_slot_ms, base_ms=min(policy.base_ms, half_slot_ms))
        retry = Reconnect(policy, now_ms=clock.now_ms, rng=self._rng)
        while not stop():
            offers: list[LeaseOffer] = []
            outage = False
            try:
                self.heartbeat_if_due(clock)
                offers = self.take_leases()
                ready: list[_Ready] = []  # this round's proofs, sent together once its work is done
                try:
                    for index, offer in enumerate(offers):
                        if stop() or (max_leases is not None and self.stats.leases + len(ready) >= max_leases):
                            self._release_all(offers[index:], "the agent is stopping")
                            break
                        done = self._work(offer, clock, stop)
                        if isinstance(done, _Ready):
                            ready.append(done)
                finally:
                    self._submit_all(ready)
            except (RpcTransportError, RpcError) as exc:
                outage = is_outage(exc)
                log.warning("coordinator %s: %s", "unreachable" if outage else "refused", exc)
                self.stats.errors += 1
            if stop() or (max_leases is not None and self.stats.leases >= max_leases):
                break
            if outage:
                wait_s = retry.failed()
                self.stats.backoffs.append(wait_s)
                log.warning("retrying in %.1f s (%d failed rounds in a row)", wait_s, retry.failures)
                sleep(wait_s)
                continue
            retry.succeeded()
            next_heartbeat = self._next_heartbeat if self._next_heartbeat is not None else clock.now()
            wait = min(self.config.poll_interval_s, max(0, next_heartbeat - clock.now()))
            if wait > 0:  # else a heartbeat fell due while serving: go round at once
                sleep(wait)
        return self.stats

    def _release_all(self, offers: Sequence[LeaseOffer], why: str) -> None:
        if self.config.mode is Mode.SILENT_DROP:
            return
        for offer in offers:
            self._handled.add(offer.lease_id)
            self._release(offer, why)

    def _release(self, offer: LeaseOffer, why: str) -> None:
        try:
            self.release(offer.lease_id)
        except (RpcError, RpcTransportError) as exc:
            log.warning("could not release lease %s: %s", to_hex(offer.lease_id), exc)
        self._report(offer, code="RELEASED", accepted=False, message=why)

    def serve(self, offer: LeaseOffer, clock: Clock, stop: Callable[[], bool] = lambda: False) -> LeaseReport | None:
        """Run one lease and submit its proof (or cheat as the mode says); returns what became of it."""
        done = self._work(offer, clock, stop)
        if isinstance(done, _Ready):
            return self._submit(done.offer, done.envelope, replayed=done.replayed)
        return done

    def _work(self, offer: LeaseOffer, clock: Clock, stop: Callable[[], bool]) -> "LeaseReport | _Ready | None":
        """Run one lease: the envelope to submit, or the report of a lease that ends without one."""
        self._handled.add(offer.lease_id)
        mode = self.config.mode
        if mode is Mode.SILENT_DROP:
            self._silent_until = max(self._silent_until, offer.expires_at)
            return self._report(offer, code="SILENT", accepted=False, message="taken and never answered")
        if mode is Mode.REPLAY and self._accepted_envelope is not None and self._accepted_envelope[0] != offer.task_id:
            return _Ready(offer, self._accepted_envelope[1], replayed=True)
        if mode is Mode.SPARE_TRAP_SHAPES:  # the cheat decides per lease: honest on what looks like a trap
            mode = (
                Mode.HONEST
                if looks_like_public_trap(offer.model, offer.prompt, offer.max_tokens)
                else Mode.RANDOM_OUTPUT
            )
        work = self.works.get(offer.kind)
        if work is None:
            self._release(offer, f"no {offer.kind} work runner here")
            return self.stats.reports[-1]
        job = _Job(lambda: work.body(offer, clock, mode))
        while not job.done.wait(self._work_wait_s(clock)):
            if stop():
                self._release(offer, "the agent stopped while the work ran")
                return self.stats.reports[-1]
            self.heartbeat_if_due(clock)
        if job.error is not None:
            if not isinstance(job.error, Exception):
                raise job.error  # SystemExit and the like: not the lease's fault, not ours to swallow
            if not isinstance(job.error, AicfError):  # a bug in a runtime: say so loudly, but keep serving
                log.error("work failed on lease %s", to_hex(offer.lease_id), exc_info=job.error)
            self._release(offer, f"cannot run it: {type(job.error).__name__}: {job.error}")
            return self.stats.reports[-1]
        body = job.body if job.body is not None else {}
        _, envelope = build_envelope(self.key, offer.kind, offer.task_id, offer.lease_id, body)
        return _Ready(offer, envelope, replayed=False)

    def _work_wait_s(self, clock: Clock) -> float:
        if self._next_heartbeat is None:
            return WORK_WAIT_S
        return min(WORK_WAIT_S, max(0.01, self._next_heartbeat - clock.now()))

    def _submit_all(self, ready: Sequence["_Ready"]) -> None:
        """Several proofs go in `aicf.submitProofs` groups (one commit each on the coordinator), one alone in
        `aicf.submitProof`; each proof's answer is reported as if it had been sent alone."""
        if len(ready) == 1:
            self._submit(ready[0].offer, ready[0].envelope, replayed=ready[0].replayed)
            return
        for at in range(0, len(ready), MAX_PROOFS_PER_CALL):
            group = ready[at : at + MAX_PROOFS_PER_CALL]
            try:
                answer = self.client.call_provider(
                    "aicf.submitProofs", {"envelopes": [to_hex(r.envelope) for r in group]}
                )
            except (RpcError, RpcTransportError) as exc:
                self.stats.errors += 1
                for r in group:
                    self._report(r.offer, code="ERROR", accepted=False, message=f"submitProofs failed: {exc}")
                continue
            items = answer.get("items") if isinstance(answer, dict) else None
            items = items if isinstance(items, list) and len(items) == len(group) else [{}] * len(group)
            for r, item in zip(group, items, strict=True):
                error = item.get("error") if isinstance(item, dict) else None
                if isinstance(error, dict):
                    self._report(r.offer, code="ERROR", accepted=False, message=f"submitProofs: {error.get('message')}")
                else:
                    self._answered(r.offer, r.envelope, item, replayed=r.replayed)

    def _submit(self, offer: LeaseOffer, envelope: bytes, *, replayed: bool) -> LeaseReport:
        try:
            answer = self.client.call_provider("aicf.submitProof", {"envelope": to_hex(envelope)})
        except (RpcError, RpcTransportError) as exc:
            self.stats.errors += 1
            return self._report(offer, code="ERROR", accepted=False, message=f"submitProof failed: {exc}")
        return self._answered(offer, envelope, answer, replayed=replayed)

    def _answered(self, offer: LeaseOffer, envelope: bytes, answer: object, *, replayed: bool) -> LeaseReport:
        if not isinstance(answer, dict):
            answer = {}
        accepted = answer.get("accepted") is True
        units = answer.get("units_mu", 0)
        raw_proof = answer.get("proof_id")
        try:
            proof = from_hex(raw_proof, "proof_id") if isinstance(raw_proof, str) else b""
        except AicfError:
            proof = b""
        if accepted and not replayed:
            self._accepted_envelope = (offer.task_id, envelope)
        return self._report(
            offer,
            code=str(answer.get("code", "ACCEPT" if accepted else "?")),
            accepted=accepted,
            units_mu=units if isinstance(units, int) and not isinstance(units, bool) else 0,
            message=str(answer.get("message", "")),
            proof_id=proof,
            replayed=replayed,
        )

    def _report(
        self,
        offer: LeaseOffer,
        *,
        code: str,
        accepted: bool,
        units_mu: int = 0,
        message: str = "",
        proof_id: bytes = b"",
        replayed: bool = False,
    ) -> LeaseReport:
        report = LeaseReport(
            task_id=offer.task_id,
            lease_id=offer.lease_id,
            kind=offer.kind,
            what=offer.model if offer.kind == "ai" else "quantum",
            code=code,
            accepted=accepted,
            units_mu=units_mu,
            message=message,
            proof_id=proof_id,
            replayed=replayed,
        )
        stats = self.stats
        stats.leases += 1
        stats.reports.append(report)
        if accepted:
            stats.accepted += 1
            stats.units_mu += units_mu
        elif code == "RELEASED":
            stats.released += 1
        elif code == "SILENT":
            stats.silent += 1
        elif code != "ERROR":
            stats.rejected += 1
        log.info("%s", report.line())
        if self.on_report is not None:
            self.on_report(report)
        return report
