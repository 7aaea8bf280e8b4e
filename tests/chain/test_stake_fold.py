"""A provider's on-chain stake folded from its logs (aicf/chain/stake.py), without a node: the same numbers the
contract keeps (a slash takes bonded stake first), and a log that cannot follow the earlier ones is refused."""

import pytest

from aicf.chain.stake import StakeLogError, StakeState, apply_stake_log, fold_stake_logs

OWNER, OTHER = b"\x0a" * 20, b"\x0b" * 20


def test_stake_unbond_slash_and_withdraw_fold_to_the_contracts_numbers() -> None:
    state = fold_stake_logs(
        [
            ("Staked", {"amount": 100, "bonded": 100}, OWNER),
            ("Staked", {"amount": 50, "bonded": 150}, OWNER),
            ("UnbondRequested", {"amount": 120, "unbonding": 120, "releaseAt": 7_000}, b""),
        ]
    )
    assert state == StakeState(owner=OWNER, bonded=30, unbonding=120, release_at=7_000)
    slashed = apply_stake_log(state, "Slashed", {"amount": 40}, b"")  # 30 bonded first, then 10 unbonding
    assert slashed == StakeState(owner=OWNER, bonded=0, unbonding=110, release_at=7_000)
    withdrawn = apply_stake_log(slashed, "Withdrawn", {"amount": 110}, b"")
    assert withdrawn == StakeState(owner=OWNER, bonded=0, unbonding=0, release_at=0)
    assert withdrawn.to_body(b"\x01" * 32) == {
        "provider_id": b"\x01" * 32, "owner": OWNER, "bonded": 0, "unbonding": 0, "release_at": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("event", "args", "owner", "message"),
    [
        ("Staked", {"amount": 5, "bonded": 6}, OWNER, "bonded 6, the earlier logs give 15"),
        ("Staked", {"amount": 5, "bonded": 15}, OTHER, "but the owner is 0x0a"),
        ("UnbondRequested", {"amount": 11, "unbonding": 11, "releaseAt": 1}, b"", "does not follow"),
        ("Withdrawn", {"amount": 1}, b"", "but 0 is unbonding"),
        ("Slashed", {"amount": 11}, b"", "above the stake 10"),
        ("Claimed", {"amount": 1}, b"", "is not a stake log"),
    ],
)
def test_a_log_that_cannot_follow_the_earlier_ones_is_refused(
    event: str, args: dict[str, int], owner: bytes, message: str
) -> None:
    state = StakeState(owner=OWNER, bonded=10)
    with pytest.raises(StakeLogError, match=message):
        apply_stake_log(state, event, args, owner)
