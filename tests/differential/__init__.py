"""Differential tests: the Solidity one-step executor against the Python STF."""
