"""Fail closed: one flipped byte anywhere in the evidence or its chain earns a specific Reject, never an exception
and never an accept; arbitrary bytes never escape as an exception either."""

from typing import Any

import pytest
from budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicf.proofs.attestation import Policy, Reject, RejectCode, VendorRoots, verify_evidence

SAMPLE_NAMES = (
    "snp-milan",
    "snp-milan-vlek-v3",
    "sgx-v3",
    "tdx-v4",
    "nitro-blindai",
    "nitro-blocky",
    "nvidia-h100",
    "cca-example",
)
FLIPS = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def flip(data: bytes, pos: int, mask: int) -> bytes:
    i = pos % len(data)
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]


def assert_specific_reject(out: object) -> None:
    assert isinstance(out, Reject), "a flipped byte was accepted"
    assert out.code in set(RejectCode)
    assert out.message


@pytest.mark.slow
@pytest.mark.parametrize("name", SAMPLE_NAMES)
@FLIPS
@given(pos=st.integers(min_value=0), mask=st.integers(1, 255))
def test_flipped_evidence_byte_is_rejected(
    name: str, pos: int, mask: int, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    s = samples[name]
    assert_specific_reject(verify_evidence(s.kind, flip(s.evidence, pos, mask), s.certs, roots, s.at_time, permissive))


# Draws have the same shape for every parametrization (positions are reduced modulo the size): the example
# database is shared across the parameters of one test, and a data-dependent draw shape would replay as flaky.


@pytest.mark.slow
@pytest.mark.parametrize("name", ["snp-milan", "snp-milan-vlek-v3", "nvidia-h100"])
@FLIPS
@given(which=st.integers(min_value=0), pos=st.integers(min_value=0), mask=st.integers(1, 255))
def test_flipped_certificate_byte_is_rejected(
    name: str, which: int, pos: int, mask: int, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    s = samples[name]
    assert isinstance(s.certs, tuple)
    which %= len(s.certs)
    certs = tuple(flip(c, pos, mask) if i == which else c for i, c in enumerate(s.certs))
    assert_specific_reject(verify_evidence(s.kind, s.evidence, certs, roots, s.at_time, permissive))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgx-v3", "tdx-v4"])
@FLIPS
@given(pos=st.integers(min_value=0), mask=st.integers(1, 255))
def test_flipped_byte_in_the_quotes_pck_chain_is_rejected(
    name: str, pos: int, mask: int, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    """The PCK chain travels inside the quote as PEM: flip only there, where the chain lives."""
    s = samples[name]
    start = s.evidence.index(b"-----BEGIN CERTIFICATE-----")
    at = start + pos % (len(s.evidence) - start)
    assert_specific_reject(verify_evidence(s.kind, flip(s.evidence, at, mask), s.certs, roots, s.at_time, permissive))


@pytest.mark.parametrize("name", SAMPLE_NAMES)
@settings(max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0))
def test_truncated_evidence_is_rejected(
    name: str, cut: int, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    s = samples[name]
    # The TDX sample ends in 70 bytes of zero padding after its signature data; cutting padding changes nothing.
    signed_len = len(s.evidence.rstrip(b"\x00")) if s.kind == "tdx" else len(s.evidence)
    out = verify_evidence(s.kind, s.evidence[: cut % signed_len], s.certs, roots, s.at_time, permissive)
    assert_specific_reject(out)


@pytest.mark.parametrize("kind", ["sev-snp", "sgx", "tdx", "nitro", "nvidia-gpu", "cca"])
@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(evidence=st.binary(max_size=2048), certs=st.one_of(st.binary(max_size=256), st.tuples(st.binary(max_size=64))))
def test_arbitrary_bytes_never_raise(
    kind: str, evidence: bytes, certs: bytes | tuple[bytes, ...], roots: VendorRoots, permissive: Policy
) -> None:
    out = verify_evidence(kind, evidence, certs, roots, 1_750_000_000, permissive)
    assert_specific_reject(out)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_appended_byte_is_rejected(name: str, samples: dict[str, Any], roots: VendorRoots, permissive: Policy) -> None:
    s = samples[name]
    out = verify_evidence(s.kind, s.evidence + b"\x01", s.certs, roots, s.at_time, permissive)
    assert_specific_reject(out)
