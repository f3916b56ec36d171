"""
The pure protocol core of Ratchet.

Everything in this package is a deterministic function of its arguments: the wire
format and EIP-712 signing, the Merkle state, witness recording and (later) the
state transition function. It performs no I/O and imports no event loop, database
or network library, so the sequencer, every watcher, the witness builder and the
tests run exactly the same code. ``tests/unit/test_purity.py`` and the
import-linter contract in ``setup.cfg`` enforce this.
"""
