// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IDisputeGame
/// @notice Interactive bisection games over the execution trace of a posted batch. Anyone may
///         challenge a batch within its window; each challenger plays its own game against the
///         sequencer (the defender) under a chess clock, down to one step that the one-step
///         executor decides. See docs/l1.md.
interface IDisputeGame {
    /// @notice Where a game stands.
    enum GameStatus {
        /// @notice No game has this id.
        None,
        /// @notice In play.
        Open,
        /// @notice The defender proved its step or the challenger ran out of time: the
        ///         challenger's bond went to the defender.
        DefenderWon,
        /// @notice The step proved the defender wrong or the defender ran out of time: the
        ///         batch was rejected, the challenger got its bond back and the winner's share
        ///         of the stake.
        ChallengerWon,
        /// @notice Another game rejected the batch first: closed, the bond refunded.
        Abandoned
    }

    /// @notice Whose move it is.
    enum Party {
        /// @notice The sequencer: it bisects, and proves the last step.
        Defender,
        /// @notice The challenger: it answers each bisection.
        Challenger
    }

    /// @notice One game. The disputed range of steps is [lo, hi]: both parties agree on the
    ///         root after step lo - 1 (the state before step lo) and disagree on the root
    ///         after step hi - 1. Two packed words and three roots.
    struct Game {
        /// @notice Who opened the game (and posted the bond).
        address challenger;
        /// @notice Index of the disputed batch.
        uint64 batchIndex;
        /// @notice Where the game stands.
        GameStatus status;
        /// @notice Whose move it is.
        Party turn;
        /// @notice Serial of the disputed batch (tells a reposted batch apart).
        uint64 serial;
        /// @notice Agreed end of the range: the trace position whose root both accept
        ///         (position k = the state after k steps; 0 = the batch's parent root).
        uint32 lo;
        /// @notice Disputed end: the position whose root the challenger rejects (starts at the
        ///         batch's step count, whose root is the batch's post root).
        uint32 hi;
        /// @notice L1 time of the last move (or of the challenge): the clock on turn runs from it.
        uint64 lastMoveAt;
        /// @notice Seconds left on the defender's clock as of lastMoveAt.
        uint32 defenderClock;
        /// @notice Seconds left on the challenger's clock as of lastMoveAt.
        uint32 challengerClock;
        /// @notice Root at position lo once lo > 0 (at lo = 0 it is the batch's parent root).
        bytes32 loRoot;
        /// @notice Root at position hi once hi < steps (before, it is the batch's post root).
        bytes32 hiRoot;
        /// @notice The defender's root at position (lo + hi) / 2, awaiting the challenger.
        bytes32 midRoot;
    }

    /// @notice `challenger` opened game `gameId` on batch `batchIndex` (posted as `serial`),
    ///         whose trace has `steps` steps.
    event GameOpened(
        uint256 indexed gameId,
        uint64 indexed batchIndex,
        address indexed challenger,
        uint64 serial,
        uint32 steps
    );
    /// @notice The defender claims `midRoot` at position `mid` of game `gameId`.
    event Bisected(uint256 indexed gameId, uint32 mid, bytes32 midRoot);
    /// @notice The challenger agreed (lo moved up to mid) or disagreed (hi moved down to mid);
    ///         the range is now [lo, hi].
    event Responded(uint256 indexed gameId, bool agree, uint32 lo, uint32 hi);
    /// @notice The executor ran step `step` of game `gameId`: from the agreed root it
    ///         reached `postRoot` (with STF reason `reason`).
    event StepProven(uint256 indexed gameId, uint32 step, bytes32 postRoot, uint8 reason);
    /// @notice Game `gameId` ended with `status`; `bond` wei were credited to `creditedTo`.
    event GameResolved(
        uint256 indexed gameId, GameStatus status, address indexed creditedTo, uint256 bond
    );
    /// @notice `account` withdrew its credit, `amount` wei.
    event CreditClaimed(address indexed account, uint256 amount);

    /// @notice The bond must be exactly `required` wei.
    error WrongBond(uint256 sent, uint256 required);
    /// @notice No live batch at `batchIndex` (raised by the Rollup's `openDispute`; a
    ///         challenge passes it through).
    error NoSuchBatch(uint64 batchIndex);
    /// @notice Batch `batchIndex` could only be challenged before `windowEnd` (raised by the
    ///         Rollup's `openDispute`; a challenge passes it through).
    error ChallengeWindowClosed(uint64 batchIndex, uint256 windowEnd);
    /// @notice No game has id `gameId`.
    error NoSuchGame(uint256 gameId);
    /// @notice Game `gameId` has ended.
    error GameNotOpen(uint256 gameId);
    /// @notice Only `expected` may make this move now.
    error NotYourMove(address expected, address caller);
    /// @notice It is not this party's turn.
    error WrongTurn(Party turn);
    /// @notice The range [lo, hi] is a single step: only proveStep (or timeout) remains.
    error AtOneStep(uint32 lo, uint32 hi);
    /// @notice The range [lo, hi] is more than one step: bisect first.
    error NotAtOneStep(uint32 lo, uint32 hi);
    /// @notice The party on turn used `elapsed` seconds with `remaining` on its clock.
    error ClockExpired(uint256 elapsed, uint256 remaining);
    /// @notice The party on turn still has time (`elapsed` <= `remaining`).
    error ClockNotExpired(uint256 elapsed, uint256 remaining);
    /// @notice The game's batch was rejected by another game: close it with closeGame.
    error BatchNotAlive(uint256 gameId);
    /// @notice The game's batch still stands: the game must be played out.
    error BatchStillAlive(uint256 gameId);
    /// @notice `data` is not step `step`'s input (inbox message or proven transaction).
    error InvalidStepInput(uint32 step);
    /// @notice The caller has no credit.
    error NothingToClaim();
    /// @notice Sending ETH to `to` failed.
    error TransferFailed(address to);
    /// @notice Constructor argument `name` is unusable.
    error InvalidParameter(string name);

    /// @notice Open a game on live batch `batchIndex` while its challenge window is open,
    ///         with a bond of exactly `challengerBond()`. Every game is independent and has
    ///         its own bond: a challenger may open several on one batch. The Rollup counts
    ///         the game in the batch's `openGames` until it ends. The defender moves first.
    /// @return gameId The new game's id (dense, from 0).
    function challenge(uint64 batchIndex) external payable returns (uint256 gameId);

    /// @notice The defender's move: claim `midRoot` as the root at position (lo + hi) / 2.
    function bisect(uint256 gameId, bytes32 midRoot) external;

    /// @notice The challenger's move: agree with the pending mid root (the range becomes
    ///         [mid, hi]) or not ([lo, mid]).
    function respond(uint256 gameId, bool agree) external;

    /// @notice At one step (hi = lo + 1, defender's turn, its clock running), anyone runs step
    ///         lo on the one-step executor from the agreed root: reaching the disputed root
    ///         wins the game for the defender, anything else for the challenger.
    /// @param data Step lo's input: inbox message inboxStart + lo while lo < the batch's inbox
    ///        count, else transaction lo - inboxCount.
    /// @param txProof For a transaction, its 16 siblings in the batch's tx tree (else empty).
    /// @param witness The step's witness (docs/protocol.md section 5).
    function proveStep(
        uint256 gameId,
        bytes calldata data,
        bytes32[] calldata txProof,
        bytes calldata witness
    ) external;

    /// @notice End a game whose party on turn has run out of time: the other party wins.
    ///         Anyone.
    function timeout(uint256 gameId) external;

    /// @notice Close a game whose batch another game rejected, refunding the challenger's
    ///         bond. Anyone.
    function closeGame(uint256 gameId) external;

    /// @notice Send the caller its credit (bonds won or refunded).
    function claimCredit() external;

    /// @notice Game `gameId`; reverts for an unknown id.
    function game(uint256 gameId) external view returns (Game memory);

    /// @notice How many games were ever opened (ids are 0 .. gameCount - 1).
    function gameCount() external view returns (uint256);

    /// @notice The roots at positions lo, (lo + hi) / 2 (zero unless a bisection awaits the
    ///         challenger) and hi of game `gameId`. Once the game's batch is gone, the roots
    ///         implied by the batch (its parent and post roots) read as zero.
    function roots(uint256 gameId)
        external
        view
        returns (bytes32 loRoot, bytes32 midRoot, bytes32 hiRoot);

    /// @notice Seconds left on each clock now (the clock on turn counting down since the
    ///         last move; 0 when expired).
    function clocks(uint256 gameId)
        external
        view
        returns (uint256 defenderRemaining, uint256 challengerRemaining);

    /// @notice Wei owed to `account`, paid by `claimCredit`.
    function credit(address account) external view returns (uint256);

    /// @notice The bond a challenge must carry (wei).
    function challengerBond() external view returns (uint256);

    /// @notice Seconds each party has for all its moves in one game.
    function clockBudget() external view returns (uint64);
}
