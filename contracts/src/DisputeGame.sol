// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBridge} from "./interfaces/IBridge.sol";
import {IDisputeGame} from "./interfaces/IDisputeGame.sol";
import {IOneStepExecutor} from "./interfaces/IOneStepExecutor.sol";
import {IRollup} from "./interfaces/IRollup.sol";
import {LibBatch} from "./lib/LibBatch.sol";
import {LibMerkle} from "./lib/LibMerkle.sol";

/// @title DisputeGame
/// @notice Bisection games over a batch's execution trace (docs/protocol.md section 3: the
///         consumed inbox messages, then the transactions; position k is the state after k
///         steps). Each challenger plays its own game against the sequencer, in parallel with
///         any other; moves run under a chess clock; at one step the one-step executor
///         decides. The Rollup counts the open games of each standing batch (openDispute /
///         closeDispute) and finalizes none while its count is not 0. See docs/l1.md for the
///         rules, the bonds and the finality bound.
contract DisputeGame is IDisputeGame {
    /// @notice Step kind of an inbox message (node/protocol/step.py StepKind.L1_MESSAGE).
    uint8 internal constant L1_MESSAGE = 0;
    /// @notice Step kind of a batch transaction (StepKind.TRANSACTION).
    uint8 internal constant TRANSACTION = 1;

    /// @notice keccak256 of the EIP712Domain type (node/protocol/eip712.py DOMAIN_FIELDS).
    bytes32 internal constant DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );

    /// @notice The chain of batches this contract disputes.
    IRollup public immutable rollup;
    /// @notice The inbox (the input of inbox steps).
    IBridge public immutable bridge;
    /// @notice Decides the last step of a game.
    IOneStepExecutor public immutable executor;
    /// @notice The defender of every game: the Rollup's sequencer.
    address public immutable sequencer;
    /// @inheritdoc IDisputeGame
    uint256 public immutable challengerBond;
    /// @inheritdoc IDisputeGame
    uint64 public immutable clockBudget;
    /// @notice The Rollup's challenge window (seconds; the Rollup enforces it).
    uint64 public immutable challengeWindow;
    /// @notice The rollup's EIP-712 domain separator, computed here as eip712.py does.
    bytes32 public immutable domainSeparator;

    /// @notice The number of games ever opened, plus one: set to 1 by the constructor so
    ///         that the slot is never zero and no challenge pays for a fresh write.
    uint256 internal _gameCountPlusOne;
    /// @inheritdoc IDisputeGame
    mapping(address account => uint256) public credit;

    /// @notice Games by id.
    mapping(uint256 gameId => Game) internal _games;

    /// @param rollup_ The Rollup, whose `disputeGame()` must be this contract.
    /// @param executor_ The one-step executor.
    /// @param challengerBond_ Wei a challenge must carry.
    /// @param clockBudget_ Seconds each party has for all its moves in a game (< 2^32).
    constructor(
        IRollup rollup_,
        IOneStepExecutor executor_,
        uint256 challengerBond_,
        uint64 clockBudget_
    ) {
        if (rollup_.disputeGame() != address(this)) revert InvalidParameter("rollup");
        if (address(executor_).code.length == 0) revert InvalidParameter("executor");
        if (challengerBond_ == 0) revert InvalidParameter("challengerBond");
        if (clockBudget_ == 0 || clockBudget_ > type(uint32).max) {
            revert InvalidParameter("clockBudget");
        }
        rollup = rollup_;
        bridge = rollup_.bridge();
        executor = executor_;
        sequencer = rollup_.sequencer();
        challengerBond = challengerBond_;
        clockBudget = clockBudget_;
        challengeWindow = rollup_.challengeWindow();
        _gameCountPlusOne = 1;
        // eip712.py domain_separator: name "Ratchet", version "1", the L2 chain id, the rollup
        domainSeparator = keccak256(
            abi.encode(
                DOMAIN_TYPEHASH,
                keccak256("Ratchet"),
                keccak256("1"),
                rollup_.l2ChainId(),
                address(rollup_)
            )
        );
    }

    // opening -------------------------------------------------------------------------

    /// @inheritdoc IDisputeGame
    function challenge(uint64 batchIndex) external payable returns (uint256 gameId) {
        if (msg.value != challengerBond) revert WrongBond(msg.value, challengerBond);
        // The Rollup checks that the batch stands and its window is open (NoSuchBatch,
        // ChallengeWindowClosed) and counts the game on the batch.
        (uint64 serial, uint32 steps) = rollup.openDispute(batchIndex);

        uint256 countPlusOne = _gameCountPlusOne;
        gameId = countPlusOne - 1;
        _gameCountPlusOne = countPlusOne + 1;
        Game storage g = _games[gameId];
        g.challenger = msg.sender;
        g.batchIndex = batchIndex;
        g.status = GameStatus.Open;
        g.turn = Party.Defender;
        g.serial = serial;
        g.hi = steps;
        g.lastMoveAt = uint64(block.timestamp);
        g.defenderClock = uint32(clockBudget);
        g.challengerClock = uint32(clockBudget);
        emit GameOpened(gameId, batchIndex, msg.sender, serial, steps);
    }

    // moves ---------------------------------------------------------------------------

    /// @inheritdoc IDisputeGame
    function bisect(uint256 gameId, bytes32 midRoot) external {
        Game storage g = _openGame(gameId);
        if (msg.sender != sequencer) revert NotYourMove(sequencer, msg.sender);
        if (g.turn != Party.Defender) revert WrongTurn(g.turn);
        (uint32 lo, uint32 hi) = (g.lo, g.hi);
        if (hi - lo < 2) revert AtOneStep(lo, hi);
        _spendClock(g, Party.Defender);
        g.turn = Party.Challenger;
        g.midRoot = midRoot;
        emit Bisected(gameId, _mid(lo, hi), midRoot);
    }

    /// @inheritdoc IDisputeGame
    function respond(uint256 gameId, bool agree) external {
        Game storage g = _openGame(gameId);
        if (msg.sender != g.challenger) revert NotYourMove(g.challenger, msg.sender);
        if (g.turn != Party.Challenger) revert WrongTurn(g.turn);
        _spendClock(g, Party.Challenger);
        uint32 mid = _mid(g.lo, g.hi);
        if (agree) {
            g.lo = mid;
            g.loRoot = g.midRoot;
        } else {
            g.hi = mid;
            g.hiRoot = g.midRoot;
        }
        g.turn = Party.Defender;
        emit Responded(gameId, agree, g.lo, g.hi);
    }

    /// @inheritdoc IDisputeGame
    function proveStep(
        uint256 gameId,
        bytes calldata data,
        bytes32[] calldata txProof,
        bytes calldata witness
    ) external {
        Game storage g = _openGame(gameId);
        if (g.turn != Party.Defender || g.hi - g.lo != 1) revert NotAtOneStep(g.lo, g.hi);
        _checkClock(g, Party.Defender);
        if (!rollup.isAlive(g.batchIndex, g.serial)) revert BatchNotAlive(gameId);
        IRollup.Batch memory b = rollup.batch(g.batchIndex);
        uint8 kind = _checkInput(b, g.lo, data, txProof);
        (bytes32 loRoot, bytes32 hiRoot) = _endRoots(g, b);
        (bytes32 postRoot, uint8 reason) = _execute(loRoot, kind, data, b.timestamp, witness);
        emit StepProven(gameId, g.lo, postRoot, reason);
        if (postRoot == hiRoot) {
            _defenderWins(gameId, g);
        } else {
            _challengerWins(gameId, g);
        }
    }

    /// @inheritdoc IDisputeGame
    function timeout(uint256 gameId) external {
        Game storage g = _openGame(gameId);
        if (!rollup.isAlive(g.batchIndex, g.serial)) revert BatchNotAlive(gameId);
        (uint256 elapsed, uint256 remaining) = _clock(g, g.turn);
        if (elapsed <= remaining) revert ClockNotExpired(elapsed, remaining);
        if (g.turn == Party.Defender) {
            _challengerWins(gameId, g);
        } else {
            _defenderWins(gameId, g);
        }
    }

    /// @inheritdoc IDisputeGame
    function closeGame(uint256 gameId) external {
        Game storage g = _openGame(gameId);
        if (rollup.isAlive(g.batchIndex, g.serial)) revert BatchStillAlive(gameId);
        // The rejection dropped the batch's record with its open-game count: nothing to
        // uncount (a repost at the index starts from 0).
        g.status = GameStatus.Abandoned;
        credit[g.challenger] += challengerBond;
        emit GameResolved(gameId, GameStatus.Abandoned, g.challenger, challengerBond);
    }

    /// @inheritdoc IDisputeGame
    function claimCredit() external {
        uint256 amount = credit[msg.sender];
        if (amount == 0) revert NothingToClaim();
        credit[msg.sender] = 0;
        emit CreditClaimed(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender);
    }

    // views ---------------------------------------------------------------------------

    /// @inheritdoc IDisputeGame
    function gameCount() external view returns (uint256) {
        return _gameCountPlusOne - 1;
    }

    /// @inheritdoc IDisputeGame
    function game(uint256 gameId) external view returns (Game memory) {
        Game storage g = _games[gameId];
        if (g.status == GameStatus.None) revert NoSuchGame(gameId);
        return g;
    }

    /// @inheritdoc IDisputeGame
    function roots(uint256 gameId)
        external
        view
        returns (bytes32 loRoot, bytes32 midRoot, bytes32 hiRoot)
    {
        Game storage g = _games[gameId];
        if (g.status == GameStatus.None) revert NoSuchGame(gameId);
        (loRoot, hiRoot) = (g.loRoot, g.hiRoot);
        midRoot = g.turn == Party.Challenger ? g.midRoot : bytes32(0);
        if (rollup.isAlive(g.batchIndex, g.serial)) {
            (loRoot, hiRoot) = _endRoots(g, rollup.batch(g.batchIndex));
        }
    }

    /// @inheritdoc IDisputeGame
    function clocks(uint256 gameId)
        external
        view
        returns (uint256 defenderRemaining, uint256 challengerRemaining)
    {
        Game storage g = _games[gameId];
        if (g.status == GameStatus.None) revert NoSuchGame(gameId);
        defenderRemaining = g.defenderClock;
        challengerRemaining = g.challengerClock;
        if (g.status != GameStatus.Open) return (defenderRemaining, challengerRemaining);
        (uint256 elapsed, uint256 remaining) = _clock(g, g.turn);
        uint256 left = elapsed >= remaining ? 0 : remaining - elapsed;
        if (g.turn == Party.Defender) defenderRemaining = left;
        else challengerRemaining = left;
    }

    // internals -----------------------------------------------------------------------

    /// @notice The open game `gameId`.
    function _openGame(uint256 gameId) internal view returns (Game storage g) {
        g = _games[gameId];
        if (g.status != GameStatus.Open) {
            if (g.status == GameStatus.None) revert NoSuchGame(gameId);
            revert GameNotOpen(gameId);
        }
    }

    /// @notice A batch's step count: its inbox messages, then its transactions (< 2^32, the
    ///         Rollup checks it at posting).
    function _steps(IRollup.Batch memory b) internal pure returns (uint32) {
        return uint32(b.inboxEnd - b.inboxStart + b.txCount);
    }

    /// @notice The bisection point of [lo, hi]: floor((lo + hi) / 2), strictly between them
    ///         when hi >= lo + 2.
    function _mid(uint32 lo, uint32 hi) internal pure returns (uint32) {
        return uint32((uint256(lo) + hi) / 2);
    }

    /// @notice Seconds since the last move, and what the clock of `party` had then.
    function _clock(Game storage g, Party party)
        internal
        view
        returns (uint256 elapsed, uint256 remaining)
    {
        elapsed = block.timestamp - g.lastMoveAt;
        remaining = party == Party.Defender ? g.defenderClock : g.challengerClock;
    }

    /// @notice Revert unless `party` may still move: elapsed <= remaining (a move in the last
    ///         second of the clock is on time).
    function _checkClock(Game storage g, Party party) internal view returns (uint256, uint256) {
        (uint256 elapsed, uint256 remaining) = _clock(g, party);
        if (elapsed > remaining) revert ClockExpired(elapsed, remaining);
        return (elapsed, remaining);
    }

    /// @notice Charge the time since the last move to `party`'s clock and restart the clock.
    function _spendClock(Game storage g, Party party) internal {
        (uint256 elapsed, uint256 remaining) = _checkClock(g, party);
        uint32 left = uint32(remaining - elapsed);
        if (party == Party.Defender) g.defenderClock = left;
        else g.challengerClock = left;
        g.lastMoveAt = uint64(block.timestamp);
    }

    /// @notice Check that `data` is the input of step `step` of batch `b`; its step kind.
    function _checkInput(
        IRollup.Batch memory b,
        uint32 step,
        bytes calldata data,
        bytes32[] calldata txProof
    ) internal view returns (uint8 kind) {
        uint256 inboxCount = b.inboxEnd - b.inboxStart;
        if (step < inboxCount) {
            if (!bridge.verifyMessage(b.inboxStart + step, data)) revert InvalidStepInput(step);
            return L1_MESSAGE;
        }
        if (
            txProof.length != LibBatch.TX_TREE_DEPTH
                || LibMerkle.rootFromPath(keccak256(data), step - inboxCount, txProof) != b.txRoot
        ) revert InvalidStepInput(step);
        return TRANSACTION;
    }

    /// @notice Run one step on the executor in the rollup's domain.
    function _execute(
        bytes32 preRoot,
        uint8 kind,
        bytes calldata data,
        uint64 timestamp,
        bytes calldata witness
    ) internal view returns (bytes32 postRoot, uint8 reason) {
        return executor.execute(preRoot, kind, data, timestamp, domainSeparator, witness);
    }

    /// @notice The agreed root (position lo) and the disputed one (position hi).
    function _endRoots(Game storage g, IRollup.Batch memory b)
        internal
        view
        returns (bytes32 loRoot, bytes32 hiRoot)
    {
        loRoot = g.lo == 0 ? rollup.parentRootOf(g.batchIndex) : g.loRoot;
        hiRoot = g.hi == _steps(b) ? b.postRoot : g.hiRoot;
    }

    /// @notice The challenger's bond goes to the defender; the batch stands, and the game no
    ///         longer holds back its finality.
    function _defenderWins(uint256 gameId, Game storage g) internal {
        g.status = GameStatus.DefenderWon;
        rollup.closeDispute(g.batchIndex, g.serial);
        credit[sequencer] += challengerBond;
        emit GameResolved(gameId, GameStatus.DefenderWon, sequencer, challengerBond);
    }

    /// @notice The batch (and every later one) is rejected; the challenger gets its bond back
    ///         here and the winner's share of the sequencer's stake in the Rollup. The
    ///         rejection drops the batch's record, open-game count included, so the game does
    ///         not uncount itself.
    function _challengerWins(uint256 gameId, Game storage g) internal {
        g.status = GameStatus.ChallengerWon;
        address challenger = g.challenger;
        credit[challenger] += challengerBond;
        emit GameResolved(gameId, GameStatus.ChallengerWon, challenger, challengerBond);
        rollup.rejectBatch(g.batchIndex, challenger);
    }
}
