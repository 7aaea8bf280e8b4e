"""Attestation benchmarks (issue 6, item 8): evidence verified per second for each kind, against the bare
`cryptography` ECDSA verify rate for the same curve on this machine.

Run: .venv/bin/python benchmarks/bench_attestation.py [--seconds S] [--runs R]
"warm" repeats the same evidence, as a chip or enclave re-attesting does: certificate links, CRLs, PCS JSON and QE
report signatures are memoised by their bytes, so what is left is the evidence's own signature plus parsing.
"cold" clears every memo first (a chip seen for the first time). The ratio is warm / bare; the issue's target is
>= 50%. Prints a markdown table.
"""

import argparse
import base64
import functools
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from reference import fmt_ratio, fmt_spread, interleave, load_average, ratios, rounds

from aicf.proofs.attestation import (
    AMD,
    ARM_CCA,
    AWS,
    INTEL,
    NVIDIA,
    AttestationResult,
    PinnedRoot,
    Policy,
    VendorRoots,
    cca,
    chain,
    dcap,
    make_vendor_roots,
    verify_evidence,
)
from aicf.proofs.attestation.nitro import parse_nitro_document

FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "attestation"
POLICY = Policy(allow_debug=True, accepted_tcb_statuses=frozenset({"UpToDate", "ConfigurationAndSWHardeningNeeded"}))
MEMOS: tuple[Callable[[], None], ...] = (
    chain.load_cert.cache_clear,
    chain._link_error.cache_clear,
    chain.pem_to_ders.cache_clear,
    dcap._p256_signed_by.cache_clear,
    dcap._json_object.cache_clear,
    dcap._load_crl.cache_clear,
    dcap._crl_signed_by.cache_clear,
    dcap.parse_collateral.cache_clear,
    dcap.parse_pck_extensions.cache_clear,
    dcap._raw_p256_key.cache_clear,
    cca._platform_signed_by.cache_clear,
    dcap._PLATFORM_MEMO.clear,
)


def ders(pem: bytes) -> tuple[bytes, ...]:
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(pem))


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def cpak() -> bytes:
    jwk = json.loads((FIX / "cca/cpak-pub.json").read_text())

    def coord(s: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")

    key = ec.EllipticCurvePublicNumbers(coord(jwk["x"]), coord(jwk["y"]), ec.SECP384R1()).public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def cases() -> list[tuple[str, str, str, bytes, bytes | tuple[bytes, ...], int]]:
    milan = ders((FIX / "sev-snp/ask_ark_milan.pem").read_bytes())
    blocky = base64.b64decode((FIX / "nitro/blocky_attestation_doc.b64").read_bytes())
    return [
        (
            "SEV-SNP (Milan, VCEK)",
            "P-384",
            "sev-snp",
            (FIX / "sev-snp/milan2-report.bin").read_bytes(),
            ((FIX / "sev-snp/milan2-vcek.der").read_bytes(), *milan),
            ts("2024-01-01T00:00:00Z"),
        ),
        (
            "SGX quote v3 + collateral",
            "P-256",
            "sgx",
            (FIX / "sgx-dcap/sgx_quote.bin").read_bytes(),
            (FIX / "sgx-dcap/sgx_quote_collateral.json").read_bytes(),
            ts("2025-07-01T00:00:00Z"),
        ),
        (
            "TDX quote v4 + collateral",
            "P-256",
            "tdx",
            (FIX / "tdx-dcap/tdx_quote.bin").read_bytes(),
            (FIX / "tdx-dcap/tdx_quote_collateral.json").read_bytes(),
            ts("2025-07-01T00:00:00Z"),
        ),
        (
            "AWS Nitro document",
            "P-384",
            "nitro",
            blocky,
            (),
            parse_nitro_document(cbor2.loads(blocky)[2]).timestamp_ms // 1000,
        ),
        (
            "NVIDIA H100 SPDM report",
            "P-384",
            "nvidia-gpu",
            bytes.fromhex((FIX / "nvidia-gpu/hopper_attestation_report.hex").read_text()),
            ders((FIX / "nvidia-gpu/hopper_cert_chain.pem").read_bytes()),
            ts("2026-11-25T00:00:00Z"),
        ),
        ("Arm CCA token (2 x ES384)", "P-384", "cca", (FIX / "cca/cca-example-token.cbor").read_bytes(), (), 0),
    ]


def rate(fn: Callable[[], object], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        for _ in range(20):
            fn()
        n += 20
    return n / elapsed


@functools.cache
def _bare_fixture(curve_name: str) -> tuple[ec.EllipticCurvePublicKey, bytes, bytes]:
    curve, algorithm = (
        (ec.SECP256R1(), hashes.SHA256()) if curve_name == "secp256r1" else (ec.SECP384R1(), hashes.SHA384())
    )
    key = ec.generate_private_key(curve)
    data = b"\x5a" * 1184
    return key.public_key(), key.sign(data, ec.ECDSA(algorithm)), data


def bare_rate(curve: ec.EllipticCurve, algorithm: hashes.HashAlgorithm, seconds: float) -> float:
    """One ECDSA verify of a 1184-byte message (an SEV-SNP report's size) with a loaded key."""
    public, sig, data = _bare_fixture(curve.name)
    return rate(lambda: public.verify(sig, data, ec.ECDSA(algorithm)), seconds)


CURVES = {"P-256": (ec.SECP256R1(), hashes.SHA256()), "P-384": (ec.SECP384R1(), hashes.SHA384())}


def vendor_roots() -> VendorRoots:
    """The pinned roots of the fixtures' vendors."""

    def pin(vendor: str, name: str, der: bytes) -> PinnedRoot:
        return PinnedRoot(vendor=vendor, name=name, version=1, der=der, activation_height=0)

    return make_vendor_roots(
        (
            pin(AMD, "ARK-Milan", ders((FIX / "sev-snp/ask_ark_milan.pem").read_bytes())[1]),
            pin(INTEL, "Intel SGX Root CA", (FIX / "sgx-dcap/Intel_SGX_RootCA.der").read_bytes()),
            pin(AWS, "AWS Nitro root G1", ders((FIX / "nitro/aws_nitro_enclaves_root_G1.pem").read_bytes())[0]),
            pin(
                NVIDIA,
                "NVIDIA Device Identity CA",
                ders((FIX / "nvidia-gpu/nvidia_device_identity_root.pem").read_bytes())[0],
            ),
            pin(ARM_CCA, "CPAK", cpak()),
        )
    )


WARM_TARGET = 0.50  # issue 6: warm verification at >= 50 % of the bare verify for the same curve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Attestation verify beside a bare ECDSA verify, per evidence kind.")
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time of each slice")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds of warm verify and bare verify")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.runs < 1:
        parser.error("--seconds must be positive and --runs at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    roots = vendor_roots()
    curves = CURVES
    print(f"{load_average()} at the start\n")
    print(f"min / **median** / max over {rounds(args.runs)} of {args.seconds:g} s each, warm and bare interleaved;")
    print("the ratio is taken round by round.\n")
    print("| evidence | curve | cold verif/s | warm verif/s | bare ECDSA verify/s | warm / bare | target |")
    print("|---|---|---:|---:|---:|---:|---|")
    for label, curve, kind, evidence, certs, at_time in cases():

        def once(
            kind: str = kind,
            evidence: bytes = evidence,
            certs: object = certs,
            at_time: int = at_time,
            label: str = label,
        ) -> object:
            out = verify_evidence(kind, evidence, certs, roots, at_time, POLICY)  # type: ignore[arg-type]
            if not isinstance(out, AttestationResult):
                raise SystemExit(f"{label}: {out}")
            return out

        def cold(once: Callable[[], object] = once) -> object:
            for clear in MEMOS:
                clear()
            return once()

        cold_rate = rate(cold, args.seconds / 2)
        once()
        bare_args = curves[curve]
        got = interleave(
            args.runs,
            [
                ("warm", lambda once=once: rate(once, args.seconds)),  # type: ignore[misc]
                ("bare", lambda bare_args=bare_args: bare_rate(*bare_args, args.seconds)),  # type: ignore[misc]
            ],
        )
        ok = "✔" if statistics.median(ratios(got["warm"], got["bare"])) >= WARM_TARGET else "✘"
        print(
            f"| {label} | {curve} | {cold_rate:,.0f} | {fmt_spread(got['warm'])} | {fmt_spread(got['bare'])} "
            f"| {fmt_ratio(got['warm'], got['bare'])} | ≥ {WARM_TARGET:.0%} {ok} |"
        )
    print(f"\n{load_average()} at the end")


if __name__ == "__main__":
    main()
