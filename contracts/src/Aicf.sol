// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAicf} from "./IAicf.sol";
import {IERC20} from "./IERC20.sol";

/// @title AI Compute Fund: what the seed puts on chain (docs/EVM.md maps it to SPEC).
/// @notice Jobs (enqueue with escrow, cancel, proof inclusion, readResult), provider stake (bond, unbond,
///         withdraw, slash), the treasury (deposits, the fees charged by settlement) and per-epoch settlement
///         batches whose payouts are claimed with a Merkle proof. Every amount is in token units (µANM).
/// @dev Two roles: `admin` (the deployer; may hand either role on) and `coordinator` (posts inclusions,
///      batches and slashes). Every failed check reverts with its own custom error before any state changes.
contract Aicf is IAicf {
    // ---- limits (SPEC §2) ----
    uint256 public constant MAX_MODEL_BYTES = 64;
    uint256 public constant MAX_PROMPT_BYTES = 64 * 1024;
    uint256 public constant MAX_CIRCUIT_BYTES = 256 * 1024;
    uint256 public constant MAX_TOKENS = 32768;
    uint256 public constant MAX_RUNTIME_MS = 600_000;
    uint256 public constant MAX_SHOTS = 1_000_000;
    uint256 public constant MAX_TIER = 3;
    /// @notice Every amount is below 2^63 (SPEC §1), so the coordinator's 64-bit ledger holds it exactly.
    uint256 public constant MAX_AMOUNT = 2 ** 63 - 1;
    // includeProof's calldata (SPEC §8, docs/EVM.md "Proof inclusions"): the envelope under the envelope cap,
    // the acceptance record's canonical CBOR and its Ed25519 signature. Read back from the transaction's input.
    uint256 public constant MAX_ENVELOPE_BYTES = 1024 * 1024 + 4096;
    uint256 public constant MAX_ACC_BYTES = 256;
    uint256 public constant ACC_SIG_BYTES = 64;

    /// @notice What an inclusion carries besides the ids (SPEC §8): canonical CBOR of the ProofEnvelope and of the
    /// acceptance record `acc`, and the coordinator's Ed25519 signature over H("aicf/acceptance/v1", acc).
    struct ProofData {
        bytes envelope;
        bytes acc;
        bytes accSig;
    }
    uint256 public constant BPS = 10_000;

    uint8 internal constant KIND_AI = 1;
    uint8 internal constant KIND_QUANTUM = 2;

    struct Task {
        address caller;
        uint8 kind;
        bool cancelRequested;
        uint64 escrow;
    }

    struct Stake {
        address owner; // bound by the first stake; only it may add, unbond and withdraw
        uint64 bonded;
        uint64 unbonding;
        uint64 releaseAt; // unix seconds after which `unbonding` may be withdrawn
    }

    struct Batch {
        bytes32 specRoot; // SPEC §5 root: Merkle root of the payouts' canonical CBOR (SHA3, checked off chain)
        bytes32 claimRoot; // keccak claim tree (docs/EVM.md) that `claim` verifies against
        uint64 claimTotal;
        uint64 claimed;
    }

    struct Totals {
        uint256 reward;
        uint256 provider;
        uint256 miner;
        uint256 fund;
        uint256 charged;
        uint256 unitsMu;
    }

    // ---- configuration ----
    IERC20 public immutable token;
    address public immutable fund; // receives slashes; claims the fund's share like anyone else
    uint256 public immutable unbondingPeriod; // seconds (SPEC §9: 7 days)
    uint256 public immutable finalityDepth; // blocks (SPEC §10: 6)
    address public admin;
    address public coordinator;

    // ---- state ----
    uint256 public taskNonce;
    mapping(bytes32 => Task) public tasks;
    mapping(bytes32 => Result) public results; // the first inclusion per task; height 0 = none
    uint256 public escrowLocked;
    uint256 public treasury;
    mapping(bytes32 => Stake) public stakes;
    mapping(bytes32 => bool) public evidenceUsed;
    uint256 public nextEpoch;
    mapping(uint256 => Batch) public batches;
    mapping(uint256 => mapping(address => bool)) public claimed;

    // ---- events ----
    event AiEnqueued(
        bytes32 indexed taskId,
        address indexed caller,
        string model,
        bytes prompt,
        uint256 maxTokens,
        uint256 maxRuntimeMs,
        uint256 feePerUnit,
        uint256 tier,
        uint256 escrow
    );
    event QuantumEnqueued(
        bytes32 indexed taskId,
        address indexed caller,
        bytes circuit,
        uint256 shots,
        uint256 feePerUnit,
        uint256 tier,
        uint256 escrow
    );
    event CancelRequested(bytes32 indexed taskId, address indexed caller);
    event ProofIncluded(
        bytes32 indexed taskId,
        bytes32 indexed specTaskId,
        bytes32 proofId,
        bytes32 providerId,
        bytes32 outputDigest,
        uint64 unitsMu,
        address miner
    );
    event Staked(bytes32 indexed providerId, address indexed owner, uint256 amount, uint256 bonded);
    event UnbondRequested(bytes32 indexed providerId, uint256 amount, uint256 unbonding, uint256 releaseAt);
    event Withdrawn(bytes32 indexed providerId, address indexed owner, uint256 amount);
    event Slashed(bytes32 indexed providerId, bytes32 indexed evidenceHash, uint8 reason, uint256 bps, uint256 amount);
    event Deposited(address indexed from, uint256 amount, uint256 treasury);
    event BatchPosted(
        uint256 indexed epoch,
        bytes32 specRoot,
        bytes32 claimRoot,
        uint256 claimTotal,
        uint256 escrowReleased,
        Totals totals
    );
    event Claimed(uint256 indexed epoch, address indexed account, uint256 amount);
    event CoordinatorChanged(address previous, address current);
    event AdminChanged(address previous, address current);

    // ---- errors ----
    error NotAdmin(address caller);
    error NotCoordinator(address caller);
    error ZeroAddress(string field);
    error PayloadTooLarge(string field, uint256 size, uint256 cap);
    error FieldOutOfRange(string field, uint256 value, uint256 min, uint256 max);
    error InsufficientAllowance(uint256 allowance, uint256 needed);
    error InsufficientBalance(uint256 balance, uint256 needed);
    error TransferFailed(address from, address to, uint256 amount);
    error UnknownTask(bytes32 taskId);
    error NotTaskCaller(bytes32 taskId, address caller);
    error CancelAlreadyRequested(bytes32 taskId);
    error TaskAlreadyIncluded(bytes32 taskId, bytes32 proofId);
    error NotProviderOwner(bytes32 providerId, address caller);
    error UnknownProvider(bytes32 providerId);
    error InsufficientStake(bytes32 providerId, uint256 bonded, uint256 requested);
    error NothingToWithdraw(bytes32 providerId);
    error UnbondingNotOver(bytes32 providerId, uint256 releaseAt, uint256 now_);
    error EvidenceAlreadyUsed(bytes32 evidenceHash);
    error EpochOutOfOrder(uint256 expected, uint256 got);
    error SplitMismatch(uint256 reward, uint256 provider, uint256 miner, uint256 fund);
    error ChargedAboveReleased(uint256 charged, uint256 escrowReleased);
    error EscrowShort(uint256 locked, uint256 released);
    error TreasuryShort(uint256 treasury, uint256 reward);
    error ClaimTotalMismatch(uint256 claimTotal, uint256 expected);
    error BatchNotPosted(uint256 epoch);
    error AlreadyClaimed(uint256 epoch, address account);
    error InvalidClaimProof(uint256 epoch, address account, uint256 amount);
    error ClaimExceedsBatch(uint256 epoch, uint256 claimed, uint256 claimTotal);

    modifier onlyCoordinator() {
        if (msg.sender != coordinator) revert NotCoordinator(msg.sender);
        _;
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    constructor(IERC20 token_, address coordinator_, address fund_, uint256 unbondingPeriod_, uint256 finalityDepth_) {
        if (address(token_) == address(0)) revert ZeroAddress("token");
        if (coordinator_ == address(0)) revert ZeroAddress("coordinator");
        if (fund_ == address(0)) revert ZeroAddress("fund");
        if (finalityDepth_ == 0 || finalityDepth_ > 1_000_000) {
            revert FieldOutOfRange("finalityDepth", finalityDepth_, 1, 1_000_000);
        }
        if (unbondingPeriod_ > 365 days) revert FieldOutOfRange("unbondingPeriod", unbondingPeriod_, 0, 365 days);
        token = token_;
        admin = msg.sender;
        coordinator = coordinator_;
        fund = fund_;
        unbondingPeriod = unbondingPeriod_;
        finalityDepth = finalityDepth_;
    }

    // ---- roles ----

    function setCoordinator(address coordinator_) external onlyAdmin {
        if (coordinator_ == address(0)) revert ZeroAddress("coordinator");
        emit CoordinatorChanged(coordinator, coordinator_);
        coordinator = coordinator_;
    }

    function setAdmin(address admin_) external onlyAdmin {
        if (admin_ == address(0)) revert ZeroAddress("admin");
        emit AdminChanged(admin, admin_);
        admin = admin_;
    }

    // ---- jobs ----

    /// @notice SPEC §2 ai_enqueue. `escrow` is taken from the caller by transferFrom; the coordinator checks it
    ///         against fee_per_unit × max_units_mu // 1000 and rejects (refunding it in full) a job that pays less.
    function aiEnqueue(
        string calldata model,
        bytes calldata prompt,
        uint256 maxTokens,
        uint256 maxRuntimeMs,
        uint256 feePerUnit,
        uint256 tier,
        uint256 escrow
    ) external returns (bytes32 taskId) {
        uint256 modelBytes = bytes(model).length;
        if (modelBytes == 0) revert FieldOutOfRange("model", 0, 1, MAX_MODEL_BYTES);
        if (modelBytes > MAX_MODEL_BYTES) revert PayloadTooLarge("model", modelBytes, MAX_MODEL_BYTES);
        if (prompt.length > MAX_PROMPT_BYTES) revert PayloadTooLarge("prompt", prompt.length, MAX_PROMPT_BYTES);
        if (maxTokens > MAX_TOKENS) revert FieldOutOfRange("max_tokens", maxTokens, 0, MAX_TOKENS);
        if (maxRuntimeMs == 0 || maxRuntimeMs > MAX_RUNTIME_MS) {
            revert FieldOutOfRange("max_runtime_ms", maxRuntimeMs, 1, MAX_RUNTIME_MS);
        }
        _checkPricing(feePerUnit, tier, escrow);
        taskId = _openTask(KIND_AI, escrow);
        emit AiEnqueued(taskId, msg.sender, model, prompt, maxTokens, maxRuntimeMs, feePerUnit, tier, escrow);
    }

    /// @notice SPEC §2 quantum_enqueue; the circuit is parsed (and priced) by the coordinator, which rejects and
    ///         refunds one that does not parse or pays less than its max_units_mu needs.
    function quantumEnqueue(bytes calldata circuit, uint256 shots, uint256 feePerUnit, uint256 tier, uint256 escrow)
        external
        returns (bytes32 taskId)
    {
        if (circuit.length == 0) revert FieldOutOfRange("circuit", 0, 1, MAX_CIRCUIT_BYTES);
        if (circuit.length > MAX_CIRCUIT_BYTES) revert PayloadTooLarge("circuit", circuit.length, MAX_CIRCUIT_BYTES);
        if (shots == 0 || shots > MAX_SHOTS) revert FieldOutOfRange("shots", shots, 1, MAX_SHOTS);
        _checkPricing(feePerUnit, tier, escrow);
        taskId = _openTask(KIND_QUANTUM, escrow);
        emit QuantumEnqueued(taskId, msg.sender, circuit, shots, feePerUnit, tier, escrow);
    }

    /// @notice Ask to cancel a job that has no included proof. The escrow comes back through the next settlement
    ///         batch's claim tree once the coordinator has cancelled it (SPEC §4: a cancel while LEASED takes
    ///         effect only if the lease ends without an accepted proof, so it cannot be refunded here).
    function cancel(bytes32 taskId) external {
        Task storage task = tasks[taskId];
        if (task.caller == address(0)) revert UnknownTask(taskId);
        if (task.caller != msg.sender) revert NotTaskCaller(taskId, msg.sender);
        if (results[taskId].height != 0) revert TaskAlreadyIncluded(taskId, results[taskId].proofId);
        if (task.cancelRequested) revert CancelAlreadyRequested(taskId);
        task.cancelRequested = true;
        emit CancelRequested(taskId, msg.sender);
    }

    /// @notice SPEC §8: include an accepted proof; the first inclusion per task wins, a second one reverts.
    /// The envelope, acceptance and signature stay in the transaction's calldata only (not stored, not logged):
    /// a follower reads them back from the input of the transaction that emitted ProofIncluded.
    function includeProof(
        bytes32 taskId,
        bytes32 specTaskId,
        bytes32 proofId,
        bytes32 providerId,
        bytes32 outputDigest,
        uint64 unitsMu,
        ProofData calldata data
    ) external onlyCoordinator {
        Task storage task = tasks[taskId];
        if (task.caller == address(0)) revert UnknownTask(taskId);
        Result storage existing = results[taskId];
        if (existing.height != 0) revert TaskAlreadyIncluded(taskId, existing.proofId);
        if (unitsMu > MAX_AMOUNT) revert FieldOutOfRange("units_mu", unitsMu, 0, MAX_AMOUNT);
        _checkProofData(data);
        results[taskId] = Result({
            specTaskId: specTaskId,
            proofId: proofId,
            providerId: providerId,
            outputDigest: outputDigest,
            unitsMu: unitsMu,
            height: uint64(block.number),
            kind: task.kind
        });
        emit ProofIncluded(taskId, specTaskId, proofId, providerId, outputDigest, unitsMu, block.coinbase);
    }

    function _checkProofData(ProofData calldata data) private pure {
        uint256 size = data.envelope.length;
        if (size == 0) revert FieldOutOfRange("envelope", 0, 1, MAX_ENVELOPE_BYTES);
        if (size > MAX_ENVELOPE_BYTES) revert PayloadTooLarge("envelope", size, MAX_ENVELOPE_BYTES);
        size = data.acc.length;
        if (size == 0) revert FieldOutOfRange("acc", 0, 1, MAX_ACC_BYTES);
        if (size > MAX_ACC_BYTES) revert PayloadTooLarge("acc", size, MAX_ACC_BYTES);
        size = data.accSig.length;
        if (size != ACC_SIG_BYTES) revert FieldOutOfRange("acc_sig", size, ACC_SIG_BYTES, ACC_SIG_BYTES);
    }

    /// @inheritdoc IAicf
    function readResult(bytes32 taskId) external view returns (bool ready, Result memory result) {
        result = results[taskId];
        if (result.height == 0 || block.number < uint256(result.height) + finalityDepth) {
            return (false, Result(0, 0, 0, 0, 0, 0, 0));
        }
        return (true, result);
    }

    // ---- stake (SPEC §9) ----

    /// @notice Bond `amount` for `providerId`. The first stake binds the provider id to the sender, who alone
    ///         may add to it, unbond and withdraw; the coordinator pays the provider's claims to that address.
    function stake(bytes32 providerId, uint256 amount) external {
        _checkAmount("amount", amount);
        Stake storage s = stakes[providerId];
        if (s.owner == address(0)) {
            s.owner = msg.sender;
        } else if (s.owner != msg.sender) {
            revert NotProviderOwner(providerId, msg.sender);
        }
        uint256 bonded = uint256(s.bonded) + amount;
        if (bonded + s.unbonding > MAX_AMOUNT) revert FieldOutOfRange("stake", bonded + s.unbonding, 1, MAX_AMOUNT);
        s.bonded = uint64(bonded);
        _pull(msg.sender, amount);
        emit Staked(providerId, msg.sender, amount, bonded);
    }

    /// @notice Move `amount` from bonded to unbonding; it stays slashable and can be withdrawn after
    ///         `unbondingPeriod`. A second request adds to the unbonding amount and restarts the period.
    function requestUnbond(bytes32 providerId, uint256 amount) external {
        Stake storage s = _ownedStake(providerId);
        _checkAmount("amount", amount);
        if (amount > s.bonded) revert InsufficientStake(providerId, s.bonded, amount);
        s.bonded -= uint64(amount);
        s.unbonding += uint64(amount);
        s.releaseAt = uint64(block.timestamp + unbondingPeriod);
        emit UnbondRequested(providerId, amount, s.unbonding, s.releaseAt);
    }

    function withdraw(bytes32 providerId) external {
        Stake storage s = _ownedStake(providerId);
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingToWithdraw(providerId);
        if (block.timestamp < s.releaseAt) revert UnbondingNotOver(providerId, s.releaseAt, block.timestamp);
        s.unbonding = 0;
        _push(msg.sender, amount);
        emit Withdrawn(providerId, msg.sender, amount);
    }

    /// @notice SPEC §9: slash (bonded + unbonding) × bps // 10000 to the fund, bonded stake first. At most one
    ///         slash per evidence hash (the coordinator's H("aicf/evidence/v1", evidence_map)).
    function slash(bytes32 providerId, uint8 reason, uint256 bps, bytes32 evidenceHash) external onlyCoordinator {
        Stake storage s = stakes[providerId];
        if (s.owner == address(0)) revert UnknownProvider(providerId);
        if (bps == 0 || bps > BPS) revert FieldOutOfRange("bps", bps, 1, BPS);
        if (reason == 0 || reason > 5) revert FieldOutOfRange("reason", reason, 1, 5);
        if (evidenceHash == bytes32(0)) revert FieldOutOfRange("evidence_hash", 0, 1, type(uint256).max);
        if (evidenceUsed[evidenceHash]) revert EvidenceAlreadyUsed(evidenceHash);
        uint256 amount = ((uint256(s.bonded) + s.unbonding) * bps) / BPS;
        uint256 fromBonded = amount < s.bonded ? amount : s.bonded;
        evidenceUsed[evidenceHash] = true;
        s.bonded -= uint64(fromBonded);
        s.unbonding -= uint64(amount - fromBonded);
        if (amount != 0) _push(fund, amount);
        emit Slashed(providerId, evidenceHash, reason, bps, amount);
    }

    // ---- treasury and settlement (SPEC §5, §11) ----

    /// @notice Fund the treasury (SPEC §2 treasury slice: the chain operator or anyone deposits it here).
    function deposit(uint256 amount) external {
        _checkAmount("amount", amount);
        if (treasury + amount > MAX_AMOUNT) revert FieldOutOfRange("treasury", treasury + amount, 0, MAX_AMOUNT);
        treasury += amount;
        _pull(msg.sender, amount);
        emit Deposited(msg.sender, amount, treasury);
    }

    /// @notice Post epoch `epoch`'s settlement batch in one transaction whatever its size: the SPEC root and
    ///         totals, the escrow it releases (charged fees plus refunds) and the claim tree's root and total.
    /// @dev    Σ reward is paid from the treasury as it stood before this batch; the fees it charges reach the
    ///         treasury after it (SPEC §5). The claim tree pays reward (provider + miner + fund shares) plus every
    ///         refund (escrowReleased − charged), and the claim total must say exactly that.
    function postBatch(
        uint256 epoch,
        bytes32 specRoot,
        Totals calldata totals,
        uint256 escrowReleased,
        bytes32 claimRoot,
        uint256 claimTotal
    ) external onlyCoordinator {
        if (epoch != nextEpoch) revert EpochOutOfOrder(nextEpoch, epoch);
        if (totals.provider + totals.miner + totals.fund != totals.reward) {
            revert SplitMismatch(totals.reward, totals.provider, totals.miner, totals.fund);
        }
        if (totals.charged > escrowReleased) revert ChargedAboveReleased(totals.charged, escrowReleased);
        if (escrowReleased > escrowLocked) revert EscrowShort(escrowLocked, escrowReleased);
        if (totals.reward > treasury) revert TreasuryShort(treasury, totals.reward);
        if (totals.unitsMu > MAX_AMOUNT) revert FieldOutOfRange("units_mu", totals.unitsMu, 0, MAX_AMOUNT);
        uint256 expected = totals.reward + (escrowReleased - totals.charged);
        if (claimTotal != expected) revert ClaimTotalMismatch(claimTotal, expected);
        escrowLocked -= escrowReleased;
        treasury = treasury - totals.reward + totals.charged;
        batches[epoch] = Batch({
            specRoot: specRoot,
            claimRoot: claimRoot,
            claimTotal: uint64(claimTotal),
            claimed: 0
        });
        nextEpoch = epoch + 1;
        emit BatchPosted(epoch, specRoot, claimRoot, claimTotal, escrowReleased, totals);
    }

    /// @notice Pay `account` its `amount` of epoch `epoch`, once, against the batch's claim root. Anyone may
    ///         send the claim; the tokens always go to `account`. Gas grows with the proof's length only.
    function claim(uint256 epoch, address account, uint256 amount, bytes32[] calldata proof) external {
        if (epoch >= nextEpoch) revert BatchNotPosted(epoch);
        if (claimed[epoch][account]) revert AlreadyClaimed(epoch, account);
        Batch storage batch = batches[epoch];
        bytes32 node = keccak256(abi.encode(epoch, account, amount));
        for (uint256 i = 0; i < proof.length; ++i) {
            node = _hashPair(node, proof[i]);
        }
        if (node != batch.claimRoot) revert InvalidClaimProof(epoch, account, amount);
        uint256 total = uint256(batch.claimed) + amount;
        if (total > batch.claimTotal) revert ClaimExceedsBatch(epoch, total, batch.claimTotal);
        claimed[epoch][account] = true;
        batch.claimed = uint64(total);
        if (amount != 0) _push(account, amount);
        emit Claimed(epoch, account, amount);
    }

    // =============================================================================================================
    // ---- operator transactions and the trap fund (issue 17 item 7, issue 14 item 1; docs/EVM.md) ----
    // The devnet's `operator` transactions, on this chain. The coordinator role sends the operator's signed
    // transaction (canonical CBOR of {chain_id, public_key, nonce, kind: "operator", body, sig}, Ed25519 under the
    // operator key) as opaque bytes at the contract's next `operatorNonce`; the `OperatorTx` log carries it, and
    // the chain adapter (aicf/chain/evm.py) checks the signature, chain id and nonce and hands ingestion the very
    // same transaction the devnet carries: one validation path. The contract checks only what moves tokens:
    //  - `operatorFundTopup` (a `fund_topup` body): pulls `amount` from the `fund` address (which approved this
    //    contract) into `trapFund`, the tokens the fund set aside for trap escrow;
    //  - `operatorTrapFund` (a `trap_fund` body): moves `amount` of `trapFund` to `prepaid[to]` and forwards the
    //    call's ether to `to` for its gas; `to` (a trap's fresh caller) then enqueues through `aiEnqueue` like any
    //    requester, its escrow taken from `prepaid` first (a `PrepaidSpent` log), then from its wallet.
    // The adapter refuses (as a transaction not from the operator) a log whose signed body disagrees with the
    // amounts and address the contract moved, so only a coordinator role that breaks its own rule can make the
    // ledger and the contract differ, and the ledger-vs-contract check shows it.
    // =============================================================================================================
    uint256 public constant MAX_OPERATOR_TX_BYTES = 8192;
    uint256 public operatorNonce; // the next operator transaction's nonce (the signed transaction's own nonce)
    mapping(uint256 => bytes32) public operatorTxs; // nonce => keccak256 of the signed transaction sent at it
    uint256 public trapFund; // tokens the fund set aside for trap escrow (the ledger's fund_topup - trap_fund)
    mapping(address => uint256) public prepaid; // escrow the trap fund paid for a caller, spent by its enqueues

    event OperatorTx(uint256 indexed nonce, bytes signedTx, address payTo, uint256 amount);
    event PrepaidSpent(address indexed caller, uint256 amount);

    error OperatorNonceMismatch(uint256 expected, uint256 got);
    error TrapFundShort(uint256 held, uint256 wanted);
    error EtherForwardFailed(address to, uint256 amount);

    /// @notice An operator transaction that moves no tokens (params, tier, allowlist, trap seed commit/reveal).
    function operatorTx(uint256 nonce, bytes calldata signedTx) external onlyCoordinator {
        _operatorTx(nonce, signedTx, address(0), 0);
    }

    /// @notice A `fund_topup`: `amount` of the fund's tokens (its allowance to this contract) into `trapFund`.
    function operatorFundTopup(uint256 nonce, bytes calldata signedTx, uint256 amount) external onlyCoordinator {
        _checkAmount("amount", amount);
        if (trapFund + amount > MAX_AMOUNT) revert FieldOutOfRange("trap_fund", trapFund + amount, 0, MAX_AMOUNT);
        _operatorTx(nonce, signedTx, fund, amount);
        trapFund += amount;
        _pull(fund, amount);
    }

    /// @notice A `trap_fund`: `amount` of `trapFund` to `prepaid[to]`; the call's ether goes to `to` for its gas.
    function operatorTrapFund(uint256 nonce, bytes calldata signedTx, address to, uint256 amount)
        external
        payable
        onlyCoordinator
    {
        if (to == address(0)) revert ZeroAddress("to");
        _checkAmount("amount", amount);
        if (amount > trapFund) revert TrapFundShort(trapFund, amount);
        if (prepaid[to] + amount > MAX_AMOUNT) revert FieldOutOfRange("prepaid", prepaid[to] + amount, 0, MAX_AMOUNT);
        _operatorTx(nonce, signedTx, to, amount);
        trapFund -= amount;
        prepaid[to] += amount;
        if (msg.value != 0) {
            (bool ok,) = payable(to).call{value: msg.value}("");
            if (!ok) revert EtherForwardFailed(to, msg.value);
        }
    }

    function _operatorTx(uint256 nonce, bytes calldata signedTx, address payTo, uint256 amount) private {
        if (nonce != operatorNonce) revert OperatorNonceMismatch(operatorNonce, nonce);
        if (signedTx.length == 0) revert FieldOutOfRange("signed_tx", 0, 1, MAX_OPERATOR_TX_BYTES);
        if (signedTx.length > MAX_OPERATOR_TX_BYTES) {
            revert PayloadTooLarge("signed_tx", signedTx.length, MAX_OPERATOR_TX_BYTES);
        }
        operatorTxs[nonce] = keccak256(signedTx);
        operatorNonce = nonce + 1;
        emit OperatorTx(nonce, signedTx, payTo, amount);
    }

    /// @dev The escrow of an enqueue: from the caller's `prepaid` first (a trap's funding), the rest pulled.
    function _takeEscrow(uint256 escrow) private {
        uint256 held = prepaid[msg.sender];
        uint256 fromPrepaid = held < escrow ? held : escrow;
        if (fromPrepaid != 0) {
            prepaid[msg.sender] = held - fromPrepaid;
            emit PrepaidSpent(msg.sender, fromPrepaid);
        }
        if (escrow > fromPrepaid) _pull(msg.sender, escrow - fromPrepaid);
    }
    // ---- end of operator transactions and the trap fund ----
    // =============================================================================================================

    // ---- internals ----

    function _checkPricing(uint256 feePerUnit, uint256 tier, uint256 escrow) private pure {
        if (feePerUnit > MAX_AMOUNT) revert FieldOutOfRange("fee_per_unit", feePerUnit, 0, MAX_AMOUNT);
        if (tier > MAX_TIER) revert FieldOutOfRange("tier", tier, 0, MAX_TIER);
        if (escrow == 0 || escrow > MAX_AMOUNT) revert FieldOutOfRange("escrow", escrow, 1, MAX_AMOUNT);
    }

    function _checkAmount(string memory field, uint256 amount) private pure {
        if (amount == 0 || amount > MAX_AMOUNT) revert FieldOutOfRange(field, amount, 1, MAX_AMOUNT);
    }

    function _openTask(uint8 kind, uint256 escrow) private returns (bytes32 taskId) {
        if (escrowLocked + escrow > MAX_AMOUNT) revert FieldOutOfRange("escrow_locked", escrowLocked + escrow, 0, MAX_AMOUNT);
        uint256 nonce = ++taskNonce;
        taskId = keccak256(abi.encode(block.chainid, address(this), msg.sender, nonce));
        tasks[taskId] = Task({caller: msg.sender, kind: kind, cancelRequested: false, escrow: uint64(escrow)});
        escrowLocked += escrow;
        _takeEscrow(escrow); // operator section: a trap caller's prepaid escrow first
    }

    function _ownedStake(bytes32 providerId) private view returns (Stake storage s) {
        s = stakes[providerId];
        if (s.owner == address(0)) revert UnknownProvider(providerId);
        if (s.owner != msg.sender) revert NotProviderOwner(providerId, msg.sender);
    }

    /// @dev Checks allowance and balance first so the revert names the shortfall, whatever the token's errors.
    function _pull(address from, uint256 amount) private {
        uint256 allowed = token.allowance(from, address(this));
        if (allowed < amount) revert InsufficientAllowance(allowed, amount);
        uint256 balance = token.balanceOf(from);
        if (balance < amount) revert InsufficientBalance(balance, amount);
        if (!token.transferFrom(from, address(this), amount)) revert TransferFailed(from, address(this), amount);
    }

    function _push(address to, uint256 amount) private {
        if (!token.transfer(to, amount)) revert TransferFailed(address(this), to, amount);
    }

    /// @dev Sorted-pair hashing: keccak256 of the smaller node then the larger, so a proof needs no side bits.
    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 h) {
        (bytes32 lo, bytes32 hi) = a < b ? (a, b) : (b, a);
        assembly ("memory-safe") {
            mstore(0x00, lo)
            mstore(0x20, hi)
            h := keccak256(0x00, 0x40)
        }
    }
}
