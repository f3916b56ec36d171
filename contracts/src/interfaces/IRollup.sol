// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBridge} from "./IBridge.sol";

/// @title IRollup
/// @notice The chain of batches of a Ratchet rollup: the sequencer posts them with its bond
///         staked, each is final after its challenge window unless a dispute game proves it
///         wrong, and a rejection removes the batch and every later one, pays half of the
///         stake to the winner and burns the rest. See docs/l1.md.
interface IRollup {
    /// @notice What L1 keeps of a posted batch (docs/protocol.md section 3), and how many
    ///         dispute games are open on it. Two words of roots and two packed words.
    struct Batch {
        /// @notice The state root the sequencer claims after the batch's last step.
        bytes32 postRoot;
        /// @notice Root of the depth-16 tree of keccak256(tx), computed from the calldata.
        bytes32 txRoot;
        /// @notice The batch timestamp: the STF's only clock for every step of the batch.
        uint64 timestamp;
        /// @notice First inbox message the batch consumes (the previous batch's inboxEnd).
        uint64 inboxStart;
        /// @notice One past the last inbox message the batch consumes.
        uint64 inboxEnd;
        /// @notice L1 time the batch was posted at: its challenge window starts here.
        uint64 postedAt;
        /// @notice Global post counter (from 1), never reused: tells a reposted batch at the
        ///         same index apart from the one it replaces.
        uint64 serial;
        /// @notice Number of user transactions (at most 2^16).
        uint32 txCount;
        /// @notice Dispute games open on this batch (the batch cannot finalize until it is 0).
        ///         Kept in the word of `serial`, so opening and closing a game rewrites a
        ///         warm, non-zero word instead of a fresh slot.
        uint32 openGames;
    }

    /// @notice The sequencer's stake grew by `amount` to `total`.
    event Staked(address indexed sequencer, uint256 amount, uint256 total);
    /// @notice The sequencer took its whole stake, `amount`, back.
    event Unstaked(address indexed sequencer, uint256 amount);
    /// @notice Batch `index` was posted; the fields are those of the header hash
    ///         (docs/protocol.md section 3), whose value is `headerHash`. The transactions are
    ///         in the calldata of the L1 transaction that emitted this event.
    event BatchPosted(
        uint64 indexed index,
        uint64 indexed serial,
        bytes32 indexed headerHash,
        bytes32 parentRoot,
        uint64 timestamp,
        uint64 inboxStart,
        uint64 inboxEnd,
        uint32 txCount,
        bytes32 txRoot,
        bytes32 postRoot
    );
    /// @notice Batch `index` is final: withdrawals may be proven against `postRoot`.
    event BatchFinalized(uint64 indexed index, uint64 indexed serial, bytes32 postRoot);
    /// @notice A dispute proved batch `fromIndex` wrong: batches `fromIndex .. toIndex - 1`
    ///         are gone, and `winner` was credited `reward`, its share (WINNER_SHARE_BPS) of
    ///         the sequencer's stake; the rest is burned (StakeBurned).
    event BatchesRejected(
        uint64 indexed fromIndex, uint64 toIndex, address indexed winner, uint256 reward
    );
    /// @notice A rejection burned `amount` wei of the sequencer's stake: they stay locked in
    ///         this contract forever, counted in `burned()`.
    event StakeBurned(uint256 amount);
    /// @notice `account` withdrew its credit, `amount` wei.
    event CreditClaimed(address indexed account, uint256 amount);

    /// @notice Only the sequencer may do this.
    error NotSequencer(address caller);
    /// @notice Only the dispute game may do this.
    error NotDisputeGame(address caller);
    /// @notice Posting needs a stake of at least `sequencerBond`.
    error InsufficientStake(uint256 stake, uint256 required);
    /// @notice `stake()` needs a non-zero value.
    error ZeroStake();
    /// @notice The sequencer cannot unstake while `pending` batches are not final.
    error BatchesPending(uint256 pending);
    /// @notice A batch must be posted at index `expected`.
    error WrongIndex(uint64 expected, uint64 index);
    /// @notice The parent root must be the previous batch's post root (genesis for batch 0).
    error WrongParentRoot(bytes32 expected, bytes32 parentRoot);
    /// @notice The timestamp must lie in [previous batch's timestamp, block.timestamp].
    error InvalidTimestamp(uint64 timestamp, uint64 min, uint256 max);
    /// @notice inboxEnd must lie in [inboxStart, bridge.messageCount()].
    error InvalidInboxEnd(uint64 inboxEnd, uint64 inboxStart, uint256 messageCount);
    /// @notice Inbox message `messageIndex` was due by `deadline` and the batch skips it.
    error ForcedInclusionOverdue(uint256 messageIndex, uint256 deadline);
    /// @notice A batch must have at least one step.
    error EmptyBatch();
    /// @notice A batch has at most 2^32 - 1 steps (inbox messages plus transactions).
    error TooManySteps(uint256 steps);
    /// @notice No batch is posted at `index`.
    error NoSuchBatch(uint64 index);
    /// @notice Batch `index` is already final.
    error AlreadyFinal(uint64 index);
    /// @notice Batch `index` is not posted or already final (it cannot be rejected).
    error NotPending(uint64 index);
    /// @notice Batch `index` can be challenged until `windowEnd`.
    error ChallengeWindowOpen(uint64 index, uint256 windowEnd);
    /// @notice Batch `index` could only be challenged before `windowEnd`.
    error ChallengeWindowClosed(uint64 index, uint256 windowEnd);
    /// @notice `games` dispute games on batch `index` are still open.
    error GamesOpen(uint64 index, uint256 games);
    /// @notice The caller has no credit.
    error NothingToClaim();
    /// @notice Sending ETH to `to` failed.
    error TransferFailed(address to);
    /// @notice Constructor argument `name` is unusable.
    error InvalidParameter(string name);

    /// @notice The bridge and inbox.
    function bridge() external view returns (IBridge);
    /// @notice The dispute game contract (the only one that may reject batches).
    function disputeGame() external view returns (address);
    /// @notice The only address that posts batches and defends them.
    function sequencer() external view returns (address);
    /// @notice The state root before batch 0.
    function genesisRoot() external view returns (bytes32);
    /// @notice The L2 chain id of the EIP-712 domain.
    function l2ChainId() external view returns (uint256);
    /// @notice The EIP-712 domain separator: name "Ratchet", version "1", l2ChainId, and this
    ///         contract as verifyingContract (docs/protocol.md section 1).
    function domainSeparator() external view returns (bytes32);
    /// @notice Minimum stake (wei) the sequencer must have to post.
    function sequencerBond() external view returns (uint256);
    /// @notice Seconds after posting during which a batch may be challenged.
    function challengeWindow() external view returns (uint64);
    /// @notice Seconds after which an inbox message must have been consumed.
    function forcedInclusionDelay() external view returns (uint64);
    /// @notice The sequencer's current stake (wei).
    function sequencerStake() external view returns (uint128);
    /// @notice Wei of stakes burned by rejections so far: locked in this contract forever.
    function burned() external view returns (uint128);
    /// @notice Share of the stake a rejection credits to the winner, in basis points of the
    ///         stake (the rest is burned).
    function WINNER_SHARE_BPS() external view returns (uint256);
    /// @notice Wei owed to `account` (its share of stakes won), paid by `claimCredit`.
    function credit(address account) external view returns (uint256);

    /// @notice Add msg.value to the sequencer's stake. Only the sequencer.
    function stake() external payable;

    /// @notice Take the whole stake back; only while every posted batch is final.
    function unstake() external;

    /// @notice Post batch `index` (docs/l1.md "Posting a batch"). Only the staked sequencer.
    /// @param index Must be `nextIndex()`.
    /// @param parentRoot Must be the previous batch's post root (genesisRoot for batch 0).
    /// @param timestamp Batch time: previous batch's timestamp <= timestamp <= block.timestamp.
    /// @param inboxEnd The batch consumes inbox messages [previous inboxEnd, inboxEnd); every
    ///        message queued more than forcedInclusionDelay ago must be consumed.
    /// @param postRoot The state root after the batch.
    /// @param transactions The canonical RLP list of the encoded transactions (each a byte
    ///        string of at most 256 bytes, at most 2^16 of them).
    function postBatch(
        uint64 index,
        bytes32 parentRoot,
        uint64 timestamp,
        uint64 inboxEnd,
        bytes32 postRoot,
        bytes calldata transactions
    ) external;

    /// @notice Finalize every batch from `finalizedCount()` up to and including `index`, in
    ///         order; each must be past its challenge window with no open game. Anyone.
    function finalize(uint64 index) external;

    /// @notice Reject batch `index` and every later one (their records, open-game counts
    ///         included, are dropped: a repost overwrites them) and unstake the sequencer: its
    ///         stake is split, WINNER_SHARE_BPS of it credited to `winner` and the rest burned.
    ///         Only the dispute game, for a posted, non-final batch.
    function rejectBatch(uint64 index, address winner) external;

    /// @notice A game opens on live batch `index`, whose challenge window must still be open:
    ///         count it in the batch's `openGames`. Only the dispute game.
    /// @return serial The batch's serial (games name the batch by it).
    /// @return steps The batch's step count: inbox messages, then transactions.
    function openDispute(uint64 index) external returns (uint64 serial, uint32 steps);

    /// @notice A game on the batch posted as `serial` at `index` ended with the batch
    ///         standing: uncount it. A no-op unless the record at `index` still holds that
    ///         serial (a repost after a rejection has its own count, which this leaves
    ///         alone). Only the dispute game. A game that rejects its batch, or is closed
    ///         after another did, has nothing to uncount: `rejectBatch` drops the records
    ///         with their counts.
    function closeDispute(uint64 index, uint64 serial) external;

    /// @notice Send the caller its credit.
    function claimCredit() external;

    /// @notice Index the next batch must be posted at (the number of live batches).
    function nextIndex() external view returns (uint64);
    /// @notice Number of final batches (they are batches 0 .. finalizedCount - 1).
    function finalizedCount() external view returns (uint64);
    /// @notice Number of batches ever posted (the last serial given).
    function serialCount() external view returns (uint64);
    /// @notice Posted batch `index`; reverts for an index not posted (or rejected).
    function batch(uint64 index) external view returns (Batch memory);
    /// @notice How many dispute games are open on posted batch `index`; reverts for an index
    ///         not posted (or rejected).
    function openGames(uint64 index) external view returns (uint256);
    /// @notice The parent root of batch `index` (genesisRoot for 0), for index <= nextIndex.
    function parentRootOf(uint64 index) external view returns (bytes32);
    /// @notice The header hash of posted batch `index` (docs/protocol.md section 3).
    function headerHash(uint64 index) external view returns (bytes32);
    /// @notice Whether batch `index` is final.
    function isFinal(uint64 index) external view returns (bool);
    /// @notice Whether the batch posted with `serial` still stands at `index`.
    function isAlive(uint64 index, uint64 serial) external view returns (bool);
}
