"""Accepted evidence names the collateral and certificates below the root it relied on, with their expiry."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509

from aicf.proofs.attestation import AttestationResult, Expiry, Policy, VendorRoots, verify_evidence
from aicf.proofs.attestation.chain import load_cert  # filters the serial-0 warning of AMD's VCEKs


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
