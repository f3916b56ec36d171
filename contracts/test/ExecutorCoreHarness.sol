// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibRLP} from "../src/executor/LibRLP.sol";
import {LibRecords} from "../src/executor/LibRecords.sol";
import {LibStepState} from "../src/executor/LibStepState.sol";
import {LibTransaction} from "../src/executor/LibTransaction.sol";

/// @notice Exposes the executor's core libraries (RLP, transactions, records, step state)
///         for the differential tests against the Python core (tests/integration/
///         test_executor_core.py).
contract ExecutorCoreHarness {
    using LibStepState for LibStepState.StepState;

    /// @notice One access of a step to the state.
    struct Op {
        /// @notice False: `get`; true: `set` to `record`.
        bool write;
        /// @notice Table id.
        uint256 table;
        /// @notice Index within the table.
        uint256 index;
        /// @notice The record a `set` writes (ignored by a `get`).
        bytes record;
    }

    // RLP --------------------------------------------------------------------------------

    /// @notice `LibRLP.readWhole` of each input; `payload` relative to the input's start.
    function readWholeMany(bytes[] calldata data)
        external
        pure
        returns (bool[] memory ok, bool[] memory isList, uint256[] memory payload, uint256[] memory length)
    {
        uint256 n = data.length;
        (ok, isList, payload, length) = (new bool[](n), new bool[](n), new uint256[](n), new uint256[](n));
        for (uint256 i = 0; i < n; ++i) {
            (ok[i], isList[i], payload[i], length[i]) = LibRLP.readWhole(data[i]);
            if (ok[i]) payload[i] -= _offset(data[i]);
        }
    }

    // Transactions -----------------------------------------------------------------------

    function parse(bytes calldata raw, bytes32 domainSeparator)
        external
        pure
        returns (uint8 reason, LibTransaction.Transaction memory t)
    {
        return LibTransaction.parse(raw, domainSeparator);
    }

    function parseMany(bytes[] calldata raws, bytes32 domainSeparator)
        external
        pure
        returns (uint8[] memory reasons, LibTransaction.Transaction[] memory txs)
    {
        reasons = new uint8[](raws.length);
        txs = new LibTransaction.Transaction[](raws.length);
        for (uint256 i = 0; i < raws.length; ++i) {
            (reasons[i], txs[i]) = LibTransaction.parse(raws[i], domainSeparator);
        }
    }

    /// @notice Gas `parse` takes (inside the call, without calldata and dispatch).
    function parseGas(bytes calldata raw, bytes32 domainSeparator) external view returns (uint256 used) {
        used = gasleft();
        LibTransaction.parse(raw, domainSeparator);
        used -= gasleft();
    }

    function typeHashOf(uint256 kind) external pure returns (bytes32) {
        return LibTransaction.typeHashOf(kind);
    }

    // Step state -------------------------------------------------------------------------

    /// @notice Run `ops` on a step state at `root` over `witness`; then `flush` (if
    ///         `doFlush`) or require the witness consumed. Returns the final root, what each
    ///         `get` returned (empty for a `set`), and the gas the step state's own calls
    ///         took (init, every get and set, flush; not this loop's calldata decoding).
    function replay(bytes32 root, bytes calldata witness, Op[] calldata ops, bool doFlush)
        external
        view
        returns (bytes32 postRoot, bytes[] memory reads, uint256 gasUsed)
    {
        reads = new bytes[](ops.length);
        uint256 start = gasleft();
        LibStepState.StepState memory st = LibStepState.init(root, witness);
        gasUsed = start - gasleft();
        for (uint256 i = 0; i < ops.length; ++i) {
            Op calldata op = ops[i];
            bool write = op.write;
            uint256 table = op.table;
            uint256 index = op.index;
            if (write) {
                bytes memory record = op.record;
                start = gasleft();
                st.set(table, index, record);
                gasUsed += start - gasleft();
            } else {
                start = gasleft();
                bytes memory record = st.get(table, index);
                gasUsed += start - gasleft();
                reads[i] = record;
            }
        }
        start = gasleft();
        if (doFlush) {
            postRoot = st.flush();
        } else {
            if (st.cursor != st.end) revert LibStepState.WitnessNotConsumed();
            postRoot = st.root;
        }
        gasUsed += start - gasleft();
    }

    // Records: decode then encode (byte-identical round trip) and field views ------------

    function roundTrip(uint256 kind, bytes[] calldata records) external pure returns (bytes[] memory out) {
        out = new bytes[](records.length);
        for (uint256 i = 0; i < records.length; ++i) {
            bytes memory r = records[i];
            if (kind == 0) out[i] = LibRecords.encodeExchange(LibRecords.decodeExchange(r));
            else if (kind == 1) out[i] = LibRecords.encodeMarket(LibRecords.decodeMarket(r));
            else if (kind == 2) out[i] = LibRecords.encodeAccount(LibRecords.decodeAccount(r));
            else if (kind == 3) out[i] = LibRecords.encodeOrder(LibRecords.decodeOrder(r));
            else if (kind == 4) out[i] = LibRecords.encodeLevel(LibRecords.decodeLevel(r));
            else if (kind == 5) out[i] = LibRecords.encodeWithdrawal(LibRecords.decodeWithdrawal(r));
            else revert("kind");
        }
    }

    function decodeExchange(bytes calldata r) external pure returns (LibRecords.Exchange memory) {
        return LibRecords.decodeExchange(r);
    }

    function encodeExchange(LibRecords.Exchange calldata e) external pure returns (bytes memory) {
        return LibRecords.encodeExchange(e);
    }

    function decodeMarket(bytes calldata r) external pure returns (LibRecords.Market memory) {
        return LibRecords.decodeMarket(r);
    }

    function encodeMarket(LibRecords.Market calldata m) external pure returns (bytes memory) {
        return LibRecords.encodeMarket(m);
    }

    function decodeAccount(bytes calldata r) external pure returns (LibRecords.Account memory) {
        return LibRecords.decodeAccount(r);
    }

    function encodeAccount(LibRecords.Account calldata a) external pure returns (bytes memory) {
        return LibRecords.encodeAccount(a);
    }

    function decodeOrder(bytes calldata r) external pure returns (LibRecords.RestingOrder memory) {
        return LibRecords.decodeOrder(r);
    }

    function encodeOrder(LibRecords.RestingOrder calldata o) external pure returns (bytes memory) {
        return LibRecords.encodeOrder(o);
    }

    function decodeLevel(bytes calldata r) external pure returns (LibRecords.Level memory) {
        return LibRecords.decodeLevel(r);
    }

    function encodeLevel(LibRecords.Level calldata l) external pure returns (bytes memory) {
        return LibRecords.encodeLevel(l);
    }

    function decodeWithdrawal(bytes calldata r) external pure returns (LibRecords.Withdrawal memory) {
        return LibRecords.decodeWithdrawal(r);
    }

    function encodeWithdrawal(LibRecords.Withdrawal calldata w) external pure returns (bytes memory) {
        return LibRecords.encodeWithdrawal(w);
    }

    function _offset(bytes calldata data) private pure returns (uint256 o) {
        assembly ("memory-safe") {
            o := data.offset
        }
    }
}
