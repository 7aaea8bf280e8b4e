"""The real public samples of MANIFEST.md verify at their stated times, and only then, and only under their roots."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from aicf.proofs.attestation import (
    AMD,
    AttestationResult,
    PinnedRoot,
    Policy,
    Reject,
    RejectCode,
    SnpTcb,
    VendorRoots,
    make_vendor_roots,
    verify_evidence,
)
from aicf.proofs.attestation.nvidia import driver_version, parse_gpu_report, vbios_version

SAMPLE_NAMES = (
    "snp-milan",
    "snp-milan-reissued-vcek",
    "snp-milan2",
    "snp-milan-vlek-v3",
    "sgx-v3",
    "tdx-v4",
    "nitro-blindai",
    "nitro-blocky",
    "nitro-blocky-debug",
    "nvidia-h100",
    "cca-example",
)
TIMED = tuple(n for n in SAMPLE_NAMES if n != "cca-example")  # CCA tokens carry no validity time


def verified(sample: Any, roots: VendorRoots, policy: Policy) -> AttestationResult:
    out = verify_evidence(sample.kind, sample.evidence, sample.certs, roots, sample.at_time, policy)
    assert isinstance(out, AttestationResult), out
    return out


def rejected(out: AttestationResult | Reject, code: RejectCode) -> Reject:
    assert isinstance(out, Reject), out
    assert out.code == code, out
    return out


def test_sample_names_cover_every_fixture(samples: dict[str, Any]) -> None:
    assert set(SAMPLE_NAMES) == set(samples)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_real_sample_verifies_at_its_manifest_time(
    name: str, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sample = samples[name]
    result = verified(sample, roots, permissive)
    assert result.kind == sample.kind
    assert result.root_sha256 in {r.sha256 for r in roots.roots}


def test_snp_milan_facts(samples: dict[str, Any], roots: VendorRoots, permissive: Policy) -> None:
    r = verified(samples["snp-milan"], roots, permissive)
    assert r.measurement.hex() == (
        "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
    )
    assert r.report_data == bytes.fromhex("0102030405") + bytes(59)
    assert (r.vmpl, r.policy, r.debug) == (0, 0xB0000, True)
    assert r.snp_tcb == SnpTcb(bootloader=2, tee=0, snp=5, microcode=68)
    assert r.chip_id.hex().startswith("3ac3fe21")
    assert r.chip_id.hex().endswith("8b006b5d")
    assert r.root_sha256.hex() == "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"


def test_snp_milan2_and_vlek_facts(samples: dict[str, Any], roots: VendorRoots, permissive: Policy) -> None:
    r2 = verified(samples["snp-milan2"], roots, permissive)
    assert r2.measurement.hex().startswith("a1f3930413247bb38cfc171579ea3c12")
    assert (r2.policy, r2.debug) == (0x3001F, False)
    assert r2.snp_tcb == SnpTcb(bootloader=3, tee=0, snp=8, microcode=115)
    assert r2.report_data[32:] == bytes(32)
    vlek = verified(samples["snp-milan-vlek-v3"], roots, permissive)
    assert (vlek.vmpl, vlek.chip_id) == (1, bytes(64))
    assert vlek.snp_tcb == SnpTcb(bootloader=4, tee=0, snp=24, microcode=217)


def test_sgx_status_is_configuration_and_sw_hardening_needed(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    r = verified(samples["sgx-v3"], roots, permissive)
    assert r.tcb_status == "ConfigurationAndSWHardeningNeeded"
    assert r.advisories == ("INTEL-SA-00289", "INTEL-SA-00615")
    assert r.measurement.hex() == "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
    assert r.report_data == b"Hello, world!".ljust(64, b"\x00")
    assert not r.debug


def test_tdx_status_is_up_to_date(samples: dict[str, Any], roots: VendorRoots, permissive: Policy) -> None:
    r = verified(samples["tdx-v4"], roots, permissive)
    assert (r.tcb_status, r.advisories, r.debug) == ("UpToDate", (), False)
    assert r.measurement.hex().startswith("91eb2b44d141d4ec")
    assert len(r.extra_measurements) == 4  # RTMR0..3


def test_intel_default_policy_refuses_hardening_needed_but_accepts_up_to_date(
    samples: dict[str, Any], roots: VendorRoots
) -> None:
    from aicf.proofs.attestation import Policy

    sgx = samples["sgx-v3"]
    out = verify_evidence(sgx.kind, sgx.evidence, sgx.certs, roots, sgx.at_time, Policy())
    assert "ConfigurationAndSWHardeningNeeded" in rejected(out, RejectCode.BAD_ATTESTATION).message
    tdx = samples["tdx-v4"]
    assert isinstance(
        verify_evidence(tdx.kind, tdx.evidence, tdx.certs, roots, tdx.at_time, Policy()), AttestationResult
    )


def test_nitro_facts(samples: dict[str, Any], roots: VendorRoots, permissive: Policy) -> None:
    blindai = verified(samples["nitro-blindai"], roots, permissive)
    assert blindai.debug
    assert blindai.report_data == b"hello, world!"
    assert blindai.nonce == b""
    assert blindai.public_key == b"my super secret key"
    prod = verified(samples["nitro-blocky"], roots, permissive)
    assert not prod.debug
    assert prod.measurement.hex() == (
        "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
    )
    assert prod.nonce == prod.report_data == prod.public_key == b"\x01" * 1024
    assert verified(samples["nitro-blocky-debug"], roots, permissive).debug


def test_nvidia_report_matches_trustee_claims(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy, fixture_bytes: Callable[[str], bytes]
) -> None:
    sample = samples["nvidia-h100"]
    r = verified(sample, roots, permissive)
    assert r.nonce.hex() == "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
    claims = json.loads(fixture_bytes("nvidia-gpu/hopper_expected_claims.json"))
    assert {str(i): v.hex() for i, v in r.extra_measurements} == claims["measurements"]
    report = parse_gpu_report(sample.evidence)
    assert driver_version(report) == claims["config"]["driver_version"] == "550.90.07"
    assert vbios_version(report) == claims["config"]["vbios_version"]
    assert r.measurement == hashlib.sha384(report.record).digest()


def test_cca_example_token(samples: dict[str, Any], roots: VendorRoots, permissive: Policy) -> None:
    r = verified(samples["cca-example"], roots, permissive)
    assert r.report_data.hex().startswith("57e979ae2618de0c")
    assert not r.debug  # lifecycle 0x3003: secured
    assert len(r.extra_measurements) == 4


STALE_TIMES = {
    "snp-milan": ("2022-09-23T00:00:00Z", "2029-09-25T00:00:00Z"),
    "snp-milan-reissued-vcek": ("2026-08-27T00:00:00Z", "2033-08-29T00:00:00Z"),
    "snp-milan2": ("2023-01-23T00:00:00Z", "2030-01-25T00:00:00Z"),
    "snp-milan-vlek-v3": ("2024-12-09T00:00:00Z", "2025-12-11T00:00:00Z"),
    "sgx-v3": ("2025-06-19T10:00:00Z", "2026-07-01T00:00:00Z"),
    "tdx-v4": ("2025-06-19T10:00:00Z", "2025-07-20T00:00:00Z"),
    "nitro-blindai": ("2023-03-22T13:00:00Z", "2023-03-22T18:28:00Z"),
    "nitro-blocky": ("2024-09-07T13:00:00Z", "2024-09-07T18:00:00Z"),
    "nitro-blocky-debug": ("2024-09-07T13:00:00Z", "2024-09-07T18:00:00Z"),
    "nvidia-h100": ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z"),
}


@pytest.mark.parametrize("name", TIMED)
def test_real_sample_outside_its_validity_is_stale(
    name: str, samples: dict[str, Any], roots: VendorRoots, permissive: Policy, at: Callable[[str], int]
) -> None:
    sample = samples[name]
    for when in STALE_TIMES[name]:
        out = verify_evidence(sample.kind, sample.evidence, sample.certs, roots, at(when), permissive)
        rejected(out, RejectCode.STALE_ATTESTATION)


def test_dcap_collateral_expiry_is_stale_with_the_reason(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy, at: Callable[[str], int]
) -> None:
    sgx = samples["sgx-v3"]
    out = verify_evidence(sgx.kind, sgx.evidence, sgx.certs, roots, at("2025-07-19T10:30:00Z"), permissive)
    assert "nextUpdate" in rejected(out, RejectCode.STALE_ATTESTATION).message


def _without(roots: VendorRoots, *names: str) -> VendorRoots:
    return make_vendor_roots(tuple(r for r in roots.roots if r.name not in names))


WRONG_ROOT = {  # the pinned root each sample needs
    "snp-milan": "ARK-Milan",
    "snp-milan-reissued-vcek": "ARK-Milan",
    "snp-milan2": "ARK-Milan",
    "snp-milan-vlek-v3": "ARK-Milan",
    "sgx-v3": "Intel SGX Root CA",
    "tdx-v4": "Intel SGX Root CA",
    "nitro-blindai": "AWS Nitro root G1",
    "nitro-blocky": "AWS Nitro root G1",
    "nitro-blocky-debug": "AWS Nitro root G1",
    "nvidia-h100": "NVIDIA Device Identity CA",
    "cca-example": "CPAK (trustee test key)",
}


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_real_sample_without_its_root_is_unknown_root(
    name: str, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sample = samples[name]
    out = verify_evidence(
        sample.kind, sample.evidence, sample.certs, _without(roots, WRONG_ROOT[name]), sample.at_time, permissive
    )
    rejected(out, RejectCode.UNKNOWN_ROOT)


def test_snp_under_another_vendor_generation_root_is_unknown_root(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    """Only the Genoa ARK pinned: a Milan chain does not reach it."""
    sample = samples["snp-milan"]
    genoa_only = make_vendor_roots(tuple(r for r in roots.roots if r.vendor != AMD or r.name == "ARK-Genoa"))
    out = verify_evidence(sample.kind, sample.evidence, sample.certs, genoa_only, sample.at_time, permissive)
    assert "ARK-Genoa" in rejected(out, RejectCode.UNKNOWN_ROOT).message


def test_snp_chain_without_the_ark_still_anchors_at_the_pinned_ark(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sample = samples["snp-milan"]
    assert isinstance(sample.certs, tuple)
    result = verify_evidence(sample.kind, sample.evidence, sample.certs[:2], roots, sample.at_time, permissive)
    assert isinstance(result, AttestationResult)


def test_snp_chain_ending_at_a_self_signed_impostor_is_unknown_root(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy, test_amd: Any
) -> None:
    sample = samples["snp-milan"]
    assert isinstance(sample.certs, tuple)
    out = verify_evidence(
        sample.kind, sample.evidence, (*sample.certs[:2], test_amd.ark), roots, sample.at_time, permissive
    )
    assert isinstance(out, Reject)
    assert out.code in (RejectCode.BAD_ATTESTATION, RejectCode.UNKNOWN_ROOT)


def test_snp_report_with_another_chips_vcek_is_rejected(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    milan, milan2 = samples["snp-milan"], samples["snp-milan2"]
    assert isinstance(milan2.certs, tuple)
    out = verify_evidence("sev-snp", milan.evidence, milan2.certs, roots, milan2.at_time, permissive)
    rejected(out, RejectCode.BAD_ATTESTATION)


def test_vlek_report_with_a_vcek_chain_is_rejected(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    vlek, milan2 = samples["snp-milan-vlek-v3"], samples["snp-milan2"]
    assert isinstance(milan2.certs, tuple)
    out = verify_evidence("sev-snp", vlek.evidence, milan2.certs, roots, vlek.at_time, permissive)
    assert "SEV-VLEK" in rejected(out, RejectCode.BAD_ATTESTATION).message


def test_sgx_quote_with_tdx_collateral_is_rejected(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sgx, tdx = samples["sgx-v3"], samples["tdx-v4"]
    out = verify_evidence("sgx", sgx.evidence, tdx.certs, roots, sgx.at_time, permissive)
    assert isinstance(out, Reject)
    assert out.code == RejectCode.BAD_ATTESTATION


def test_quote_under_the_wrong_evidence_type_is_malformed(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sgx = samples["sgx-v3"]
    rejected(verify_evidence("tdx", sgx.evidence, sgx.certs, roots, sgx.at_time, permissive), RejectCode.MALFORMED)


def test_root_not_yet_active_at_the_inclusion_height_is_unknown_root(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sample = samples["nitro-blocky"]
    later = make_vendor_roots(
        tuple(replace(r, activation_height=500) if r.name == "AWS Nitro root G1" else r for r in roots.roots)
    )
    before = verify_evidence(sample.kind, sample.evidence, sample.certs, later, sample.at_time, permissive, height=499)
    rejected(before, RejectCode.UNKNOWN_ROOT)
    after = verify_evidence(sample.kind, sample.evidence, sample.certs, later, sample.at_time, permissive, height=500)
    assert isinstance(after, AttestationResult)


def test_pinned_root_object_identity_is_by_bytes(samples: dict[str, Any], permissive: Policy) -> None:
    """A root pinned under another name still anchors: the DER bytes are what is trusted."""
    sample = samples["snp-milan2"]
    assert isinstance(sample.certs, tuple)
    only = make_vendor_roots(
        (PinnedRoot(vendor=AMD, name="anything", version=7, der=sample.certs[-1], activation_height=0),)
    )
    assert isinstance(
        verify_evidence(sample.kind, sample.evidence, sample.certs, only, sample.at_time, permissive), AttestationResult
    )


@pytest.mark.parametrize("name", ["sgx-v3", "tdx-v4"])
def test_remembered_platform_judgement_still_checks_time_and_roots(
    name: str, samples: dict[str, Any], roots: VendorRoots, permissive: Policy, at: Callable[[str], int]
) -> None:
    """A quote from a platform already judged reuses the judgement only inside the windows it was checked in."""
    s = samples[name]
    first = verify_evidence(s.kind, s.evidence, s.certs, roots, s.at_time, permissive)
    assert isinstance(first, AttestationResult)
    late = verify_evidence(s.kind, s.evidence, s.certs, roots, at("2025-07-19T11:00:00Z"), permissive)
    rejected(late, RejectCode.STALE_ATTESTATION)
    early = verify_evidence(s.kind, s.evidence, s.certs, roots, at("2025-06-19T09:00:00Z"), permissive)
    rejected(early, RejectCode.STALE_ATTESTATION)
    without = _without(roots, "Intel SGX Root CA")
    rejected(verify_evidence(s.kind, s.evidence, s.certs, without, s.at_time, permissive), RejectCode.UNKNOWN_ROOT)
    again = verify_evidence(s.kind, s.evidence, s.certs, roots, s.at_time + 3600, permissive)
    assert again == first


def test_snp_chain_may_come_as_pem_or_concatenated_der(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy, fixture_bytes: Callable[[str], bytes]
) -> None:
    s = samples["snp-milan2"]
    vcek = fixture_bytes("sev-snp/milan2-vcek.der")
    for certs in ((vcek, fixture_bytes("sev-snp/ask_ark_milan.pem")), b"".join(s.certs)):
        assert isinstance(verify_evidence(s.kind, s.evidence, certs, roots, s.at_time, permissive), AttestationResult)


def test_vendor_roots_method_and_function_agree(roots: VendorRoots) -> None:
    from aicf.proofs.attestation import roots_in_force

    assert roots.roots_in_force(0) == roots_in_force(roots, 0) == roots
    assert roots.roots_in_force(-1).roots == ()


def test_serial_zero_warning_is_filtered_only_where_amd_certificates_are_parsed(
    fixture_bytes: Callable[[str], bytes],
) -> None:
    import warnings

    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning

    from aicf.proofs.attestation import chain

    vcek = fixture_bytes("sev-snp/milan-vcek.der")
    with pytest.warns(CryptographyDeprecationWarning, match="serial number"):
        x509.load_der_x509_certificate(vcek)  # the filter is not global
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chain.load_cert.__wrapped__(vcek)  # uncached parse: no warning escapes
