// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibMerkle} from "./LibMerkle.sol";

/// @title LibStateLayout
/// @notice Ratchet's state: one fixed-depth table tree per table under a global tree of
///         depth GLOBAL_DEPTH. The Solidity twin of node/protocol/state.py; a test checks
///         that both define the same tables.
/// @dev Seen from the state root, record (table, index) is leaf (table << depth) | index of a
///      tree of depth `depth(table) + GLOBAL_DEPTH`, so one proof rule covers every table.
library LibStateLayout {
    /// @notice Thrown for a table id that names no table.
    error UnknownTable(uint256 table);

    /// @notice Depth of the global tree whose leaves are the table roots.
    uint256 internal constant GLOBAL_DEPTH = 4;

    /// @notice Global scalars of the exchange (slot 0: the Exchange record).
    uint256 internal constant TABLE_META = 0;
    /// @notice Accounts by the dense id the bridge assigns (id 0: the fee account).
    uint256 internal constant TABLE_ACCOUNTS = 1;
    /// @notice Markets by id.
    uint256 internal constant TABLE_MARKETS = 2;
    /// @notice Resting orders by order id (derived from the order hash).
    uint256 internal constant TABLE_ORDERS = 3;
    /// @notice Order-book price levels by (market, side, tick).
    uint256 internal constant TABLE_LEVELS = 4;
    /// @notice Per market and side, the 256-bit words marking occupied ticks.
    uint256 internal constant TABLE_BOOK = 5;
    /// @notice Withdrawal records, paid on L1 once final.
    uint256 internal constant TABLE_WITHDRAWALS = 6;

    /// @notice Depth of a table's tree, or 0 if `table` names no table.
    function depthOf(uint256 table) internal pure returns (uint256) {
        if (table == TABLE_META) return 8;
        if (table == TABLE_ACCOUNTS) return 32;
        if (table == TABLE_MARKETS) return 16;
        if (table == TABLE_ORDERS) return 40;
        if (table == TABLE_LEVELS) return 41;
        if (table == TABLE_BOOK) return 35;
        if (table == TABLE_WITHDRAWALS) return 40;
        return 0;
    }

    /// @notice Depth of a table's tree; reverts for an unknown table.
    function depth(uint256 table) internal pure returns (uint256 d) {
        d = depthOf(table);
        if (d == 0) revert UnknownTable(table);
    }

    /// @notice The state root reached from `record` at (table, index) through `siblings`
    ///         (table siblings bottom-up, then the global ones); reverts for an unknown table.
    function rootWith(uint256 table, uint256 index, bytes memory record, bytes32[] memory siblings)
        internal
        pure
        returns (bytes32)
    {
        uint256 d = depth(table);
        return LibMerkle.rootFromPath(LibMerkle.hashLeaf(record), (table << d) | index, siblings);
    }

    /// @notice Whether `siblings` prove `record` at (table, index) under `root`.
    function verify(
        bytes32 root,
        uint256 table,
        uint256 index,
        bytes memory record,
        bytes32[] memory siblings
    ) internal pure returns (bool) {
        uint256 d = depthOf(table);
        if (d == 0 || index >= (uint256(1) << d) || siblings.length != d + GLOBAL_DEPTH) {
            return false;
        }
        return rootWith(table, index, record, siblings) == root;
    }
}
