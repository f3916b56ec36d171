"""Ratchet node: the sequencer daemon and the pure protocol core it shares with the watchers."""

__version__ = "0.1.0"
