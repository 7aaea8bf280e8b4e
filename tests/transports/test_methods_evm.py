"""aicf.getClaim: an account's claim of a settled epoch with its Merkle proof, in the shape its published result
schema says; an unknown claim and an address that is not 20 bytes are specific errors."""

import pytest
from pydantic import TypeAdapter

from aicf.service.errors import NotFoundError
from aicf.transports.errors import InvalidParamsError
from aicf.transports.methods_evm import ClaimAnswer, ClaimProofOut, GetClaimParams, get_claim_method
from aicf.transports.rpc import CallContext

ACCOUNT = bytes(range(20))
ANSWER = ClaimAnswer(
    epoch=3,
    account=ACCOUNT,
    amount=1234,
    proof=(b"\x01" * 32, b"\x02" * 32),
    claim_root=b"\x03" * 32,
    claim_total=5000,
    posted=True,
)


def find(epoch: int, account: bytes) -> ClaimAnswer | None:
    return ANSWER if (epoch, account) == (3, ACCOUNT) else None


def call(epoch: int, account: bytes) -> object:
    method = get_claim_method(find)
    params = GetClaimParams.model_validate({"epoch": epoch, "account": "0x" + account.hex()})
    return method.handler(params, CallContext(method="aicf.getClaim"))


def test_a_claim_is_answered_with_its_proof_in_the_published_result_schema() -> None:
    answer = call(3, ACCOUNT)
    TypeAdapter(ClaimProofOut).validate_python(answer)
    assert answer == {
        "epoch": 3,
        "account": "0x" + ACCOUNT.hex(),
        "amount": 1234,
        "proof": ["0x" + "01" * 32, "0x" + "02" * 32],
        "claim_root": "0x" + "03" * 32,
        "claim_total": 5000,
        "posted": True,
    }
    assert get_claim_method(find).result_type is ClaimProofOut


def test_an_unknown_claim_and_a_short_address_are_refused_by_name() -> None:
    with pytest.raises(NotFoundError, match="epoch 4"):
        call(4, ACCOUNT)
    with pytest.raises(InvalidParamsError):
        call(3, ACCOUNT[:19])
