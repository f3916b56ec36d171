// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice A mintable 6-decimal stablecoin stand-in for devnets and tests: anyone may mint.
///         Never deploy it as the collateral of a real rollup.
contract TestToken is ERC20 {
    constructor() ERC20("Ratchet Test USD", "tUSD") {}

    /// @notice 6, like USDC: amounts are in millionths of a dollar.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint `amount` base units to `to` (a faucet: anyone may call it).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
