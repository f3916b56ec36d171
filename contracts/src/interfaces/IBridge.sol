// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IBridge
/// @notice The L1 bridge of a Ratchet rollup: it holds the collateral, assigns account ids,
///         keeps the inbox of L1 messages the rollup must consume (deposits and forced
///         transactions, docs/protocol.md section 3) and pays withdrawals proven against a
///         final state root. See docs/l1.md.
interface IBridge {
    /// @notice What the inbox keeps of each message: enough to check a message's bytes in
    ///         O(1) and to enforce the forced-inclusion delay.
    struct InboxEntry {
        /// @notice keccak256(previous accumulator || keccak256(message) || uint64 timestamp),
        ///         with a zero previous accumulator for message 0.
        bytes32 accumulator;
        /// @notice block.timestamp of the L1 block that queued the message.
        uint64 timestamp;
    }

    /// @notice `owner` made its first deposit and was assigned `accountId`.
    event AccountRegistered(address indexed owner, uint64 indexed accountId);

    /// @notice `owner` deposited `amount` collateral into `accountId`; the deposit is inbox
    ///         message `messageIndex` (the interface INTERFACE.md fixes).
    event Deposited(
        address indexed owner, uint64 indexed accountId, uint256 amount, uint256 messageIndex
    );

    /// @notice Inbox message `messageIndex` was queued with these exact bytes: followers
    ///         rebuild the inbox from these logs alone.
    /// @param accumulator The inbox accumulator after this message.
    /// @param timestamp The L1 block time the message was queued at.
    event MessageQueued(
        uint256 indexed messageIndex, bytes message, bytes32 accumulator, uint64 timestamp
    );

    /// @notice `sender` queued a forced L2 transaction as inbox message `messageIndex`.
    event TransactionForced(address indexed sender, uint256 indexed messageIndex);

    /// @notice Withdrawal `withdrawalId` of `account` paid `amount` to `recipient`, proven
    ///         against the post root of final batch `batchIndex`.
    event WithdrawalClaimed(
        uint64 indexed withdrawalId,
        uint64 indexed account,
        address indexed recipient,
        uint64 amount,
        uint64 batchIndex
    );

    /// @notice A deposit of 0, or of more than 2^64 - 1 base units (the L2 amount width).
    error InvalidAmount(uint256 amount);
    /// @notice Every account id below 2^32 has been assigned.
    error AccountsExhausted();
    /// @notice A forced transaction must be 1..256 bytes (MAX_TRANSACTION_BYTES).
    error InvalidTransactionLength(uint256 length);
    /// @notice No inbox message has this index yet.
    error NoSuchMessage(uint256 index);
    /// @notice Withdrawals are paid only against the post root of a final batch.
    error BatchNotFinal(uint64 batchIndex);
    /// @notice The record and siblings do not prove the withdrawal under the batch's root.
    error InvalidWithdrawalProof(uint64 withdrawalId);
    /// @notice The withdrawal was already paid.
    error AlreadyClaimed(uint64 withdrawalId);
    /// @notice Constructor argument `name` is unusable (e.g. the zero address).
    error InvalidParameter(string name);

    /// @notice The collateral token (an ERC-20 with 6 decimals).
    function collateral() external view returns (IERC20);

    /// @notice The Rollup contract whose final roots pay withdrawals.
    function rollup() external view returns (address);

    /// @notice Deposit `amount` collateral (after an ERC-20 approve) into the sender's
    ///         account, registering the sender at its first deposit with the next dense id
    ///         (from 1). Queues `0x00 || owner || account (8) || amount (32)` in the inbox.
    /// @param amount Base units, 1 .. 2^64 - 1.
    /// @return accountId The sender's account id.
    /// @return messageIndex The inbox index of the deposit message.
    function deposit(uint256 amount) external returns (uint64 accountId, uint256 messageIndex);

    /// @notice Queue any L2 transaction through the inbox (forced inclusion): the next batches
    ///         must consume it within the Rollup's forced-inclusion delay, and it executes
    ///         exactly like a transaction the sequencer included. Queues `0x01 || transaction`.
    /// @param transaction The encoded transaction, 1..256 bytes (validity is the STF's
    ///        business: a malformed one is a no-op step).
    /// @return messageIndex The inbox index of the message.
    function forceTransaction(bytes calldata transaction) external returns (uint256 messageIndex);

    /// @notice Pay withdrawal record `withdrawalId` (`account u64 | recipient | amount u64`,
    ///         36 bytes) proven at (table 6, withdrawalId) under the post root of final batch
    ///         `batchIndex`. Anyone may call it; the tokens go to `recipient`; once per id.
    /// @param siblings The 44 state-proof siblings (40 table levels, then 4 global), bottom-up.
    function claimWithdrawal(
        uint64 batchIndex,
        uint64 withdrawalId,
        uint64 account,
        address recipient,
        uint64 amount,
        bytes32[] calldata siblings
    ) external;

    /// @notice How many messages the inbox holds.
    function messageCount() external view returns (uint256);

    /// @notice The L1 time message `index` was queued at; reverts for an unknown index.
    function messageTimestamp(uint256 index) external view returns (uint64);

    /// @notice The accumulator after message `index`; reverts for an unknown index.
    function accumulator(uint256 index) external view returns (bytes32);

    /// @notice Whether `message` is exactly the bytes of inbox message `index`.
    function verifyMessage(uint256 index, bytes calldata message) external view returns (bool);

    /// @notice The account id of `owner`, or 0 if it never deposited (id 0, the fee account,
    ///         is created at genesis and never assigned by the bridge).
    function accountOf(address owner) external view returns (uint64);

    /// @notice The owner of `accountId`, or the zero address.
    function ownerOf(uint64 accountId) external view returns (address);

    /// @notice The id the next new depositor gets.
    function nextAccountId() external view returns (uint64);

    /// @notice Whether withdrawal `withdrawalId` has been paid.
    function isClaimed(uint64 withdrawalId) external view returns (bool);
}
