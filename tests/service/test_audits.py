"""Issue 14, item 2: sampled re-execution of ordinary AI jobs (`audit_bps`).

The issue's attack: real jobs answered with made-up outputs (their digests true, so only a re-execution can tell)
were accepted because only traps were ever re-executed. Here a secret sample of ordinary jobs, drawn from the
epoch's trap seed s_E (committed before the epoch, revealed after its batch, so a provider cannot know which of
its jobs are sampled before its proof is in), is re-executed by the coordinator's oracle and compared as traps
are; a mismatch is AUDIT_MISMATCH, slashed, with the envelope and the reference output as evidence.
"""

import struct
from dataclasses import dataclass, field

import cbor2
import pytest

from aicf.core.errors import AicfError
from aicf.core.jobs import JobStatus
from aicf.core.params import params_from_mapping
from aicf.core.registry import ProviderStatus
from aicf.service.audit import verify
from aicf.service.traps import ExpectedAnswer, is_audited
from service.test_coordinator import World, _lease_of

ANSWER = struct.pack("<384f", *([1.0] + [0.0] * 383))  # a unit embedding: what the model gives
ZEROS = bytes(384 * 4)  # the made-up answer: a zero vector


@dataclass
class CountingOracle:
    calls: list[bytes] = field(default_factory=list)

    def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
        self.calls.append(prompt)
        return ExpectedAnswer(kind="embedding", output=ANSWER)


def _world(audit_bps: int) -> tuple[World, CountingOracle]:
    params = params_from_mapping({"epoch_seconds": 120, "gamma_units": 1000, "audit_bps": audit_bps})
    w = World(params=params)
    oracle = CountingOracle()
    w.coord.trap_oracle = oracle
    w.mine(2)
    return w, oracle


def _leased(w: World) -> tuple[object, bytes, bytes, bytes]:
    key, pid = w.provider(1)
    w.enqueue(1)
    w.mine(7)
    w.coord.match()
    lid, task = _lease_of(w, pid)
    w.clock.advance(ms=1500)
    return key, pid, lid, task


def test_a_sampled_job_with_a_made_up_output_is_rejected_and_slashed_with_both_outputs_as_evidence() -> None:
    w, oracle = _world(10_000)  # every ordinary job sampled
    key, pid, lid, task = _leased(w)
    outcome = w.coord.submit_proof(w.envelope(key, lid, task, output=ZEROS))  # type: ignore[arg-type]
    assert not outcome.accepted
    assert outcome.code == "AUDIT_MISMATCH", outcome
    assert outcome.slashed == 1_000_000 * w.params.slash_bps["TRAP_FAILURE"] // 10_000
    assert len(oracle.calls) == 1
    assert w.job_status(task) is JobStatus.QUEUED
    with w.store.transaction() as tx:
        (slash,) = tx.slashes_of(pid)
        provider = tx.get_provider(pid)
    assert slash.reason == "TRAP_FAILURE"
    assert provider is not None
    assert provider.status is ProviderStatus.JAILED
    evidence = cbor2.loads(slash.evidence)
    assert evidence["reference_output"] == ANSWER  # what the model gives: anyone re-runs the model and compares
    assert evidence["record"]["body"]["output"] == ZEROS  # what the provider signed
    assert verify(w.store).ok


def test_a_sampled_job_answered_like_the_reference_is_paid() -> None:
    w, oracle = _world(10_000)
    key, _, lid, task = _leased(w)
    outcome = w.coord.submit_proof(w.envelope(key, lid, task, output=ANSWER))  # type: ignore[arg-type]
    assert outcome.accepted, outcome
    assert oracle.calls


def test_without_sampling_a_made_up_output_is_not_re_executed() -> None:
    w, oracle = _world(0)
    key, _, lid, task = _leased(w)
    outcome = w.coord.submit_proof(w.envelope(key, lid, task, output=ZEROS))  # type: ignore[arg-type]
    assert outcome.accepted  # audit_bps 0: the made-up output goes through, as before issue 14
    assert oracle.calls == []


def test_the_sample_is_a_function_of_the_secret_seed_and_hits_about_audit_bps() -> None:
    seed, other = b"\x01" * 32, b"\x02" * 32
    tasks = [i.to_bytes(32, "big") for i in range(4000)]
    hits = sum(is_audited(seed, t, 500) for t in tasks)
    assert 140 <= hits <= 260  # 5 % of 4000 = 200
    assert [is_audited(seed, t, 500) for t in tasks] != [is_audited(other, t, 500) for t in tasks]
    assert not any(is_audited(seed, t, 0) for t in tasks)
    assert all(is_audited(seed, t, 10_000) for t in tasks)


def test_audit_bps_must_be_a_share() -> None:
    from aicf.core.errors import ParamsError

    with pytest.raises(ParamsError, match="audit_bps"):
        params_from_mapping({"audit_bps": 10_001})
    assert params_from_mapping({}).audit_bps == 100  # 1 % of ordinary AI jobs by default


class BrokenOracle:
    """An oracle whose model cannot run here (its weights missing, say)."""

    def __init__(self) -> None:
        self.calls = 0

    def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
        self.calls += 1
        raise AicfError(f"model {model}: no weights on this host")


def test_a_sample_the_oracle_cannot_rerun_is_left_unaudited_and_paid(caplog: pytest.LogCaptureFixture) -> None:
    w, _ = _world(10_000)
    broken = BrokenOracle()
    w.coord.trap_oracle = broken
    key, _, lid, task = _leased(w)
    with caplog.at_level("WARNING", logger="aicf.coordinator"):
        outcome = w.coord.submit_proof(w.envelope(key, lid, task, output=ZEROS))  # type: ignore[arg-type]
    assert outcome.accepted, outcome
    assert broken.calls == 1
    assert "audit re-execution of llama3-8b failed" in caplog.text
    assert "left unaudited: audit: cannot re-execute llama3-8b" in caplog.text
    assert w.coord.caches.audit_answers == {}  # a failed run is not kept: the next sample tries again
