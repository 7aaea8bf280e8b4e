"""The TEE collateral watch: the expiry items of the latest accepted evidence of each kind, bounded."""

import threading

from aicf.proofs.attestation import Expiry
from aicf.service.collateral import MAX_ITEMS_PER_KIND, MAX_KINDS, CollateralWatch


def item(what: str, not_after: int = 1_800_000_000) -> Expiry:
    return Expiry(what=what, not_after=not_after)


def test_a_new_watch_holds_nothing() -> None:
    assert CollateralWatch().items() == ()


def test_the_latest_accepted_evidence_of_a_kind_replaces_its_items_and_leaves_other_kinds() -> None:
    watch = CollateralWatch()
    watch.record("sgx", (item("sgx tcbInfo nextUpdate", 100), item("sgx PCK CRL nextUpdate", 90)))
    watch.record("sev-snp", (item("sev-snp VCEK certificate", 500),))
    watch.record("sgx", (item("sgx tcbInfo nextUpdate", 200),))  # fresh collateral: the old items are gone
    assert watch.items() == (
        ("sev-snp", item("sev-snp VCEK certificate", 500)),
        ("sgx", item("sgx tcbInfo nextUpdate", 200)),
    )
    assert watch.expiries() == (item("sev-snp VCEK certificate", 500), item("sgx tcbInfo nextUpdate", 200))


def test_items_come_sorted_by_kind_then_name_whatever_the_recording_order() -> None:
    watch = CollateralWatch()
    watch.record("tdx", (item("tdx qeIdentity nextUpdate"), item("tdx PCK certificate")))
    watch.record("nvidia-gpu", (item("nvidia-gpu leaf certificate"),))
    assert [(k, e.what) for k, e in watch.items()] == [
        ("nvidia-gpu", "nvidia-gpu leaf certificate"),
        ("tdx", "tdx PCK certificate"),
        ("tdx", "tdx qeIdentity nextUpdate"),
    ]


def test_evidence_with_nothing_to_renew_clears_its_kind() -> None:
    watch = CollateralWatch()
    watch.record("nitro", (item("nitro something"),))
    watch.record("nitro", ())
    assert watch.items() == ()


def test_the_watch_is_bounded_in_kinds_and_items_per_kind() -> None:
    watch = CollateralWatch()
    for k in range(MAX_KINDS + 5):
        watch.record(f"kind-{k:02d}", (item(f"kind-{k:02d} x"),))
    assert len({k for k, _ in watch.items()}) == MAX_KINDS
    watch.record("kind-00", tuple(item(f"kind-00 {i:03d}") for i in range(MAX_ITEMS_PER_KIND + 10)))
    assert sum(1 for k, _ in watch.items() if k == "kind-00") == MAX_ITEMS_PER_KIND
    watch.record("kind-00", (item("kind-00 y"),))  # a kind already held is still replaced when the watch is full
    assert [e.what for k, e in watch.items() if k == "kind-00"] == ["kind-00 y"]


def test_concurrent_recorders_leave_one_complete_set_per_kind() -> None:
    watch = CollateralWatch()
    sets = [frozenset(item(f"sgx {n} {i}") for i in range(7)) for n in range(8)]
    seen: list[frozenset[Expiry]] = []

    def record(items: frozenset[Expiry]) -> None:
        for _ in range(200):
            watch.record("sgx", tuple(items))
            seen.append(frozenset(e for _, e in watch.items()))

    threads = [threading.Thread(target=record, args=(s,)) for s in sets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 * 200
    assert all(snapshot in sets for snapshot in seen)  # never a mix of two recordings
