// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "./IERC20.sol";

/// @title Test ANM: an ERC-20 with 6 decimals, so one token unit is one µANM.
/// @notice For devnets and tests only: anyone may draw up to FAUCET_MAX per call from the faucet, and the
///         minter (the deployer) may mint any amount. Production deployments use a real token instead.
contract AicfTestToken is IERC20 {
    string public constant name = "AICF Test ANM";
    string public constant symbol = "tANM";
    uint8 public constant decimals = 6;
    /// @notice One faucet call gives at most 1,000,000 ANM.
    uint256 public constant FAUCET_MAX = 1_000_000 * 10 ** 6;

    address public immutable minter;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    error TokenInsufficientBalance(address account, uint256 balance, uint256 needed);
    error TokenInsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);
    error TokenZeroAddress(string field);
    error NotMinter(address caller);
    error FaucetLimit(uint256 requested, uint256 limit);

    constructor() {
        minter = msg.sender;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert TokenZeroAddress("spender");
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    /// @dev An allowance of type(uint256).max is never decreased (the usual "infinite approval").
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert TokenInsufficientAllowance(from, msg.sender, allowed, value);
            allowance[from][msg.sender] = allowed - value;
        }
        _move(from, to, value);
        return true;
    }

    function mint(address to, uint256 value) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _mint(to, value);
    }

    function faucet(uint256 value) external {
        if (value > FAUCET_MAX) revert FaucetLimit(value, FAUCET_MAX);
        _mint(msg.sender, value);
    }

    function _mint(address to, uint256 value) private {
        if (to == address(0)) revert TokenZeroAddress("to");
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function _move(address from, address to, uint256 value) private {
        if (to == address(0)) revert TokenZeroAddress("to");
        uint256 have = balanceOf[from];
        if (have < value) revert TokenInsufficientBalance(from, have, value);
        unchecked {
            balanceOf[from] = have - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
