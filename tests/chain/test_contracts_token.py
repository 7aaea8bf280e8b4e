"""The test token on anvil: 6 decimals, faucet with a per-call cap, minting by the minter only, and
ERC-20 transfers whose refusals name the shortfall and move nothing."""

from aicf.chain.artifacts import load_artifact
from chain.evm_support import ANM, Stack, revert_of, send

MAX_UINT = 2**256 - 1


def test_token_has_six_decimals_so_one_unit_is_one_micro_anm(stack: Stack) -> None:
    t = stack.token.functions
    assert (t.decimals().call(), t.symbol().call(), t.totalSupply().call()) == (6, "tANM", 0)


def test_faucet_gives_up_to_its_cap_and_mint_is_the_minters_alone(stack: Stack) -> None:
    t, r = stack.token.functions, stack.roles
    send(t.faucet(1_000_000 * ANM), r.other)
    assert stack.balance(r.other) == 1_000_000 * ANM
    assert revert_of(t.faucet(1_000_000 * ANM + 1), r.other) == ("FaucetLimit", (1_000_000 * ANM + 1, 1_000_000 * ANM))
    assert revert_of(t.mint(r.other, 1), r.other) == ("NotMinter", (r.other,))
    send(t.mint(r.requester, 5), r.admin)
    assert t.totalSupply().call() == 1_000_000 * ANM + 5


def test_transfers_move_exact_amounts_and_refuse_shortfalls(stack: Stack) -> None:
    t, r = stack.token.functions, stack.roles
    send(t.mint(r.requester, 10), r.admin)
    send(t.transfer(r.other, 4), r.requester)
    assert (stack.balance(r.requester), stack.balance(r.other)) == (6, 4)
    assert revert_of(t.transfer(r.other, 7), r.requester) == ("TokenInsufficientBalance", (r.requester, 6, 7))
    send(t.approve(r.provider, 5), r.requester)
    assert revert_of(t.transferFrom(r.requester, r.provider, 6), r.provider) == (
        "TokenInsufficientAllowance",
        (r.requester, r.provider, 5, 6),
    )
    send(t.transferFrom(r.requester, r.provider, 5), r.provider)
    assert (stack.balance(r.requester), stack.balance(r.provider), t.allowance(r.requester, r.provider).call()) == (
        1,
        5,
        0,
    )


def test_an_infinite_allowance_is_never_spent_down(stack: Stack) -> None:
    t, r = stack.token.functions, stack.roles
    send(t.mint(r.requester, 10), r.admin)
    send(t.approve(r.provider, MAX_UINT), r.requester)
    send(t.transferFrom(r.requester, r.provider, 10), r.provider)
    assert t.allowance(r.requester, r.provider).call() == MAX_UINT


def test_admin_hands_on_the_admin_role_and_then_has_none(stack: Stack) -> None:
    f, r = stack.aicf.functions, stack.roles
    assert revert_of(f.setAdmin(r.other), r.other) == ("NotAdmin", (r.other,))
    send(f.setAdmin(r.other), r.admin)
    assert f.admin().call() == r.other
    assert revert_of(f.setCoordinator(r.admin), r.admin) == ("NotAdmin", (r.admin,))
    assert revert_of(f.setAdmin("0x" + "0" * 40), r.other) == ("ZeroAddress", ("admin",))


def test_aicf_refuses_to_deploy_without_a_fund_or_with_a_zero_finality_depth(stack: Stack) -> None:
    artifact = load_artifact("Aicf")
    factory = stack.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    r, zero = stack.roles, "0x" + "0" * 40
    no_fund = factory.constructor(stack.token.address, r.coordinator, zero, 7 * 86400, 6)
    assert revert_of(no_fund, r.admin) == ("ZeroAddress", ("fund",))
    no_depth = factory.constructor(stack.token.address, r.coordinator, r.fund, 7 * 86400, 0)
    assert revert_of(no_depth, r.admin) == ("FieldOutOfRange", ("finalityDepth", 0, 1, 1_000_000))
