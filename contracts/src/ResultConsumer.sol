// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAicf} from "./IAicf.sol";
import {IERC20} from "./IERC20.sol";

/// @title An example contract that buys an AI job with its own tokens and later uses the final result.
contract ResultConsumer {
    IAicf public immutable aicf;
    IERC20 public immutable token;
    mapping(bytes32 => bytes32) public outputDigestOf;

    event Requested(bytes32 indexed taskId);
    event ResultConsumed(bytes32 indexed taskId, bytes32 outputDigest, uint64 unitsMu);

    error ResultNotReady(bytes32 taskId);
    error ApproveFailed();

    constructor(IAicf aicf_, IERC20 token_) {
        aicf = aicf_;
        token = token_;
    }

    /// @notice Enqueue an AI job paid from this contract's own token balance.
    function requestAi(
        string calldata model,
        bytes calldata prompt,
        uint256 maxTokens,
        uint256 maxRuntimeMs,
        uint256 feePerUnit,
        uint256 escrow
    ) external returns (bytes32 taskId) {
        if (!token.approve(address(aicf), escrow)) revert ApproveFailed();
        taskId = aicf.aiEnqueue(model, prompt, maxTokens, maxRuntimeMs, feePerUnit, 0, escrow);
        emit Requested(taskId);
    }

    /// @notice Read the final result of `taskId` and keep its output digest; reverts until it is final.
    function consume(bytes32 taskId) external returns (bytes32 outputDigest) {
        (bool ready, IAicf.Result memory result) = aicf.readResult(taskId);
        if (!ready) revert ResultNotReady(taskId);
        outputDigestOf[taskId] = result.outputDigest;
        emit ResultConsumed(taskId, result.outputDigest, result.unitsMu);
        return result.outputDigest;
    }
}
