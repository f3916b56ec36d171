"""Hostile-input fuzzing of the sequencer's JSON-RPC API (``make fuzz-rpc``)."""
