// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {LibRecords} from "./LibRecords.sol";
import {LibStepState} from "./LibStepState.sol";

/// @title LibBook
/// @notice The order book in the state (docs/protocol.md, section 7): the Solidity twin of
///         node/protocol/book.py, function by function and access by access.
/// @dev Per market and side, each occupied tick has a level record holding a doubly linked
///      FIFO queue of resting orders (head matched first). Occupied ticks are kept in a
///      three-high tree of 256-bit words: bit `b` of word `w` at height 0 marks tick
///      `w * 256 + b`; a height-1 bit marks a non-zero height-0 word; the single height-2
///      word marks non-zero height-1 words.
library LibBook {
    /// @notice Heights of the tick index: 256^3 = 2^24 ticks.
    uint256 internal constant HEIGHTS = 3;

    /// @notice The book side an order rests on.
    function sideOf(bool isBuy) internal pure returns (uint256) {
        return isBuy ? LibRecords.BIDS : LibRecords.ASKS;
    }

    /// @notice The best set bit of a non-zero word: the highest for bids, the lowest for asks.
    function bestBit(uint256 bits, uint256 side) internal pure returns (uint256) {
        if (side == LibRecords.BIDS) return Math.log2(bits);
        unchecked {
            return Math.log2(bits & (0 - bits)); // the lowest set bit alone
        }
    }

    /// @notice The best occupied tick of one side (highest bid, lowest ask), or 0 if the side
    ///         is empty. Reads the height-2 word, then (non-empty) one word per lower height.
    function bestTick(LibStepState.StepState memory st, uint256 market, uint256 side)
        internal
        pure
        returns (uint256)
    {
        uint256 top = LibRecords.loadWord(st, market, side, 2, 0);
        if (top == 0) return 0;
        uint256 high = bestBit(top, side);
        uint256 middle = bestBit(LibRecords.loadWord(st, market, side, 1, high), side);
        uint256 low = bestBit(LibRecords.loadWord(st, market, side, 0, (high << 8) | middle), side);
        return (high << 16) | (middle << 8) | low;
    }

    /// @notice Mark `tick` occupied, going up while the word was empty before.
    function markTick(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 tick) internal pure {
        for (uint256 height = 0; height < HEIGHTS; ++height) {
            uint256 word = tick >> (8 * (height + 1));
            uint256 bit = (tick >> (8 * height)) & 0xFF;
            uint256 bits = LibRecords.loadWord(st, market, side, height, word);
            LibRecords.storeWord(st, market, side, height, word, bits | (1 << bit));
            if (bits != 0) return;
        }
    }

    /// @notice Mark `tick` empty, going up while the word becomes empty.
    function clearTick(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 tick) internal pure {
        for (uint256 height = 0; height < HEIGHTS; ++height) {
            uint256 word = tick >> (8 * (height + 1));
            uint256 bit = (tick >> (8 * height)) & 0xFF;
            uint256 bits = LibRecords.loadWord(st, market, side, height, word) & ~(1 << bit);
            LibRecords.storeWord(st, market, side, height, word, bits);
            if (bits != 0) return;
        }
    }

    /// @notice Put a new order at the tail of its level (creating the level), and store it.
    function appendOrder(LibStepState.StepState memory st, uint256 orderId, LibRecords.RestingOrder memory order)
        internal
        pure
    {
        uint256 side = sideOf(order.isBuy);
        (bool exists, LibRecords.Level memory level) = LibRecords.loadLevel(st, order.market, side, order.tick);
        order.next = LibRecords.NIL;
        if (!exists) {
            markTick(st, order.market, side, order.tick);
            order.prev = LibRecords.NIL;
            level = LibRecords.Level(orderId, orderId, order.remaining);
        } else {
            (bool found, LibRecords.RestingOrder memory tail) = LibRecords.loadOrder(st, level.tail);
            assert(found); // a level's tail order exists
            tail.next = orderId;
            LibRecords.storeOrder(st, level.tail, tail);
            order.prev = level.tail;
            level.tail = orderId;
            level.size += order.remaining;
        }
        LibRecords.storeOrder(st, orderId, order);
        LibRecords.storeLevel(st, order.market, side, order.tick, level);
    }

    /// @notice Subtract a fill's `size` from the level's total.
    function reduceLevel(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 tick, uint256 size)
        internal
        pure
    {
        (bool exists, LibRecords.Level memory level) = LibRecords.loadLevel(st, market, side, tick);
        assert(exists); // a filled order's level exists
        level.size -= size;
        LibRecords.storeLevel(st, market, side, tick, level);
    }

    /// @notice Take an order out of its level's queue (deleting an emptied level) and
    ///         delete it.
    function unlinkOrder(LibStepState.StepState memory st, uint256 orderId, LibRecords.RestingOrder memory order)
        internal
        pure
    {
        uint256 side = sideOf(order.isBuy);
        (bool exists, LibRecords.Level memory level) = LibRecords.loadLevel(st, order.market, side, order.tick);
        assert(exists); // a resting order's level exists
        if (order.prev != LibRecords.NIL) {
            (bool found, LibRecords.RestingOrder memory prev) = LibRecords.loadOrder(st, order.prev);
            assert(found);
            prev.next = order.next;
            LibRecords.storeOrder(st, order.prev, prev);
        } else {
            level.head = order.next;
        }
        if (order.next != LibRecords.NIL) {
            (bool found, LibRecords.RestingOrder memory following) = LibRecords.loadOrder(st, order.next);
            assert(found);
            following.prev = order.prev;
            LibRecords.storeOrder(st, order.next, following);
        } else {
            level.tail = order.prev;
        }
        level.size -= order.remaining;
        if (level.head == LibRecords.NIL) {
            LibRecords.deleteLevel(st, order.market, side, order.tick);
            clearTick(st, order.market, side, order.tick);
        } else {
            LibRecords.storeLevel(st, order.market, side, order.tick, level);
        }
        LibRecords.deleteOrder(st, orderId);
    }

    /// @notice Remove a resting order from the book and from its owner's list of open orders.
    /// @dev The owner's account is edited as a record (`withoutOrderId`): the same read and
    ///      write as Python's load, `orders.remove`, store, without decoding it.
    function removeOrder(LibStepState.StepState memory st, uint256 orderId, LibRecords.RestingOrder memory order)
        internal
        pure
    {
        unlinkOrder(st, orderId, order);
        bytes memory owner = LibRecords.accountRecord(st, order.account);
        assert(owner.length != 0); // a resting order's owner exists
        LibRecords.storeAccountRecord(st, order.account, LibRecords.withoutOrderId(owner, orderId));
    }
}
