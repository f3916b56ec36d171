// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IBridge} from "./interfaces/IBridge.sol";
import {IRollup} from "./interfaces/IRollup.sol";
import {LibStateLayout} from "./lib/LibStateLayout.sol";

/// @title Bridge
/// @notice Holds the collateral, assigns account ids, keeps the L1 inbox and pays withdrawals
///         proven against final state roots. The Solidity side of node/protocol/inbox.py
///         (messages) and records.py (withdrawal records). See docs/l1.md.
contract Bridge is IBridge {
    using SafeERC20 for IERC20;

    /// @notice Kind byte of a deposit message (inbox.py L1MessageKind.DEPOSIT).
    uint8 internal constant DEPOSIT = 0;
    /// @notice Kind byte of a forced transaction (inbox.py L1MessageKind.FORCED_TRANSACTION).
    uint8 internal constant FORCED_TRANSACTION = 1;
    /// @notice Longest forced transaction (transactions.py MAX_TRANSACTION_BYTES).
    uint256 internal constant MAX_TRANSACTION_BYTES = 256;
    /// @notice Account ids are below 2^32 (the STF rejects a deposit to a larger one).
    uint64 internal constant ACCOUNT_LIMIT = uint64(1) << 32;

    /// @inheritdoc IBridge
    IERC20 public immutable collateral;
    /// @inheritdoc IBridge
    address public immutable rollup;

    /// @inheritdoc IBridge
    mapping(address owner => uint64) public accountOf;
    /// @inheritdoc IBridge
    mapping(uint64 accountId => address) public ownerOf;
    /// @inheritdoc IBridge
    uint64 public nextAccountId = 1; // id 0 is the fee account, created at genesis

    /// @notice The inbox, one entry per message.
    InboxEntry[] internal _inbox;

    /// @notice Paid withdrawals: bit (id & 255) of word (id >> 8), so neighbours share a slot.
    mapping(uint256 word => uint256) internal _claimed;

    /// @param collateral_ The collateral token.
    /// @param rollup_ The Rollup (deployed next, its address predicted from the deployer's
    ///        nonce; the Rollup's constructor checks that this points at it).
    constructor(IERC20 collateral_, address rollup_) {
        if (address(collateral_) == address(0)) revert InvalidParameter("collateral");
        if (rollup_ == address(0)) revert InvalidParameter("rollup");
        collateral = collateral_;
        rollup = rollup_;
    }

    // deposits and forced transactions ------------------------------------------------

    /// @inheritdoc IBridge
    function deposit(uint256 amount) external returns (uint64 accountId, uint256 messageIndex) {
        if (amount == 0 || amount > type(uint64).max) revert InvalidAmount(amount);
        accountId = accountOf[msg.sender];
        if (accountId == 0) accountId = _register(msg.sender);
        collateral.safeTransferFrom(msg.sender, address(this), amount);
        messageIndex = _queue(abi.encodePacked(DEPOSIT, msg.sender, accountId, amount));
        emit Deposited(msg.sender, accountId, amount, messageIndex);
    }

    /// @inheritdoc IBridge
    function forceTransaction(bytes calldata transaction) external returns (uint256 messageIndex) {
        if (transaction.length == 0 || transaction.length > MAX_TRANSACTION_BYTES) {
            revert InvalidTransactionLength(transaction.length);
        }
        messageIndex = _queue(abi.encodePacked(FORCED_TRANSACTION, transaction));
        emit TransactionForced(msg.sender, messageIndex);
    }

    /// @notice Give `owner` the next dense account id.
    function _register(address owner) internal returns (uint64 accountId) {
        accountId = nextAccountId;
        if (accountId >= ACCOUNT_LIMIT) revert AccountsExhausted();
        nextAccountId = accountId + 1;
        accountOf[owner] = accountId;
        ownerOf[accountId] = owner;
        emit AccountRegistered(owner, accountId);
    }

    /// @notice Append `message` to the inbox: accumulator[i] = keccak256(accumulator[i-1] ||
    ///         keccak256(message) || uint64 timestamp), accumulator[-1] = 0.
    function _queue(bytes memory message) internal returns (uint256 messageIndex) {
        messageIndex = _inbox.length;
        bytes32 previous = messageIndex == 0 ? bytes32(0) : _inbox[messageIndex - 1].accumulator;
        uint64 timestamp = uint64(block.timestamp);
        bytes32 accumulated = keccak256(abi.encodePacked(previous, keccak256(message), timestamp));
        _inbox.push(InboxEntry(accumulated, timestamp));
        emit MessageQueued(messageIndex, message, accumulated, timestamp);
    }

    // the inbox, read ----------------------------------------------------------------

    /// @inheritdoc IBridge
    function messageCount() external view returns (uint256) {
        return _inbox.length;
    }

    /// @inheritdoc IBridge
    function messageTimestamp(uint256 index) external view returns (uint64) {
        if (index >= _inbox.length) revert NoSuchMessage(index);
        return _inbox[index].timestamp;
    }

    /// @inheritdoc IBridge
    function accumulator(uint256 index) external view returns (bytes32) {
        if (index >= _inbox.length) revert NoSuchMessage(index);
        return _inbox[index].accumulator;
    }

    /// @inheritdoc IBridge
    function verifyMessage(uint256 index, bytes calldata message) external view returns (bool) {
        if (index >= _inbox.length) return false;
        InboxEntry storage entry = _inbox[index];
        bytes32 previous = index == 0 ? bytes32(0) : _inbox[index - 1].accumulator;
        return entry.accumulator
            == keccak256(abi.encodePacked(previous, keccak256(message), entry.timestamp));
    }

    // withdrawals ---------------------------------------------------------------------

    /// @inheritdoc IBridge
    function claimWithdrawal(
        uint64 batchIndex,
        uint64 withdrawalId,
        uint64 account,
        address recipient,
        uint64 amount,
        bytes32[] calldata siblings
    ) external {
        if (!IRollup(rollup).isFinal(batchIndex)) revert BatchNotFinal(batchIndex);
        bytes32 root = IRollup(rollup).batch(batchIndex).postRoot;
        // records.py encode_withdrawal: account u64 | recipient | amount u64 (36 bytes)
        bytes memory record = abi.encodePacked(account, recipient, amount);
        if (!LibStateLayout.verify(root, LibStateLayout.TABLE_WITHDRAWALS, withdrawalId, record, siblings))
        {
            revert InvalidWithdrawalProof(withdrawalId);
        }
        uint256 bit = uint256(1) << (withdrawalId & 255);
        uint256 word = _claimed[withdrawalId >> 8];
        if (word & bit != 0) revert AlreadyClaimed(withdrawalId);
        _claimed[withdrawalId >> 8] = word | bit;
        collateral.safeTransfer(recipient, amount);
        emit WithdrawalClaimed(withdrawalId, account, recipient, amount, batchIndex);
    }

    /// @inheritdoc IBridge
    function isClaimed(uint64 withdrawalId) external view returns (bool) {
        return _claimed[withdrawalId >> 8] & (uint256(1) << (withdrawalId & 255)) != 0;
    }
}
