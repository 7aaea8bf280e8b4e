"""Issue 15 item 4: the attestation evidence parsers, fuzzed with mutations of the real public samples of
tests/fixtures/attestation (MANIFEST.md): a flipped byte, a truncation, an inserted or deleted run, a splice of two
samples. Each parser returns its parsed form or raises AttestationError(MALFORMED) with a message; no IndexError,
struct.error or cbor2 exception escapes it. `verify_evidence` answers a mutated sample with a specific Reject that is
never the catch-all for an unexpected exception, and never accepts it."""

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proofs.attestation.conftest import PERMISSIVE, real_roots, real_samples

from aicf.proofs.attestation import Reject, verify_evidence
from aicf.proofs.attestation.cca import parse_cca_token
from aicf.proofs.attestation.cose import parse_cose_sign1
from aicf.proofs.attestation.dcap import parse_collateral, parse_quote
from aicf.proofs.attestation.nitro import parse_nitro_document
from aicf.proofs.attestation.nvidia import parse_gpu_report
from aicf.proofs.attestation.result import AttestationError, RejectCode
from aicf.proofs.attestation.snp import parse_snp_report
from fuzz.scaffold import fuzz_settings, outcome

FUZZ = fuzz_settings(full=1500, fast=30)
VERIFY = fuzz_settings(full=150, fast=150)  # slow: the verifiers check signatures
SAMPLES = {s.name: s for s in real_samples()}
ROOTS = real_roots()


def _nitro_payload(name: str) -> bytes:
    return parse_cose_sign1(SAMPLES[name].evidence, "Nitro document", allow_tag=True).payload


def _certs_bytes(name: str) -> bytes:
    certs = SAMPLES[name].certs
    assert isinstance(certs, bytes)
    return certs


PARSERS: dict[str, tuple[Callable[[bytes], object], bytes]] = {
    "snp report": (parse_snp_report, SAMPLES["snp-milan"].evidence),
    "snp vlek report": (parse_snp_report, SAMPLES["snp-milan-vlek-v3"].evidence),
    "sgx quote": (parse_quote, SAMPLES["sgx-v3"].evidence),
    "tdx quote": (parse_quote, SAMPLES["tdx-v4"].evidence),
    "sgx collateral": (parse_collateral, _certs_bytes("sgx-v3")),
    "tdx collateral": (parse_collateral, _certs_bytes("tdx-v4")),
    "nitro cose": (lambda b: parse_cose_sign1(b, "Nitro document", allow_tag=True), SAMPLES["nitro-blocky"].evidence),
    "nitro payload": (parse_nitro_document, _nitro_payload("nitro-blindai")),
    "nvidia report": (parse_gpu_report, SAMPLES["nvidia-h100"].evidence),
    "cca token": (parse_cca_token, SAMPLES["cca-example"].evidence),
}


@st.composite
def mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Positions are drawn as fractions so the draw shape is the same for every sample (a shared example DB)."""
    at = draw(st.integers(0, 2**16)) * len(data) // (2**16 + 1)
    run = draw(st.integers(1, 64))
    how = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "splice", "zero", "ff"]))
    if how == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if how == "truncate":
        return data[:at]
    if how == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    if how == "delete":
        return data[:at] + data[at + run :]
    if how == "splice":
        other = draw(st.sampled_from(sorted(PARSERS)))
        return data[:at] + PARSERS[other][1][at:]
    fill = b"\x00" if how == "zero" else b"\xff"
    return data[:at] + fill * run + data[at + run :]


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_parser_reads_its_unmutated_sample(name: str) -> None:
    parse, data = PARSERS[name]
    assert parse(data) is not None


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_a_mutated_sample_parses_or_is_malformed(name: str, data: st.DataObject) -> None:
    parse, sample = PARSERS[name]
    mutated = data.draw(mutation(sample))
    refused = outcome(lambda: parse(mutated), AttestationError)
    if isinstance(refused, AttestationError):
        assert refused.code is RejectCode.MALFORMED, refused
        assert refused.message


COSE_SIGN1_TAG = b"\xd2"  # CBOR tag 18
VERIFIED = ["snp-milan", "sgx-v3", "tdx-v4", "nitro-blindai", "nvidia-h100", "cca-example"]


def _verify_mutated(name: str, data: st.DataObject) -> None:
    s: Any = SAMPLES[name]
    evidence = data.draw(mutation(s.evidence))
    out = verify_evidence(s.kind, evidence, s.certs, ROOTS, s.at_time, PERMISSIVE)
    if evidence.rstrip(b"\0") == s.evidence.rstrip(b"\0"):
        return  # the same evidence: a DCAP quote may carry zero padding after its signature data, which nobody signs
    if evidence == COSE_SIGN1_TAG + s.evidence:
        return  # the same document: an untagged COSE_Sign1 with its tag (18) inserted in front, which COSE allows
    assert isinstance(out, Reject), f"{name}: a mutated sample was accepted"
    assert not out.message.startswith(f"{s.kind}: unexpected "), out.message  # the catch-all for a verifier bug


@pytest.mark.slow
@pytest.mark.parametrize("name", VERIFIED)
@VERIFY
@given(data=st.data())
def test_a_mutated_sample_gets_a_specific_reject(name: str, data: st.DataObject) -> None:
    _verify_mutated(name, data)
