"""The SPEC §8 binding and the registry policy, on evidence the tests sign with their own vendor chains."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from aicf.core.ids import input_digest, output_digest, provider_id, tee_report_data
from aicf.proofs.attestation import (
    AttestationResult,
    Policy,
    Reject,
    RejectCode,
    SnpTcb,
    VendorRoots,
    check_binding,
    make_vendor_roots,
    verify_evidence,
)

TASK = bytes.fromhex("11" * 32)
MODEL = bytes.fromhex("22" * 32)
PROVIDER = provider_id(b"\x07" * 32)
BOUND = tee_report_data(TASK, MODEL, input_digest(b"prompt"), output_digest(b"answer"), PROVIDER)
AT = 1_767_225_600  # 2026-01-01T00:00:00Z: inside the test chains' validity


def ok(out: AttestationResult | Reject) -> AttestationResult:
    assert isinstance(out, AttestationResult), out
    return out


def rejected(out: AttestationResult | Reject, code: RejectCode) -> Reject:
    assert isinstance(out, Reject), out
    assert out.code == code, out
    return out


@pytest.fixture(scope="module")
def amd_roots(test_amd: Any) -> VendorRoots:
    return make_vendor_roots((test_amd.root,))


@pytest.fixture(scope="module")
def nitro_roots(test_nitro: Any) -> VendorRoots:
    return make_vendor_roots((test_nitro.root,))


def snp_chain(test_amd: Any) -> tuple[bytes, ...]:
    return (test_amd.vcek, test_amd.ask, test_amd.ark)


def test_self_signed_snp_report_carrying_the_binding_verifies_and_binds(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id)
    result = ok(verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy()))
    assert result.report_data == BOUND + bytes(32)
    assert check_binding(result, BOUND) is None


@pytest.mark.parametrize(
    "other",
    [
        tee_report_data(b"\x12" * 32, MODEL, input_digest(b"prompt"), output_digest(b"answer"), PROVIDER),  # task
        tee_report_data(TASK, MODEL, input_digest(b"prompt"), output_digest(b"other answer"), PROVIDER),  # output
        tee_report_data(TASK, MODEL, input_digest(b"prompt"), output_digest(b"answer"), provider_id(b"\x08" * 32)),
    ],
    ids=["other-task", "other-output", "other-provider"],
)
def test_snp_report_bound_to_other_work_fails_the_binding(
    other: bytes, test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=other, chip_id=test_amd.chip_id)
    result = ok(verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy()))
    reject = check_binding(result, BOUND)
    assert reject is not None
    assert reject.code == RejectCode.BAD_ATTESTATION
    assert BOUND.hex() in reject.message
    assert other.hex() in reject.message


def test_binding_requires_zero_bytes_after_the_hash(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND + b"\x01", chip_id=test_amd.chip_id)
    result = ok(verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy()))
    assert check_binding(result, BOUND) is not None


def test_report_signed_by_a_key_other_than_the_vcek_is_rejected(
    test_amd: Any, test_nitro: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_nitro.leaf_key, report_data=BOUND, chip_id=test_amd.chip_id)
    out = verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy())
    assert "signature" in rejected(out, RejectCode.BAD_ATTESTATION).message


def test_report_from_another_chip_fails_the_hwid_check(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=b"\xee" * 64)
    out = verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy())
    assert "hwID" in rejected(out, RejectCode.BAD_ATTESTATION).message


def test_reported_tcb_differing_from_the_vcek_is_rejected(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id, tcb=(3, 0, 9, 115))
    out = verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy())
    assert "TCB mismatch" in rejected(out, RejectCode.BAD_ATTESTATION).message


def test_v3_report_verifies(test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id, version=3)
    ok(verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy()))


def test_unsupported_report_version_is_malformed(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id, version=9)
    rejected(verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy()), RejectCode.MALFORMED)


# ---- policy ----


def test_debug_guest_is_refused_unless_policy_allows_it(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id, policy=0x30000 | 1 << 19)
    chain = snp_chain(test_amd)
    assert (
        "debug"
        in rejected(
            verify_evidence("sev-snp", report, chain, amd_roots, AT, Policy()), RejectCode.BAD_ATTESTATION
        ).message
    )
    assert ok(verify_evidence("sev-snp", report, chain, amd_roots, AT, Policy(allow_debug=True))).debug


def test_real_debug_samples_are_refused_by_default(samples: dict[str, Any], roots: VendorRoots) -> None:
    for name in ("snp-milan", "nitro-blindai", "nitro-blocky-debug"):
        s = samples[name]
        out = verify_evidence(s.kind, s.evidence, s.certs, roots, s.at_time, Policy())
        assert "debug" in rejected(out, RejectCode.BAD_ATTESTATION).message
    s = samples["nitro-blocky"]
    ok(verify_evidence(s.kind, s.evidence, s.certs, roots, s.at_time, Policy()))


def test_measurement_allowlist(test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id, measurement=b"\xab" * 48)
    chain = snp_chain(test_amd)
    ok(verify_evidence("sev-snp", report, chain, amd_roots, AT, Policy(allowed_measurements=frozenset({b"\xab" * 48}))))
    out = verify_evidence(
        "sev-snp", report, chain, amd_roots, AT, Policy(allowed_measurements=frozenset({b"\xac" * 48}))
    )
    assert "allowlist" in rejected(out, RejectCode.BAD_ATTESTATION).message


def test_empty_measurement_allowlist_admits_nothing(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id)
    out = verify_evidence(
        "sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy(allowed_measurements=frozenset())
    )
    rejected(out, RejectCode.BAD_ATTESTATION)


def test_minimum_snp_tcb(test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id)  # TCB 3/0/8/115
    chain = snp_chain(test_amd)
    at_min = Policy(min_snp_tcb=SnpTcb(bootloader=3, tee=0, snp=8, microcode=115))
    ok(verify_evidence("sev-snp", report, chain, amd_roots, AT, at_min))
    above = Policy(min_snp_tcb=SnpTcb(bootloader=3, tee=0, snp=9, microcode=115))
    assert (
        "minimum"
        in rejected(verify_evidence("sev-snp", report, chain, amd_roots, AT, above), RejectCode.BAD_ATTESTATION).message
    )


def test_vmpl_above_policy_is_refused(test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]) -> None:
    report = snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id, vmpl=2)
    out = verify_evidence("sev-snp", report, snp_chain(test_amd), amd_roots, AT, Policy(max_vmpl=0))
    assert "VMPL" in rejected(out, RejectCode.BAD_ATTESTATION).message


def test_revoked_tcb_status_is_refused_even_if_listed(samples: dict[str, Any], roots: VendorRoots) -> None:
    from aicf.proofs.attestation import apply_policy
    from aicf.proofs.attestation.result import AttestationError

    s = samples["tdx-v4"]
    result = ok(verify_evidence(s.kind, s.evidence, s.certs, roots, s.at_time, Policy()))
    with pytest.raises(AttestationError, match="Revoked"):
        apply_policy(replace(result, tcb_status="Revoked"), Policy(accepted_tcb_statuses=frozenset({"Revoked"})))


# ---- Nitro ----


def test_self_signed_nitro_document_carrying_the_binding_verifies_and_binds(
    test_nitro: Any, nitro_roots: VendorRoots, nitro_doc_of: Callable[..., bytes]
) -> None:
    doc = nitro_doc_of(test_nitro, user_data=BOUND)
    result = ok(verify_evidence("nitro", doc, (), nitro_roots, AT, Policy()))
    assert result.report_data == BOUND
    assert check_binding(result, BOUND) is None
    padded = ok(
        verify_evidence("nitro", nitro_doc_of(test_nitro, user_data=BOUND + bytes(32)), (), nitro_roots, AT, Policy())
    )
    assert check_binding(padded, BOUND) is None


@pytest.mark.parametrize("user_data", [None, b"", BOUND[:31], b"\x00" + BOUND, BOUND[:-1] + b"\x00"])
def test_nitro_document_without_the_binding_fails_it(
    user_data: bytes | None, test_nitro: Any, nitro_roots: VendorRoots, nitro_doc_of: Callable[..., bytes]
) -> None:
    result = ok(verify_evidence("nitro", nitro_doc_of(test_nitro, user_data=user_data), (), nitro_roots, AT, Policy()))
    reject = check_binding(result, BOUND)
    assert reject is not None
    assert reject.code == RejectCode.BAD_ATTESTATION


def test_nitro_debug_document_is_refused_by_default(
    test_nitro: Any, nitro_roots: VendorRoots, nitro_doc_of: Callable[..., bytes]
) -> None:
    doc = nitro_doc_of(test_nitro, user_data=BOUND, pcr0=bytes(48))
    assert (
        "debug"
        in rejected(verify_evidence("nitro", doc, (), nitro_roots, AT, Policy()), RejectCode.BAD_ATTESTATION).message
    )
    assert ok(verify_evidence("nitro", doc, (), nitro_roots, AT, Policy(allow_debug=True))).debug


def test_nitro_document_with_a_chain_in_certs_is_malformed(
    test_nitro: Any, nitro_roots: VendorRoots, nitro_doc_of: Callable[..., bytes]
) -> None:
    doc = nitro_doc_of(test_nitro, user_data=BOUND)
    rejected(verify_evidence("nitro", doc, (test_nitro.root_der,), nitro_roots, AT, Policy()), RejectCode.MALFORMED)


def test_test_chains_are_unknown_to_the_real_roots(
    test_nitro: Any, roots: VendorRoots, nitro_doc_of: Callable[..., bytes]
) -> None:
    doc = nitro_doc_of(test_nitro, user_data=BOUND)
    rejected(verify_evidence("nitro", doc, (), roots, AT, Policy()), RejectCode.UNKNOWN_ROOT)


# ---- bad input ----


@pytest.mark.parametrize("kind", ["sev-snp", "sgx", "tdx", "nitro", "nvidia-gpu", "cca"])
def test_empty_and_oversized_evidence_is_malformed(kind: str, roots: VendorRoots) -> None:
    for evidence in (b"", b"\x00" * (64 * 1024 + 1)):
        rejected(verify_evidence(kind, evidence, (), roots, AT, Policy()), RejectCode.MALFORMED)


def test_unknown_evidence_type_is_malformed(roots: VendorRoots) -> None:
    out = verify_evidence("sev", b"\x00" * 16, (), roots, AT, Policy())
    assert "unknown evidence type" in rejected(out, RejectCode.MALFORMED).message


def test_non_bytes_input_is_malformed_not_an_exception(roots: VendorRoots) -> None:
    rejected(verify_evidence("sev-snp", "not bytes", (), roots, AT, Policy()), RejectCode.MALFORMED)  # type: ignore[arg-type]
    rejected(verify_evidence("sev-snp", b"\x00" * 1184, ("pem",), roots, AT, Policy()), RejectCode.MALFORMED)  # type: ignore[arg-type]


def test_turin_v3_report_is_refused_as_unsupported(
    test_amd: Any, amd_roots: VendorRoots, snp_report: Callable[..., bytes]
) -> None:
    report = bytearray(snp_report(test_amd.vcek_key, report_data=BOUND, chip_id=test_amd.chip_id, version=3))
    report[0x188] = 0x1A
    out = verify_evidence("sev-snp", bytes(report), snp_chain(test_amd), amd_roots, AT, Policy())
    assert "Turin" in rejected(out, RejectCode.MALFORMED).message
