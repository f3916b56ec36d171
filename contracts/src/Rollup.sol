// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IBridge} from "./interfaces/IBridge.sol";
import {IRollup} from "./interfaces/IRollup.sol";
import {LibBatch} from "./lib/LibBatch.sol";

/// @title Rollup
/// @notice The chain of batches: the staked sequencer posts them, the contract computes each
///         batch's transaction root from the calldata and checks its header, a batch is final
///         once its challenge window has passed with no open dispute game, and a game that
///         proves a batch wrong removes it with every later batch, credits half of the
///         sequencer's stake to the winner and burns the other half. See docs/l1.md.
contract Rollup is IRollup {
    /// @notice Most steps in one batch: game positions are uint32.
    uint256 internal constant MAX_STEPS = type(uint32).max;

    /// @inheritdoc IRollup
    /// @dev Half: enough to pay honest challengers many times over for their gas, while a
    ///      sequencer that challenges its own wrong batch from another address still loses
    ///      the other half (docs/l1.md, "Decisions").
    uint256 public constant WINNER_SHARE_BPS = 5_000;
    /// @notice Basis points in a whole.
    uint256 internal constant BPS = 10_000;

    /// @notice keccak256 of the EIP712Domain type (node/protocol/eip712.py DOMAIN_FIELDS).
    bytes32 internal constant DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );

    /// @inheritdoc IRollup
    IBridge public immutable bridge;
    /// @inheritdoc IRollup
    address public immutable disputeGame;
    /// @inheritdoc IRollup
    address public immutable sequencer;
    /// @inheritdoc IRollup
    bytes32 public immutable genesisRoot;
    /// @inheritdoc IRollup
    uint256 public immutable l2ChainId;
    /// @inheritdoc IRollup
    uint256 public immutable sequencerBond;
    /// @inheritdoc IRollup
    uint64 public immutable challengeWindow;
    /// @inheritdoc IRollup
    uint64 public immutable forcedInclusionDelay;
    /// @inheritdoc IRollup
    bytes32 public immutable domainSeparator;

    /// @inheritdoc IRollup
    uint64 public nextIndex;
    /// @inheritdoc IRollup
    uint64 public finalizedCount;
    /// @inheritdoc IRollup
    uint64 public serialCount;
    /// @inheritdoc IRollup
    /// @dev uint128 (ample: all the ETH there is is about 2^87 wei) so that it shares its
    ///      word with `burned`: a rejection zeroes the stake and adds to the burned total in
    ///      one write, and the first burn does not pay for a fresh slot.
    uint128 public sequencerStake;
    /// @inheritdoc IRollup
    uint128 public burned;
    /// @inheritdoc IRollup
    mapping(address account => uint256) public credit;

    /// @notice Batches by index. Entries at and above nextIndex are stale (rejected) and are
    ///         overwritten by reposts.
    mapping(uint64 index => Batch) internal _batches;

    /// @param bridge_ The Bridge, whose `rollup()` must be this contract.
    /// @param disputeGame_ The DisputeGame (deployed next, its address predicted from the
    ///        deployer's nonce; its constructor checks that this points at it).
    /// @param sequencer_ The only address that posts batches.
    /// @param genesisRoot_ The state root before batch 0.
    /// @param l2ChainId_ The L2 chain id of the EIP-712 domain.
    /// @param sequencerBond_ Minimum stake (wei) to post.
    /// @param challengeWindow_ Seconds after posting during which a batch may be challenged.
    /// @param forcedInclusionDelay_ Seconds within which inbox messages must be consumed.
    constructor(
        IBridge bridge_,
        address disputeGame_,
        address sequencer_,
        bytes32 genesisRoot_,
        uint256 l2ChainId_,
        uint256 sequencerBond_,
        uint64 challengeWindow_,
        uint64 forcedInclusionDelay_
    ) {
        if (bridge_.rollup() != address(this)) revert InvalidParameter("bridge");
        if (disputeGame_ == address(0)) revert InvalidParameter("disputeGame");
        if (sequencer_ == address(0)) revert InvalidParameter("sequencer");
        if (sequencerBond_ == 0) revert InvalidParameter("sequencerBond");
        if (challengeWindow_ == 0) revert InvalidParameter("challengeWindow");
        if (forcedInclusionDelay_ == 0) revert InvalidParameter("forcedInclusionDelay");
        bridge = bridge_;
        disputeGame = disputeGame_;
        sequencer = sequencer_;
        genesisRoot = genesisRoot_;
        l2ChainId = l2ChainId_;
        sequencerBond = sequencerBond_;
        challengeWindow = challengeWindow_;
        forcedInclusionDelay = forcedInclusionDelay_;
        // eip712.py domain_separator: name "Ratchet", version "1", the L2 chain id, this contract
        domainSeparator = keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("Ratchet"), keccak256("1"), l2ChainId_, address(this)
            )
        );
    }

    /// @notice Reverts NotSequencer unless the caller is the sequencer.
    modifier onlySequencer() {
        if (msg.sender != sequencer) revert NotSequencer(msg.sender);
        _;
    }

    /// @notice Reverts NotDisputeGame unless the caller is the dispute game.
    modifier onlyDisputeGame() {
        if (msg.sender != disputeGame) revert NotDisputeGame(msg.sender);
        _;
    }

    // the sequencer's stake -----------------------------------------------------------

    /// @inheritdoc IRollup
    function stake() external payable onlySequencer {
        if (msg.value == 0) revert ZeroStake();
        uint256 total = sequencerStake + msg.value;
        sequencerStake = SafeCast.toUint128(total);
        emit Staked(msg.sender, msg.value, total);
    }

    /// @inheritdoc IRollup
    function unstake() external onlySequencer {
        uint256 pending = nextIndex - finalizedCount;
        if (pending != 0) revert BatchesPending(pending);
        uint256 amount = sequencerStake;
        sequencerStake = 0;
        emit Unstaked(msg.sender, amount);
        _send(msg.sender, amount);
    }

    // posting -------------------------------------------------------------------------

    /// @inheritdoc IRollup
    function postBatch(
        uint64 index,
        bytes32 parentRoot,
        uint64 timestamp,
        uint64 inboxEnd,
        bytes32 postRoot,
        bytes calldata transactions
    ) external onlySequencer {
        if (sequencerStake < sequencerBond) revert InsufficientStake(sequencerStake, sequencerBond);
        uint64 inboxStart = _checkHeader(index, parentRoot, timestamp, inboxEnd);
        (bytes32 txRoot, uint256 txCount) = LibBatch.transactionsRoot(transactions);
        uint256 steps = uint256(inboxEnd - inboxStart) + txCount;
        if (steps == 0) revert EmptyBatch();
        if (steps > MAX_STEPS) revert TooManySteps(steps);

        uint64 serial = serialCount + 1;
        serialCount = serial;
        nextIndex = index + 1;
        Batch memory posted = Batch({
            postRoot: postRoot,
            txRoot: txRoot,
            timestamp: timestamp,
            inboxStart: inboxStart,
            inboxEnd: inboxEnd,
            postedAt: uint64(block.timestamp),
            serial: serial,
            txCount: uint32(txCount),
            openGames: 0
        });
        _batches[index] = posted;
        _emitPosted(index, parentRoot, posted);
    }

    /// @notice Check the header fields of batch `index` against the chain and the inbox; the
    ///         batch's inboxStart.
    function _checkHeader(uint64 index, bytes32 parentRoot, uint64 timestamp, uint64 inboxEnd)
        internal
        view
        returns (uint64 inboxStart)
    {
        if (index != nextIndex) revert WrongIndex(nextIndex, index);
        bytes32 expectedParent;
        uint64 minTimestamp;
        (expectedParent, minTimestamp, inboxStart) = _previous(index);
        if (parentRoot != expectedParent) revert WrongParentRoot(expectedParent, parentRoot);
        if (timestamp < minTimestamp || timestamp > block.timestamp) {
            revert InvalidTimestamp(timestamp, minTimestamp, block.timestamp);
        }
        _checkInbox(inboxStart, inboxEnd);
    }

    /// @notice Emit BatchPosted for `posted`.
    function _emitPosted(uint64 index, bytes32 parentRoot, Batch memory posted) internal {
        emit BatchPosted(
            index,
            posted.serial,
            _headerHash(index, parentRoot, posted),
            parentRoot,
            posted.timestamp,
            posted.inboxStart,
            posted.inboxEnd,
            posted.txCount,
            posted.txRoot,
            posted.postRoot
        );
    }

    /// @notice What batch `index` continues from: the previous batch's post root, timestamp
    ///         and inbox end (genesis root, 0 and 0 for batch 0).
    function _previous(uint64 index)
        internal
        view
        returns (bytes32 parentRoot, uint64 timestamp, uint64 inboxEnd)
    {
        if (index == 0) return (genesisRoot, 0, 0);
        Batch storage previous = _batches[index - 1];
        return (previous.postRoot, previous.timestamp, previous.inboxEnd);
    }

    /// @notice inboxStart <= inboxEnd <= messageCount, and the first message left unconsumed
    ///         (if any) is not overdue: its deadline, queued time + forcedInclusionDelay, is
    ///         still in the future. Messages are queued in time order, so no later one is.
    function _checkInbox(uint64 inboxStart, uint64 inboxEnd) internal view {
        uint256 messageCount = bridge.messageCount();
        if (inboxEnd < inboxStart || inboxEnd > messageCount) {
            revert InvalidInboxEnd(inboxEnd, inboxStart, messageCount);
        }
        if (inboxEnd < messageCount) {
            uint256 deadline = uint256(bridge.messageTimestamp(inboxEnd)) + forcedInclusionDelay;
            if (block.timestamp >= deadline) revert ForcedInclusionOverdue(inboxEnd, deadline);
        }
    }

    /// @notice docs/protocol.md section 3 (batch.py BatchHeader.hash): eight 32-byte words.
    function _headerHash(uint64 index, bytes32 parentRoot, Batch memory b)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                uint256(index),
                parentRoot,
                uint256(b.timestamp),
                uint256(b.inboxStart),
                uint256(b.inboxEnd),
                uint256(b.txCount),
                b.txRoot,
                b.postRoot
            )
        );
    }

    // finality and rejection ----------------------------------------------------------

    /// @inheritdoc IRollup
    function finalize(uint64 index) external {
        uint64 first = finalizedCount;
        if (index < first) revert AlreadyFinal(index);
        if (index >= nextIndex) revert NoSuchBatch(index);
        for (uint64 i = first; i <= index; ++i) {
            Batch storage b = _batches[i];
            uint256 windowEnd = uint256(b.postedAt) + challengeWindow;
            if (block.timestamp < windowEnd) revert ChallengeWindowOpen(i, windowEnd);
            uint256 games = b.openGames;
            if (games != 0) revert GamesOpen(i, games);
            emit BatchFinalized(i, b.serial, b.postRoot);
        }
        finalizedCount = index + 1;
    }

    /// @inheritdoc IRollup
    function rejectBatch(uint64 index, address winner) external onlyDisputeGame {
        uint64 end = nextIndex;
        if (index < finalizedCount || index >= end) revert NotPending(index);
        nextIndex = index;
        uint256 amount = sequencerStake;
        uint256 reward = amount * WINNER_SHARE_BPS / BPS;
        uint256 burnt = amount - reward;
        // burnt fits: it is at most the stake, a uint128. The sum cannot overflow: burned
        // only ever holds ETH once staked, and all the ETH there is is about 2^87 wei.
        uint128 total = burned + uint128(burnt);
        (sequencerStake, burned) = (0, total);
        credit[winner] += reward;
        emit BatchesRejected(index, end, winner, reward);
        emit StakeBurned(burnt);
    }

    /// @inheritdoc IRollup
    function openDispute(uint64 index)
        external
        onlyDisputeGame
        returns (uint64 serial, uint32 steps)
    {
        if (index >= nextIndex) revert NoSuchBatch(index);
        Batch storage b = _batches[index];
        // Games open only inside the window and finalize checks the window first, so no
        // game can open on a batch that finalize has let through.
        uint256 windowEnd = uint256(b.postedAt) + challengeWindow;
        if (block.timestamp >= windowEnd) revert ChallengeWindowClosed(index, windowEnd);
        b.openGames += 1;
        serial = b.serial;
        steps = uint32(b.inboxEnd - b.inboxStart + b.txCount);
    }

    /// @inheritdoc IRollup
    function closeDispute(uint64 index, uint64 serial) external onlyDisputeGame {
        Batch storage b = _batches[index];
        // Serials are never reused: a record holding `serial` is the one the game was
        // counted on, and any other (a repost) is left alone.
        if (b.serial == serial) b.openGames -= 1;
    }

    /// @inheritdoc IRollup
    function claimCredit() external {
        uint256 amount = credit[msg.sender];
        if (amount == 0) revert NothingToClaim();
        credit[msg.sender] = 0;
        emit CreditClaimed(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Send `amount` wei to `to`, reverting if it refuses.
    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to);
    }

    // views ---------------------------------------------------------------------------

    /// @inheritdoc IRollup
    function batch(uint64 index) external view returns (Batch memory) {
        if (index >= nextIndex) revert NoSuchBatch(index);
        return _batches[index];
    }

    /// @inheritdoc IRollup
    function openGames(uint64 index) external view returns (uint256) {
        if (index >= nextIndex) revert NoSuchBatch(index);
        return _batches[index].openGames;
    }

    /// @inheritdoc IRollup
    function parentRootOf(uint64 index) external view returns (bytes32 parentRoot) {
        if (index > nextIndex) revert NoSuchBatch(index);
        (parentRoot,,) = _previous(index);
    }

    /// @inheritdoc IRollup
    function headerHash(uint64 index) external view returns (bytes32) {
        if (index >= nextIndex) revert NoSuchBatch(index);
        (bytes32 parentRoot,,) = _previous(index);
        return _headerHash(index, parentRoot, _batches[index]);
    }

    /// @inheritdoc IRollup
    function isFinal(uint64 index) external view returns (bool) {
        return index < finalizedCount;
    }

    /// @inheritdoc IRollup
    function isAlive(uint64 index, uint64 serial) external view returns (bool) {
        return index < nextIndex && _batches[index].serial == serial;
    }
}
