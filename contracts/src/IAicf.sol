// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice What another contract needs to use AICF: enqueue a job and read its result once final.
interface IAicf {
    /// @notice A proof's result as included on chain (SPEC §8 ResultRecord, EVM form; docs/EVM.md).
    struct Result {
        bytes32 specTaskId; // the SPEC task_id the coordinator derived from the enqueue log
        bytes32 proofId;
        bytes32 providerId;
        bytes32 outputDigest; // AI: H("aicf/output/v1", output); quantum: the circuit digest
        uint64 unitsMu; // charged milli-units, fixed at acceptance
        uint64 height; // block number of the inclusion
        uint8 kind; // 1 = AI, 2 = quantum
    }

    function aiEnqueue(
        string calldata model,
        bytes calldata prompt,
        uint256 maxTokens,
        uint256 maxRuntimeMs,
        uint256 feePerUnit,
        uint256 tier,
        uint256 escrow
    ) external returns (bytes32 taskId);

    function quantumEnqueue(bytes calldata circuit, uint256 shots, uint256 feePerUnit, uint256 tier, uint256 escrow)
        external
        returns (bytes32 taskId);

    /// @notice (true, result) once the task's first included proof is final; (false, empty) before that.
    function readResult(bytes32 taskId) external view returns (bool ready, Result memory result);
}
