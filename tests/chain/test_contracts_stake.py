"""Provider stake on anvil: bond (binding the provider id to its owner), unbond over the unbonding period,
withdraw after it, and slashes that only the coordinator may apply, once per evidence hash, to the fund."""

from web3.logs import DISCARD

from chain.evm_support import ANM, Stack, advance_time, revert_of, send

PID = b"\x70" * 32
EVIDENCE = b"\xe1" * 32
SEVEN_DAYS = 7 * 86400
MISSED_LEASE = 1


def staked(stack: Stack, amount: int = 100 * ANM) -> None:
    stack.fund_with(stack.roles.provider, amount)
    send(stack.aicf.functions.stake(PID, amount), stack.roles.provider)


def stake_of(stack: Stack) -> tuple[str, int, int, int]:
    owner, bonded, unbonding, release_at = stack.aicf.functions.stakes(PID).call()
    return owner, bonded, unbonding, release_at


def test_stake_binds_the_provider_id_to_its_first_staker(stack: Stack) -> None:
    staked(stack, 100 * ANM)
    assert stake_of(stack)[:3] == (stack.roles.provider, 100 * ANM, 0)
    assert stack.balance(stack.aicf.address) == 100 * ANM
    stack.fund_with(stack.roles.other, 5 * ANM)
    before = stack.balance(stack.roles.other)
    assert revert_of(stack.aicf.functions.stake(PID, 5 * ANM), stack.roles.other) == (
        "NotProviderOwner",
        (PID, stack.roles.other),
    )
    assert stack.balance(stack.roles.other) == before
    assert stake_of(stack)[1] == 100 * ANM


def test_stake_needs_allowance_and_a_positive_amount(stack: Stack) -> None:
    stack.fund_with(stack.roles.provider, 10 * ANM, approve=ANM)
    f = stack.aicf.functions
    assert revert_of(f.stake(PID, 2 * ANM), stack.roles.provider) == ("InsufficientAllowance", (ANM, 2 * ANM))
    assert revert_of(f.stake(PID, 0), stack.roles.provider) == ("FieldOutOfRange", ("amount", 0, 1, 2**63 - 1))
    assert stake_of(stack)[0] == "0x" + "0" * 40


def test_unbonded_stake_is_withdrawn_only_after_seven_days(stack: Stack) -> None:
    staked(stack, 100 * ANM)
    f = stack.aicf.functions
    receipt = send(f.requestUnbond(PID, 40 * ANM), stack.roles.provider)
    release_at = stack.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + SEVEN_DAYS
    assert stake_of(stack) == (stack.roles.provider, 60 * ANM, 40 * ANM, release_at)
    now = stack.w3.eth.get_block("latest")["timestamp"]
    assert revert_of(f.withdraw(PID), stack.roles.provider)[0] == "UnbondingNotOver"
    advance_time(stack.w3, release_at - now - 2)
    name, (pid, when, _) = revert_of(f.withdraw(PID), stack.roles.provider)
    assert (name, pid, when) == ("UnbondingNotOver", PID, release_at)
    advance_time(stack.w3, 2)
    before = stack.balance(stack.roles.provider)
    receipt = send(f.withdraw(PID), stack.roles.provider)
    (event,) = stack.aicf.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["amount"] == 40 * ANM
    assert stack.balance(stack.roles.provider) == before + 40 * ANM
    assert stake_of(stack)[1:3] == (60 * ANM, 0)
    assert revert_of(f.withdraw(PID), stack.roles.provider) == ("NothingToWithdraw", (PID,))


def test_unbond_and_withdraw_are_the_owners_alone_and_bounded_by_the_bond(stack: Stack) -> None:
    staked(stack, 10 * ANM)
    f = stack.aicf.functions
    assert revert_of(f.requestUnbond(PID, ANM), stack.roles.other) == ("NotProviderOwner", (PID, stack.roles.other))
    assert revert_of(f.withdraw(PID), stack.roles.other) == ("NotProviderOwner", (PID, stack.roles.other))
    assert revert_of(f.requestUnbond(PID, 11 * ANM), stack.roles.provider) == (
        "InsufficientStake",
        (PID, 10 * ANM, 11 * ANM),
    )
    assert revert_of(f.requestUnbond(b"\x01" * 32, ANM), stack.roles.provider) == ("UnknownProvider", (b"\x01" * 32,))
    assert stake_of(stack)[1:3] == (10 * ANM, 0)


def test_slash_takes_bps_of_bonded_plus_unbonding_to_the_fund_with_its_evidence(stack: Stack) -> None:
    staked(stack, 100 * ANM)
    send(stack.aicf.functions.requestUnbond(PID, 99 * ANM), stack.roles.provider)
    receipt = send(stack.aicf.functions.slash(PID, MISSED_LEASE, 1000, EVIDENCE), stack.roles.coordinator)
    (event,) = stack.aicf.events.Slashed().process_receipt(receipt, errors=DISCARD)
    # (1 + 99) ANM × 10 %: the 1 ANM still bonded goes first, the other 9 come from unbonding stake
    assert (bytes(event["args"]["evidenceHash"]), event["args"]["amount"]) == (EVIDENCE, 10 * ANM)
    assert stack.balance(stack.roles.fund) == 10 * ANM
    assert stake_of(stack)[1:3] == (0, 90 * ANM)
    assert stack.aicf.functions.evidenceUsed(EVIDENCE).call() is True


def test_slash_by_anyone_but_the_coordinator_or_twice_for_one_evidence_reverts(stack: Stack) -> None:
    staked(stack, 100 * ANM)
    f = stack.aicf.functions
    assert revert_of(f.slash(PID, MISSED_LEASE, 100, EVIDENCE), stack.roles.provider) == (
        "NotCoordinator",
        (stack.roles.provider,),
    )
    assert stake_of(stack)[1] == 100 * ANM
    send(f.slash(PID, MISSED_LEASE, 100, EVIDENCE), stack.roles.coordinator)
    assert revert_of(f.slash(PID, MISSED_LEASE, 100, EVIDENCE), stack.roles.coordinator) == (
        "EvidenceAlreadyUsed",
        (EVIDENCE,),
    )
    assert stake_of(stack)[1] == 99 * ANM
    who = stack.roles.coordinator
    assert revert_of(f.slash(PID, MISSED_LEASE, 0, b"\xe2" * 32), who) == ("FieldOutOfRange", ("bps", 0, 1, 10000))
    assert revert_of(f.slash(PID, 6, 100, b"\xe2" * 32), who) == ("FieldOutOfRange", ("reason", 6, 1, 5))
    assert revert_of(f.slash(b"\x01" * 32, MISSED_LEASE, 100, b"\xe2" * 32), who) == (
        "UnknownProvider",
        (b"\x01" * 32,),
    )


def test_roles_are_handed_on_by_the_admin_only(stack: Stack) -> None:
    f = stack.aicf.functions
    assert revert_of(f.setCoordinator(stack.roles.other), stack.roles.coordinator) == (
        "NotAdmin",
        (stack.roles.coordinator,),
    )
    send(f.setCoordinator(stack.roles.other), stack.roles.admin)
    assert f.coordinator().call() == stack.roles.other
    staked(stack, 10 * ANM)
    assert revert_of(f.slash(PID, 1, 100, EVIDENCE), stack.roles.coordinator) == (
        "NotCoordinator",
        (stack.roles.coordinator,),
    )
    send(f.slash(PID, 1, 100, EVIDENCE), stack.roles.other)
