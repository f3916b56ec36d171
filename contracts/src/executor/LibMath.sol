// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title LibMath
/// @notice The two roundings of the STF (docs/protocol.md, section 8): the Solidity twins of
///         `floor_div` and `ceil_div` in node/protocol/margin.py.
/// @dev Python's `//` floors; Solidity's `/` truncates toward zero. Both functions therefore
///      correct the truncated quotient explicitly. The divisor is always positive; numerators
///      are bounded far below 2^255 (section 8, "Value bounds"), so nothing here overflows.
library LibMath {
    /// @notice `numerator / denominator` rounded toward minus infinity (`denominator > 0`).
    function floorDiv(int256 numerator, int256 denominator) internal pure returns (int256 q) {
        // unchecked: denominator > 0, and |q * denominator| <= |numerator|
        unchecked {
            q = numerator / denominator; // truncates toward zero
            // a negative inexact quotient was rounded up by the truncation: one step down
            if (numerator < 0 && q * denominator != numerator) q -= 1;
        }
    }

    /// @notice `numerator / denominator` rounded toward plus infinity (`denominator > 0`):
    ///         `-floorDiv(-numerator, denominator)`.
    function ceilDiv(int256 numerator, int256 denominator) internal pure returns (int256 q) {
        // unchecked: denominator > 0, and |q * denominator| <= |numerator|
        unchecked {
            q = numerator / denominator; // truncates toward zero
            // a positive inexact quotient was rounded down by the truncation: one step up
            if (numerator > 0 && q * denominator != numerator) q += 1;
        }
    }

    /// @notice `ceilDiv` of a non-negative numerator, unsigned (`denominator > 0`).
    function ceilDivU(uint256 numerator, uint256 denominator) internal pure returns (uint256 q) {
        // non-negative: rounding up is adding one to an inexact truncated quotient
        // (unchecked: denominator > 0, and q + 1 <= numerator when the division is inexact)
        unchecked {
            q = numerator / denominator;
            if (q * denominator != numerator) q += 1;
        }
    }

    /// @notice |x| of a signed value (|x| < 2^255 in every use).
    function abs(int256 x) internal pure returns (uint256) {
        return uint256(x >= 0 ? x : -x);
    }

    /// @notice The smaller of two unsigned values.
    function min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }
}
