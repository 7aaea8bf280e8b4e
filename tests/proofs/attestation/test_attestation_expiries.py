"""Accepted evidence names the collateral and certificates below the root it relied on, with their expiry, and the
coordinator's verifier keeps what the latest accepted evidence of each kind relied on (the collateral alarm)."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509

from aicf.core.chain import Job
from aicf.core.ids import input_digest, output_digest, provider_id, tee_report_data
from aicf.core.leases import LeaseStatus
from aicf.core.params import Params
from aicf.core.records import LeaseRecord
from aicf.core.types import MicroAnm, MilliUnits
from aicf.proofs.attestation import (
    AttestationResult,
    Expiry,
    Policy,
    VendorRoots,
    make_vendor_roots,
    verify_evidence,
)
from aicf.proofs.attestation.chain import load_cert  # filters the serial-0 warning of AMD's VCEKs
from aicf.proofs.attestation.registry import TrustAnchors
from aicf.proofs.envelope import ProofEnvelope
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.collateral import CollateralWatch
from aicf.service.verifier import BodyAccepted, StandardVerifier


def verified(sample: Any, roots: VendorRoots, policy: Policy) -> AttestationResult:
    result = verify_evidence(sample.kind, sample.evidence, sample.certs, roots, sample.at_time, policy)
    assert isinstance(result, AttestationResult), result
    return result


def by_name(items: tuple[Expiry, ...]) -> dict[str, int]:
    names = [i.what for i in items]
    assert len(names) == len(set(names)), names
    return {i.what: i.not_after for i in items}


@pytest.mark.parametrize(("name", "kind"), [("sgx-v3", "sgx"), ("tdx-v4", "tdx")])
def test_dcap_evidence_names_tcb_info_qe_identity_crls_and_chains_with_their_expiry(
    name: str,
    kind: str,
    samples: dict[str, Any],
    roots: VendorRoots,
    permissive: Policy,
    at: Callable[[str], int],
) -> None:
    sample = samples[name]
    collateral = json.loads(sample.certs)
    items = by_name(verified(sample, roots, permissive).expiries)
    assert items[f"{kind} tcbInfo nextUpdate"] == at(json.loads(collateral["tcb_info"])["nextUpdate"])
    assert items[f"{kind} qeIdentity nextUpdate"] == at(json.loads(collateral["qe_identity"])["nextUpdate"])
    pck_crl = x509.load_der_x509_crl(bytes.fromhex(collateral["pck_crl"]))
    assert pck_crl.next_update_utc is not None
    assert items[f"{kind} PCK CRL nextUpdate"] == int(pck_crl.next_update_utc.timestamp())
    signer = x509.load_pem_x509_certificates(collateral["tcb_info_issuer_chain"].encode())[0]
    assert items[f"{kind} TCB signing certificate"] == int(signer.not_valid_after_utc.timestamp())
    assert set(items) == {
        f"{kind} {what}"
        for what in (
            "tcbInfo nextUpdate",
            "qeIdentity nextUpdate",
            "root CA CRL nextUpdate",
            "PCK CRL nextUpdate",
            "PCK certificate",
            "PCK CA certificate",
            "TCB signing certificate",
        )
    }
    assert all(v > sample.at_time for v in items.values())  # all were valid when the evidence verified


def test_dcap_expiries_do_not_depend_on_the_verification_time(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sample = samples["sgx-v3"]
    first = verified(sample, roots, permissive).expiries
    later = verify_evidence(sample.kind, sample.evidence, sample.certs, roots, sample.at_time + 3600, permissive)
    assert isinstance(later, AttestationResult)
    assert later.expiries == first


def test_snp_evidence_names_the_vcek_and_ask_but_not_the_pinned_ark(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    sample = samples["snp-milan"]
    vcek, ask = (load_cert(d) for d in sample.certs[:2])
    items = by_name(verified(sample, roots, permissive).expiries)
    assert items == {
        "sev-snp VCEK certificate": int(vcek.not_valid_after_utc.timestamp()),
        "sev-snp ASK certificate": int(ask.not_valid_after_utc.timestamp()),
    }


def test_snp_vlek_evidence_names_the_vlek_and_asvk(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy, at: Callable[[str], int]
) -> None:
    items = by_name(verified(samples["snp-milan-vlek-v3"], roots, permissive).expiries)
    assert set(items) == {"sev-snp VLEK certificate", "sev-snp ASVK certificate"}
    assert items["sev-snp VLEK certificate"] == at("2025-12-10T22:14:21Z")


def test_gpu_evidence_names_its_device_chain_by_position(
    samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    items = by_name(verified(samples["nvidia-h100"], roots, permissive).expiries)
    assert set(items) == {
        "nvidia-gpu leaf certificate",
        "nvidia-gpu chain certificate 1",
        "nvidia-gpu chain certificate 2",
        "nvidia-gpu chain certificate 3",
    }


@pytest.mark.parametrize("name", ["nitro-blocky", "cca-example"])
def test_nitro_and_cca_evidence_name_nothing_to_renew(
    name: str, samples: dict[str, Any], roots: VendorRoots, permissive: Policy
) -> None:
    # Nitro: AWS reissues every certificate below its root within hours to weeks; CCA tokens carry no validity.
    assert verified(samples[name], roots, permissive).expiries == ()


# ---- the verifier of the coordinator records what accepted evidence relied on ----

PROVIDER = provider_id(b"\x07" * 32)
MODEL, MODEL_DIGEST, PROMPT, OUTPUT = "smollm2-135m", b"\x33" * 32, b"2+2=", b"4"
TASK = b"\x11" * 32
AT = 1_767_225_600  # 2026-01-01: inside the test AMD chain's validity


def _snp_proof(test_amd: Any, snp_report: Callable[..., bytes], *, provider: bytes = PROVIDER) -> ProofEnvelope:
    bound = tee_report_data(TASK, MODEL_DIGEST, input_digest(PROMPT), output_digest(OUTPUT), provider)
    report = snp_report(test_amd.vcek_key, report_data=bound, chip_id=test_amd.chip_id)
    body: dict[str, object] = {
        "model_id": MODEL,
        "model_digest": MODEL_DIGEST,
        "input_digest": input_digest(PROMPT),
        "output_digest": output_digest(OUTPUT),
        "output": OUTPUT,
        "qos": {"runtime_ms": 120, "tokens": 1},
        "attestation": {"type": "sev-snp", "evidence": report, "certs": [test_amd.vcek, test_amd.ask, test_amd.ark]},
    }
    return ProofEnvelope(
        version=1, kind="AI_V1", task_id=TASK, lease_id=b"\x22" * 32, provider_id=PROVIDER, body=body, sig=b""
    )


def _verify(watch: CollateralWatch, env: ProofEnvelope, test_amd: Any) -> object:
    verifier = StandardVerifier(model_digests={MODEL: MODEL_DIGEST}, trap_seed=lambda e: bytes(32), watch=watch)
    job = Job(
        task_id=TASK, chain_id=1, tx_hash=bytes(32), caller=bytes(20), kind="ai", payload=b"", payload_hash=bytes(32),
        model=MODEL, fee_per_unit=1, tier=0, max_units_mu=MilliUnits(1000), escrow=MicroAnm(1000), depth=0,
        deadline_height=100, enqueue_height=1, enqueue_tx_index=0,
    )  # fmt: skip
    lease = LeaseRecord(
        lease_id=env.lease_id, task_id=TASK, provider_id=PROVIDER, attempt=1, granted_at=AT - 10,
        expires_at=AT + 60, status=LeaseStatus.LIVE, epoch=0,
    )  # fmt: skip
    request = {"prompt": PROMPT, "max_runtime_ms": 5000, "max_tokens": 16}
    trust = TrustAnchors(roots=make_vendor_roots((test_amd.root,)))
    return verifier.verify(env, job, request, lease, AT, 10, trust, Params())


def test_standard_verifier_records_the_chain_below_the_root_of_evidence_it_accepts(
    test_amd: Any, snp_report: Callable[..., bytes]
) -> None:
    watch = CollateralWatch()
    out = _verify(watch, _snp_proof(test_amd, snp_report), test_amd)
    assert isinstance(out, BodyAccepted), out
    assert out.attested == "sev-snp"
    vcek, ask = load_cert(test_amd.vcek), load_cert(test_amd.ask)
    assert watch.items() == (
        ("sev-snp", Expiry(what="sev-snp ASK certificate", not_after=int(ask.not_valid_after_utc.timestamp()))),
        ("sev-snp", Expiry(what="sev-snp VCEK certificate", not_after=int(vcek.not_valid_after_utc.timestamp()))),
    )


def test_standard_verifier_records_nothing_for_evidence_it_rejects(
    test_amd: Any, snp_report: Callable[..., bytes]
) -> None:
    watch = CollateralWatch()
    out = _verify(watch, _snp_proof(test_amd, snp_report, provider=provider_id(b"\x08" * 32)), test_amd)
    assert isinstance(out, Reject)
    assert out.code is RejectCode.BAD_ATTESTATION  # bound to another provider
    assert watch.items() == ()
